"""Hostile files at the reader level (issue 12, points 2, 5, 6); the CLI cases are in test_bad_inputs.py."""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.data.datasets import check_frames_use_time
from neurodeploy.errors import UserError
from neurodeploy.safe_files import check_output_file, load_json, load_npy, load_yaml, read_bytes


def _finishes(call, timeout_s: float = 10.0) -> BaseException | None:
    """Run ``call`` in a thread; fail if it blocks (a FIFO read waits forever for a writer)."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert outcome, "the reader blocked on a special file"
    return outcome[0]


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "profile.yaml"
    os.mkfifo(fifo)
    for read in (lambda: load_yaml(fifo, "hardware profile", "fix it"), lambda: load_json(fifo, "config", "fix"),
                 lambda: load_npy(fifo, "--input", "fix"), lambda: read_bytes(fifo, "checkpoint")):
        error = _finishes(read)
        assert isinstance(error, UserError) and "is a FIFO (named pipe), not a regular file" in str(error)


@pytest.mark.parametrize("target", ["fifo", "folder", "device"])
def test_an_output_that_is_not_a_regular_file_is_refused(tmp_path, target):
    path = tmp_path / target
    if target == "fifo":
        os.mkfifo(path)
    elif target == "folder":
        path.mkdir()
    else:  # a private node like /dev/null's (never /dev/null itself: a regression would replace it)
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs CAP_MKNOD")
    with pytest.raises(UserError, match=r"names a (FIFO \(named pipe\)|folder|character device), not a file"):
        check_output_file(path, "--save-output")
    check_output_file(tmp_path / "new.npy", "--save-output")  # a new file is fine
    (tmp_path / "old.npy").write_bytes(b"")
    check_output_file(tmp_path / "old.npy", "--save-output")  # so is a regular file to replace


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # plain alias
    "base: &b {v: 1}\nuse:\n  <<: *b\n",  # merge key through an alias
    "a: &x [1, 2]\n",  # an anchor alone
])
def test_yaml_anchors_and_aliases_are_refused(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match="anchors and aliases"):
        load_yaml(path, "model file", "fix it")


def test_yaml_nesting_is_capped_before_python_recursion(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("a:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, 40)) + "  " * 40 + "v\n")
    with pytest.raises(UserError, match="nesting deeper than 32"):
        load_yaml(path, "model file", "fix it")
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nesting deeper than 32"):
        load_yaml(path, "model file", "fix it")


def test_plain_yaml_still_loads(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: x\narch: Input-16FC-10\ndatasets:\n  nmnist: {dt_ms: 10, steps: 4, batch_size: 8}\n")
    assert load_yaml(path, "model file", "fix it")["datasets"]["nmnist"]["steps"] == 4


def test_an_npy_header_promising_a_huge_array_is_refused_before_allocating(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**9)})
    path = tmp_path / "huge.npy"
    path.write_bytes(buffer.getvalue() + bytes(64))
    with pytest.raises(UserError, match=r"header promises \(1000000000, 1000000000\) float64 \(8000000000000000000 "):
        load_npy(path, "--input", "fix")


@pytest.mark.parametrize("array", [np.arange(12, dtype=np.int16).reshape(3, 4), np.zeros((0, 5), np.uint8),
                                   np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.array(7, np.uint8)])
def test_valid_npy_files_load_exactly(tmp_path, array):
    path = tmp_path / "a.npy"
    np.save(path, array)
    loaded = load_npy(path, "--input", "fix")
    assert loaded.dtype == array.dtype and loaded.shape == array.shape and np.array_equal(loaded, array)


def test_frames_with_every_event_in_frame_0_are_refused():
    frames = np.zeros((3, 2, 4, 4, 5), np.uint8)
    with pytest.raises(UserError, match="no event of the 3 samples falls in the frames"):
        check_frames_use_time(frames, 0.001, 5, "data")
    frames[:, 0, 1, 1, 0] = 1
    with pytest.raises(UserError, match="every event of the 3 samples falls in frame 0 of 5"):
        check_frames_use_time(frames, 1e5, 5, "data")
    frames[1, 0, 2, 2, 3] = 1
    check_frames_use_time(frames, 10, 5, "data")  # one later event is enough
    check_frames_use_time(frames[..., :1], 10, 1, "data")  # T = 1 has only frame 0


def test_export_reports_quantization_loss_and_accepts_it_only_when_asked(trained_snn_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_snn_run, run)
    healthy = CliRunner().invoke(app, ["export", str(run)])
    assert healthy.exit_code == 0, healthy.output
    assert "clipped" in healthy.stdout and "0.0%" in healthy.stdout
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["model"] = {k: v * 1e6 if v.is_floating_point() and "weight" in k else v for k, v in state["model"].items()}
    torch.save(state, run / "checkpoint.pt")
    before = (run / "model.net").read_bytes()
    refused = CliRunner().invoke(app, ["export", str(run)])
    assert refused.exit_code == 2 and "--accept-quantization-loss" in refused.stderr
    assert (run / "model.net").read_bytes() == before, "a refused export must not replace model.net"
    accepted = CliRunner().invoke(app, ["export", str(run), "--accept-quantization-loss"])
    assert accepted.exit_code == 0, accepted.output
    assert "100.0%" in accepted.stdout or "99." in accepted.stdout  # nearly every weight clipped, and said so
