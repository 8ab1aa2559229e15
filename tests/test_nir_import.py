"""NIR import: graphs from Sinabs and snnTorch deploy, run bit-identically on Lava and the emulator with a full
fidelity report; the weight scale, the neuron mapping and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.nir_import import import_nir, plan_import
from neurodeploy.deploy.nir_neuron import choose_scale, map_neuron
from neurodeploy.deploy.nir_record import load_import
from neurodeploy.pipeline.run import run_chip

NIR_DATA = Path(__file__).parent / "data" / "nir"
runner = CliRunner()


def test_sinabs_cnn_paths_become_netx_convolutions():
    layers, rows, chip_input = plan_import(nir.read(NIR_DATA / "cnn_sinabs.nir"), dt_ms=1.0)
    assert chip_input == (2, 34, 34)
    assert [layer.kind for layer in layers] == ["conv", "conv", "conv", "dense", "dense"]
    assert [row.nodes for row in rows][2:4] == [("4", "5", "6"), ("7", "8", "9", "10")]
    pooled_conv = layers[2]  # SumPool2d 2 then a 3x3 conv (padding 1) = a 6x6 conv, stride 2, padding 2
    assert (pooled_conv.kernel, pooled_conv.stride, pooled_conv.padding) == ((6, 6), (2, 2), (2, 2))
    assert layers[3].flatten_before and layers[3].weight.shape == (256, 512)
    for layer, row in zip(layers, rows):
        assert (layer.neuron.i_decay, layer.neuron.v_decay) == (4096, 0)  # IF: current = input, no leak
        assert layer.neuron.v_th_mant == row.weight_scale  # threshold 1 in graph units
        assert layer.weight.min() >= -256 and layer.weight.max() <= 254 and not np.any(layer.weight % 2)
        assert row.clipped + row.vanished < 0.03 * row.weights


def test_weight_scale_keeps_an_exact_grid_and_counts_losses():
    on_grid = [np.array([[0.5, -1.25, 2.0, 0.03125]])]  # multiples of 2/64: exact at s = 64 and s = 128
    choice = choose_scale(on_grid, threshold=1.25)
    assert (choice.scale, choice.v_th_mant, choice.clipped, choice.vanished) == (64.0, 80, 0, 0)
    assert choice.weights[0].tolist() == [[32, -80, 128, 2]]
    spread = [np.array([[10.0, 1e-3, 0.5, -0.25]])]  # no scale keeps both 10 and 0.001
    choice = choose_scale(spread, threshold=1.0)
    assert choice.clipped + choice.vanished == 1
    assert choice.weights[0][0, 0] == 254 if choice.clipped else choice.weights[0][0, 1] == 0


def test_neuron_mapping_decays_gains_and_differences():
    dt = 1e-3
    cuba = nir.CubaLIF(tau_syn=np.full(3, 4e-3), tau_mem=np.full(3, 8e-3), r=np.full(3, 8.0),
                       v_leak=np.full(3, 0.5), v_threshold=np.full(3, 1.5), v_reset=np.full(3, 0.25),
                       w_in=np.full(3, 4.0))
    mapped = map_neuron("lif", cuba, dt)
    assert (mapped.i_decay, mapped.v_decay) == (1024, 512)
    assert np.allclose(mapped.gain, 1.0)  # (dt/tau_mem) R (dt/tau_syn) w_in = 1: lava-dl's convention
    assert np.allclose(mapped.drive, 0.125 * 0.25) and mapped.threshold == 1.25
    assert any("v_reset 0.25" in note for note in mapped.notes) and any("v_leak" in n for n in mapped.notes)
    slow = nir.LIF(tau=np.array([10.0]), r=np.array([1.0]), v_leak=np.array([0.0]), v_threshold=np.array([1.0]))
    assert map_neuron("slow", slow, dt).v_decay == 0
    assert any("leak vanishes" in note for note in map_neuron("slow", slow, dt).notes)


@pytest.mark.lava
@pytest.mark.parametrize("graph, dt, n_in, steps", [("braille_noDelay_bias_zero.nir", "0.1", 12, 30),
                                                    ("cnn_sinabs.nir", "1", 2312, 10)])
def test_other_tools_graphs_identical_on_lava_and_emulator_with_full_report(tmp_path, graph, dt, n_in, steps):
    out = tmp_path / "imported"
    result = runner.invoke(app, ["import", str(NIR_DATA / graph), "--out", str(out), "--dt", dt])
    assert result.exit_code == 0, result.output
    rng = np.random.default_rng(1)
    spikes = (rng.random((2, n_in, steps)) < 0.15).astype(np.uint8)
    np.save(tmp_path / "spikes.npy", spikes)
    lava = run_chip(out / "model.net", spikes, "lava")
    emulator = run_chip(out / "model.net", spikes, "emulator")
    assert lava.spike_run.bit_exact(emulator.spike_run) and all(emulator.spike_run.spike_counts())
    reports = {}
    for backend in ("lava", "emulator"):
        result = runner.invoke(app, ["run", str(out), "--backend", backend, "--input", str(tmp_path / "spikes.npy"),
                                     "--out", str(tmp_path / backend)])
        assert result.exit_code == 0, result.output
        assert "float NIR reference accuracy n/a (no labels)" in result.output
        reports[backend] = json.loads((tmp_path / backend / "run_report.json").read_text())
    names = [row.name for row in load_import(out).layers]
    for report in reports.values():
        assert [layer["name"] for layer in report["layers"]] == names
        assert {key: value for key, value in report["data"].items() if key != "sample_set"} == \
            {"dataset": "spikes.npy", "source": "file", "split": "file", "samples": 2, "dt_ms": float(dt),
             "steps": steps, "synthetic_source": None}
        assert report["data"]["sample_set"] == reports["lava"]["data"]["sample_set"]
        assert report["accuracy"] is None and report["per_sample"]["synops"] > 0
        parity = report["parity"]
        assert set(parity["layer_spike_agreement"]) == set(names)
        assert all(0.0 <= value <= 1.0 for value in parity["layer_spike_agreement"].values())
        assert parity["prediction_agreement"] is not None
        assert (parity["first_divergence"] is None) == parity["identical"]
    assert reports["lava"]["layers"] == reports["emulator"]["layers"]
    assert reports["lava"]["parity"] == reports["emulator"]["parity"]


def test_imported_run_on_synthetic_nmnist_reports_accuracy(tiny_nmnist, tmp_path):
    out = tmp_path / "sinabs"
    import_nir(NIR_DATA / "cnn_sinabs.nir", out, steps=20)
    result = runner.invoke(app, ["run", str(out), "--backend", "emulator", "--samples", "10", "--data-dir",
                                 str(tiny_nmnist), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "run_report.json").read_text())
    assert report["data"]["source"] == "synthetic" and report["data"]["dataset"] == "nmnist"
    assert report["data"]["steps"] == 20 and report["data"]["samples"] == 10
    assert 0.0 <= report["accuracy"] <= 1.0 and report["parity"]["chip_accuracy"] == report["accuracy"]
    assert report["parity"]["float_accuracy"] is not None


def _graph_with(node: nir.NIRNode, n: int = 3) -> nir.NIRGraph:
    return nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([n])}),
                               "w": nir.Linear(weight=np.eye(n)), "x": node,
                               "out": nir.Output(output_type={"output": np.array([n])})},
                        edges=[("in", "w"), ("w", "x"), ("x", "out")])


@pytest.mark.parametrize("args, message", [
    (["braille_noDelay_bias_zero.nir"], "'lif1.lif' (CubaLIF): tau_syn 0.222222 ms is shorter than dt 1 ms"),
    (["li"], "'x' (LI): the non-spiking LI readout"),
    (["missing.nir"], "no such file"),
    (["cnn_sinabs.nir", "--input", "30x30x2"], "--input 30x30x2 has 1800 values"),
])
def test_undeployable_graphs_exit_2_naming_the_node(tmp_path, args, message):
    if args[0] == "li":
        li = nir.LI(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3))
        nir.write(tmp_path / "li.nir", _graph_with(li))
        args = [str(tmp_path / "li.nir")]
    else:
        args = [str(NIR_DATA / args[0]), *args[1:]]
    result = runner.invoke(app, ["import", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "error:" in result.output and message in result.output.replace("\n", " ")
    assert not (tmp_path / "out").exists()


def test_imported_if_graph_runs_exactly_when_on_the_grid(tmp_path):
    """An IF layer whose weights are multiples of 2/64 and threshold 1: the fixed-point network is the graph."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-20, 40, size=(6, 8)) * 2 / 64
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([8])}), "w": nir.Affine(weight=weight,
                                                                                     bias=np.zeros(6)),
               "if": nir.IF(r=np.ones(6), v_threshold=np.ones(6), v_reset=np.zeros(6)),
               "out": nir.Output(output_type={"output": np.array([6])})},
        edges=[("in", "w"), ("w", "if"), ("if", "out")])
    nir.write(tmp_path / "if.nir", graph)
    import_nir(tmp_path / "if.nir", tmp_path / "run")
    np.save(tmp_path / "x.npy", (rng.random((3, 8, 40)) < 0.3).astype(np.uint8))
    result = runner.invoke(app, ["run", str(tmp_path / "run"), "--backend", "emulator", "--input",
                                 str(tmp_path / "x.npy"), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    parity = json.loads((tmp_path / "rep" / "run_report.json").read_text())["parity"]
    assert parity["identical"] and parity["layer_spike_agreement"] == {"if": 1.0}
    assert load_netx(tmp_path / "run" / "model.net").layers[0].neuron.v_th_mant == 64
