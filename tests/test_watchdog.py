"""neurodeploy.watchdog: a process killed with SIGKILL takes its descendants along, re-parented ones too.

The parent here starts a grandchild (``sh -c 'sleep 300 & wait'``: nothing tells the shell or its ``sleep`` that
the parent died) and a child in its own session (no process-group signal reaches it), then is SIGKILLed.
The slow test does the same to a real ``neurodeploy study`` (issue 23 family 5: Ray's dashboard and
runtime-env agents outlived a killed study by more than 30 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neurodeploy.watchdog import _stat, descendants

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

PARENT = textwrap.dedent("""
    import subprocess, sys, time
    from neurodeploy.watchdog import descendants_die_with_me

    with descendants_die_with_me(interval_s=0.2):
        subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=open(sys.argv[1], "w"))
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        with open(sys.argv[2], "w") as handle:
            handle.write(str(child.pid))
        time.sleep(300 if sys.argv[3] == "hang" else 1)
""")


def _wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _start(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, Path, Path]:
    orphan, child = tmp_path / "orphan.pid", tmp_path / "child.pid"
    process = subprocess.Popen([sys.executable, "-c", PARENT, str(orphan), str(child), mode],
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert _wait_until(lambda: orphan.exists() and orphan.read_text() and child.exists() and child.read_text(), 30)
    time.sleep(0.6)  # the watchdog's next look sees both
    return process, orphan, child


def test_sigkill_takes_children_and_orphaned_grandchildren_along(tmp_path):
    process, orphan, child = _start(tmp_path, "hang")
    pids = [int(orphan.read_text()), int(child.read_text())]
    try:
        assert all(_stat(pid) for pid in pids), "both must be running before the kill"
        assert _stat(pids[0])[0] != process.pid, "a grandchild, not a child"
        process.kill()
        process.wait()
        assert _wait_until(lambda: not any(_stat(pid) for pid in pids), 5), "processes outlived the parent"
    finally:
        for pid in pids:
            if _stat(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_clean_exit_kills_nothing(tmp_path):
    process, orphan, child = _start(tmp_path, "exit")
    pids = [int(orphan.read_text()), int(child.read_text())]
    try:
        assert process.wait(timeout=30) == 0
        time.sleep(1)
        assert all(_stat(pid) for pid in pids), "a clean exit must leave what the block started on purpose"
    finally:
        for pid in pids:
            if _stat(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigkill_of_a_study_leaves_no_ray_process(tmp_path):
    """~1 min: an embedded Ray study killed with SIGKILL once Ray's agents run."""
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", "study", str(root / "studies" / "table9.yaml"),
                                "--out", str(tmp_path / "study"), "--num-cpus", "1"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert _wait_until(lambda: len(descendants(process.pid)) >= 7, 120), "Ray never started"
        time.sleep(3)
        ray = descendants(process.pid)
        process.kill()
        process.wait()
        assert _wait_until(lambda: not any(_stat(pid) for pid in ray), 15), \
            f"left behind: {[pid for pid in ray if _stat(pid)]}"
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
