"""Lava runner: emulator == Lava bit for bit, batched Lava == one Lava run per sample, clean shutdown.

Each Lava run costs a few seconds (process start-up), so the networks are small and the runs few.
"""

import warnings
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from neurodeploy.backends import lava_sim
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams
from neurodeploy.errors import UserError


def networks(f):
    """Small random networks covering every layer type and parameter the emulator supports."""
    conv = f.conv(1, (2, 6, 6), 3, (3, 3), stride=(2, 1), padding=(1, 0), bias=True)
    return {
        "dense2": ([f.dense(1, 24, 16), f.dense(2, 16, 6)], (24,)),
        # bias, a non-leaky neuron (iDecay 0, vDecay 4096), vDecay 0, and a last block whose neuron group is
        # deleted (see below): netx's default integrator, threshold (1 << 17) << 6 = 2**23 > any v, silent
        "bias_edge_decays": ([f.dense(1, 24, 16, bias=True, neuron=CubaParams(0, 4096, 40)),
                              f.dense(2, 16, 12, bias=True, neuron=CubaParams(4096, 0, 60)),
                              f.dense(3, 12, 5, neuron=CubaParams(0, 4096, 1 << 17))], (24,)),
        # an image-shaped input flattened into the first dense block, as slayer exports N-MNIST MLPs
        "delays": ([f.dense(1, 24, 16, delay=3, flatten=True), f.dense(2, 16, 12, delay=2), f.dense(3, 12, 5)],
                   (2, 3, 4)),
        "recurrent": ([f.dense(1, 24, 12, rec=True, bias=True), f.dense(2, 12, 5)], (24,)),
        "conv": ([conv, f.dense(2, conv.neurons, 10, bias=True, flatten=True), f.dense(3, 10, 4)], (2, 6, 6)),
    }


@pytest.mark.lava
@pytest.mark.parametrize("name", ["dense2", "bias_edge_decays", "delays", "recurrent", "conv"])
def test_emulator_equals_lava_every_layer(netx_factory, name):
    layers, input_shape = networks(netx_factory)[name]
    path = netx_factory.write(name, layers, input_shape=input_shape)
    if name == "bias_edge_decays":
        with h5py.File(path, "a") as handle:
            del handle["layer/3/neuron"]
    net = load_netx(path)
    inputs = netx_factory.spikes(net.num_inputs, 12, samples=3)
    # the emulator runs first on purpose: numba's parallel runtime fixes the multiprocessing start method,
    # which Lava's import must survive
    emulated = run_emulator(net, inputs)
    simulated = lava_sim.run_lava(path, inputs)
    assert simulated.layer_indices == emulated.layer_indices
    assert simulated.mismatch_counts(emulated) == [0] * len(net.layers)
    active = emulated.spike_counts()[:-1] if name == "bias_edge_decays" else emulated.spike_counts()
    assert min(active) > 0, "a silent layer would test nothing"


@pytest.mark.lava
@pytest.mark.parametrize("name, modes", [("delays", ["gap", "reset"]), ("recurrent", ["reset"])])
def test_batched_runs_equal_one_run_per_sample(netx_factory, name, modes):
    layers, input_shape = networks(netx_factory)[name]
    path = netx_factory.write(name, layers, input_shape=input_shape)
    inputs = netx_factory.spikes(load_netx(path).num_inputs, 10, samples=2)
    separate = lava_sim.run_lava(path, inputs, batching="separate")
    for mode in modes:
        batched = lava_sim.run_lava(path, inputs, batching=mode)
        assert batched.metadata["batching"] == mode
        assert batched.mismatch_counts(separate) == [0] * len(layers), mode


@pytest.mark.lava
def test_spike_recorder_equals_lava_ringbuffer_sink(netx_factory):
    """Our file-writing Lava process records exactly what lava.proc.io.sink.RingBuffer records, per layer."""
    f = netx_factory
    conv = f.conv(1, (4, 6, 6), 4, (3, 3), padding=(1, 1))
    depthwise = f.conv(2, (4, 6, 6), 4, (2, 2), stride=(2, 2), groups=4)
    path = f.write("grouped", [conv, depthwise, f.dense(3, depthwise.neurons, 5, flatten=True)],
                   input_shape=(4, 6, 6))
    inputs = f.spikes(load_netx(path).num_inputs, 8, samples=2)
    calls = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recorded = lava_sim.run_lava(path, inputs, readback="file", samples_per_run=1,
                                     progress=lambda done, total: calls.append((done, total)))
    assert not [w for w in caught if "Cannot import module" in str(w.message)], "Lava's model search failed"
    assert calls == [(1, 2), (2, 2)] and recorded.metadata["runs"] == 2
    sunk = lava_sim.run_lava(path, inputs, readback="var")  # both samples in one run
    assert (recorded.metadata["readback"], sunk.metadata["readback"]) == ("file", "var")
    assert recorded.mismatch_counts(sunk) == [0, 0, 0]
    assert min(sunk.spike_counts()) > 0, "a silent layer would test nothing"
    assert recorded.bit_exact(run_emulator(load_netx(path), inputs))


