"""One writer per run folder (issue 12, point 4): two concurrent commands, a stale lock, release on exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.deploy.run_folder import CONFIG, load_checkpoint, load_run_config
from neurodeploy.errors import UserError
from neurodeploy.run_lock import LOCK_NAME, hold

TRAIN = ["train", "nmnist", "--arch", "Input-32FC-10", "--epochs", "2", "--steps", "8", "--dt", "10",
         "--batch-size", "4", "--limit", "40", "--test-limit", "10", "--no-synthetic"]


def _start(*args: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", *args], stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True)


def test_two_trainings_on_one_out_folder_one_wins_the_other_exits_2_naming_it(tiny_nmnist, tmp_path):
    """The issue's case: same --out, different seeds, started together. Before the lock both exited 0 and
    left a config of one seed beside the checkpoint of the other."""
    out = tmp_path / "run"
    processes = {seed: _start(*TRAIN, "--data-dir", str(tiny_nmnist), "--out", str(out), "--seed", str(seed),
                              log=tmp_path / f"seed{seed}.log") for seed in (1, 2)}
    codes = {seed: process.wait(timeout=600) for seed, process in processes.items()}
    logs = {seed: (tmp_path / f"seed{seed}.log").read_text() for seed in processes}
    assert sorted(codes.values()) == [0, 2], logs
    winner = next(seed for seed, code in codes.items() if code == 0)
    loser = 3 - winner
    errors = [line for line in logs[loser].splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in logs[loser], logs[loser]
    assert errors[0] == logs[loser].strip().splitlines()[-1]
    named = (f"in use by another neurodeploy command (pid {processes[winner].pid}" in errors[0]
             or "already holds a trained run" in errors[0])  # the winner had already finished its first epoch
    assert named, errors[0]
    assert load_run_config(out).seed == winner
    assert load_checkpoint(out)["epoch"] == 1
    assert not (out / LOCK_NAME).exists(), "the winner must release its lock"


def test_export_while_training_holds_the_folder_exits_2_naming_the_trainer(tiny_nmnist, tmp_path):
    out = tmp_path / "run"
    trainer = _start(*TRAIN, "--epochs", "30", "--data-dir", str(tiny_nmnist), "--out", str(out),
                     log=tmp_path / "train.log")
    try:
        deadline = time.monotonic() + 300
        while not (out / LOCK_NAME).exists() or not (out / LOCK_NAME).read_text():
            assert trainer.poll() is None, (tmp_path / "train.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        result = CliRunner().invoke(app, ["export", str(out)])
        assert result.exit_code == 2, result.output
        assert f"in use by another neurodeploy command (pid {trainer.pid} on " in result.stderr
        assert "train nmnist" in result.stderr and "wait for it to finish" in result.stderr
        assert not (out / "model.net").exists()
    finally:
        trainer.send_signal(signal.SIGINT)
        trainer.wait(timeout=120)
    assert not (out / LOCK_NAME).exists(), "Ctrl-C must release the lock"


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom neurodeploy.run_lock import hold\n"
                               "with hold(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n",
                               str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=f"in use by another neurodeploy command \\(pid {holder.pid} on "):
        with hold(folder):
            pass
    holder.kill()  # SIGKILL: no clean-up ran, the lock file stays
    holder.wait()
    assert json.loads((folder / LOCK_NAME).read_text())["pid"] == holder.pid
    with hold(folder):  # the kernel released the dead process's flock: the stale file is taken over
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()


def test_the_lock_is_released_and_the_folder_untouched_when_the_command_fails(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / CONFIG).write_text("{}")
    os.utime(folder, ns=(1_000_000_000, 1_000_000_000))
    with pytest.raises(RuntimeError), hold(folder):
        assert (folder / LOCK_NAME).exists()
        raise RuntimeError("the command failed")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG]
    assert folder.stat().st_mtime_ns == 1_000_000_000


def test_a_holder_that_writes_its_name_late_is_still_named(tmp_path):
    """CI once caught the loser between the winner's flock and the winner writing its name (a loaded
    machine descheduled the winner there): the loser must wait a moment for the name."""
    import fcntl
    import threading

    folder = tmp_path / "run"
    folder.mkdir()
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, nothing written yet
    holder = {"pid": 4242, "hostname": "elsewhere", "command": "neurodeploy train", "started": "now"}
    late = threading.Timer(0.4, lambda: os.pwrite(fd, json.dumps(holder).encode(), 0))
    late.start()
    try:
        with pytest.raises(UserError, match="pid 4242 on elsewhere"):
            with hold(folder):
                pass
    finally:
        late.join()
        os.close(fd)
