"""IBM DVS Gesture on disk (Amir et al. 2017): 128x128 DVS, 11 classes, two layouts.

* tonic's preprocessed layout: ``ibmGestureTrain/user<NN>_<lighting>/<label>.npy`` (and
  ``ibmGestureTest``), each an (N, 4) integer array with columns x, y, p, t, t in milliseconds; read
  exactly as ``tonic.datasets.DVSGesture.__getitem__`` does (t * 1000 -> us).
* the original IBM release: ``user<NN>_<lighting>.aedat`` (AEDAT 3.1 polarity events) with
  ``user<NN>_<lighting>_labels.csv`` (class 1..11, start and end in us) and ``trials_to_train.txt`` /
  ``trials_to_test.txt``. Decoded with tonic.io's AEDAT reader, then cut into one sample per label row.

Sample times start at 0: tonic's samples from their first event, IBM slices from the label's start.
"""

from __future__ import annotations

import functools
import io
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neurodeploy.atomic import atomic_path
from neurodeploy.data.events import make_events
from neurodeploy.errors import UserError
from neurodeploy.safe_files import load_npy

DVSGESTURE_SENSOR = (128, 128, 2)
DVSGESTURE_CLASSES = (  # tonic's names and order; IBM's csv numbers them 1..11
    "Hand clapping",
    "Right hand wave",
    "Left hand wave",
    "Right arm cw",
    "Right arm ccw",
    "Left arm cw",
    "Left arm ccw",
    "Arm roll",
    "Air drums",
    "Air guitar",
    "Other gestures",
)
TONIC_FOLDERS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}
IBM_TRIAL_LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
IBM_FIRST_TEST_USER = 24  # IBM's split when the trial lists are absent: users 1-23 train, 24-29 test
_USER_FOLDER = re.compile(r"user(\d+)_(.+)")
MAX_GESTURE_SAMPLE_BYTES = 1 << 30  # tonic samples are a few MB (about 500k events x 4 x int64 at most)
_RECOPY = "re-copy the DVS Gesture dataset (or drop --data-dir to use the synthetic default)"


class GestureSample(NamedTuple):
    """One sample: a tonic ``.npy`` file, or the ``[start_us, end_us)`` slice of an IBM recording."""

    path: Path
    start_us: int | None = None
    end_us: int | None = None


# ---------------------------------------------------------------- tonic's preprocessed layout


def read_tonic_gesture_file(path: Path | str) -> np.ndarray:
    """Read one tonic ``.npy`` sample (columns x, y, p, t in ms) into ``EVENT_DTYPE``, t from 0 us."""
    path = Path(path)
    raw = load_npy(path, "DVS Gesture sample", _RECOPY, MAX_GESTURE_SAMPLE_BYTES)
    if raw.ndim != 2 or raw.shape[1] != 4 or raw.shape[0] == 0 or raw.dtype.kind not in "iuf":
        raise UserError(f"{path}: not a DVS Gesture sample (expected a non-empty N x 4 array of x, y, p, "
                        f"t; found {raw.dtype} {raw.shape}); {_RECOPY}")
    t_us = np.rint(raw[:, 3].astype(np.float64) * 1000).astype(np.int64)  # tonic: events[:, 3] *= 1000
    events = make_events(raw[:, 0], raw[:, 1], t_us - t_us.min(), raw[:, 2])
    _check_coordinates(events, path)
    return events


def write_tonic_gesture_file(path: Path | str, events: np.ndarray) -> Path:
    """Write events as a tonic ``.npy`` sample (int32 columns x, y, p, t with t floored to ms), atomically."""
    table = np.empty((len(events), 4), dtype=np.int32)
    table[:, 0] = events["x"]
    table[:, 1] = events["y"]
    table[:, 2] = events["p"]
    table[:, 3] = np.asarray(events["t"]) // 1000
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, table)
    return Path(path)


def _index_tonic(root: Path, split: str) -> list[tuple[GestureSample, int]]:
    """Mirror tonic's DVSGesture walk: ``user<NN>_<lighting>`` folders holding ``<label>.npy``."""
    split_dir = root / TONIC_FOLDERS[split]
    samples = []
    for folder in sorted(split_dir.iterdir()) if split_dir.is_dir() else []:
        if not (folder.is_dir() and _USER_FOLDER.fullmatch(folder.name)):
            continue
        files = list(folder.glob("*.npy"))
        for path in files:
            if not path.stem.isdigit() or int(path.stem) >= len(DVSGESTURE_CLASSES):
                raise UserError(f"{path}: DVS Gesture files must be named <label 0-10>.npy; {_RECOPY}")
        samples.extend((GestureSample(path), int(path.stem)) for path in sorted(files, key=lambda p: int(p.stem)))
    return samples


# ---------------------------------------------------------------- the original IBM release


def read_ibm_recording(path: Path | str) -> np.ndarray:
    """Decode a whole IBM ``.aedat`` recording (AEDAT 3.1) with tonic.io's reader; absolute t in us.

    Address bits as in ``tonic.io.read_dvs_ibm`` (which itself cannot be called in tonic 1.7.0: it
    unpacks two values from a header reader that returns three): x = bits 17-29, y = bits 2-14,
    polarity = bit 1.
    """
    return _decode_ibm_recording(os.fspath(path)).copy()


