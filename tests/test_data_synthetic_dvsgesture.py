"""synthetic_dvsgesture.py: tonic-layout files, determinism, and gestures that differ the right way."""

import numpy as np
import pytest

from neurodeploy.data.dvsgesture import check_dvsgesture_root, index_dvsgesture, read_dvsgesture_sample
from neurodeploy.data.synthetic_dvsgesture import DURATION_MS, _hand_paths, generate_synthetic_dvsgesture
from neurodeploy.data.synthetic_nmnist import read_manifest


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate_synthetic_dvsgesture(tmp_path_factory.mktemp("gesture") / "g", train_per_class=1,
                                         test_per_class=1, seed=2)


def samples_by_label(root, split="train"):
    return {label: read_dvsgesture_sample(sample) for sample, label in index_dvsgesture(root, split)}


def test_written_in_tonics_layout(tree):
    assert (tree / "ibmGestureTrain" / "user01_fluorescent").is_dir()
    assert sorted(p.name for p in (tree / "ibmGestureTrain" / "user01_fluorescent").iterdir()) == sorted(
        f"{label}.npy" for label in range(11))
    assert check_dvsgesture_root(tree) == {"train": 11, "test": 11}
    train_users = {s.path.parent.name for s, _ in index_dvsgesture(tree, "train")}
    test_users = {s.path.parent.name for s, _ in index_dvsgesture(tree, "test")}
    assert not train_users & test_users


def test_events_are_plausible(tree):
    manifest = read_manifest(tree)
    assert manifest["source"] == "synthetic" and manifest["counts"] == {"train": 11, "test": 11}
    for events in samples_by_label(tree).values():
        assert 2_000 < len(events) < 80_000
        assert events["t"].max() <= DURATION_MS * 1000
        assert 0.3 < events["p"].mean() < 0.7


def test_waves_happen_on_the_expected_side(tree):
    events = samples_by_label(tree)
    # The camera faces the subject: the right hand is on the image's left.
    assert events[1]["x"].mean() < 64 < events[2]["x"].mean()


@pytest.mark.parametrize("label, arm, direction", [(3, 0, 1), (4, 0, -1), (5, 1, 1), (6, 1, -1)])
def test_arm_circles_turn_the_named_way(label, arm, direction):
    t = np.linspace(0, 1.5, 300)
    hand = _hand_paths(label, t, np.random.default_rng(0))[arm]
    centre = hand.mean(axis=0)
    angle = np.unwrap(np.arctan2(hand[:, 1] - centre[1], hand[:, 0] - centre[0]))
    assert np.sign(angle[-1] - angle[0]) == direction  # y points down: increasing angle is clockwise
    assert abs(angle[-1] - angle[0]) > np.pi  # at least half a turn in 1.5 s


def test_deterministic_for_a_seed(tree, tmp_path):
    again = generate_synthetic_dvsgesture(tmp_path / "again", train_per_class=1, test_per_class=1, seed=2)
    for path in sorted(tree.rglob("*.npy")):
        assert (again / path.relative_to(tree)).read_bytes() == path.read_bytes()
