"""nmnist.py: the 40-bit format round-trips through tonic's reader; damaged files are UserErrors."""

from pathlib import Path

import numpy as np
import pytest
import tonic.io

from neurodeploy.data.events import EVENT_DTYPE, make_events
from neurodeploy.data.nmnist import (
    NMNIST_SENSOR,
    check_nmnist_root,
    encode_nmnist_events,
    find_nmnist_root,
    index_nmnist,
    read_nmnist_file,
    write_nmnist_file,
)
from neurodeploy.errors import UserError


def random_events(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 34, n), rng.integers(0, 34, n),
                       np.sort(rng.integers(0, 2**23, n)), rng.integers(0, 2, n))


def test_sensor():
    assert NMNIST_SENSOR == (34, 34, 2)


def test_bit_layout_golden():
    # x=1, y=2, ON, t=0x123456: bytes x, y, p<<7 | t[22:16], t[15:8], t[7:0]
    assert encode_nmnist_events(make_events([1], [2], [0x123456], [1])) == bytes([1, 2, 0x92, 0x34, 0x56])
    assert encode_nmnist_events(make_events([33], [0], [5], [0])) == bytes([33, 0, 0, 0, 5])


def test_round_trip_through_tonic_reader(tmp_path):
    events = random_events()
    path = write_nmnist_file(tmp_path / "00001.bin", events)
    assert path.stat().st_size == 5 * len(events)
    theirs = tonic.io.read_mnist_file(str(path), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    for field in "xytp":
        np.testing.assert_array_equal(theirs[field], events[field].astype(int))
    ours = read_nmnist_file(path)
    assert ours.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(ours, events)


def test_write_is_atomic_and_leaves_no_temporary(tmp_path):
    write_nmnist_file(tmp_path / "a.bin", random_events(10))
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("bad", [
    make_events([0], [0], [2**23], [1]),   # timestamp needs 24 bits
    make_events([0], [0], [-1], [1]),
    make_events([0], [240], [0], [1]),     # y = 240 is the overflow marker
    make_events([256], [0], [0], [1]),
])
def test_writer_rejects_what_the_format_cannot_hold(tmp_path, bad):
    with pytest.raises(ValueError):
        write_nmnist_file(tmp_path / "bad.bin", bad)


def test_truncated_file_is_a_user_error_naming_the_file(tmp_path):
    path = write_nmnist_file(tmp_path / "cut.bin", random_events(20))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(UserError, match=r"cut\.bin: truncated or corrupt.*re-copy"):
        read_nmnist_file(path)


def test_empty_and_missing_files_are_user_errors(tmp_path):
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.bin: empty"):
        read_nmnist_file(tmp_path / "empty.bin")
    with pytest.raises(UserError, match=r"missing\.bin: cannot read"):
        read_nmnist_file(tmp_path / "missing.bin")


def test_out_of_sensor_coordinates_are_corrupt(tmp_path):
    path = write_nmnist_file(tmp_path / "big.bin", make_events([40], [3], [7], [1]))
    with pytest.raises(UserError, match=r"big\.bin: corrupt N-MNIST file.*re-copy"):
        read_nmnist_file(path)


def make_tree(root: Path, per_digit=2):
    for folder in ("Train", "Test"):
        for digit in range(10):
            for k in range(per_digit):
                write_nmnist_file(root / folder / str(digit) / f"{digit * 10 + k:05d}.bin", random_events(5, k))


def test_index_lists_files_with_digit_labels(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "Train" / "3" / "notes.txt").write_text("not a sample")
    train = index_nmnist(tmp_path, "train")
    assert len(train) == 20
    assert [label for _, label in train] == sorted([d for d in range(10) for _ in range(2)])
    assert all(path.parent.name == str(label) and path.suffix == ".bin" for path, label in train)
    assert len(index_nmnist(tmp_path, "test")) == 20
    with pytest.raises(ValueError):
        index_nmnist(tmp_path, "validation")


def test_find_and_check_root(tmp_path):
    make_tree(tmp_path / "NMNIST", per_digit=1)
    assert find_nmnist_root(tmp_path) == tmp_path / "NMNIST"  # tonic's save_to layout
    assert find_nmnist_root(tmp_path / "NMNIST") == tmp_path / "NMNIST"
    assert find_nmnist_root(tmp_path / "elsewhere") is None
    assert check_nmnist_root(tmp_path / "NMNIST") == {"train": 10, "test": 10}
    (tmp_path / "NMNIST" / "Test" / "7" / "00070.bin").unlink()
    with pytest.raises(UserError, match=r"Test/7: missing or holds no \.bin files"):
        check_nmnist_root(tmp_path / "NMNIST")


def test_missing_split_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="Train: N-MNIST split folder missing"):
        index_nmnist(tmp_path, "train")
