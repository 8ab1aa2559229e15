"""contrast.py: eq. 16-17 against a literal per-element evaluation of the formula."""

import numpy as np
import pytest

from neurodeploy.data.contrast import (
    EPS,
    TemporalContrast,
    cross_entropy_sums,
    log_eps,
    temporal_contrast,
    window_average,
)


def literal_ce(frames, tx, ty, eps=EPS):
    """CE(tx, ty) = -(1/N) sum_i [S_i[tx] log_eps S_i[ty] + (1 - S_i[tx]) log_eps(1 - S_i[ty])]."""
    flat = frames.reshape(-1, frames.shape[-1]).astype(float)

    def clamp(v):
        return np.log(min(max(v, eps), 1 - eps))

    total = sum(s[tx] * clamp(s[ty]) + (1 - s[tx]) * clamp(1 - s[ty]) for s in flat)
    return -total / len(flat)


def test_log_eps_clamps_both_ends():
    np.testing.assert_allclose(log_eps(np.array([0.0, 1.0, 0.5])), [np.log(EPS), np.log(1 - EPS), np.log(0.5)])


def test_golden_two_element_example():
    # element 0 fires at t0 only, element 1 never: CE(0, 1) = -(log eps + log(1 - eps)) / 2
    frames = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    sums = cross_entropy_sums(frames) / 2
    assert sums[0, 1] == pytest.approx(-(np.log(EPS) + np.log(1 - EPS)) / 2)
    assert sums[0, 1] == pytest.approx(18.4207, abs=1e-4)
    assert sums[1, 1] == pytest.approx(-np.log(1 - EPS), abs=1e-12)


@pytest.mark.parametrize("binary", [True, False])
def test_matches_the_literal_formula(binary):
    rng = np.random.default_rng(0)
    frames = rng.random((2, 3, 4, 5))
    frames = (frames < 0.3).astype(np.uint8) if binary else frames
    ours = cross_entropy_sums(frames) / (2 * 3 * 4)
    for tx in range(5):
        for ty in range(5):
            assert ours[tx, ty] == pytest.approx(literal_ce(frames, tx, ty), rel=1e-9, abs=1e-9)


def test_binary_ce_is_mismatch_fraction_times_minus_log_eps():
    rng = np.random.default_rng(1)
    frames = (rng.random((100, 6)) < 0.2).astype(np.uint8)
    mismatch = (frames[:, :, None] != frames[:, None, :]).mean(axis=0)
    np.testing.assert_allclose(cross_entropy_sums(frames) / 100, -np.log(EPS) * mismatch, atol=1e-10)


def test_window_average_over_all_starts():
    full = np.arange(36, dtype=float).reshape(6, 6)
    expected = np.mean([full[t:t + 4, t:t + 4] for t in range(3)], axis=0)
    np.testing.assert_array_equal(window_average(full, 4), expected)
    with pytest.raises(ValueError):
        window_average(full, 7)


def test_dataset_contrast_weights_every_element_equally():
    rng = np.random.default_rng(2)
    samples = [(rng.random((2, 3, 3, 8)) < 0.1).astype(np.uint8) for _ in range(3)]
    streamed = temporal_contrast(iter(samples), window=4)
    stacked = window_average(cross_entropy_sums(np.concatenate(samples)), 4) / (3 * 2 * 3 * 3)
    np.testing.assert_allclose(streamed.matrix, stacked)
    assert streamed.samples == 3 and streamed.matrix.shape == (4, 4)
    record = streamed.to_dict()
    assert record["mean"] == pytest.approx(stacked.mean()) and record["variance"] == pytest.approx(stacked.var())
    assert np.array(record["matrix"]).shape == (4, 4)


def test_static_frames_have_no_contrast():
    frames = np.repeat((np.random.default_rng(3).random((2, 4, 4, 1)) < 0.5).astype(np.uint8), 10, axis=-1)
    assert temporal_contrast([frames]).mean == pytest.approx(0.0, abs=1e-12)


def test_record_validates_and_needs_samples():
    with pytest.raises(ValueError):
        TemporalContrast(np.zeros((3, 3)), window=4, eps=EPS, samples=1)
    with pytest.raises(ValueError):
        temporal_contrast([])
