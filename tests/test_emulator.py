"""The emulator: lava-dl's stored ntidigits output, time alignment, engines agreeing, refusals."""

import numpy as np
import pytest
import torch

from neurodeploy.backends import emulator
from neurodeploy.backends.emulator import accumulate_conv_torch, run_emulator, select_engine
from neurodeploy.backends.spike_run import SpikeRun
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import (
    FLOAT32_EXACT_SUM,
    ConvGeometry,
    ConvSynapse,
    accumulate_conv_sparse,
    conv_synaptic_input,
)

ENGINES = ["numpy", "numba"]  # numba is a required dependency; the numpy engine is the reference it must equal


@pytest.mark.parametrize("engine", ENGINES)
def test_ntidigits_matches_lava_dl_ground_truth(lava_dl_netx_dir, engine):
    """All 3000 steps, every output spike: Lava's fixed_pt output is the stored output shifted by one."""
    folder = lava_dl_netx_dir / "gts" / "ntidigits"
    net = load_netx(folder / "ntidigits.net", num_layers=5)
    inputs = np.load(folder / "input.npy")[None]
    expected = np.load(folder / "output.npy")
    run = run_emulator(net, inputs, engine=engine)
    output = run.output[0]
    assert output.sum() == expected.sum() == 22572
    assert np.array_equal(output[:, :-1], expected[:, 1:]) and not output[:, -1].any()


def relay(index, n, weight, delay=None):
    """A layer that copies its input spikes: weight 100 << 6 far above threshold 1 << 6, no memory."""
    return NetxLayer(index=index, kind="dense", in_shape=(n,), out_shape=(n,), weight=np.eye(n, dtype=int) * weight,
                     neuron=CubaParams(4096, 4096, 1), delay=delay)


def test_time_alignment(netx_factory):
    """An input spike at t reaches synaptic layer k at t + k, plus any delay."""
    path = netx_factory.write("relay", [relay(1, 2, 100), relay(2, 2, 100, delay=np.array([[0], [3]])),
                                        relay(3, 2, 100)])
    inputs = np.zeros((1, 2, 10), np.uint8)
    inputs[0, :, 2] = 1
    run = run_emulator(load_netx(path), inputs)
    times = [np.argwhere(layer[0]).tolist() for layer in run.layer_spikes]
    assert times == [[[0, 3], [1, 3]], [[0, 4], [1, 7]], [[0, 5], [1, 8]]]


def test_bias_drives_spikes_from_step_zero(netx_factory):
    layer = NetxLayer(index=1, kind="dense", in_shape=(1,), out_shape=(1,), weight=np.array([[2]]),
                      bias=np.array([5]), neuron=CubaParams(4096, 4096, 4))
    run = run_emulator(load_netx(netx_factory.write("bias", [layer])), np.zeros((2, 1, 3), np.uint8))
    assert run.output.tolist() == [[[1, 1, 1]], [[1, 1, 1]]]


@pytest.mark.skipif(len(ENGINES) < 2, reason="numba is not installed")
def test_engines_agree(netx_factory):
    f = netx_factory
    conv = f.conv(1, (2, 7, 7), 3, (3, 3), stride=(2, 1), padding=(1, 0), bias=True)
    deep = [f.conv(1, (2, 8, 8), 4, (3, 3), padding=(1, 1)), f.conv(2, (4, 8, 8), 6, (3, 3), padding=(1, 1)),
            f.conv(3, (6, 8, 8), 6, (2, 2), stride=(2, 2), groups=3), f.dense(4, 96, 5, flatten=True)]
    nets = {
        "conv": ([conv, f.dense(2, conv.neurons, 9, bias=True, flatten=True), f.dense(3, 9, 4)], (2, 7, 7)),
        "deep_conv": (deep, (2, 8, 8)),
        "delay_rec": ([f.dense(1, 20, 16, delay=4), f.dense(2, 16, 10, rec=True, bias=True), f.dense(3, 10, 3)],
                      (20,)),
    }
    for name, (layers, shape) in nets.items():
        net = load_netx(f.write(name, layers, input_shape=shape))
        inputs = f.spikes(net.num_inputs, 14, samples=4)
        a, b = run_emulator(net, inputs, engine="numpy"), run_emulator(net, inputs, engine="numba")
        assert a.bit_exact(b) and sum(a.spike_counts()) > 0, name


