"""Active / inactive neuron updates from the fixed-point state, and how they are priced."""

import numpy as np
import pytest

from neurodeploy.backends import neuron_activity
from neurodeploy.backends.emulator import run_emulator, select_engine
from neurodeploy.backends.neuron_activity import active_neuron_updates
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.metrics.energy import OpCounts, estimate_layer_energy
from neurodeploy.metrics.hardware import load_profile


def test_silent_input_leaves_neurons_inactive(netx_factory):
    layers = [netx_factory.dense(0, 8, 4), netx_factory.dense(1, 4, 3)]
    net = load_netx(netx_factory.write("quiet", layers, input_shape=(8,)))
    inputs = np.zeros((2, 8, 6), dtype=np.uint8)
    inputs[0, :, 0] = 1  # sample 0: one burst at step 0; sample 1: silent
    run = run_emulator(net, inputs)
    active = active_neuron_updates(net, inputs, run.layer_spikes)
    assert [a.shape for a in active] == [(2,), (2,)]
    assert active[0][1] == 0 and active[1][1] == 0  # no input, no bias: nothing changes
    assert 0 < active[0][0] <= 4 * 6
    assert active[0][0] >= run.layer_spikes[0][0].sum()  # every spike is an active update


def test_bias_keeps_neurons_active(netx_factory):
    net = load_netx(netx_factory.write("bias", [netx_factory.dense(0, 8, 4, bias=True)], input_shape=(8,)))
    inputs = np.zeros((1, 8, 5), dtype=np.uint8)
    run = run_emulator(net, inputs)
    bias = net.layers[-1].bias
    assert active_neuron_updates(net, inputs, run.layer_spikes)[0][0] == 5 * np.count_nonzero(bias)


def test_chunks_of_samples_and_either_engine_give_the_same_counts(netx_factory, monkeypatch):
    """Replayed one sample at a time (as for a big conv net) the counts equal the all-at-once replay."""
    f = netx_factory
    conv = f.conv(1, (2, 7, 7), 3, (3, 3), padding=(1, 1), bias=True)
    net = load_netx(f.write("conv", [conv, f.dense(2, conv.neurons, 5, flatten=True)], input_shape=(2, 7, 7)))
    inputs = f.spikes(net.num_inputs, 9, samples=5)
    run = run_emulator(net, inputs)
    whole = active_neuron_updates(net, inputs, run.layer_spikes)
    monkeypatch.setattr(neuron_activity, "CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(neuron_activity, "select_engine", lambda engine: select_engine("numpy"))
    one_by_one = active_neuron_updates(net, inputs, run.layer_spikes)
    assert all(np.array_equal(a, b) for a, b in zip(whole, one_by_one)) and whole[0].sum() > 0


def test_counts_drop_the_bound_notes_and_price_each_kind():
    profile = load_profile("loihi1")
    unknown = estimate_layer_energy(OpCounts(synops=10, neuron_updates=100, spikes_out=5), profile)
    assert any("upper bound" in note for note in unknown.notes)
    assert any("lower bound" in note for note in unknown.notes)
    known = estimate_layer_energy(OpCounts(synops=10, neuron_updates=100, neuron_updates_active=30,
                                           spikes_out=5, spike_hops=0), profile)
    assert known.notes == ()
    assert known.joules["neuron_updates"] == pytest.approx(30 * 81e-12 + 70 * 52e-12)
    assert known.joules["spike_routing"] == pytest.approx(5 * 1.7e-12)
