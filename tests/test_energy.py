"""Energy estimates: op counts x profile coefficients, checked against hand arithmetic."""

import pytest

from neurodeploy.metrics.energy import (
    EnergyBreakdown,
    OpCounts,
    combine,
    estimate_layer_energy,
    estimate_static_energy,
)
from neurodeploy.metrics.hardware import HardwareProfile, load_profile

PJ = 1e-12


def test_loihi1_layer_energy_by_hand():
    """Davies 2018 Table 2: 23.6 pJ/synop, 81/52 pJ per active/inactive update, 1.7 pJ/spike, 3.5 pJ/hop."""
    counts = OpCounts(synops=1000, neuron_updates=500, neuron_updates_active=200, spikes_out=40,
                      spike_hops=10)
    energy = estimate_layer_energy(counts, load_profile("loihi1"))
    assert energy.kind == "estimated"
    assert energy.joules["synops"] == pytest.approx(1000 * 23.6 * PJ)
    assert energy.joules["neuron_updates"] == pytest.approx((200 * 81 + 300 * 52) * PJ)
    assert energy.joules["spike_routing"] == pytest.approx((40 * 1.7 + 10 * 3.5) * PJ)
    assert energy.total_j == pytest.approx(55503 * PJ)  # 23600 + 16200 + 15600 + 68 + 35 pJ
    assert set(energy.coefficients) == {"synop", "neuron_update_active", "neuron_update_inactive",
                                        "spike_within_tile", "spike_hop"}
    assert energy.uncounted == ()


def test_unknown_activity_split_is_priced_as_active_and_noted():
    energy = estimate_layer_energy(OpCounts(neuron_updates=100, spikes_out=1), load_profile("loihi2"))
    assert energy.joules["neuron_updates"] == pytest.approx(100 * 81 * PJ)
    assert any("upper bound" in note for note in energy.notes)
    assert any("lower bound" in note for note in energy.notes)  # hops unknown


def test_cmos45nm_mac_add_mul_by_hand():
    counts = OpCounts(macs=100, adds=50, muls=10, synops=20)
    energy = estimate_layer_energy(counts, load_profile("cmos45nm"))
    assert energy.total_j == pytest.approx((100 * 4.6 + 50 * 0.9 + 10 * 3.7 + 20 * 0.9) * PJ)


def test_op_kinds_without_coefficient_are_listed_not_priced():
    energy = estimate_layer_energy(OpCounts(synops=10, neuron_updates=5), load_profile("cmos45nm"))
    assert energy.uncounted == ("neuron_updates",)
    assert "neuron_updates" not in energy.joules
    assert energy.to_dict()["uncounted"] == ["neuron_updates"]


def test_static_energy_from_measured_wall_time():
    energy = estimate_static_energy(load_profile("loihi1"), wall_time_s=0.5)
    assert energy.joules["static"] == pytest.approx(0.104 * 0.5)


def test_static_energy_needs_a_time():
    energy = estimate_static_energy(load_profile("loihi2"), steps=100)  # no published time per step
    assert energy.joules == {} and energy.uncounted == ("static",)
    no_static_power = estimate_static_energy(load_profile("cmos45nm"), steps=100)
    assert no_static_power.uncounted == () and no_static_power.joules == {}


def test_static_energy_from_time_per_step():
    raw = {"name": "chip", "title": "", "kind": "neuromorphic",
           "power": {"static": {"value": 2.0, "unit": "W", "source": "test"}},
           "timing": {"time_per_step": {"value": 10, "unit": "us", "source": "test"}}}
    energy = estimate_static_energy(HardwareProfile.from_dict(raw), steps=300)
    assert energy.joules["static"] == pytest.approx(2.0 * 300 * 10e-6)
    assert "time_per_step" in energy.coefficients


def test_network_energy_sums_layers_and_static():
    profile = load_profile("loihi1")
    fc0 = estimate_layer_energy(OpCounts(synops=100), profile)
    fc1 = estimate_layer_energy(OpCounts(synops=50, neuron_updates=10, neuron_updates_active=10), profile)
    total = combine([fc0, fc1, estimate_static_energy(profile, wall_time_s=1e-3)])
    synop, update, static = profile.si("synop"), profile.si("neuron_update_active"), profile.si("static")
    assert fc0.total_j == pytest.approx(100 * synop)
    assert total.total_j == pytest.approx(150 * synop + 10 * update + static * 1e-3)
    assert total.to_dict()["by_op_j"]["static"] == pytest.approx(static * 1e-3)


def test_combine_refuses_mixed_profiles():
    a = estimate_layer_energy(OpCounts(synops=1), load_profile("loihi1"))
    b = estimate_layer_energy(OpCounts(synops=1), load_profile("loihi2"))
    with pytest.raises(ValueError, match="different profiles"):
        combine([a, b])


def test_profile_energy_is_never_measured():
    with pytest.raises(ValueError, match="estimated"):
        EnergyBreakdown("loihi2", kind="measured")


@pytest.mark.parametrize("bad", [{"synops": -1}, {"macs": float("nan")},
                                 {"neuron_updates": 5, "neuron_updates_active": 6}])
def test_invalid_counts(bad):
    with pytest.raises(ValueError):
        OpCounts(**bad)
