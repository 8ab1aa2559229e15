"""One writer per run folder: ``RUN/.neurodeploy.lock``, taken by ``train``, ``export`` and ``run``.

Two commands writing one run folder at once mix their outputs (a config from one seed, a checkpoint from
another). The lock is an ``flock`` on ``RUN/.neurodeploy.lock``, whose content names the holder (pid,
host, command line, start time). A second command gets exit code 2 and one line naming the holder.

Stale locks need no guessing: the kernel drops an ``flock`` when its process ends, however it ends, so a
lock file left by a killed process (SIGKILL, power loss) is simply taken over; the file's old content
only says who left it. The file is removed on every normal exit path (including Ctrl-C, SIGTERM and
SIGHUP, which unwind as exceptions, see :mod:`neurodeploy.signals`). A command that fails also puts the
folder's modification time back, so a failed command leaves the run folder exactly as it found it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from neurodeploy.errors import UserError

LOCK_NAME = ".neurodeploy.lock"
MAX_HOLDER_BYTES = 4096
HOLDER_WAIT_S = 3.0


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a run folder's lock."""

    pid: int
    hostname: str
    command: str
    started: str

    @classmethod
    def me(cls) -> LockHolder:
        command = " ".join(shlex.quote(arg) for arg in [Path(sys.argv[0]).name, *sys.argv[1:]])
        return cls(os.getpid(), socket.gethostname(), command[:300],
                   datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        try:
            raw = json.loads(text)
            return cls(int(raw["pid"]), str(raw["hostname"]), str(raw["command"]), str(raw["started"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        command = json.dumps(self.command)  # quoted, and a newline in it stays on the line
        return f"pid {self.pid} on {self.hostname}, {command}, since {self.started}"


def _open_locked(path: Path) -> int | None:
    """An open descriptor of ``path`` holding its exclusive flock, or None when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            return fd
        os.close(fd)  # the holder removed the file between our open and our flock: take the new one


def _holder_of(path: Path) -> LockHolder | None:
    try:
        with open(path, "rb") as handle:
            return LockHolder.parse(handle.read(MAX_HOLDER_BYTES).decode("utf-8", "replace"))
    except OSError:
        return None


def _wait_for_holder(path: Path, seconds: float = HOLDER_WAIT_S) -> LockHolder | None:
    """The holder of a lock we just failed to take. The holder writes its name right after its ``flock``,
    but on a loaded machine it can be descheduled in between, so give it a moment before calling it
    unnamed."""
    deadline = time.monotonic() + seconds
    while True:
        holder = _holder_of(path)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.05)


@contextlib.contextmanager
def hold(run_dir: Path | str, option: str = "--out") -> Iterator[None]:
    """Hold the lock of ``run_dir`` (an existing folder) for the ``with`` block; UserError when another
    command holds it. Nothing is locked when ``run_dir`` is not a folder (callers report that themselves)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        yield
        return
    folder_times = os.stat(run_dir)
    path = run_dir / LOCK_NAME
    try:
        fd = _open_locked(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the run lock ({exc.strerror}); choose a writable {option}") from exc
    if fd is None:
        holder = _wait_for_holder(path)
        who = holder.describe() if holder else "a process that is just starting"
        raise UserError(f"{run_dir}: in use by another neurodeploy command ({who}); wait for it to finish or "
                        f"use another {option}")
    succeeded = False
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(LockHolder.me())) + "\n").encode(), 0)
        yield
        succeeded = True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        if not succeeded:
            with contextlib.suppress(OSError):
                os.utime(run_dir, ns=(folder_times.st_atime_ns, folder_times.st_mtime_ns))


@contextlib.contextmanager
def hold_output(folder: Path | str, option: str = "--out") -> Iterator[None]:
    """Hold the lock of an output folder (a report folder) for the ``with`` block, so that two commands with
    the same ``--out`` cannot replace each other's files. The folder is created first when missing (a lock
    lives in a folder); a folder created here is removed again when the block fails and leaves it empty."""
    folder = Path(folder)
    created = []  # the folders made here, deepest first
    missing = folder
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{folder}: cannot create {option} ({exc.strerror}); choose a writable {option}") from exc
    succeeded = False
    try:
        with hold(folder, option):
            yield
        succeeded = True
    finally:
        if not succeeded:
            for made in created:
                with contextlib.suppress(OSError):
                    made.rmdir()  # only an empty folder: whatever the command wrote stays
