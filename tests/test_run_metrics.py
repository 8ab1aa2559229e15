"""Like-for-like figures: Wilson interval, latency kinds, dynamic/static energy, NeuroBench names, firing."""

import numpy as np
import pytest

from neurodeploy.metrics.run_metrics import (
    AccuracyInterval,
    Comparability,
    EnergySplit,
    Latency,
    activation_sparsity,
    connection_sparsity,
    firing_stats_of_counts,
    wilson_interval,
)


def test_wilson_interval_known_values():
    # Wilson (1927) 95 % score intervals of 8/10 and 0/10 (the usual worked examples)
    assert wilson_interval(8, 10) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775328), abs=1e-6)
    assert wilson_interval(100, 100)[1] == 1.0
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.1918, abs=1e-3)
    wide, narrow = AccuracyInterval.of(9, 10), AccuracyInterval.of(900, 1000)
    assert wide.high - wide.low > narrow.high - narrow.low
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_latency_has_a_kind():
    latency = Latency("chip_estimate", 1e-5, "SANA-FE", 8, per_step_s=1e-6)
    assert Latency.from_dict(latency.to_dict()) == latency
    with pytest.raises(ValueError, match="latency kind"):
        Latency("wall", 1.0, "host", 1)


def test_energy_split_sums_dynamic_and_static():
    split = EnergySplit("estimated", 2e-6, 1e-6, "op counts x loihi2", "static power x chip time",
                        ("dendrite",))
    assert split.total_j == pytest.approx(3e-6)
    assert EnergySplit.from_dict(split.to_dict()) == split
    assert EnergySplit("measured", 1.0, None, "NVML", "not split").total_j == 1.0
    with pytest.raises(ValueError):
        EnergySplit("guessed", 1.0, 0.0, "", "")


def test_sparsities_and_firing_stats():
    assert activation_sparsity([np.array([0, 1, 0, 0]), np.array([[0.5, 0.0]])]) == pytest.approx(1 - 2 / 6)
    assert connection_sparsity([np.array([[0, 1], [2, 0]]), np.zeros(4)]) == 0.75
    spikes = np.zeros((2, 3, 4), dtype=np.uint8)
    spikes[0, 0, :] = 1
    spikes[1, 1, 0] = 1
    stats = firing_stats_of_counts(spikes.sum(axis=2), spikes.shape[2])
    assert stats.dead_fraction == pytest.approx(1 / 3)
    assert stats.firing_rates == pytest.approx((4 / 8, 1 / 8, 0.0))


def test_comparability_warns_once_on_any_difference():
    assert Comparability(["a"], ["synthetic"], ["dt 10 ms x 15"]).warning is None
    warning = Comparability(["a", "b"], ["real", "synthetic"], ["dt 10 ms x 15"]).warning
    assert warning.startswith("warning:") and "sample sets" in warning and "data sources" in warning
    assert "dt/T" not in warning
