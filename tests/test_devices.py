"""neurodeploy.devices: --device checked and resolved in one place; the record of where a run ran.

The GPU cases fake torch's view of the machine (``torch.version.cuda``, ``torch.cuda.is_available``,
``device_count``); the CLI refusals on this CPU machine are in tests/test_bad_inputs.py (DEVICE_CASES)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from neurodeploy import devices
from neurodeploy.cli import app
from neurodeploy.errors import UserError


def fake_gpus(monkeypatch, count: int, cuda_version: str | None = "12.8"):
    monkeypatch.setattr(torch.version, "cuda", cuda_version)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("name", ["gpu", "cuda:", "CUDA", "cuda:1234", "", "cpu ", "auto:0"])
def test_malformed_names_are_refused(name):
    with pytest.raises(UserError, match="use cpu, cuda, cuda:N or auto"):
        devices.check_device_name(name)


def test_cpu_only_torch_build_is_named(monkeypatch):
    fake_gpus(monkeypatch, 0, cuda_version=None)
    with pytest.raises(UserError, match=r"^--device cuda: torch .* is built without CUDA .*use --device cpu"):
        devices.resolve_device("cuda")


def test_cuda_build_without_a_gpu_is_named(monkeypatch):
    fake_gpus(monkeypatch, 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(UserError, match=r"CUDA 12.8\) sees no usable GPU \(no NVIDIA GPU or driver found\)"):
        devices.resolve_device("cuda:0")


def test_hidden_gpus_are_named(monkeypatch):
    fake_gpus(monkeypatch, 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(UserError, match="CUDA_VISIBLE_DEVICES='' hides every GPU"):
        devices.check_device("cuda")


def test_an_index_past_the_last_gpu_is_refused(monkeypatch):
    fake_gpus(monkeypatch, 2)
    assert devices.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(UserError, match=r"--device cuda:2: torch sees 2 GPU\(s\), cuda:0 to cuda:1"):
        devices.resolve_device("cuda:2")


def test_auto_picks_the_gpu_when_there_is_one(monkeypatch):
    fake_gpus(monkeypatch, 1)
    assert devices.resolve_device("auto") == "cuda"
    fake_gpus(monkeypatch, 0)
    assert devices.resolve_device("auto") == "cpu"
    assert devices.resolve_device("cpu") == "cpu"


def test_cpu_only_work_refuses_an_explicit_gpu_even_when_one_exists(monkeypatch):
    fake_gpus(monkeypatch, 1)
    assert devices.cpu_only("auto", "the emulator") == "cpu"
    with pytest.raises(UserError, match="the emulator runs on the CPU"):
        devices.cpu_only("cuda", "the emulator")


def test_gpus_per_trial(monkeypatch):
    fake_gpus(monkeypatch, 0)
    devices.check_gpus(0)
    with pytest.raises(UserError, match="--gpus-per-trial 0.25: .*use --gpus-per-trial 0"):
        devices.check_gpus(0.25)
    fake_gpus(monkeypatch, 1)
    devices.check_gpus(1)


def test_cpu_record_names_the_model_and_threads():
    record = devices.describe("cpu")
    assert record["type"] == "cpu" and record["name"] and record["threads"] == torch.get_num_threads()
    assert record["torch"] == torch.__version__
    assert devices.label(record) == f"cpu {record['name']} ({record['threads']} threads)"
    json.dumps(record)


def test_gpu_record_from_torch(monkeypatch):
    class Props:
        name, major, minor, total_memory = "NVIDIA H200", 9, 0, 141 * 2**30

    fake_gpus(monkeypatch, 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Props)
    monkeypatch.setattr(devices, "driver_version", lambda: "570.86")
    record = devices.describe("cuda")
    assert record == {"type": "cuda", "index": 0, "name": "NVIDIA H200", "capability": "9.0", "memory_gib": 141.0,
                      "driver": "570.86", "torch": torch.__version__, "cuda": "12.8"}
    assert devices.label(record) == f"cuda:0 NVIDIA H200 (sm 9.0, driver 570.86, torch {torch.__version__} + CUDA 12.8)"


def test_driver_version_without_nvml(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert devices.driver_version() == "unknown (nvidia-ml-py not installed)"


def test_run_with_auto_records_where_it_ran(tmp_path, trained_snn_run, trained_rnn_run):
    """--device auto on this machine: the SNN on the CPU, the RNN on the GPU if torch has one; the report
    says which."""
    snn = shutil.copytree(trained_snn_run, tmp_path / "snn")
    result = CliRunner().invoke(app, ["run", str(snn), "--backend", "emulator", "--samples", "4", "--device", "auto"])
    assert result.exit_code == 0, result.output
    report = json.loads((snn / "reports" / "emulator" / "run_report.json").read_text())
    assert report["ran_on"]["model"]["type"] == "cpu" and report["backend"]["device"] == "cpu"
    rnn = shutil.copytree(trained_rnn_run, tmp_path / "rnn")
    result = CliRunner().invoke(app, ["run", str(rnn), "--backend", "torch", "--device", "auto"])
    assert result.exit_code == 0, result.output
    report = json.loads((rnn / "reports" / "torch" / "run_report.json").read_text())
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert report["ran_on"]["model"]["type"] == expected
    assert json.loads((rnn / "config.json").read_text())["resolved"]["ran_on"]["type"] == "cpu"  # trained here
