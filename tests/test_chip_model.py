"""SANA-FE chip model: our network and spikes in, chip latency / energy out, checked against the emulator."""

import pytest

from neurodeploy.backends.chip_model import LOIHI1_NOTE, Placement, estimate_chip, layer_cores, routing_hops
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import HardwareProfile, load_profile

DENSE_SYNAPSE_J = 35.5e-12  # sanafe/examples/loihi.yaml, loihi_dense_synapse energy_process_spike
CONV_SYNAPSE_J = 24.0e-12  # loihi_conv_synapse


def _tiny(netx_factory):
    path = netx_factory.write("tiny", [netx_factory.dense(0, 20, 12, bias=True), netx_factory.dense(1, 12, 5)],
                              input_shape=(20,))
    net = load_netx(path)
    inputs = netx_factory.spikes(20, 10, samples=3, density=0.3)
    return net, inputs, run_emulator(net, inputs)


def _synaptic_events(net, inputs, layer_spikes, samples):
    """Per layer, synaptic events per sample over non-zero synapses: what SANA-FE's synapse units process."""
    previous, events = inputs[:samples], []
    for layer, spikes in zip([la for la in net.layers if la.kind != "input"], layer_spikes):
        if layer.kind == "conv":
            fan_out = (layer.conv_geometry().weight_matrix(layer.weight) != 0).sum(axis=1).A1
        else:
            fan_out = (layer.weight != 0).sum(axis=0)  # dense (out, in)
        events.append(float((previous.sum(axis=2) * fan_out).sum()) / samples)
        previous = spikes[:samples]
    return events


def test_emulator_activity_prices_the_emulated_synaptic_work(netx_factory):
    net, inputs, run = _tiny(netx_factory)
    estimate = estimate_chip(net, inputs, run.layer_spikes, load_profile("loihi1"))
    assert estimate.activity == "emulator" and estimate.samples == 3
    expected = sum(_synaptic_events(net, inputs, run.layer_spikes, 3)) * DENSE_SYNAPSE_J
    assert estimate.dynamic_energy_j["synapse"] == pytest.approx(expected, rel=1e-9)
    # the replayed activity is exact, so each layer's own spikes are SANA-FE's CUBA on exact inputs
    for layer, spikes in zip(estimate.layers, run.layer_spikes):
        assert layer.spikes_emulator == pytest.approx(spikes.sum() / 3)
        assert 0.0 <= layer.neuron_count_agreement <= 1.0
    assert min(layer.neuron_count_agreement for layer in estimate.layers) > 0.8
    # chip time and static energy: static power x chip time, never the host's time
    assert len(estimate.latency_per_step_s) == 10
    assert estimate.latency_per_sample_s == pytest.approx(sum(estimate.latency_per_step_s))
    assert 1e-7 < estimate.latency_per_sample_s < 1e-3
    assert estimate.static_energy_j == pytest.approx(0.104 * estimate.latency_per_sample_s)
    assert estimate.total_energy_j == pytest.approx(estimate.dynamic_total_j + estimate.static_energy_j)
    assert LOIHI1_NOTE not in estimate.notes
    record = estimate.to_dict()
    assert record["dynamic_energy_j"]["total"] == pytest.approx(estimate.dynamic_total_j)


def test_own_activity_loihi2_and_sampling_say_so(netx_factory):
    net, inputs, run = _tiny(netx_factory)
    estimate = estimate_chip(net, inputs, run.layer_spikes, load_profile("loihi2"), activity="sanafe",
                             max_samples=2)
    assert estimate.samples == 2 and estimate.samples_total == 3
    assert LOIHI1_NOTE in estimate.notes
    assert any("simulated 2 of 3 samples" in note for note in estimate.notes)
    assert estimate.layers[0].spikes_emulator == pytest.approx(run.layer_spikes[0][:2].sum() / 2)


def test_conv_layer_uses_conv_synapses(netx_factory):
    conv = netx_factory.conv(0, (2, 6, 6), 3)
    dense = netx_factory.dense(1, 3 * 4 * 4, 4, flatten=True)
    net = load_netx(netx_factory.write("conv", [conv, dense], input_shape=(2, 6, 6)))
    inputs = netx_factory.spikes(72, 6, samples=2, density=0.4)
    run = run_emulator(net, inputs)
    estimate = estimate_chip(net, inputs, run.layer_spikes, load_profile("loihi1"))
    conv_events, dense_events = _synaptic_events(net, inputs, run.layer_spikes, 2)
    expected = conv_events * CONV_SYNAPSE_J + dense_events * DENSE_SYNAPSE_J
    assert estimate.dynamic_energy_j["synapse"] == pytest.approx(expected, rel=1e-9)


