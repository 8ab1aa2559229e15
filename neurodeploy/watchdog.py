"""Descendants that die with their parent, even when it is killed with SIGKILL.

Lava's workers are forked by us and ask Linux for a parent-death signal themselves
(:func:`neurodeploy.signals.leave_to_parent`). Processes started by a library as grandchildren (Ray's raylet
starts its dashboard and runtime-env agents) cannot: killed with ``kill -9``, the command would leave them
running, re-parented to init. :func:`descendants_die_with_me` forks a small watchdog that notes this
process's descendants every ``interval_s`` (pid and start time, so a recycled pid is never hit) and, when
this process dies without saying goodbye, sends each of the last ones seen SIGKILL. A clean exit from the
``with`` block ends the watchdog without killing anything.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

GOODBYE = b"x"


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else (int(fields[1]), fields[19])


def descendants(root: int) -> dict[int, str]:
    """pid -> start time of every live descendant of ``root`` (from /proc)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found is not None:
                table[int(entry)] = found
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, frontier = {}, [root]
    while frontier:
        for pid in children.get(frontier.pop(), []):
            found[pid] = table[pid][1]
            frontier.append(pid)
    return found


def _kill_all(seen: dict[int, str]) -> None:
    for pid, started in seen.items():
        now = _stat(pid)
        if now is not None and now[1] == started:  # the same process, not a new one with a recycled pid
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _watch(parent: int, read_end: int, interval_s: float) -> None:
    """The watchdog's loop: snapshot the parent's descendants until it says goodbye or dies."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a group-wide Ctrl-C is the parent's
        signal.signal(signum, signal.SIG_IGN)
    me = os.getpid()
    seen: dict[int, str] = {}
    while os.getppid() == parent:
        seen = {pid: started for pid, started in descendants(parent).items() if pid != me}
        ready, _, _ = select.select([read_end], [], [], interval_s)
        if ready:
            if os.read(read_end, 1) == GOODBYE:
                return
            break  # end of file: the parent is gone
    _kill_all(seen)


@contextlib.contextmanager
def descendants_die_with_me(interval_s: float = 1.0) -> Iterator[None]:
    """While the block runs, every descendant of this process is SIGKILLed if this process dies (Linux; a
    no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        yield
        return
    parent = os.getpid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the watchdog
        code = 0
        try:
            os.close(write_end)
            _watch(parent, read_end, interval_s)
        except BaseException:  # noqa: BLE001 - the watchdog never runs the parent's code after the fork
            code = 1
        finally:
            os._exit(code)
    os.close(read_end)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.write(write_end, GOODBYE)
        os.close(write_end)
        os.waitpid(pid, 0)
