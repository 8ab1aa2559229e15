"""N-MNIST on disk: one ``.bin`` per sample in ``Train/<digit>/`` and ``Test/<digit>/``.

Each event is 40 bits, big-endian (Orchard et al. 2015): x (8 bits), y (8 bits), polarity (1 bit,
1 = ON), timestamp (23 bits, us). Reading goes through ``tonic.io.read_mnist_file``; we only add the
checks that turn a damaged copy into a clear error, and the writer used by the synthetic generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.atomic import write_bytes
from neurodeploy.data.events import EVENT_DTYPE, as_event_array
from neurodeploy.errors import UserError
from neurodeploy.safe_files import check_regular_file

NMNIST_SENSOR = (34, 34, 2)
NMNIST_CLASSES = tuple(str(digit) for digit in range(10))
NMNIST_SPLIT_FOLDERS = {"train": "Train", "test": "Test"}

BYTES_PER_EVENT = 5
MAX_TIMESTAMP_US = 2**23 - 1
_OVERFLOW_Y = 240  # y == 240 marks a timestamp-overflow record in the format, not an event
_RECOPY = "re-copy the N-MNIST dataset (or drop --data-dir to use the synthetic default)"


def read_nmnist_file(path: Path | str) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file into an ``EVENT_DTYPE`` array (t in us).

    Raises ``UserError`` naming the file when it is unreadable, empty, truncated (size not a multiple
    of 5 bytes) or holds coordinates outside the 34x34 sensor.
    """
    path = check_regular_file(path, "N-MNIST sample")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{path}: cannot read N-MNIST sample ({exc.strerror}); {_RECOPY}") from exc
    if size == 0:
        raise UserError(f"{path}: empty N-MNIST sample file; {_RECOPY}")
    if size % BYTES_PER_EVENT:
        raise UserError(
            f"{path}: truncated or corrupt N-MNIST file ({size} bytes is not a whole number of "
            f"{BYTES_PER_EVENT}-byte events); {_RECOPY}"
        )
    from tonic.io import read_mnist_file  # tonic's import is slow (it loads all its datasets)

    try:
        events = read_mnist_file(str(path), dtype=EVENT_DTYPE)
    except OSError as exc:
        raise UserError(f"{path}: cannot read N-MNIST sample ({exc.strerror}); {_RECOPY}") from exc
    width, height, _ = NMNIST_SENSOR
    if len(events) and (events["x"].max() >= width or events["y"].max() >= height):
        raise UserError(
            f"{path}: corrupt N-MNIST file (event coordinates up to x={events['x'].max()}, "
            f"y={events['y'].max()} on a {width}x{height} sensor); {_RECOPY}"
        )
    return events


def encode_nmnist_events(events: np.ndarray) -> bytes:
    """Pack events into N-MNIST's 40-bit records (no overflow records: t must fit 23 bits)."""
    events = as_event_array(events)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    t = events["t"].astype(np.int64)
    if len(events):
        if x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 255:
            raise ValueError("N-MNIST coordinates must fit in 8 bits")
        if np.any(y == _OVERFLOW_Y):
            raise ValueError(f"y = {_OVERFLOW_Y} is reserved for overflow records in N-MNIST files")
        if t.min() < 0 or t.max() > MAX_TIMESTAMP_US:
            raise ValueError(f"N-MNIST timestamps must lie in [0, {MAX_TIMESTAMP_US}] us")
    records = np.empty((len(events), BYTES_PER_EVENT), dtype=np.uint8)
    records[:, 0] = x
    records[:, 1] = y
    records[:, 2] = (events["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    records[:, 3] = (t >> 8) & 0xFF
    records[:, 4] = t & 0xFF
    return records.tobytes()


def write_nmnist_file(path: Path | str, events: np.ndarray) -> Path:
    """Write events as an N-MNIST ``.bin`` file, atomically (temporary file + rename)."""
    return write_bytes(path, encode_nmnist_events(events))


def index_nmnist(root: Path | str, split: str) -> list[tuple[Path, int]]:
    """List ``(file, digit)`` for every ``<root>/<Train|Test>/<digit>/*.bin``, sorted by digit then name."""
    if split not in NMNIST_SPLIT_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    split_dir = Path(root) / NMNIST_SPLIT_FOLDERS[split]
    if not split_dir.is_dir():
        raise UserError(f"{split_dir}: N-MNIST split folder missing; point --data-dir at the folder "
                        "holding Train/ and Test/")
    samples = []
    for label, digit in enumerate(NMNIST_CLASSES):
        samples.extend((path, label) for path in sorted((split_dir / digit).glob("*.bin")))
    return samples


def find_nmnist_root(data_dir: Path | str) -> Path | None:
    """The folder holding ``Train/`` and ``Test/``: ``data_dir`` itself or tonic's ``data_dir/NMNIST``."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / "NMNIST"):
        if any((candidate / folder).is_dir() for folder in NMNIST_SPLIT_FOLDERS.values()):
            return candidate
    return None


def check_nmnist_root(root: Path | str) -> dict[str, int]:
    """Check that both splits and all ten digit folders hold ``.bin`` files; return files per split."""
    root = Path(root)
    counts = {}
    for split, folder in NMNIST_SPLIT_FOLDERS.items():
        for digit in NMNIST_CLASSES:
            digit_dir = root / folder / digit
            if not digit_dir.is_dir() or next(digit_dir.glob("*.bin"), None) is None:
                raise UserError(f"{digit_dir}: missing or holds no .bin files; {_RECOPY}")
        counts[split] = sum(1 for _ in (root / folder).glob("[0-9]/*.bin"))
    return counts
