"""RSNN (docs/rsnn.md): the nCLk notation, the count-encoded boundary, emulator = Lava on the chip part, the
seed paper's Table 4 arithmetic, and train -> export -> run through the command line on tiny synthetic data."""

from __future__ import annotations

import io
import json
import pickle
import shutil

import pytest
import torch
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.deploy.lint import lint_architecture
from neurodeploy.deploy.netx_write import write_slayer_netx
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import static_cost
from neurodeploy.metrics.energy import host_chip_energy
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.models.arch import ConvLSTMLayer, parse_architecture
from neurodeploy.models.rsnn import build_rsnn, count_spikes, encode_boundary, split_rsnn
from neurodeploy.models.snn import LIFMapping
from neurodeploy.pipeline.run import flatten_for_chip, run_chip

runner = CliRunner()
SMALL = "Input-4CL3-AP2-16FC-5"


def test_convlstm_token_parses_and_round_trips():
    arch = parse_architecture("Input-MP4-16CL3-AP2-64C3-AP2-11")
    assert isinstance(arch.layers[1], ConvLSTMLayer) and arch.layers[1].channels == 16
    assert arch.notation() == "Input-MP4-16CL3-AP2-64C3-AP2-11" and arch.has_convlstm
    assert arch.shapes((2, 128, 128))[1] == ((2, 32, 32), (16, 32, 32))


@pytest.mark.parametrize("steps", [1, 7, 20])
def test_count_encoding_sends_exactly_the_level_spread_evenly(steps):
    levels = torch.arange(steps + 1)
    spikes = count_spikes(levels, steps)
    assert spikes.dtype == torch.uint8 and set(spikes.unique().tolist()) <= {0, 1}
    assert torch.equal(spikes.sum(dim=-1).long(), levels)
    cumulative = spikes.cumsum(dim=-1).double()
    ideal = levels[:, None].double() * torch.arange(1, steps + 1) / steps
    assert float((cumulative - ideal).abs().max()) < 1  # never more than one spike ahead or behind the rate
    assert torch.all(spikes[levels > 0, 0] == 1)  # the first spike at t = 0: no extra latency on the chip


def test_boundary_rounds_clamps_and_passes_the_gradient_straight_through():
    steps = 10
    features = torch.tensor([-0.5, 0.0, 0.04, 0.06, 0.5, 1.0, 3.0], requires_grad=True)
    spikes = encode_boundary(features, steps)
    assert spikes.sum(dim=-1).tolist() == [0, 0, 0, 1, 5, 10, 10]
    spikes.sum().backward()
    assert features.grad.tolist() == [0, steps, steps, steps, steps, steps, 0]


def test_split_rejects_what_is_no_rsnn_and_stacks_steps_as_channels():
    shape = (2, 16, 16)
    for bad in ("Input-64FC-5", "Input-8C3-4CL3-5", "Input-4CL3-MP2-5"):
        with pytest.raises(UserError):
            split_rsnn(parse_architecture(bad), shape, "mean", 4)
    with pytest.raises(UserError, match="aggregation"):
        split_rsnn(parse_architecture(SMALL), shape, "median", 4)
    assert split_rsnn(parse_architecture(SMALL), shape, "stack", 6).boundary_shape == (24, 16, 16)
    assert split_rsnn(parse_architecture(SMALL), shape, "last", 6).boundary_shape == (4, 16, 16)


@pytest.mark.parametrize("aggregation", ["last", "sum", "mean", "stack"])
def test_every_aggregation_trains_through_the_boundary(aggregation):
    torch.manual_seed(0)
    network = build_rsnn(parse_architecture(SMALL), (2, 8, 8), LIFMapping(), aggregation, 5)
    out = network((torch.rand(2, 2, 8, 8, 5) < 0.3).float())
    assert out.shape == (2, 5, 5)
    out.sum().backward()  # the classifier's surrogate and the straight-through boundary reach the ConvLSTM
    assert float(network.front.layers[0].input_conv.weight.grad.abs().sum()) > 0
    with pytest.raises(UserError, match="T=5"):
        network(torch.zeros(1, 2, 8, 8, 4))


def test_seed_table4_arithmetic():
    """The RSNN paper's Table 4 (Horowitz 45 nm: E_MAC 4.6 pJ, E_AC 0.9 pJ): 1.33e4 synops of RSNN(CL) cost
    0.12e-7 J, 27.67e4 float MACs of the ConvLSTM alone 12.73e-7 J."""
    split = host_chip_energy(27.67e4, 1.33e4, load_profile("cmos45nm"))
    assert split.chip_j == pytest.approx(1.33e4 * 0.9e-12) and round(split.chip_j / 1e-7, 2) == 0.12
    assert split.host_j == pytest.approx(27.67e4 * 4.6e-12) and round(split.host_j / 1e-7, 2) == 12.73
    assert split.ratio == pytest.approx(27.67 / 1.33 * 4.6 / 0.9)
    with pytest.raises(UserError, match="loihi2"):
        host_chip_energy(1.0, 1.0, load_profile("loihi2"))


