"""dvsgesture.py: tonic's preprocessed layout (read as tonic reads it) and IBM's AEDAT 3.1 release."""

import struct
from pathlib import Path

import numpy as np
import pytest
from tonic.datasets import DVSGesture

from neurodeploy.data.dvsgesture import (
    DVSGESTURE_CLASSES,
    DVSGESTURE_SENSOR,
    GestureSample,
    check_dvsgesture_root,
    dvsgesture_layout,
    find_dvsgesture_root,
    index_dvsgesture,
    read_dvsgesture_sample,
    read_ibm_labels,
    read_ibm_recording,
    read_tonic_gesture_file,
    write_tonic_gesture_file,
)
from neurodeploy.data.events import make_events
from neurodeploy.errors import UserError


def random_events(n=300, duration_us=2_000_000, seed=0, start_us=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n),
                       np.sort(rng.integers(start_us, start_us + duration_us, n)), rng.integers(0, 2, n))


def test_constants_match_tonic():
    assert DVSGESTURE_SENSOR == DVSGesture.sensor_size
    assert DVSGESTURE_CLASSES == tuple(DVSGesture.classes)


# ---------------------------------------------------------------- tonic's layout


def test_tonic_file_round_trip_floors_to_milliseconds(tmp_path):
    events = random_events()
    path = write_tonic_gesture_file(tmp_path / "user01_led" / "3.npy", events)
    raw = np.load(path)
    assert raw.shape == (len(events), 4)  # columns x, y, p, t (ms), as tonic stores them
    back = read_tonic_gesture_file(path)
    np.testing.assert_array_equal(back["x"], events["x"])
    np.testing.assert_array_equal(back["p"], events["p"])
    first_ms = events["t"][0] // 1000
    np.testing.assert_array_equal(back["t"], (events["t"] // 1000 - first_ms) * 1000)


def test_reads_what_tonics_own_getitem_reads(tmp_path):
    events = random_events(seed=1)
    events["t"][0] = 0  # tonic keeps absolute times; ours start at the first event
    path = write_tonic_gesture_file(tmp_path / "ibmGestureTest" / "user24_led" / "7.npy", events)
    dataset = object.__new__(DVSGesture)  # tonic's reader without its download-on-init
    dataset.data, dataset.targets = [str(path)], [7]
    dataset.transform = dataset.target_transform = dataset.transforms = None
    theirs, target = dataset[0]
    ours = read_tonic_gesture_file(path)
    assert target == 7
    for field in "xytp":
        np.testing.assert_array_equal(ours[field], theirs[field])


def make_tonic_tree(root: Path, users=((1, "led"), (2, "natural")), test_users=((24, "lab"),)):
    for folder, entries in (("ibmGestureTrain", users), ("ibmGestureTest", test_users)):
        for user, lighting in entries:
            for label in range(11):
                write_tonic_gesture_file(root / folder / f"user{user:02d}_{lighting}" / f"{label}.npy",
                                         random_events(50, seed=label))
    return root


def test_tonic_index_mirrors_tonics_walk(tmp_path):
    root = make_tonic_tree(tmp_path / "DVSGesture")
    (root / "ibmGestureTrain" / "README").mkdir()  # not a user folder: ignored
    train = index_dvsgesture(root, "train")
    assert len(train) == 22 and [label for _, label in train[:11]] == list(range(11))
    assert all(sample.start_us is None and sample.path.parent.name.startswith("user") for sample, _ in train)
    assert len(index_dvsgesture(root, "test")) == 11
    assert dvsgesture_layout(root) == "tonic"
    assert find_dvsgesture_root(tmp_path) == root  # tonic's save_to/DVSGesture
    assert check_dvsgesture_root(root) == {"train": 22, "test": 11}


def test_badly_named_sample_is_a_user_error(tmp_path):
    root = make_tonic_tree(tmp_path)
    write_tonic_gesture_file(root / "ibmGestureTrain" / "user01_led" / "11.npy", random_events(5))
    with pytest.raises(UserError, match=r"11\.npy: DVS Gesture files must be named"):
        index_dvsgesture(root, "train")


def test_empty_split_fails_the_check(tmp_path):
    root = make_tonic_tree(tmp_path, test_users=())
    (root / "ibmGestureTest").mkdir(exist_ok=True)
    with pytest.raises(UserError, match="no DVS Gesture test samples"):
        check_dvsgesture_root(root)


@pytest.mark.parametrize("damage", ["truncate", "shape", "coordinates"])
def test_damaged_tonic_files_are_user_errors(tmp_path, damage):
    path = write_tonic_gesture_file(tmp_path / "user01_led" / "0.npy", random_events())
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "shape":
        np.save(path, np.zeros((10, 3), dtype=np.int32))
    else:
        table = np.load(path)
        table[5, 0] = 300
        np.save(path, table)
    with pytest.raises(UserError, match=r"0\.npy: .*re-copy the DVS Gesture dataset"):
        read_tonic_gesture_file(path)


# ---------------------------------------------------------------- IBM's AEDAT 3.1 release


def write_aedat31(path: Path, events: np.ndarray, packet=1000, version="3.1"):
    """AEDAT 3.1 as jAER/cAER write it: '\\r\\n' header lines, then packets of polarity events."""
    header = [f"#!AER-DAT{version}", "#Format: RAW", "#Source 1: DVS128", "#!END-HEADER"]
    chunks = [("\r\n".join(header) + "\r\n").encode()]
    address = ((events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2)
               | (events["p"].astype(np.uint32) << 1) | 1)
    for start in range(0, len(events), packet):
        n = min(packet, len(events) - start)
        chunks.append(struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, n, n, n))
        body = np.empty((n, 2), dtype="<u4")
        body[:, 0] = address[start:start + n]
        body[:, 1] = events["t"][start:start + n]
        chunks.append(body.tobytes())
    path.write_bytes(b"".join(chunks))
    return path


def write_labels(path: Path, rows):
    path.write_text("class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in rows))


def make_ibm_tree(root: Path, with_lists=True):
    root.mkdir(parents=True, exist_ok=True)
    for name, seed in (("user01_fluorescent", 0), ("user24_led", 1)):
        write_aedat31(root / f"{name}.aedat", random_events(5000, 6_000_000, seed, start_us=1_000_000))
        write_labels(root / f"{name}_labels.csv", [(1, 1_500_000, 2_500_000), (11, 3_000_000, 4_000_000),
                                                   (5, 5_000_000, 6_500_000)])
    if with_lists:
        (root / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
        (root / "trials_to_test.txt").write_text("user24_led.aedat\n\n")
    return root


def test_aedat31_recording_decodes_through_tonic_io(tmp_path):
    events = random_events(2500, seed=4, start_us=10)
    decoded = read_ibm_recording(write_aedat31(tmp_path / "user01_led.aedat", events))
    for field in "xytp":
        np.testing.assert_array_equal(decoded[field], events[field])


@pytest.mark.parametrize("with_lists", [True, False])
def test_ibm_index_slices_recordings_by_labels(tmp_path, with_lists):
    root = make_ibm_tree(tmp_path / "DvsGesture", with_lists)
    assert find_dvsgesture_root(tmp_path) == root and dvsgesture_layout(root) == "ibm"
    train = index_dvsgesture(root, "train")
    assert [label for _, label in train] == [0, 10, 4]  # csv classes are 1-based
    assert train[0][0] == GestureSample(root / "user01_fluorescent.aedat", 1_500_000, 2_500_000)
    assert [s.path.name for s, _ in index_dvsgesture(root, "test")] == ["user24_led.aedat"] * 3
    whole = read_ibm_recording(root / "user01_fluorescent.aedat")
    sample = read_dvsgesture_sample(train[0][0])
    inside = whole[(whole["t"] >= 1_500_000) & (whole["t"] < 2_500_000)]
    assert len(sample) == len(inside) > 0
    np.testing.assert_array_equal(sample["t"], inside["t"] - 1_500_000)
    assert check_dvsgesture_root(root) == {"train": 3, "test": 3}


def test_cached_recording_is_not_mutated_by_callers(tmp_path):
    root = make_ibm_tree(tmp_path)
    sample = index_dvsgesture(root, "train")[0][0]
    first = read_dvsgesture_sample(sample)
    first["t"] += 7
    np.testing.assert_array_equal(read_dvsgesture_sample(sample)["t"], first["t"] - 7)


def test_ibm_damage_is_reported_per_file(tmp_path):
    wrong_version = write_aedat31(tmp_path / "user02_led.aedat", random_events(10), version="2.0")
    with pytest.raises(UserError, match=r"user02_led\.aedat: AEDAT version"):
        read_ibm_recording(wrong_version)
    garbage = tmp_path / "user03_led.aedat"
    garbage.write_bytes(b"\x00\x01 not an aedat file")
    with pytest.raises(UserError, match=r"user03_led\.aedat: cannot read the AEDAT header"):
        read_ibm_recording(garbage)
    labels = tmp_path / "user01_led_labels.csv"
    write_labels(labels, [(12, 0, 10)])
    with pytest.raises(UserError, match=r"user01_led_labels\.csv: gesture classes must be 1-11"):
        read_ibm_labels(labels)
    root = make_ibm_tree(tmp_path / "ibm")
    (root / "user24_led_labels.csv").unlink()
    with pytest.raises(UserError, match=r"user24_led\.aedat: recording or its _labels\.csv is missing"):
        index_dvsgesture(root, "test")


def test_folder_without_either_layout(tmp_path):
    assert find_dvsgesture_root(tmp_path) is None
    with pytest.raises(UserError, match="ibmGestureTrain"):
        index_dvsgesture(tmp_path, "train")