@functools.lru_cache(maxsize=2)  # consecutive slices of one recording decode it once
def _decode_ibm_recording(path_text: str) -> np.ndarray:
    from tonic.io import get_aer_events_from_file, read_aedat_header_from_file  # slow import (all datasets)

    path = Path(path_text)
    try:
        version, data_start, _ = read_aedat_header_from_file(path_text)
    except Exception as exc:  # tonic asserts and parses loosely: any failure means a bad header
        raise UserError(f"{path}: cannot read the AEDAT header ({exc!r}); {_RECOPY}") from exc
    if not 3 <= version < 4:
        raise UserError(f"{path}: AEDAT version {version} is not the 3.1 of the IBM release; {_RECOPY}")
    try:
        raw = get_aer_events_from_file(path_text, version, data_start)
    except Exception as exc:
        raise UserError(f"{path}: corrupt AEDAT 3.1 event packets ({exc!r}); {_RECOPY}") from exc
    address = raw["address"].astype(np.int64)
    events = make_events((address >> 17) & 0x1FFF, (address >> 2) & 0x1FFF,
                         raw["timeStamp"].astype(np.int64), (address >> 1) & 1)
    _check_coordinates(events, path)
    events.flags.writeable = False  # shared by every slice of this recording
    return events


def read_ibm_labels(path: Path | str) -> np.ndarray:
    """Rows of ``(label 0..10, start_us, end_us)`` from an IBM ``*_labels.csv``."""
    path = Path(path)
    try:
        # decode first: numpy 1.26's loadtxt can segfault on a field holding a non-BMP character
        text = path.read_text(encoding="ascii")
        table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise UserError(f"{path}: cannot read the gesture labels ({exc}); {_RECOPY}") from exc
    if table.shape[1] != 3 or len(table) == 0:
        raise UserError(f"{path}: expected rows of class,startTime_usec,endTime_usec; {_RECOPY}")
    labels = table[:, 0] - 1
    if labels.min() < 0 or labels.max() >= len(DVSGESTURE_CLASSES) or np.any(table[:, 2] <= table[:, 1]):
        raise UserError(f"{path}: gesture classes must be 1-11 with end after start; {_RECOPY}")
    return np.column_stack([labels, table[:, 1:]])


def _ibm_trials(root: Path, split: str) -> list[Path]:
    """The split's recordings: from IBM's trial list, else by user number (1-23 train, 24-29 test)."""
    listing = root / IBM_TRIAL_LISTS[split]
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        return [root / name for name in names]
    trials = []
    for path in sorted(root.glob("user*.aedat")):
        match = _USER_FOLDER.fullmatch(path.stem)
        if match and (int(match.group(1)) >= IBM_FIRST_TEST_USER) == (split == "test"):
            trials.append(path)
    return trials


def _index_ibm(root: Path, split: str) -> list[tuple[GestureSample, int]]:
    samples = []
    for recording in _ibm_trials(root, split):
        labels_csv = recording.with_name(recording.stem + "_labels.csv")
        if not recording.is_file() or not labels_csv.is_file():
            raise UserError(f"{recording}: recording or its _labels.csv is missing; {_RECOPY}")
        for label, start, end in read_ibm_labels(labels_csv):
            samples.append((GestureSample(recording, int(start), int(end)), int(label)))
    return samples


# ---------------------------------------------------------------- both layouts


def _check_coordinates(events: np.ndarray, path: Path) -> None:
    width, height, _ = DVSGESTURE_SENSOR
    if len(events) and (events["x"].min() < 0 or events["y"].min() < 0
                        or events["x"].max() >= width or events["y"].max() >= height):
        raise UserError(f"{path}: corrupt DVS Gesture data (coordinates outside the {width}x{height} "
                        f"sensor); {_RECOPY}")


def dvsgesture_layout(root: Path | str) -> str | None:
    """``'tonic'``, ``'ibm'`` or None for a folder that holds neither layout."""
    root = Path(root)
    if any((root / folder).is_dir() for folder in TONIC_FOLDERS.values()):
        return "tonic"
    if any((root / name).is_file() for name in IBM_TRIAL_LISTS.values()) or next(
            root.glob("user*_labels.csv"), None) is not None:
        return "ibm"
    return None


def find_dvsgesture_root(data_dir: Path | str) -> Path | None:
    """The dataset folder: ``data_dir`` itself, tonic's ``data_dir/DVSGesture`` or IBM's ``DvsGesture``."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / "DVSGesture", data_dir / "DvsGesture"):
        if candidate.is_dir() and dvsgesture_layout(candidate) is not None:
            return candidate
    return None


def index_dvsgesture(root: Path | str, split: str) -> list[tuple[GestureSample, int]]:
    """List ``(sample, label 0..10)`` of one split, in either layout, in a stable order."""
    if split not in TONIC_FOLDERS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    layout = dvsgesture_layout(root)
    if layout is None:
        raise UserError(f"{root}: neither tonic's ibmGestureTrain/ibmGestureTest folders nor IBM's "
                        "*.aedat with *_labels.csv; point --data-dir at your DVS Gesture copy")
    return _index_tonic(root, split) if layout == "tonic" else _index_ibm(root, split)


def check_dvsgesture_root(root: Path | str) -> dict[str, int]:
    """Check that both splits hold samples; return samples per split."""
    counts = {}
    for split in TONIC_FOLDERS:
        counts[split] = len(index_dvsgesture(root, split))
        if counts[split] == 0:
            raise UserError(f"{root}: no DVS Gesture {split} samples found; {_RECOPY}")
    return counts


def read_dvsgesture_sample(sample: GestureSample) -> np.ndarray:
    """Events of one sample, t in us from the sample's start."""
    if sample.start_us is None:
        return read_tonic_gesture_file(sample.path)
    recording = _decode_ibm_recording(os.fspath(sample.path))
    t = recording["t"]
    chosen = recording[(t >= sample.start_us) & (t < sample.end_us)]  # a copy
    chosen["t"] -= sample.start_us
    return chosen