def test_cost_counts_the_parameters_the_model_has():
    arch, shape = parse_architecture("Input-MP2-4CL3-AP2-8C3-AP2-16FC-5"), (2, 16, 16)
    cost = static_cost(arch, shape, "rsnn", aggregation="stack", steps=3)
    network = build_rsnn(arch, shape, LIFMapping(), "stack", 3)
    host, chip = cost.layers[:cost.host_layers], cost.layers[cost.host_layers:]
    assert [layer.kind for layer in host] == ["maxpool", "convlstm"]
    assert sum(layer.params for layer in host) == sum(p.numel() for p in network.front.parameters())
    assert sum(layer.params for layer in chip) == sum(p.numel() for p in network.classifier.parameters()
                                                      if p.requires_grad)
    assert chip[0].in_shape == (12, 8, 8)  # the stacked boundary, not the last front-end output
    per_step = cost.host_chip_energy(load_profile("cmos45nm"))
    assert per_step.host_macs == host[1].macs_per_step > 0
    with pytest.raises(UserError, match="--family rsnn"):
        static_cost(arch, shape, "snn")


@pytest.mark.lava
def test_chip_part_of_a_small_rsnn_is_identical_on_emulator_and_lava(tmp_path):
    torch.manual_seed(0)
    steps, shape = 8, (2, 12, 12)
    network = build_rsnn(parse_architecture(SMALL), shape, LIFMapping(), "mean", steps).eval()
    frames = (torch.rand(3, *shape, steps) < 0.3).float()
    network.wake_silent_layers(frames)
    with torch.no_grad():
        boundary = network.boundary_spikes(frames).to(torch.uint8).numpy()
    assert boundary.sum() > 0
    write_slayer_netx(network.classifier, tmp_path / "chip.net")
    inputs = flatten_for_chip(boundary)
    lava = run_chip(tmp_path / "chip.net", inputs, "lava")
    emulator = run_chip(tmp_path / "chip.net", inputs, "emulator")
    assert lava.spike_run.bit_exact(emulator.spike_run) and all(emulator.spike_run.spike_counts())


# ------------------------------------------------------------------ train -> export -> run on the command line


@pytest.fixture(scope="module")
def tiny_gesture(tmp_path_factory):
    from neurodeploy.data.synthetic_dvsgesture import generate_synthetic_dvsgesture

    return generate_synthetic_dvsgesture(tmp_path_factory.mktemp("gesture") / "g", train_per_class=1,
                                         test_per_class=1, seed=4)


