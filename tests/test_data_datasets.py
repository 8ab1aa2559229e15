"""datasets.py: finding real data, synthetic fallback with one banner, frames for PyTorch, no downloads."""

import dataclasses
import functools
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.data import datasets
from neurodeploy.data.datasets import (
    DatasetSource,
    FrameDataset,
    balanced_subset,
    load_frames_array,
    resolve_dataset,
)
from neurodeploy.data.dvsgesture import write_tonic_gesture_file
from neurodeploy.data.events import events_to_frames, make_events
from neurodeploy.data.nmnist import read_nmnist_file, write_nmnist_file
from neurodeploy.data.synthetic_dvsgesture import generate_synthetic_dvsgesture
from neurodeploy.data.synthetic_nmnist import generate_synthetic_nmnist
from neurodeploy.errors import UserError


@pytest.fixture(autouse=True)
def offline_and_small(monkeypatch):
    """No network at all, a fresh banner registry, and small synthetic sets."""

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    import tonic.download_utils

    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)
    monkeypatch.setattr(datasets, "_BANNERS_SHOWN", set())
    small = functools.partial(generate_synthetic_nmnist, train_per_class=3, test_per_class=2)
    monkeypatch.setitem(datasets.DATASETS, "nmnist", dataclasses.replace(datasets.DATASETS["nmnist"],
                                                                        generate=small))
    tiny = functools.partial(generate_synthetic_dvsgesture, train_per_class=1, test_per_class=1)
    monkeypatch.setitem(datasets.DATASETS, "dvsgesture",
                        dataclasses.replace(datasets.DATASETS["dvsgesture"], generate=tiny))


def fake_nmnist(root: Path, per_digit=(3, 2)):
    rng = np.random.default_rng(0)
    for folder, count in zip(("Train", "Test"), per_digit):
        for digit in range(10):
            for k in range(count):
                n = 200
                events = make_events(rng.integers(0, 34, n), rng.integers(0, 34, n),
                                     np.sort(rng.integers(0, 300_000, n)), rng.integers(0, 2, n))
                write_nmnist_file(root / folder / str(digit) / f"{digit:02d}{k:03d}.bin", events)
    return root


def test_real_copy_is_found_and_labelled_real(tmp_path, capsys):
    fake_nmnist(tmp_path / "NMNIST")
    source = resolve_dataset("nmnist", tmp_path, allow_synthetic=False)
    assert source.source == "real" and source.root == tmp_path / "NMNIST"
    assert source.sensor_size == (34, 34, 2) and source.num_classes == 10
    assert source.to_dict()["root"] == str(tmp_path / "NMNIST")
    assert capsys.readouterr().err == ""


def test_broken_real_copy_is_an_error_not_a_fallback(tmp_path):
    root = fake_nmnist(tmp_path)
    for path in (root / "Test" / "4").iterdir():
        path.unlink()
    with pytest.raises(UserError, match=r"Test/4: missing or holds no \.bin files"):
        resolve_dataset("nmnist", tmp_path, allow_synthetic=True, cache_dir=tmp_path / "cache")


def test_missing_without_fallback_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_dataset("nmnist", None, allow_synthetic=False)
    message = str(info.value)
    assert "--data-dir" in message and "--no-synthetic" in message
    assert "\n" not in message


@pytest.mark.parametrize("allow", [True, False])
def test_an_explicit_data_dir_without_the_dataset_is_an_error_never_synthetic(tmp_path, allow):
    with pytest.raises(UserError) as info:
        resolve_dataset("nmnist", tmp_path / "nowhere", allow_synthetic=allow, cache_dir=tmp_path)
    assert str(info.value).startswith(f"--data-dir {tmp_path / 'nowhere'}: N-MNIST not found there")
    assert not (tmp_path / "synthetic").exists()


def test_unknown_dataset_is_a_user_error():
    with pytest.raises(UserError, match="unknown dataset"):
        resolve_dataset("cifar", None, allow_synthetic=True)


def test_synthetic_fallback_prints_one_banner_once(tmp_path, capsys):
    first = resolve_dataset("nmnist", None, allow_synthetic=True, cache_dir=tmp_path)
    second = resolve_dataset("nmnist", None, allow_synthetic=True, cache_dir=tmp_path)
    err = capsys.readouterr().err
    assert first == second and first.source == "synthetic"
    assert first.root == tmp_path / "synthetic" / "nmnist-seed0"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "SYNTHETIC" in lines[0] and "not N-MNIST" in lines[0] and str(first.root) in lines[0]


