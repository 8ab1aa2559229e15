"""A crafted checkpoint must not run code: every file we did not just write is read without executing it."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from neurodeploy.deploy.run_folder import CHECKPOINT, load_checkpoint
from neurodeploy.errors import UserError


class _Payload:
    """Unpickling this calls ``os.system``: a stand-in for any code a hostile checkpoint could carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant_payload(run_dir, marker):
    state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    state["metrics"] = _Payload(marker)  # a real checkpoint, one entry swapped for the payload
    torch.save(state, run_dir / CHECKPOINT)


def test_payload_runs_under_an_unsafe_load(tmp_path):
    """The payload is real: a pickle load that trusts the file runs it (so the tests below can fail)."""
    marker = tmp_path / "pwned"
    torch.save({"model": {}, "x": _Payload(marker)}, tmp_path / "ckpt.pt")
    torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert marker.exists()


def test_load_checkpoint_refuses_a_payload_without_running_it(trained_snn_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_snn_run, run)
    marker = tmp_path / "pwned"
    _plant_payload(run, marker)
    with pytest.raises(UserError, match="refused, nothing in it was run"):
        load_checkpoint(run)
    assert not marker.exists()


@pytest.mark.parametrize("command", [["export"], ["run", "--backend", "emulator", "--samples", "2"]])
def test_cli_refuses_a_payload_checkpoint_with_exit_2(trained_snn_run, tmp_path, command):
    run = tmp_path / "run"
    shutil.copytree(trained_snn_run, run)
    marker = tmp_path / "pwned"
    _plant_payload(run, marker)
    args = [command[0], str(run), *command[1:]]
    done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert not marker.exists(), "the checkpoint's payload ran"
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")], done.stderr


def test_frame_cache_refuses_pickled_arrays(tmp_path):
    from neurodeploy.data.datasets import FrameCache

    class Source:
        name, source, root, sensor_size = "nmnist", "synthetic", tmp_path, (4, 4, 2)

    cache = FrameCache(tmp_path, Source(), "train", dt_ms=10, steps=3)
    cache.folder.mkdir(parents=True)
    marker = tmp_path / "pwned"
    np.save(cache._path(0), np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    assert cache.load(0) is None
    assert not marker.exists()
