"""ANN -> SNN conversion (docs/conversion.md): MNIST static images, the ANN, the converted IF network on the
emulator and Lava, the accuracy-vs-window trend, and refusals.

One small ANN (Input-64FC-10 on 600 of the embedded 4,000 MNIST training digits) is trained once per module;
the conversion scores 200 test digits up to T = 120.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import neurodeploy as nd
from neurodeploy.backends import lava_sim
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.backends.torch_float import float_layer_spikes
from neurodeploy.cli import app
from neurodeploy.data import mnist
from neurodeploy.data.datasets import default_cache_dir, load_frames_array, resolve_dataset
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.run_folder import load_run_config, load_trained_network
from neurodeploy.pipeline.run import flatten_for_chip, synaptic_layers

runner = CliRunner()
WINDOW = 120


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("convert")
    ann = nd.train("mnist", "ann", arch="Input-64FC-10", epochs=4, limit=600, test_limit=200, out=folder / "ann")
    snn = nd.convert(ann, out=folder / "snn", steps=WINDOW, samples=200, windows=(3, 10, 30, WINDOW))
    return ann.path, snn.path


def test_embedded_mnist_is_mlxtends_digits_split_by_class(tmp_path):
    source = resolve_dataset("mnist", None, allow_synthetic=True)
    assert source.source == "synthetic" and source.synthetic_source == "mnist-digits"
    train_x, train_y = mnist.load_split(source.root, "train")
    test_x, test_y = mnist.load_split(source.root, "test")
    assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28)
    assert np.bincount(train_y).tolist() == [400] * 10 and np.bincount(test_y).tolist() == [100] * 10
    # the same files read as real MNIST from --data-dir (LeCun's IDX layout; a copy without the manifest)
    real = tmp_path / "MNIST" / "raw"
    real.mkdir(parents=True)
    for pair in mnist.FILES.values():
        for name in pair:
            (real / name).write_bytes((source.root / name).read_bytes())
    found = resolve_dataset("mnist", tmp_path, allow_synthetic=False)
    assert found.source == "real" and found.root == real


def test_bernoulli_code_is_seeded_per_sample_and_a_prefix_of_longer_windows():
    image = np.zeros((28, 28), np.uint8)
    image[10:18, 10:18] = 255
    image[0, 0] = 64
    long = mnist.bernoulli_frames(image, 400, (1, 2, 3))
    assert long.shape == (1, 28, 28, 400) and set(np.unique(long)) <= {0, 1}
    assert np.array_equal(mnist.bernoulli_frames(image, 50, (1, 2, 3)), long[..., :50])
    assert long[0, 12, 12].all() and not long[0, 20, 20].any()  # p = 1 and p = 0
    assert 0.15 < long[0, 0, 0].mean() < 0.35  # p = 64 / 255


def test_conversion_writes_an_if_snn_that_nears_the_ann_as_the_window_grows(converted):
    ann_dir, snn_dir = converted
    config = load_run_config(snn_dir)
    assert config.family == "snn" and not config.leak and config.steps == WINDOW
    cuba = config.resolved["lif_mapping"]["cuba"]
    assert cuba["current_decay"] == 1.0 and cuba["voltage_decay"] == 0.0  # IF: no leak
    record = json.loads((snn_dir / "conversion.json").read_text())
    assert record["norm"] == "max" and record["v_th_mant"] == [round(64 * t) for t in config.thresholds]
    assert (snn_dir / "model.net").is_file() and (snn_dir / "conversion_curve.png").stat().st_size > 1000
    curve = record["curve"]
    acc = {point["steps"]: point["accuracy"] for point in curve["points"]}
    assert curve["samples"] == 200 and curve["data_synthetic_source"] == "mnist-digits"
    # the trend on this fixed seed: near chance at 3 steps (the spikes have not reached the output yet),
    # rising with the window to within 5 points of the ANN
    ann_accuracy = curve["ann_accuracy"]
    assert ann_accuracy > 0.75 and curve["ann_samples"] == 200
    assert acc[3] < 0.2 < acc[10] < acc[WINDOW]
    assert ann_accuracy - acc[3] > ann_accuracy - acc[10] > abs(ann_accuracy - acc[WINDOW])
    assert abs(acc[WINDOW] - ann_accuracy) <= 0.05


def _chip_inputs(snn_dir, samples, steps):
    config, _, network = load_trained_network(snn_dir)
    source = resolve_dataset("mnist", None, allow_synthetic=True)
    frames, labels = load_frames_array(source, "test", 1.0, steps, samples, cache_dir=default_cache_dir())
    return network, frames, flatten_for_chip(frames)


def test_emulator_equals_the_float_reference_spike_for_spike(converted):
    _, snn_dir = converted
    network, frames, inputs = _chip_inputs(snn_dir, 50, 100)
    float_layers, _ = float_layer_spikes(network, frames)
    net = load_netx(snn_dir / "model.net")
    emulated = run_emulator(net, inputs)
    chip_layers = synaptic_layers(net, emulated)
    assert len(chip_layers) == len(float_layers) == 2
    for chip, reference in zip(chip_layers, float_layers):
        assert np.array_equal(chip, reference)
    assert emulated.spike_counts()[-1] > 0


@pytest.mark.lava
def test_lava_equals_the_emulator_on_the_converted_snn(converted):
    _, snn_dir = converted
    _, _, inputs = _chip_inputs(snn_dir, 3, 40)
    net = load_netx(snn_dir / "model.net")
    emulated = run_emulator(net, inputs)  # first, as in test_lava_sim (numba fixes the start method)
    simulated = lava_sim.run_lava(snn_dir / "model.net", inputs)
    assert simulated.mismatch_counts(emulated) == [0] * len(net.layers)
    assert emulated.spike_counts()[-1] > 0


def test_convert_refuses_a_run_that_is_not_an_ann(converted, tmp_path):
    ann_dir, snn_dir = converted
    result = runner.invoke(app, ["convert", str(snn_dir), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "a snn run; convert takes an ANN run" in result.output
    assert not (tmp_path / "x").exists()
    bad_norm = runner.invoke(app, ["convert", str(ann_dir), "--norm", "median", "--out", str(tmp_path / "y")])
    assert bad_norm.exit_code == 2 and "unknown --norm 'median'" in bad_norm.output
    bad_steps = runner.invoke(app, ["convert", str(ann_dir), "--steps", "0", "--out", str(tmp_path / "z")])
    assert bad_steps.exit_code == 2 and "--steps 0" in bad_steps.output
    same = runner.invoke(app, ["convert", str(ann_dir), "--out", str(ann_dir)])
    assert same.exit_code == 2
    missing = runner.invoke(app, ["convert", str(tmp_path / "nothing")])
    assert missing.exit_code == 2
    ann_on_chip = runner.invoke(app, ["run", str(ann_dir), "--backend", "emulator"])
    assert ann_on_chip.exit_code == 2 and "convert it to an SNN first" in ann_on_chip.output
    ann_in_float = runner.invoke(app, ["run", str(ann_dir), "--backend", "torch", "--samples", "50",
                                       "--out", str(tmp_path / "ann-float")])
    assert ann_in_float.exit_code == 0, ann_in_float.output
    report = json.loads((tmp_path / "ann-float" / "run_report.json").read_text())
    assert report["backend"]["mode"] == "float" and report["data"]["samples"] == 50
    assert report["model"]["family"] == "ann" and report["per_sample"]["macs"] > 0
    exported = runner.invoke(app, ["export", str(ann_dir)])
    assert exported.exit_code == 2 and "neurodeploy convert" in exported.output


def test_ann_refuses_event_data_and_max_pooling(tmp_path):
    with pytest.raises(nd.UserError, match="static images"):
        nd.train("nmnist", "ann", arch="Input-16FC-10", epochs=1, limit=10, out=tmp_path / "a")
    with pytest.raises(nd.UserError, match="no IF-neuron counterpart"):
        nd.train("mnist", "ann", arch="Input-MP2-16FC-10", epochs=1, limit=10, out=tmp_path / "b")


def test_a_cnn_with_average_pooling_converts_and_the_emulator_matches_its_float_reference(tmp_path):
    ann = nd.train("mnist", "ann", arch="Input-4C3-AP2-10", epochs=2, limit=400, test_limit=50, out=tmp_path / "ann")
    snn = nd.convert(ann, out=tmp_path / "snn", steps=40, samples=50, windows=(40,))
    config = load_run_config(snn.path)
    # conv and dense: 8-bit weight scale per layer; the AP2 neuron fires at its inputs' mean rate
    assert len(config.thresholds) == 3 and config.thresholds[1] == (4 * 64 - 1) / 64
    record = json.loads((snn.path / "conversion.json").read_text())
    assert record["curve"]["points"][0]["accuracy"] > 0.5
    network, frames, inputs = _chip_inputs(snn.path, 4, 40)
    float_layers, _ = float_layer_spikes(network, frames)
    net = load_netx(snn.path / "model.net")
    chip_layers = synaptic_layers(net, run_emulator(net, inputs))
    assert all(np.array_equal(chip, reference) for chip, reference in zip(chip_layers, float_layers))
    assert all(layer.sum() > 0 for layer in float_layers)
