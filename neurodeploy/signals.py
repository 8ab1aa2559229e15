"""Terminating signals take the Ctrl-C clean-up path.

Python turns SIGINT into ``KeyboardInterrupt``, which unwinds the stack: Lava's workers are stopped
(``lava_sim._abort_runtime``), its shared-memory segments released, temporary folders removed and run
locks dropped. SIGTERM (``kill``, a job scheduler) and SIGHUP (a closed terminal) would instead end the
process on the spot and orphan all of that. :func:`install` makes them raise :class:`Terminated`, a
``KeyboardInterrupt`` subclass, so every ``except KeyboardInterrupt`` / ``finally`` clean-up runs; the CLI
then exits with the shell's convention, 128 + signal number (SIGTERM 143, SIGHUP 129; SIGINT 130).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from multiprocessing import resource_tracker

TERMINATING = (signal.SIGTERM, signal.SIGHUP)
SIGINT_EXIT_CODE = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """The process received ``signum`` (SIGTERM or SIGHUP) and is unwinding to exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise_terminated(signum: int, frame) -> None:
    for other in TERMINATING:  # one clean-up: a second signal must not interrupt it
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


def install() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (an ignored SIGHUP, as under
    ``nohup``, stays ignored)."""
    for signum in TERMINATING:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _raise_terminated)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal that interrupted the process."""
    return interrupt.exit_code if isinstance(interrupt, Terminated) else SIGINT_EXIT_CODE


def describe(interrupt: KeyboardInterrupt) -> str:
    """``interrupted`` for Ctrl-C, ``terminated by SIGTERM`` (or SIGHUP) otherwise."""
    if isinstance(interrupt, Terminated):
        return f"terminated by {signal.Signals(interrupt.signum).name}"
    return "interrupted"


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def leave_to_parent(parent_pid: int | None = None) -> None:
    """In a forked worker that its parent tears down (Lava's processes and shared-memory manager).

    SIGINT, SIGTERM and SIGHUP sent to the whole process group (Ctrl-C, ``kill -TERM -PGID``, a closed
    terminal) are ignored: the parent stops the workers in order (``lava_sim._abort_runtime``: the shared-
    memory manager unlinks its segments on a clean shutdown; a killed one would leak them) and ends the
    rest with SIGKILL. Should the parent itself be killed outright, Linux sends the worker SIGKILL
    (``prctl(PR_SET_PDEATHSIG)``), so no worker outlives it. A parent that died between the fork and the
    ``prctl`` (``parent_pid``, the forking process, is no longer the parent) ends the worker at once.
    """
    for signum in (signal.SIGINT, *TERMINATING):
        signal.signal(signum, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(128 + signal.SIGKILL)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, with SIGHUP ignored (an exec'd child keeps that).

    The tracker (one helper process per interpreter, which Lava's shared memory registers with) ignores
    SIGINT and SIGTERM itself, but a hang-up sent to the process group would kill it; the parent would then
    warn that resources might leak and start another. Started this way it outlives the clean-up and exits
    when its parent does.
    """
    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)
