"""`run` on every backend through the real stack: Lava, the emulator, loihi2 fallback, torch."""

import json

import numpy as np
import pytest
from rich.console import Console

from neurodeploy.errors import UserError
from neurodeploy.metrics.activity import LayerActivity
from neurodeploy.metrics.parity import compare_spikes
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute, stage_progress

SPEC_KEYS = {
    "tool": {"name", "version"}, "model": {"family", "arch", "params"},
    "data": {"dataset", "source", "split", "samples", "dt_ms", "steps"},
    "backend": {"name", "mode", "hw_config", "device"},
    "per_sample": {"synops", "neuron_updates", "spikes", "macs", "adds", "muls", "energy_j", "latency_s"},
    "energy": {"kind", "profile"}, "memory_bits": {"weights", "state", "spikes", "total"},
}
LAYER_KEYS = {"name", "type", "shape", "neurons", "params", "spikes", "spike_rate", "synops", "neuron_updates",
              "macs", "energy_j", "cores"}


def _run(run_dir, backend, tmp_path, **kwargs):
    quiet = Console(file=open("/dev/null", "w"))
    request = RunRequest(target=run_dir, backend=backend, samples=8, out=tmp_path / backend, **kwargs)
    return execute(request, console=quiet, err_console=quiet)


def _check_spec_keys(report):
    for section, keys in SPEC_KEYS.items():
        assert keys <= set(report[section]), section
    assert "accuracy" in report
    assert all(LAYER_KEYS <= set(layer) for layer in report["layers"])


@pytest.mark.lava
def test_lava_run_matches_the_float_model_spike_for_spike(trained_snn_run, tmp_path):
    report = _run(trained_snn_run, "lava", tmp_path)
    _check_spec_keys(report)
    assert report["backend"]["mode"] == "simulated" and report["energy"]["kind"] == "estimated"
    assert report["data"]["source"] == "synthetic" and report["data"]["samples"] == 8
    parity = report["parity"]
    assert parity["identical"] is True and parity["first_divergence"] is None
    assert parity["float_accuracy"] == parity["chip_accuracy"] == report["accuracy"]
    on_disk = json.loads((tmp_path / "lava" / "run_report.json").read_text())
    assert on_disk["layers"] == report["layers"]
    assert {"run_report.md", "spike_rate.png", "raster.png"} <= {p.name for p in (tmp_path / "lava").iterdir()}
    first_line = (tmp_path / "lava" / "run_report.md").read_text().splitlines()
    assert any(line.startswith("| layer") for line in first_line[:8]), "per-layer table comes first"


@pytest.mark.lava
def test_emulator_and_loihi2_fallback_agree_with_lava(trained_snn_run, tmp_path):
    lava = _run(trained_snn_run, "lava", tmp_path)
    emulator = _run(trained_snn_run, "emulator", tmp_path)
    loihi2 = _run(trained_snn_run, "loihi2", tmp_path)
    assert emulator["backend"]["mode"] == loihi2["backend"]["mode"] == "emulated"
    for other in (emulator, loihi2):
        assert [layer["spikes"] for layer in other["layers"]] == [layer["spikes"] for layer in lava["layers"]]
        assert other["accuracy"] == lava["accuracy"] and other["parity"]["identical"]


def test_loihi2_require_hardware_is_a_user_error_without_a_board(trained_snn_run, tmp_path):
    with pytest.raises(UserError, match="--require-hardware"):
        _run(trained_snn_run, "loihi2", tmp_path, require_hardware=True)


def test_torch_backend_reports_float_mode(trained_snn_run, tmp_path):
    report = _run(trained_snn_run, "torch", tmp_path)
    _check_spec_keys(report)
    assert report["backend"]["mode"] == "float" and report["parity"] is None


def test_compare_spikes_finds_the_first_divergence():
    a = [np.zeros((2, 3, 5), np.uint8), np.zeros((2, 2, 5), np.uint8)]
    b = [x.copy() for x in a]
    b[1][1, 0, 3] = 1
    parity = compare_spikes(a, b, np.array([0, 1]), ["fc0", "fc1"])
    assert not parity.identical and parity.first_divergence == {"layer": "fc1", "timestep": 3}
    assert parity.layer_count_agreement == [1.0, 0.75]


