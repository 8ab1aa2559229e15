"""scripts/gpu_check.py on a machine without a GPU: exit 2 with "no CUDA GPU"; the offline wheelhouse step
(download commands, and the install from a tiny local wheelhouse, dry run, offline); the measurements and the
Markdown summary at toy size on the CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_cuda_the_check_exits_2_with_one_line():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no CUDA GPU: ") and "docs/gpu.md" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_make_gpu_check_runs_the_script():
    makefile = (ROOT / "Makefile").read_text()
    assert "gpu-check: setup\n\t$(BIN)/python scripts/gpu_check.py" in makefile


def test_the_download_commands_keep_the_boxs_torch_and_numpy():
    download, lava = gpu_check.wheelhouse_commands("3.12")
    for command in (download, lava):
        assert command[:3] == ["pip", "download", "--only-binary=:all:"]
        assert command[command.index("--python-version") + 1] == "3.12" and "-d" in command
    names = [gpu_check._name(r) for r in download[download.index("wheelhouse") + 1:]]
    assert "torch" not in names and "numpy" not in names
    assert {"lava-nc", "lava-dl"}.isdisjoint(names), "Lava's own pins (torch 2.3) must not be resolved"
    assert {"typer", "h5py", "nvidia-ml-py", "ninja", "pytest", "mlxtend", "tqdm"} <= set(names)
    assert "tonic" not in names and {"tonic>=1.7", "importRosbag>=1.0"} <= set(lava)  # without tonic's own list
    assert "--no-deps" in lava and "--ignore-requires-python" in lava and {"lava-nc==0.10.0", "lava-dl==0.6.0"} <= set(
        lava)
    platforms = [download[i + 1] for i, arg in enumerate(download) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_28_x86_64" and "manylinux2014_x86_64" in platforms  # pip matches exactly


def _wheel(folder: Path, name: str, version: str, tag: str = "py3-none-any") -> Path:
    """A minimal valid wheel (metadata only)."""
    dist = f"{name}-{version}"
    path = folder / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", "")
        wheel.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{dist}.dist-info/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                  f"Tag: {tag}\n")
        wheel.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def test_the_install_step_takes_every_wheel_but_the_boxs_own_offline(tmp_path):
    house = tmp_path / "wheelhouse"
    house.mkdir()
    for name, version in [("demo_dep", "1.0"), ("nvidia_ml_py", "13.0"), ("torch", "2.11.0"), ("numpy", "2.5.0"),
                          ("nvidia_cublas_cu12", "12.8"), ("triton", "3.3.0")]:
        _wheel(house, name, version)
    command = gpu_check.install_command(house, tmp_path / "target")
    wheels = sorted(Path(arg).name.split("-")[0] for arg in command if arg.endswith(".whl"))
    assert wheels == ["demo_dep", "nvidia_ml_py"]
    assert {"--no-index", "--no-deps", "--target"} <= set(command)
    dry = [*command[:4], "--dry-run", "--ignore-installed", *command[4:]]
    done = subprocess.run(dry, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    would = [line for line in done.stdout.splitlines() if line.startswith("Would install")]
    assert would and sorted(would[0].split()[2:]) == ["demo_dep-1.0", "nvidia_ml_py-13.0"], done.stdout


def test_an_empty_wheelhouse_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="no wheels"):
        gpu_check.install_command(tmp_path, tmp_path / "target")


def test_the_measurements_and_the_summary_at_toy_size_on_the_cpu():
    step = gpu_check.slayer_step("cpu", steps=4, batch=2, repeats=1)
    assert step["step_s"] > 0 and step["peak_gpu_gib"] is None and "median of 1" in step["kind"]
    rows = [gpu_check.inference("cpu", name, batch=1, min_duration_s=0.0, batches=1) for name in ("rnn", "lstm")]
    assert all(row["latency_s_per_sample"] > 0 and row["energy_kind"] is None for row in rows)
    rsnn, _ = gpu_check._network("rsnn", gpu_check.RSNN_ARCH, "dvsgesture", 60, "cpu")  # built, not run (slow)
    assert any("ConvLSTM" in type(m).__name__ for m in rsnn.front.modules())
    machine = {"gpu": {"name": "NVIDIA H200", "capability": "9.0", "memory_gib": 139.8, "driver": "570.86",
                       "torch": "2.11.0", "cuda": "13.0"}, "cpu": {"name": "test CPU", "threads": 2},
               "numpy": "2.5.0", "python": "3.12.3", "date_utc": "2026-12-04T18:00:00+00:00"}
    text = gpu_check.render_markdown({"machine": machine, "gpu_tests": {"files": ["a.py"], "summary": "3 passed"},
                                      "slayer_step": [(step, step)], "inference": rows})
    assert "# GPU check: NVIDIA H200 (sm 9.0)" in text and "| 4 | 2 |" in text and "1.0x" in text
    assert "| lstm (Input-512FC-10) | 15 | 1 |" in text