def _train_args(data, out, *extra):
    return ["train", "dvsgesture", "--model", "rsnn", "--arch", "Input-MP16-4CL3-AP2-11", "--epochs", "1",
            "--steps", "6", "--dt", "50", "--batch-size", "11", "--lr", "3e-3", "--data-dir", str(data),
            "--no-synthetic", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def rsnn_run(tmp_path_factory, tiny_gesture):
    out = tmp_path_factory.mktemp("runs") / "rsnn"
    result = runner.invoke(app, _train_args(tiny_gesture, out, "--aggregation", "last"))
    assert result.exit_code == 0, result.output
    return out


def test_export_writes_netx_and_a_weights_only_front_end(rsnn_run, tmp_path):
    result = runner.invoke(app, ["export", str(rsnn_run)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "count-encoded" in result.output and "front_end.pt" in result.output
    state = torch.load(rsnn_run / "front_end.pt", weights_only=True)
    assert state["aggregation"] == "last" and state["steps"] == 6
    assert json.loads((rsnn_run / "config.json").read_text())["aggregation"] == "last"
    nir = runner.invoke(app, ["export", str(rsnn_run), "--format", "nir", "--out", str(tmp_path / "c.nir")])
    assert nir.exit_code == 0 and "fc3" in nir.output and "convlstm" not in nir.output  # the classifier only


def test_run_on_the_emulator_reports_both_parts_and_the_split(rsnn_run, tmp_path):
    assert runner.invoke(app, ["export", str(rsnn_run)]).exit_code == 0
    result = runner.invoke(app, ["run", str(rsnn_run), "--backend", "emulator", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run_report.json").read_text())
    assert report["model"]["family"] == "rsnn" and report["parity"]["identical"]
    assert [layer["name"] for layer in report["layers"]] == ["pool0", "convlstm1", "pool2", "fc3"]
    hybrid = report["hybrid"]
    assert hybrid["front_end_energy_kind"] == "estimated" and hybrid["front_end_device"]  # no GPU: estimated
    assert hybrid["front_end_macs"] == report["layers"][1]["macs"] > 0 and hybrid["chip_synops"] > 0
    assert hybrid["boundary_values"] == 4 * 8 * 8 and hybrid["boundary_bytes"] == 4 * 8 * 8
    assert hybrid["front_end_energy_j"] == pytest.approx(sum(layer["energy_j"] for layer in report["layers"][:2]))
    total = hybrid["front_end_energy_j"] + hybrid["chip_dynamic_j"] + (hybrid["chip_static_j"] or 0.0)
    assert report["per_sample"]["energy_j"] == pytest.approx(total)
    assert "Host / chip split" in (tmp_path / "run_report.md").read_text()
    rows = runner.invoke(app, ["compare", str(tmp_path), "--out", str(tmp_path / "cmp")], terminal_width=240)
    assert rows.exit_code == 0 and "MACs +" in rows.output


def _one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(needle in lines[0] for needle in needles), lines[0]


def test_bad_inputs_exit_2_with_one_line(tiny_gesture, rsnn_run, tmp_path):
    _one_line_error(runner.invoke(app, _train_args(tiny_gesture, tmp_path / "a", "--aggregation", "median")),
                    "--aggregation median")
    flat = _train_args(tiny_gesture, tmp_path / "b")
    flat[flat.index("--arch") + 1] = "Input-MP16-64FC-11"
    _one_line_error(runner.invoke(app, flat), "nCLk")
    snn = _train_args(tiny_gesture, tmp_path / "c")
    snn[snn.index("--model") + 1] = "snn"
    _one_line_error(runner.invoke(app, snn), "--model rsnn")
    _one_line_error(runner.invoke(app, ["cost", "Input-4CL3-11", "--input", "8x8x2"]), "--family rsnn")
    assert not any(tmp_path.iterdir())


def test_a_front_end_file_that_would_run_code_is_refused(rsnn_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(rsnn_run, run)
    assert runner.invoke(app, ["export", str(run)]).exit_code == 0
    exported = torch.load(run / "front_end.pt", weights_only=True)

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    buffer = io.BytesIO()
    pickle.dump({"front": Payload()}, buffer)
    (run / "front_end.pt").write_bytes(buffer.getvalue())
    result = runner.invoke(app, ["run", str(run), "--backend", "emulator", "--out", str(tmp_path / "r")])
    _one_line_error(result, "front_end.pt", "refused")
    assert "pwned" not in result.output and not (tmp_path / "r").exists()
    torch.save({**exported, "checkpoint_sha256": "0" * 64}, run / "front_end.pt")
    result = runner.invoke(app, ["run", str(run), "--backend", "emulator", "--out", str(tmp_path / "r")])
    _one_line_error(result, "front_end.pt", "current checkpoint", "neurodeploy export")


def test_study_runs_rsnn_rows_beside_snn_rows(tiny_gesture, tmp_path):
    """A study model may name its own arch; an rsnn cell is exported and run on the chip backend."""
    import os

    from rich.console import Console

    from neurodeploy.study.cell import run_cell
    from neurodeploy.study.spec import parse_study

    raw = {"name": "mixed", "title": "rsnn beside snn", "dataset": "dvsgesture", "arch": "Input-MP16-16FC-11",
           "data_dir": str(tiny_gesture), "scale": "quick",
           "scales": {"quick": {"epochs": 1, "lr": 0.003, "batch_size": 11, "limit": 11, "test_limit": 4}},
           "seeds": [0], "dt_ms": [50], "steps": 6, "tables": ["accuracy"], "plots": [],
           "models": {"SNN": {"family": "snn"}, "RSNN": {"family": "rsnn", "arch": "Input-MP16-4CL3-AP2-11",
                                                          "aggregation": "sum"}}}
    spec = parse_study(raw, "inline.yaml")
    assert {m.name: m.arch for m in spec.models} == {"SNN": None, "RSNN": "Input-MP16-4CL3-AP2-11"}
    console = Console(file=open(os.devnull, "w"))
    rows = {cell.model.name: run_cell(spec, cell, tmp_path, str(tiny_gesture), console)[0] for cell in spec.cells()}
    assert rows["RSNN"].report.family == "rsnn" and rows["RSNN"].report.mode == "emulated"
    assert rows["RSNN"].report.macs_per_sample > 0 and rows["RSNN"].report.synops_per_sample > 0
    assert rows["SNN"].report.family == "snn"
    import json

    config = json.loads((tmp_path / "cells" / rows["RSNN"].cell / "config.json").read_text())
    assert config["aggregation"] == "sum"  # the study file's aggregation key reaches the run


def test_resume_continues_an_rsnn_run_with_its_settings(rsnn_run, tiny_gesture, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(rsnn_run, run)
    _one_line_error(runner.invoke(app, _train_args(tiny_gesture, run, "--resume")), "--aggregation mean", "last")
    result = runner.invoke(app, _train_args(tiny_gesture, run, "--aggregation", "last", "--resume", "--epochs", "2"))
    assert result.exit_code == 0, result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_lint_maps_only_the_chip_part_of_an_rsnn():
    result = lint_architecture(parse_architecture("Input-MP8-8CL3-AP2-32C3-AP2-11"), (2, 128, 128))
    assert result.ok, result.problems
    host, chip = result.rows[:2], result.rows[2:]
    assert all(row.mapping.startswith("host front end") and row.neurons == 0 for row in host)
    assert [row.neurons for row in chip] == [8 * 8 * 8, 32 * 8 * 8, 32 * 4 * 4, 11]
    assert result.resources.total_cores == 4
    misplaced = lint_architecture(parse_architecture("Input-MP8-16C3-8CL3-AP2-11"), (2, 128, 128))
    assert not misplaced.ok and "layer 1 (16C3): the rsnn host front end" in misplaced.first_problem()