def test_cache_dir_defaults_to_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path / "envcache"))
    source = resolve_dataset("nmnist", None, allow_synthetic=True, seed=3)
    assert source.root == tmp_path / "envcache" / "synthetic" / "nmnist-seed3"


def test_generated_folder_passed_as_data_dir_stays_synthetic(tmp_path):
    root = generate_synthetic_nmnist(tmp_path / "gen", train_per_class=1, test_per_class=1)
    assert resolve_dataset("nmnist", root, allow_synthetic=False).source == "synthetic"


def test_source_record_validates():
    with pytest.raises(ValueError):
        DatasetSource("nmnist", Path("."), "downloaded", (34, 34, 2), 10, tuple("0123456789"))


def test_balanced_subset_is_even_seeded_and_sorted():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 4)
    subset = balanced_subset(labels, 20, seed=1)
    assert len(subset) == 20 and np.all(np.diff(subset) > 0)
    assert sorted(np.bincount(labels[subset]).tolist()) == [4, 8, 8]  # class 2 has only 4
    np.testing.assert_array_equal(subset, balanced_subset(labels, 20, seed=1))
    assert not np.array_equal(subset, balanced_subset(labels, 20, seed=2))
    np.testing.assert_array_equal(balanced_subset(labels, None), np.arange(84))


def test_frame_dataset_items(tmp_path):
    source = resolve_dataset("nmnist", fake_nmnist(tmp_path), allow_synthetic=False)
    dataset = FrameDataset(source, "train", dt_ms=10, steps=15, limit=12, seed=0)
    assert len(dataset) == 12
    assert sorted(np.bincount(dataset.labels).tolist()) == [1] * 8 + [2] * 2
    frames, label = dataset[0]
    assert frames.dtype == torch.float32 and frames.shape == (2, 34, 34, 15)
    assert isinstance(label, int) and set(frames.unique().tolist()) <= {0.0, 1.0}
    expected = events_to_frames(read_nmnist_file(dataset.samples[0]), (34, 34, 2), 10, 15)
    np.testing.assert_array_equal(frames.numpy(), expected)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    batch, labels = next(iter(loader))
    assert batch.shape == (4, 2, 34, 34, 15) and labels.dtype == torch.int64


def test_frame_cache_gives_identical_frames(tmp_path):
    source = resolve_dataset("nmnist", fake_nmnist(tmp_path / "data"), allow_synthetic=False)
    plain = FrameDataset(source, "test", dt_ms=5, steps=20)
    cached = FrameDataset(source, "test", dt_ms=5, steps=20, frame_cache_dir=tmp_path / "fc")
    for item in range(len(plain)):
        np.testing.assert_array_equal(cached.frames(item), plain.frames(item))  # fills the cache
    files = sorted(cached.cache.folder.glob("*.npy"))
    assert len(files) == len(plain) and "dt5ms-T20" in str(cached.cache.folder)
    files[0].write_bytes(b"garbage")  # a damaged cache entry is recomputed, not trusted
    again = FrameDataset(source, "test", dt_ms=5, steps=20, frame_cache_dir=tmp_path / "fc")
    for item in range(len(plain)):
        np.testing.assert_array_equal(again.frames(item), plain.frames(item))


def test_frame_cache_key_follows_a_regenerated_synthetic_set(tmp_path):
    root = generate_synthetic_nmnist(tmp_path / "syn", train_per_class=1, test_per_class=1, seed=0)
    source = resolve_dataset("nmnist", root, allow_synthetic=False)
    before = FrameDataset(source, "test", dt_ms=5, steps=20, frame_cache_dir=tmp_path / "fc").cache.folder
    generate_synthetic_nmnist(root, train_per_class=1, test_per_class=1, seed=1)  # same folder, new data
    after = FrameDataset(source, "test", dt_ms=5, steps=20, frame_cache_dir=tmp_path / "fc").cache.folder
    assert before != after