@pytest.mark.lava
def test_cnn_with_input_downsampling_and_pooling_runs_bit_exact_on_lava_and_emulator(tiny_nmnist, tmp_path):
    """MPk at the input (event downsampling), conv, APk (exported as a strided conv), flatten, dense."""
    from neurodeploy.deploy.export import export_run
    from neurodeploy.models.training import TrainConfig
    from neurodeploy.pipeline.train import train

    run_dir = tmp_path / "cnn"
    train(TrainConfig(dataset="nmnist", family="snn", arch="Input-MP2-4C3-AP2-16FC-10", epochs=1, lr=3e-3,
                      steps=8, dt_ms=10, batch_size=20, limit=40, data_dir=str(tiny_nmnist),
                      allow_synthetic=False), run_dir)
    exported = export_run(run_dir)
    assert [row.kind for row in exported.layers] == ["conv", "conv (from SLAYER pool)", "dense", "dense"]
    lava = _run(run_dir, "lava", tmp_path)
    emulator = _run(run_dir, "emulator", tmp_path)
    assert lava["parity"]["identical"] and emulator["parity"]["identical"]
    assert [layer["name"] for layer in lava["layers"]] == ["conv1", "pool2", "fc3", "fc4"]
    assert [layer["spikes"] for layer in lava["layers"]] == [layer["spikes"] for layer in emulator["layers"]]
    assert sum(layer["spikes"] for layer in lava["layers"]) > 0


def test_stage_progress_prints_lines_when_not_on_a_terminal():
    import io

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=100)
    with stage_progress(console, "lava", every_s=0.0) as progress:
        progress(1, 3)
        progress(3, 3)  # the last one is the run's own summary, not a progress line
    assert buffer.getvalue().splitlines()[0].startswith("lava: 1/3 samples after ")
    assert "3/3" not in buffer.getvalue()
    with stage_progress(None, "lava") as progress:
        assert progress is None


def test_compare_spikes_from_counts_finds_the_first_divergence():
    """A layer the chip only counted is compared by its counts per neuron and per step."""
    a = [np.zeros((2, 3, 5), np.uint8), np.zeros((2, 2, 5), np.uint8)]
    b = [x.copy() for x in a]
    b[1][1, 0, 3] = 1
    counted = [LayerActivity.of(b[0]), b[1]]
    assert compare_spikes(a, [LayerActivity.of(x) for x in a], np.array([0, 1])).identical
    parity = compare_spikes(a, counted, np.array([0, 1]), ["fc0", "fc1"])
    assert not parity.identical and parity.first_divergence == {"layer": "fc1", "timestep": 3}
    b[0][1, 2, 4] = 1
    parity = compare_spikes(a, [LayerActivity.of(b[0]), b[1]], None, ["fc0", "fc1"])
    assert parity.first_divergence == {"layer": "fc0", "timestep": 4} and parity.float_accuracy is None
    assert parity.layer_count_agreement[0] == pytest.approx(5 / 6)


@pytest.mark.lava
def test_count_only_lava_run_reports_counts_and_says_what_is_absent(trained_snn_run, tmp_path):
    """--count-only: hidden layers counted inside Lava; the counts, firing statistics and NeuroBench figures
    equal the emulator's full-train report; the SANA-FE estimate and active updates are absent, with why."""
    counted = _run(trained_snn_run, "lava", tmp_path, count_only=True)
    emulator = _run(trained_snn_run, "emulator", tmp_path)
    assert counted["parity"]["identical"] and counted["accuracy"] == emulator["accuracy"]
    assert [layer["spikes"] for layer in counted["layers"]] == [layer["spikes"] for layer in emulator["layers"]]
    assert counted["firing"] == emulator["firing"] and counted["neurobench"] == emulator["neurobench"]
    assert emulator["chip_model"] is not None and counted["chip_model"] is None
    assert counted["latency"]["per_sample_s"] is None
    assert any("count-only" in note for note in counted["latency"]["notes"])
    assert counted["memory_bits"] == emulator["memory_bits"]


def test_count_only_needs_the_lava_backend(trained_snn_run, tmp_path):
    with pytest.raises(UserError, match="--count-only"):
        _run(trained_snn_run, "emulator", tmp_path, count_only=True)