@pytest.mark.lava
def test_benchmark_smoke(netx_factory):
    from neurodeploy.pipeline.bench import benchmark_backends, write_random_dense_netx

    path = write_random_dense_netx(netx_factory.folder / "bench.net", sizes=(40, 20, 5), v_th_mant=(5, 10))
    result = benchmark_backends(path, steps=6, samples=2, density=0.2, emulator_samples=20)
    assert result["bit_exact"] and result["emulator_samples"] == 20
    assert result["lava_samples_per_s"] > 0 and result["ratio"] == pytest.approx(
        result["emulator_samples_per_s"] / result["lava_samples_per_s"])


def test_refuses_before_starting_lava(lava_dl_netx_dir, netx_factory):
    with pytest.raises(UserError, match="driven only through its bias|drives only through its bias"):
        lava_sim.run_lava(lava_dl_netx_dir / "mnist.net", np.zeros((1, 784, 2), np.uint8))
    layers, shape = networks(netx_factory)["recurrent"]
    path = netx_factory.write("rec", layers, input_shape=shape)
    with pytest.raises(UserError, match="gap batching"):
        lava_sim.run_lava(path, np.zeros((2, 24, 3), np.uint8), batching="gap")
    with pytest.raises(UserError, match="unknown batching"):
        lava_sim.run_lava(path, np.zeros((2, 24, 3), np.uint8), batching="sometimes")
    with pytest.raises(UserError, match="unknown readback"):
        lava_sim.run_lava(path, np.zeros((2, 24, 3), np.uint8), readback="carrier pigeon")
    # 128 groups wrap to -128 in Lava's int8 Conv.groups, and Lava would silently output nothing
    wide = netx_factory.conv(1, (128, 4, 4), 128, (2, 2), stride=(2, 2), groups=128)
    path = netx_factory.write("wide", [wide], input_shape=(128, 4, 4))
    with pytest.raises(UserError, match="128 groups.*int8"):
        lava_sim.run_lava(path, np.zeros((1, 128 * 16, 3), np.uint8))


def test_hardware_detection_and_errors():
    assert lava_sim.loihi2_hardware_available() is False  # no lava-loihi on these machines
    error = lava_sim.netx_load_error("net.h5", KeyError("weight"))
    assert str(error).startswith("net.h5: lava-dl netx could not build this network (KeyError: 'weight')")


class FakeNetwork:
    """Stands in for netx's hdf5.Network: run() fails the way an interrupted run does."""

    stopped = 0

    def __init__(self, **kwargs):
        block = SimpleNamespace(out=SimpleNamespace(shape=(5,), connect=lambda other: None))
        self.layers, self.inp = [block], SimpleNamespace()

    def run(self, **kwargs):
        raise KeyboardInterrupt

    def stop(self):
        FakeNetwork.stopped += 1


def test_runtime_stopped_on_interrupt(netx_factory, monkeypatch):
    monkeypatch.setattr(FakeNetwork, "stopped", 0)
    f = netx_factory
    path = f.write("one", [f.dense(1, 4, 5)])
    fake = SimpleNamespace(
        netx=SimpleNamespace(hdf5=SimpleNamespace(Network=FakeNetwork)),
        source=SimpleNamespace(RingBuffer=lambda data: SimpleNamespace(s_out=SimpleNamespace(connect=id))),
        sink=SimpleNamespace(RingBuffer=lambda shape, buffer: SimpleNamespace(a_in=None)),
        recorder=SimpleNamespace(create_record_file=lambda path, steps, neurons: None,
                                 SpikeRecorder=lambda shape, path: SimpleNamespace(a_in=None)),
        reset=None,
        run_configs=SimpleNamespace(Loihi2SimCfg=lambda select_tag: None),
        run_conditions=SimpleNamespace(RunSteps=lambda num_steps: None),
    )
    monkeypatch.setattr(lava_sim._Lava, "load", classmethod(lambda cls: fake))
    with pytest.raises(KeyboardInterrupt):
        lava_sim.run_lava(path, np.zeros((1, 4, 3), np.uint8))
    assert FakeNetwork.stopped == 1


