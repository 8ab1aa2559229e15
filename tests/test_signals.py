"""SIGTERM and SIGHUP during ``neurodeploy run --backend lava``: the Ctrl-C clean-up, counted from /proc.

``kill PID`` sends SIGTERM to the main process only; a closed terminal sends SIGHUP to the whole process
group. Either way the command must print one line, exit 128 + signal (143, 129), and leave no process
(Lava workers, its shared-memory manager), no ``/dev/shm`` segment and no temporary folder behind. The
segments are the ones the run's processes had mapped mid-run (read from ``/proc/PID/maps``), so other
programs' segments do not count; temporary folders go to a private ``TMPDIR``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from test_lava_hygiene import _kill_group, _processes, lava_workers, small_net, start_long_lava_run, wait_for_exit

from neurodeploy.signals import Terminated, describe, exit_code

pytestmark = [pytest.mark.lava, pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")]

__all__ = ["small_net"]  # the fixture, imported from the hygiene tests


def default_dispositions() -> None:
    """Runs in the child before exec: whatever the test runner inherited (a background job ignores SIGINT,
    nohup ignores SIGHUP), the command starts from the default action of every signal we send."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def descendants(root: int) -> list[int]:
    table = _processes()
    found, frontier = [root], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def shared_memory_in_use(root: int) -> set[str]:
    """Every /dev/shm file mapped by ``root`` or one of its descendants."""
    names = set()
    for pid in descendants(root):
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        names.update(line.split()[-1] for line in maps.splitlines() if "/dev/shm/" in line)
    return {name for name in names if name.startswith("/dev/shm/")}


@pytest.mark.parametrize(("signum", "whole_group", "code"), [
    (signal.SIGTERM, False, 143),  # kill PID
    (signal.SIGHUP, True, 129),  # the terminal closed
    (signal.SIGTERM, True, 143),  # kill -TERM -PGID (a job scheduler ending the job)
], ids=["sigterm-main", "sighup-group", "sigterm-group"])
def test_a_terminating_signal_during_run_lava_cleans_up_like_ctrl_c(small_net, tmp_path, signum, whole_group, code):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    process, log = start_long_lava_run(small_net, tmp_path, default_dispositions,
                                       env={**os.environ, "TMPDIR": str(private_tmp)})
    try:
        workers = lava_workers(process.pid)
        segments = shared_memory_in_use(process.pid)
        temp_folders = list(private_tmp.iterdir())
        if whole_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        returned, left_behind = wait_for_exit(process, repr(signum))
    finally:
        _kill_group(process)
    stderr_text = log.read_text()
    assert returned == code, stderr_text
    assert "Traceback" not in stderr_text
    assert stderr_text.strip().splitlines() == [f"terminated by {signal.Signals(signum).name}"], stderr_text
    assert len(workers) >= 5 and segments and temp_folders, "the signal must land while the run holds resources"
    assert left_behind == [], "processes left behind"
    assert not [name for name in segments if Path(name).exists()], "shared-memory segments left in /dev/shm"
    assert list(private_tmp.iterdir()) == [], "temporary folders left behind"


def test_terminated_is_a_keyboard_interrupt_with_the_shell_exit_code():
    assert isinstance(Terminated(signal.SIGTERM), KeyboardInterrupt)
    assert exit_code(Terminated(signal.SIGTERM)) == 143 and exit_code(Terminated(signal.SIGHUP)) == 129
    assert exit_code(KeyboardInterrupt()) == 130
    assert describe(Terminated(signal.SIGHUP)) == "terminated by SIGHUP" and describe(KeyboardInterrupt()) == \
        "interrupted"


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def test_sigkill_of_run_lava_leaves_no_process_behind(small_net, tmp_path):
    """``kill -9 PID`` (issue 23 family 5): nothing can clean up in the killed process, so its children must
    end on their own: Lava's workers and shared-memory manager by the parent-death signal, Python's resource
    tracker once the last of them is gone (after unlinking the segments they leaked)."""
    process, log = start_long_lava_run(small_net, tmp_path, default_dispositions)
    try:
        children = descendants(process.pid)[1:]
        segments = shared_memory_in_use(process.pid)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.1)
        left_behind = [f"{pid} {_processes().get(pid, (0, 0, '?'))[2]}" for pid in children if _alive(pid)]
    finally:
        _kill_group(process)
    assert len(children) >= 5, "the kill must land while Lava's workers run"
    assert left_behind == [], "processes outlived the killed parent"
    assert segments and not [name for name in segments if Path(name).exists()], "shared memory left in /dev/shm"


def _in_forked_child(body) -> int:
    """Exit code of a forked child that runs ``body()`` (which returns the child's exit code)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_worker_asks_linux_for_sigkill_when_its_parent_dies():
    import ctypes

    from neurodeploy.signals import PR_SET_PDEATHSIG, leave_to_parent

    def body() -> int:
        leave_to_parent(os.getppid())
        value = ctypes.c_int(0)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG + 1, ctypes.byref(value))  # PR_GET_PDEATHSIG
        return value.value

    assert _in_forked_child(body) == signal.SIGKILL


def test_a_worker_whose_parent_died_before_it_could_ask_ends_at_once():
    from neurodeploy.signals import leave_to_parent

    def body() -> int:
        leave_to_parent(parent_pid=os.getppid() + 1_000_000)  # as if the forking process were already gone
        return 0

    assert _in_forked_child(body) == 128 + signal.SIGKILL
