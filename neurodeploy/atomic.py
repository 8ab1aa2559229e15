"""Atomic file writes: write a temporary file in the same folder, fsync, then rename over the target."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from neurodeploy.errors import UserError
from neurodeploy.safe_files import check_output_file, check_path_name


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` in one rename.

    An existing ``target`` that is not a regular file (a folder, FIFO, device node) is refused first: the
    rename would replace a FIFO or device by a plain file.
    """
    target = Path(target)
    check_output_file(target, "the output")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UserError(f"{target}: cannot write here ({exc.strerror}); choose a writable --out") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable_dir(folder: Path | str, option: str = "--out") -> None:
    """UserError unless ``folder`` is, or could be made as, a writable folder; creates nothing."""
    folder = check_path_name(folder, option).absolute()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        kind = "a file" if existing.is_file() else "a special file"
        raise UserError(f"{folder}: cannot write here ({existing} is {kind}, not a folder); choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: cannot write here (no write permission on {existing}); choose a writable "
                        f"{option}")


def write_bytes(target: Path | str, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: Path | str, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")