@pytest.mark.lava
def test_lava_reproduces_lava_dl_ntidigits_ground_truth(lava_dl_netx_dir):
    """lava-dl's shipped ntidigits net through our Lava runner: its stored output, shifted by one step."""
    folder = lava_dl_netx_dir / "gts" / "ntidigits"
    steps = 120
    inputs = np.load(folder / "input.npy")[None, :, :steps].astype(np.uint8)
    expected = np.load(folder / "output.npy")[:, 1:steps]
    run = lava_sim.run_lava(folder / "ntidigits.net", inputs, num_layers=5, record_layers=False)
    assert expected.sum() > 0
    assert np.array_equal(run.output[0][:, :-1], expected)


@pytest.mark.lava
@pytest.mark.parametrize("batching", ["gap", "reset"])
def test_counts_inside_lava_equal_the_emulator_counts(netx_factory, batching):
    """SpikeCounter: per-neuron and per-step counts of every hidden layer, counted in Lava, on a small CNN."""
    f = netx_factory
    conv = f.conv(1, (2, 8, 8), 4, (3, 3), padding=(1, 1))
    pool = f.conv(2, (4, 8, 8), 4, (2, 2), stride=(2, 2), groups=2)
    path = f.write("counted", [conv, pool, f.dense(3, pool.neurons, 5, flatten=True)], input_shape=(2, 8, 8))
    inputs = f.spikes(load_netx(path).num_inputs, 9, samples=5)
    counted = lava_sim.run_lava(path, inputs, count_layers=True, batching=batching, samples_per_run=3)
    emulated = run_emulator(load_netx(path), inputs)
    assert counted.layer_indices == (2,) and sorted(counted.counted) == [0, 1]
    np.testing.assert_array_equal(counted.output, emulated.output)  # output trains bit-exact
    for index in (0, 1):
        mine, theirs = counted.activity(index), emulated.activity(index)
        assert int(theirs.per_neuron.sum()) > 0, "a silent layer would test nothing"
        np.testing.assert_array_equal(mine.per_neuron, theirs.per_neuron)
        np.testing.assert_array_equal(mine.per_step, theirs.per_step)
        np.testing.assert_array_equal(mine.first, theirs.first)


@pytest.mark.lava
def test_count_only_on_a_net_file_counts_inside_lava(netx_factory, tmp_path, monkeypatch):
    """``run FILE.net --input X --count-only``: Lava counts the hidden layers (not recorded); the output trains
    and every layer's printed spike total equal the emulator's."""
    import re

    from typer.testing import CliRunner

    from neurodeploy.cli import app

    runs = []

    def spy(*args, **kwargs):
        runs.append(lava_sim_run_lava(*args, **kwargs))
        return runs[-1]

    lava_sim_run_lava = lava_sim.run_lava
    monkeypatch.setattr(lava_sim, "run_lava", spy)
    f = netx_factory
    conv = f.conv(1, (2, 8, 8), 4, (3, 3), padding=(1, 1))
    path = f.write("cnn", [conv, f.dense(2, conv.neurons, 5, flatten=True)], input_shape=(2, 8, 8))
    np.save(tmp_path / "x.npy", f.spikes(load_netx(path).num_inputs, 9, samples=1)[0])
    totals = {}
    for backend, extra in (("lava", ["--count-only"]), ("emulator", [])):
        result = CliRunner().invoke(app, ["run", str(path), "--backend", backend, "--input", str(tmp_path / "x.npy"),
                                          "--save-output", str(tmp_path / f"{backend}.npy"), *extra],
                                    terminal_width=200)
        assert result.exit_code == 0, result.output
        totals[backend] = re.findall(r"L(\d+): (\d+)", result.output)
    assert [run.layer_indices for run in runs] == [(1,)] and sorted(runs[0].counted) == [0]  # counted in Lava
    assert totals["lava"] == totals["emulator"] and len(totals["lava"]) == 2 and int(totals["lava"][0][1]) > 0
    np.testing.assert_array_equal(np.load(tmp_path / "lava.npy"), np.load(tmp_path / "emulator.npy"))