def test_unknown_activity_is_refused(netx_factory):
    net, inputs, run = _tiny(netx_factory)
    with pytest.raises(UserError, match="activity"):
        estimate_chip(net, inputs, run.layer_spikes, load_profile("loihi1"), activity="guess")


def _small_core_profile(neurons_per_core):
    """loihi1 with tiny cores, so that a tiny network spreads over several tiles."""
    raw = load_profile("loihi1").to_dict()
    raw["limits"]["neurons_per_core"]["value"] = neurons_per_core
    return HardwareProfile.from_dict(raw)


def test_routing_hops_from_our_core_mapping_match_sanafe(netx_factory):
    net, inputs, run = _tiny(netx_factory)
    profile = _small_core_profile(2)  # input on 10 cores, layers on 6 and 3: four tiles
    placement = Placement.plan(net, layer_cores(net, profile), 2)
    hops = routing_hops(net, placement)
    assert [h.shape for h in hops] == [(20,), (12,)]
    sources = [inputs, run.layer_spikes[0]]
    ours = sum(float((s.sum(axis=2) * h).sum()) for s, h in zip(sources, hops)) / 3
    assert ours > 0
    estimate = estimate_chip(net, inputs, run.layer_spikes, profile)
    assert estimate.cores == 19
    assert estimate.hops == pytest.approx(ours)


def test_conv_net_that_aborted_sanafe_now_runs(netx_factory):
    # SANA-FE 2.2.9's kernel aborted (std::out_of_range) on this conv network while the replay neurons shared
    # the core's one dendrite unit (900 conv neurons + 900 replays > its 1,024 compartments); on their own
    # zero-energy unit it runs, and the replayed work is priced exactly
    layers = [netx_factory.conv(0, (2, 17, 17), 4), netx_factory.dense(1, 900, 10, flatten=True)]
    net = load_netx(netx_factory.write("conv_abort", layers, input_shape=(2, 17, 17)))
    inputs = netx_factory.spikes(578, 4, samples=1)
    run = run_emulator(net, inputs)
    estimate = estimate_chip(net, inputs, run.layer_spikes, load_profile("loihi2"))
    conv_events, dense_events = _synaptic_events(net, inputs, run.layer_spikes, 1)
    assert conv_events > 0 and dense_events > 0
    expected = conv_events * CONV_SYNAPSE_J + dense_events * DENSE_SYNAPSE_J
    assert estimate.dynamic_energy_j["synapse"] == pytest.approx(expected, rel=1e-9)
    assert estimate.dynamic_energy_j["dendrite"] == 0.0
    assert estimate.latency_per_sample_s > 0 and estimate.static_energy_j > 0
    assert estimate.layers[0].spikes_emulator == run.layer_spikes[0].sum()


def test_a_network_simulated_in_parts_adds_up_to_the_whole(netx_factory, monkeypatch):
    # in-process (no worker) so that the part size can be made tiny: energy, packets and hops add up exactly
    from neurodeploy.backends import chip_model

    layers = [netx_factory.conv(0, (2, 8, 8), 3), netx_factory.dense(1, 3 * 6 * 6, 6, flatten=True)]
    net = load_netx(netx_factory.write("parts", layers, input_shape=(2, 8, 8)))
    inputs = netx_factory.spikes(128, 5, samples=2, density=0.3)
    run = run_emulator(net, inputs)
    profile = _small_core_profile(16)
    whole = chip_model._estimate_chip(net, inputs, run.layer_spikes, profile, "emulator", 2)
    monkeypatch.setattr(chip_model, "MAX_CONNECTIONS", 100)
    split = chip_model._estimate_chip(net, inputs, run.layer_spikes, profile, "emulator", 2)
    assert any("parts" in note for note in split.notes) and not any("parts" in note for note in whole.notes)
    for part in ("synapse", "soma", "network"):
        assert split.dynamic_energy_j[part] == pytest.approx(whole.dynamic_energy_j[part], rel=1e-9)
    assert (split.packets, split.hops) == (whole.packets, whole.hops)
    assert [layer.spikes_sanafe for layer in split.layers] == [layer.spikes_sanafe for layer in whole.layers]
    assert split.latency_per_sample_s <= whole.latency_per_sample_s * (1 + 1e-9)