@pytest.mark.parametrize("geometry, weight_max, expect_float64", [
    (ConvGeometry((2, 9, 8), 4, (3, 3), padding=(1, 1)), 254, False),
    (ConvGeometry((4, 9, 8), 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), 254, False),
    (ConvGeometry((6, 8, 8), 6, (2, 2), stride=(2, 2), groups=3), 64, False),  # pooling, exported grouped
    # partial sums near 2**24 (float32 would round odd sums), then beyond it (float64)
    (ConvGeometry((16, 6, 6), 3, (3, 3)), (1 << 24) // 144 - 1, False),
    (ConvGeometry((16, 6, 6), 3, (3, 3)), (1 << 22) + 1, True),
])
def test_batched_torch_conv_equals_event_driven_reference(geometry, weight_max, expect_float64):
    """One conv2d over all samples and steps gives the reference's integers bit for bit, lag and wrap included."""
    rng = np.random.default_rng(3)
    weight = rng.integers(-weight_max, weight_max + 1,
                          size=(geometry.out_channels, geometry.in_shape[0] // geometry.groups, *geometry.kernel))
    weight[0] = weight_max  # one output summing many large equal-sign terms
    synapse = ConvSynapse.from_weights(geometry, weight)
    assert (synapse.bound > FLOAT32_EXACT_SUM) == expect_float64
    spikes = (rng.random((3, int(np.prod(geometry.in_shape)), 7)) < 0.7).astype(np.uint8)
    spikes[:, :, 2] = 1  # every input at once: every output reaches its largest sum
    expected = accumulate_conv_sparse(spikes, synapse)
    batched = accumulate_conv_torch(spikes, synapse)
    assert np.array_equal(batched, expected) and np.abs(expected).max() == synapse.bound
    # the event-driven kernel the numba engine picks on sparse input
    assert np.array_equal(select_engine("numba")._accumulate_conv_events(spikes, synapse), expected)
    assert np.array_equal(conv_synaptic_input(spikes, synapse, accumulate_conv_torch),
                          conv_synaptic_input(spikes, synapse))
    assert not accumulate_conv_torch(spikes[:, :, :1], synapse).any()


def test_a_conv2d_that_is_not_integral_is_redone_the_plain_way(monkeypatch):
    """Exactness rests on torch summing plain products; a transformed algorithm (Winograd, FFT) would give
    non-integers, which the emulator detects and recomputes without oneDNN in float64."""
    geometry = ConvGeometry((2, 9, 8), 4, (3, 3), padding=(1, 1))
    weight = np.random.default_rng(5).integers(-254, 255, size=(4, 2, 3, 3))
    synapse = ConvSynapse.from_weights(geometry, weight)
    spikes = (np.random.default_rng(6).random((2, int(np.prod(geometry.in_shape)), 6)) < 0.5).astype(np.uint8)
    real, calls = emulator._conv2d, []

    def first_call_off_by_a_quarter(frames, weight, geometry):
        calls.append(frames.dtype)
        return real(frames, weight, geometry) + (0.25 if len(calls) == 1 else 0.0)

    monkeypatch.setattr(emulator, "_conv2d", first_call_off_by_a_quarter)
    assert np.array_equal(accumulate_conv_torch(spikes, synapse), accumulate_conv_sparse(spikes, synapse))
    assert calls == [torch.float32, torch.float64]


def test_spike_run_record(netx_factory):
    f = netx_factory
    net = load_netx(f.write("two", [f.dense(1, 6, 5), f.dense(2, 5, 3)]))
    inputs = f.spikes(6, 7, samples=2)
    run = run_emulator(net, inputs)
    assert run.backend == "emulator" and run.steps == 7 and run.samples == 2
    assert [s.shape for s in run.layer_spikes] == [(2, 5, 7), (2, 3, 7)] and run.output is run.layer_spikes[-1]
    assert run.layer_indices == (0, 1) and run.to_dict()["spike_counts"] == run.spike_counts()
    only_output = SpikeRun(inputs=run.inputs, layer_spikes=[run.output], steps=7, backend="lava", wall_s=1.0,
                           layer_indices=(1,))
    assert run.mismatch_counts(only_output) == [0] and run.bit_exact(only_output)
    with pytest.raises(ValueError, match="uint8"):
        SpikeRun(inputs=inputs.astype(float), layer_spikes=[run.output], steps=7, backend="x", wall_s=0.0)


def test_refusals(lava_dl_netx_dir, netx_factory):
    with pytest.raises(UserError, match="layer 0 \\(input\\).*driven only through its bias"):
        run_emulator(load_netx(lava_dl_netx_dir / "mnist.net"), np.zeros((1, 784, 3), np.uint8))
    f = netx_factory
    net = load_netx(f.write("recdelay", [f.dense(1, 4, 4, rec=True, delay=2)]))
    with pytest.raises(UserError, match="layer 1 \\(dense_rec\\): recurrent layers with delays"):
        run_emulator(net, np.zeros((1, 4, 3), np.uint8))
    net = load_netx(f.write("ok", [f.dense(1, 4, 2)]))
    with pytest.raises(UserError, match="expected \\(samples, 4, steps\\)"):
        run_emulator(net, np.zeros((1, 5, 3), np.uint8))
    with pytest.raises(UserError, match="0 or 1"):
        run_emulator(net, np.full((1, 4, 3), 2, np.uint8))
    with pytest.raises(UserError, match="unknown emulator engine"):
        run_emulator(net, np.zeros((1, 4, 3), np.uint8), engine="gpu")