def test_load_frames_array_matches_dataset(tmp_path):
    source = resolve_dataset("nmnist", fake_nmnist(tmp_path), allow_synthetic=False)
    frames, labels = load_frames_array(source, "test", 3.0, 15, limit=10, seed=4)
    assert frames.shape == (10, 2, 34, 34, 15) and frames.dtype == np.uint8
    assert labels.dtype == np.int64 and sorted(labels.tolist()) == list(range(10))
    dataset = FrameDataset(source, "test", dt_ms=3.0, steps=15, limit=10, seed=4)
    np.testing.assert_array_equal(frames[3], dataset.frames(3))


def test_synthetic_data_trains_through_the_same_reader(tmp_path):
    source = resolve_dataset("nmnist", None, allow_synthetic=True, cache_dir=tmp_path)
    assert source.source == "synthetic" and source.synthetic_source == "mnist-digits"
    frames, labels = load_frames_array(source, "train", 10, 15, limit=None)
    assert frames.shape == (30, 2, 34, 34, 15) and 0.005 < frames.mean() < 0.3
    assert np.bincount(labels).tolist() == [3] * 10


def fake_gesture(root: Path):
    rng = np.random.default_rng(0)
    for folder, users in (("ibmGestureTrain", ("user01_led", "user02_lab")), ("ibmGestureTest", ("user24_led",))):
        for user in users:
            for label in range(11):
                n = 500
                events = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n),
                                     np.sort(rng.integers(0, 2_000_000, n)), rng.integers(0, 2, n))
                write_tonic_gesture_file(root / folder / user / f"{label}.npy", events)
    return root


def test_dvsgesture_real_copy_in_tonics_folder(tmp_path):
    fake_gesture(tmp_path / "DVSGesture")
    source = resolve_dataset("dvsgesture", tmp_path, allow_synthetic=False)
    assert source.source == "real" and source.sensor_size == (128, 128, 2) and source.num_classes == 11
    dataset = FrameDataset(source, "train", dt_ms=25, steps=60, limit=11, frame_cache_dir=tmp_path / "fc")
    assert len(dataset) == 11 and sorted(dataset.labels) == list(range(11))
    frames, label = dataset[0]
    assert label == dataset.labels[0]
    assert frames.shape == (2, 128, 128, 60) and frames.dtype == torch.float32
    np.testing.assert_array_equal(dataset[0][0].numpy(), frames.numpy())  # second read from the cache


def test_dvsgesture_synthetic_fallback_banner(tmp_path, capsys):
    source = resolve_dataset("dvsgesture", None, allow_synthetic=True, cache_dir=tmp_path)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert source.source == "synthetic" and len(lines) == 1
    assert "SYNTHETIC DVS Gesture-format" in lines[0] and "not DVS Gesture" in lines[0]
    frames, labels = load_frames_array(source, "test", 25, 60)
    assert frames.shape == (11, 2, 128, 128, 60) and labels.tolist() == list(range(11))


def test_frame_array_cache_serves_the_same_frames_without_decoding(tmp_path, monkeypatch):
    source = resolve_dataset("nmnist", fake_nmnist(tmp_path / "data"), allow_synthetic=False)
    seen = []
    decoded, labels = load_frames_array(source, "test", 3.0, 15, limit=12, seed=4, cache_dir=tmp_path / "c",
                                        progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (12, 12)

    def refuse(item):
        raise AssertionError("events decoded although the set is cached")

    monkeypatch.setattr(FrameDataset, "frames", lambda self, item: refuse(item))
    cached, cached_labels = load_frames_array(source, "test", 3.0, 15, limit=12, seed=4, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(cached, decoded)
    np.testing.assert_array_equal(cached_labels, labels)
    with pytest.raises(AssertionError, match="decoded"):  # another selection is not served from this one
        load_frames_array(source, "test", 3.0, 15, limit=11, seed=4, cache_dir=tmp_path / "c")


def test_frame_array_cache_decodes_again_when_a_sample_file_changes(tmp_path):
    root = fake_nmnist(tmp_path / "data")
    source = resolve_dataset("nmnist", root, allow_synthetic=False)
    before, _ = load_frames_array(source, "test", 3.0, 15, cache_dir=tmp_path / "c")
    dataset = FrameDataset(source, "test", dt_ms=3.0, steps=15)
    write_nmnist_file(dataset.samples[0], make_events([1], [2], [10], [1]))  # re-copied data, other events
    after, _ = load_frames_array(source, "test", 3.0, 15, cache_dir=tmp_path / "c")
    assert not np.array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[0], dataset.frames(0))
    np.testing.assert_array_equal(after[1:], before[1:])
