"""Which folders and files a command may write into: only ones neurodeploy made (docs/data_safety.md).

A command deletes or overwrites only what it can prove it made. A folder is proved ours by its key file,
read and checked against what our writers put there (a training run's ``config.json`` with our fields, a
run report's ``run_report.json`` with our schema, ...): a file of the same name written by anything else
does not pass. Every command that writes under a user's path asks :func:`check_output_dir` first:

- a path that does not exist yet, or an empty folder: the command may create it and write there;
- a folder of one of the kinds the command writes: it may rewrite the files it writes, nothing else;
- anything else (a user's folder, a folder of another kind): UserError naming the folder, exit 2.

An explicit output *file* that already exists is overwritten only inside a folder of ours
(:func:`check_output_file_owned`). This module reads small JSON and CSV headers only; it imports nothing
heavy, so every layer may ask it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from neurodeploy.errors import UserError
from neurodeploy.safe_files import check_path_name

TRAIN_RUN = "training run"
IMPORTED_RUN = "imported NIR run"
RUN_REPORT = "run report folder"
COMPARISON = "comparison folder"
STUDY = "study folder"
SYNTHETIC_DATA = "synthetic dataset"
DATA_INFO = "data info folder"

TRAIN_CONFIG = "config.json"
TRAIN_CONFIG_KEYS = frozenset({"dataset", "family", "arch", "epochs", "seed", "resolved"})
TRAINING_DONE = "training_done.json"  # written by train after its last epoch (see training_finished)
NIR_RECORD = "nir_import.json"
REPORT_JSON = "run_report.json"
STUDY_JSON = "study.json"
COMPARISON_CSV = "comparison.csv"
COMPARISON_CSV_START = "run,report,family,"
SYNTHETIC_MANIFEST = "synthetic_manifest.json"
SYNTHETIC_IN_PROGRESS = ".generating"
DATA_INFO_SUFFIX = "_info.json"
MAX_KEY_FILE_BYTES = 1 << 24  # 16 MiB: the largest key file (a run config) is a few kB
# left behind by our own writers (a lock, temp files of a killed atomic write): an otherwise empty folder
# holding only these is still empty
_OWN_LEFTOVERS = (".neurodeploy.lock", ".write-test", ".lock")


def _read_json(path: Path) -> object | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_KEY_FILE_BYTES:
            return None
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _is_train_run(folder: Path) -> bool:
    raw = _read_json(folder / TRAIN_CONFIG)
    return isinstance(raw, dict) and TRAIN_CONFIG_KEYS <= raw.keys() and isinstance(raw["resolved"], dict)


def _is_imported_run(folder: Path) -> bool:
    raw = _read_json(folder / NIR_RECORD)
    return isinstance(raw, dict) and {"schema_version", "source", "dt_ms", "layers"} <= raw.keys()


def _is_run_report(folder: Path) -> bool:
    raw = _read_json(folder / REPORT_JSON)
    return isinstance(raw, dict) and isinstance(raw.get("schema_version"), int) and "layers" in raw


def _is_comparison(folder: Path) -> bool:
    try:
        with open(folder / COMPARISON_CSV, encoding="utf-8") as handle:
            return handle.read(len(COMPARISON_CSV_START)) == COMPARISON_CSV_START
    except (OSError, ValueError):
        return False


def _is_study(folder: Path) -> bool:
    raw = _read_json(folder / STUDY_JSON)
    return isinstance(raw, dict) and {"study", "path"} <= raw.keys()


def _is_synthetic_data(folder: Path) -> bool:
    raw = _read_json(folder / SYNTHETIC_MANIFEST)
    return (isinstance(raw, dict) and raw.get("source") == "synthetic") or (folder / SYNTHETIC_IN_PROGRESS).is_file()


def _is_data_info(folder: Path) -> bool:
    for path in folder.glob(f"*{DATA_INFO_SUFFIX}"):
        raw = _read_json(path)
        if isinstance(raw, dict) and {"dataset", "dt_ms", "temporal_contrast"} <= raw.keys():
            return True
    return False


_RECOGNISERS = ((TRAIN_RUN, _is_train_run), (IMPORTED_RUN, _is_imported_run), (RUN_REPORT, _is_run_report),
                (COMPARISON, _is_comparison), (STUDY, _is_study), (SYNTHETIC_DATA, _is_synthetic_data),
                (DATA_INFO, _is_data_info))


def kind_of(folder: Path | str) -> str | None:
    """The kind of neurodeploy folder ``folder`` is (one of the names above), or None when nothing in it
    proves neurodeploy made it. An imported run is checked before a training run: it holds no config."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for kind, recognise in _RECOGNISERS:
        if recognise(folder):
            return kind
    return None


def is_empty(folder: Path) -> bool:
    """True when ``folder`` holds nothing but what our own writers leave behind (a lock, temp files)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return all(e.name in _OWN_LEFTOVERS or (e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file())
               for e in entries)


def check_output_dir(folder: Path | str, kinds: tuple[str, ...], option: str = "--out") -> str | None:
    """UserError unless ``folder`` is new, empty, or a folder of one of ``kinds`` that neurodeploy made.

    Returns the folder's kind (None for a new or empty folder). Creates and writes nothing.
    """
    folder = check_path_name(folder, option)
    try:
        exists = folder.exists() or folder.is_symlink()
    except OSError as exc:
        raise UserError(f"{folder}: cannot check {option} ({exc.strerror}); choose another {option}") from exc
    if not exists:
        return None
    if not folder.is_dir():
        raise UserError(f"{folder}: {option} names a file, not a folder; choose a new or empty folder for {option}")
    kind = kind_of(folder)
    if kind in kinds:
        return kind
    if kind is None and is_empty(folder):
        return None
    wanted = " or ".join(f"a {k}" for k in kinds)
    found = f"is a {kind}" if kind else "holds files neurodeploy did not write"
    raise UserError(f"{folder}: {found}; this command writes only into a new or empty folder or {wanted} it made "
                    f"(nothing was changed); choose another {option}")


def check_output_file_owned(path: Path | str, option: str) -> None:
    """UserError when ``path`` exists and is not inside a folder neurodeploy made: an explicit output file
    never replaces a user's file. A new file may be written anywhere writable."""
    path = check_path_name(path, option)
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink():
        raise UserError(f"{path}: {option} is a symbolic link; neurodeploy does not overwrite through links, "
                        f"choose a new file for {option}")
    if kind_of(path.parent) is None:
        raise UserError(f"{path}: already exists and neurodeploy did not write it (nothing was changed); remove it "
                        f"yourself or choose a new file for {option}")


def training_finished(run_dir: Path | str) -> bool:
    """True when ``train`` recorded that the run in ``run_dir`` finished its last epoch (a run killed
    mid-training has a checkpoint of its last finished epoch but no such record)."""
    run_dir = Path(run_dir)
    raw = _read_json(run_dir / TRAINING_DONE)
    config = _read_json(run_dir / TRAIN_CONFIG)
    return (isinstance(raw, dict) and isinstance(config, dict) and raw.get("run_id") is not None
            and raw.get("run_id") == (config.get("resolved") or {}).get("run_id")
            and raw.get("epochs") == config.get("epochs"))
