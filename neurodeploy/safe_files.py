"""Reading files a user named without trusting them, and refusing output paths that are not files.

Every reader here answers a hostile file with a one-line :class:`~neurodeploy.errors.UserError` before it
spends memory or time on it:

- special files: a FIFO, socket or device node is refused by ``stat`` / ``fstat`` (a FIFO is opened with
  ``O_NONBLOCK``, so nothing waits for a writer); an existing folder or special file named as an output
  file is refused before any work (:func:`check_output_file`);
- size: text files (YAML, JSON) are read only up to a cap, ``MAX_TEXT_BYTES``;
- YAML: :class:`LimitedSafeLoader` is PyYAML's safe loader that also refuses anchors and aliases (the
  "billion laughs" expansion) and nesting deeper than ``MAX_YAML_DEPTH``;
- ``.npy``: the header is parsed first (``numpy.lib.format``); an object dtype (pickle), a shape whose
  bytes exceed what the file holds, or more than the caller's cap is refused before the array is allocated.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import yaml

from neurodeploy.errors import UserError

MAX_TEXT_BYTES = 1 << 20  # model files, hardware profiles, config.json, run_report.json: a few KiB each
MAX_YAML_DEPTH = 32
MAX_NPY_BYTES = 1 << 31  # 2 GiB: a 2312-input x 100k-step spike array is 231 MB
MAX_NAME_BYTES = 255  # one file or folder name: the limit of ext4, xfs, btrfs, tmpfs, APFS, NTFS
MAX_PATH_BYTES = 4095  # a whole path: Linux's PATH_MAX less the terminating NUL


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def check_path_name(path: Path | str, option: str) -> Path:
    """UserError when a name in ``path`` is longer than file systems allow (``MAX_NAME_BYTES``) or the whole
    path is longer than ``MAX_PATH_BYTES``: the OS would refuse it with ``ENAMETOOLONG`` at the first
    ``stat``, ``mkdir`` or ``open``, as a traceback."""
    path = Path(path)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > MAX_NAME_BYTES:
            raise UserError(f"{str(path)[:80]}...: {option} has a name of {size} bytes ({part[:24]}...); names may "
                            f"have at most {MAX_NAME_BYTES} bytes, choose a shorter {option}")
    size = len(os.fsencode(str(path.absolute())))
    if size > MAX_PATH_BYTES:
        raise UserError(f"{str(path)[:80]}...: {option} is a path of {size} bytes; paths may have at most "
                        f"{MAX_PATH_BYTES} bytes, choose a shorter {option}")
    return path


def check_regular_file(path: Path | str, what: str) -> Path:
    """UserError unless ``path`` exists and is a regular file (symlinks followed); ``what`` names its role."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror}); check the path") from exc
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: {what} is {_kind(mode)}, not a regular file; pass a regular file")
    return path


def check_output_file(path: Path | str, option: str) -> None:
    """UserError when ``path`` exists as anything but a regular file: a folder, FIFO or device is never
    replaced by an output (an atomic rename would swap a FIFO or device node for a plain file)."""
    path = check_path_name(path, option)
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # a new file (or one under a file: check_writable_dir)
        return
    except OSError as exc:
        raise UserError(f"{path}: cannot check {option} ({exc.strerror}); choose another {option}") from exc
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: {option} names {_kind(mode)}, not a file; choose a new or regular file "
                        f"for {option}")


def open_regular(path: Path | str, what: str) -> BinaryIO:
    """Open ``path`` for reading, refusing anything but a regular file before a read could block on it."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror}); check the path") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserError(f"{path}: {what} is {_kind(mode)}, not a regular file; pass a regular file")
    return os.fdopen(fd, "rb")


def read_bytes(path: Path | str, what: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The content of the regular file ``path``, at most ``max_bytes`` long (UserError otherwise)."""
    with open_regular(path, what) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise UserError(f"{path}: {what} is {size} bytes, more than the {max_bytes} allowed; "
                            "pass the right file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while we read it
        raise UserError(f"{path}: {what} is more than {max_bytes} bytes; pass the right file")
    return data


def read_text(path: Path | str, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """:func:`read_bytes` decoded as UTF-8."""
    try:
        return read_bytes(path, what, max_bytes).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} is not UTF-8 text (byte {exc.start}); pass a text file") from exc


def load_json(path: Path | str, what: str, fix: str, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """Parse a JSON file; a damaged file (or NaN/Infinity, nesting beyond Python's stack) is a UserError
    whose line ends with ``fix``."""
    text = read_text(path, what, max_bytes)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (RecursionError, ValueError) as exc:  # JSONDecodeError is a ValueError
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"{path}: cannot read {what} (not valid JSON: {detail}); {fix}") from exc


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class LimitedSafeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (plain data only) that refuses anchors/aliases and deep nesting.

    Aliases let a kilobyte of YAML expand to gigabytes ("billion laughs"); our files never need them.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&, *) are not allowed",
                                              event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels",
                                                  event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(path: Path | str, what: str, fix: str, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """Parse an untrusted YAML file with :class:`LimitedSafeLoader`; ``fix`` ends the error line."""
    text = read_text(path, what, max_bytes)
    try:
        return yaml.load(text, Loader=LimitedSafeLoader)  # noqa: S506 - LimitedSafeLoader is a SafeLoader
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"{path}: cannot read {what} ({detail}); {fix}") from exc


def load_npy(path: Path | str, what: str, fix: str, max_bytes: int = MAX_NPY_BYTES) -> np.ndarray:
    """Read a ``.npy`` array after checking its header: version 1.0/2.0, no object dtype, and
    shape x itemsize within both the file's size and ``max_bytes``; ``fix`` ends the error line."""
    path = Path(path)
    fmt = np.lib.format
    try:
        with open_regular(path, what) as handle:
            size = os.fstat(handle.fileno()).st_size
            version = fmt.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
            if dtype.hasobject:
                raise UserError(f"{path}: {what} holds Python objects (refused: loading them would unpickle "
                                f"code); {fix}")
            if dtype.itemsize == 0 or any(side < 0 for side in shape):
                raise ValueError(f"dtype {dtype} with shape {shape} describes no array")
            count = math.prod(shape)
            needed = count * dtype.itemsize
            available = size - handle.tell()
            if needed > max_bytes:
                raise UserError(f"{path}: {what} header promises {shape} {dtype} ({needed} bytes), more than the "
                                f"{max_bytes} allowed; {fix}")
            if needed > available:
                raise UserError(f"{path}: {what} is truncated (header promises {needed} bytes of data, the file "
                                f"has {available}); {fix}")
            flat = np.frombuffer(handle.read(needed), dtype=dtype, count=count) if count else np.empty(0, dtype)
            return flat.reshape(shape, order="F" if fortran else "C").copy()
    except UserError:
        raise
    except (OSError, ValueError, EOFError, TypeError, OverflowError, SyntaxError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"{path}: cannot read {what} as .npy ({detail}); {fix}") from exc

