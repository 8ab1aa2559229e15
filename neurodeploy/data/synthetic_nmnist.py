"""Synthetic N-MNIST: MNIST digits on a simulated monitor, recorded by a DVS making N-MNIST's saccades.

Real N-MNIST (Orchard et al. 2015, Front. Neurosci. 9:437) filmed the MNIST digits on an LCD monitor with
an ATIS sensor on a pan-tilt unit, each digit covering about 28 x 28 pixels of the sensor, while the sensor
made three saccades along a triangle; the recordings are cropped to 34 x 34 pixels. Here a digit's 28 x 28
box is shown in the 34 x 34 field and moved along the same triangle at the same speed: the stabilisation
code published with the dataset (``stabilize.m``; tonic's ``stabilize``) undoes a constant-speed motion of
(0, 0) -> (3.5, 7) -> (7, 0) -> (0, 0) px over 105 ms per saccade. The rendered frames go through the DVS
model (:mod:`neurodeploy.data.dvs_model`). Samples are written as real N-MNIST ``.bin`` files, so the real
reader path is exercised. Train and test samples come from disjoint source digits; when more samples are
asked for than a split has digits, digits are reused with other saccade jitter and sensor noise (the
manifest counts the reuses). docs/synthetic_nmnist.md compares the event statistics with real N-MNIST's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neurodeploy.atomic import write_json
from neurodeploy.data.digit_sources import (
    DIGIT_SOURCES,
    MNIST_DIGITS,
    SourceDigits,
    load_source_digits,
)
from neurodeploy.data.dvs_model import DVSParameters, DVSSensor
from neurodeploy.data.nmnist import NMNIST_CLASSES, NMNIST_SENSOR, NMNIST_SPLIT_FOLDERS, write_nmnist_file
from neurodeploy.errors import UserError
from neurodeploy.folders import SYNTHETIC_DATA, check_output_dir
from neurodeploy.safe_files import load_json

GENERATOR = "neurodeploy.data.synthetic_nmnist"
GENERATOR_VERSION = 2  # 2: MNIST digits by default, recording model after Orchard et al. 2015
MANIFEST_NAME = "synthetic_manifest.json"
IN_PROGRESS_NAME = ".generating"
LOCK_NAME = ".lock"
DEFAULT_SOURCE = MNIST_DIGITS
_BATCH = 40  # samples simulated side by side in one tall sensor image


@dataclass(frozen=True)
class RecordingModel:
    """How the simulated sensor records one digit; lengths in sensor pixels, times in ms.

    ``dark_digit``: the digit darkens the pixels it covers (shown dark on a bright background). With the
    published saccade directions this gives the published files' polarities: a stroke's leading edge
    emits OFF events and its trailing edge ON events. The paper does not say how the digits were shown;
    a network trained on the real recordings recognises 96% of these samples but 82% of bright digits on
    a dark background (docs/synthetic_nmnist.md).
    """

    saccade_ms: float = 105.0
    corners_px: tuple[tuple[float, float], ...] = ((0.0, 0.0), (3.5, 7.0), (7.0, 0.0), (0.0, 0.0))  # (dx, dy)
    origin_px: tuple[tuple[float, float], ...] = ((-1.25, -0.25), (-0.3, 0.7))  # x, y ranges of the box start
    duration_jitter: float = 0.02  # relative spread of each saccade's duration
    amplitude_jitter: float = 0.05  # relative spread of the triangle's size
    frame_step_ms: float = 2.0  # rendering step; the DVS model interpolates event times within a step
    black_level: float = 0.12  # a monitor's black is not black: bounds the log contrast of an edge
    dark_digit: bool = True
    dvs: DVSParameters = DVSParameters(threshold_on=0.37, threshold_off=0.37, threshold_mismatch=0.1,
                                       noise_rate_hz=0.2)

    def to_dict(self) -> dict:
        """The fields as the manifest stores them (JSON types: tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


RECORDING = RecordingModel()


def _plan(labels: np.ndarray, train_per_class: int, test_per_class: int, rng: np.random.Generator):
    """Per split, the (source index, label) of every sample: each class's digits are split into disjoint
    train / test pools in proportion to the counts asked for; a pool smaller than its count is cycled
    through (the repeats differ in saccade jitter and sensor noise)."""
    plan: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for label in range(len(NMNIST_CLASSES)):
        pool = rng.permutation(np.flatnonzero(labels == label))
        wanted = train_per_class + test_per_class
        n_test = min(test_per_class, len(pool) - 1, max(1, round(len(pool) * test_per_class / wanted)))
        splits = {"test": pool[:n_test], "train": pool[n_test:]}
        for split, per_class in (("train", train_per_class), ("test", test_per_class)):
            sources = splits[split]
            plan[split].extend((int(sources[i % len(sources)]), label) for i in range(per_class))
    for split, samples in plan.items():  # interleave classes, as in a shuffled recording session
        plan[split] = [samples[i] for i in rng.permutation(len(samples))]
    return plan


def _saccade_offsets(times_ms: np.ndarray, model: RecordingModel, rng: np.random.Generator) -> np.ndarray:
    """(dx, dy) of the digit box at each time: three constant-speed saccades along the triangle, jittered."""
    durations = model.saccade_ms * rng.uniform(1 - model.duration_jitter, 1 + model.duration_jitter, 3)
    corners = (np.asarray(model.corners_px) * rng.uniform(1 - model.amplitude_jitter, 1 + model.amplitude_jitter)
               + rng.uniform(*np.transpose(model.origin_px)))
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    offsets = np.repeat(corners[:1], len(times_ms), axis=0)
    for k in range(3):
        phase = np.clip((times_ms - starts[k]) / durations[k], 0.0, 1.0)
        moving = times_ms >= starts[k]
        offsets[moving] = corners[k] + phase[moving, None] * (corners[k + 1] - corners[k])
    return offsets


def _shift_matrices(shift: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """Bilinear interpolation matrices M[k] (n_out x n_in): (M[k] @ v)[i] = v(i - shift[k])."""
    source = np.arange(n_out)[None, :] - shift[:, None]
    base = np.floor(source).astype(np.int64)
    frac = source - base
    matrices = np.zeros((len(shift), n_out, n_in))
    k_idx, i_idx = np.indices(base.shape)
    for col, weight in ((base, 1 - frac), (base + 1, frac)):
        valid = (col >= 0) & (col < n_in)
        matrices[k_idx[valid], i_idx[valid], col[valid]] = weight[valid]
    return matrices


def _render_into(out: np.ndarray, ink: np.ndarray, offsets: np.ndarray, model: RecordingModel) -> None:
    """Fill ``out`` (K, 34, 34) with the monitor's light: the ink box translated by ``offsets``, from
    ``black_level`` (no light) to 1; ink is dark (``1 + black_level - light``) when ``dark_digit``."""
    rows = _shift_matrices(offsets[:, 1], out.shape[1], ink.shape[0])
    cols = _shift_matrices(offsets[:, 0], out.shape[2], ink.shape[1])
    np.matmul(rows @ ink, cols.transpose(0, 2, 1), out=out)
    out *= 1.0 - model.black_level  # bilinear weights keep the ink in [0, 1]
    out += model.black_level
    if model.dark_digit:
        np.subtract(1.0 + model.black_level, out, out=out)


def _simulate_batch(inks: list[np.ndarray], offsets: list[np.ndarray], times_ms: np.ndarray,
                    model: RecordingModel, rng: np.random.Generator) -> list[np.ndarray]:
    """Run one DVS over the samples stacked vertically; split its events back per sample."""
    width, height, _ = NMNIST_SENSOR
    stacked = np.empty((len(times_ms), height * len(inks), width), dtype=np.float32)
    for i, (ink, off) in enumerate(zip(inks, offsets)):
        _render_into(stacked[:, i * height:(i + 1) * height], ink, off, model)
    times_us = np.rint(times_ms * 1000).astype(np.int64)
    sensor = DVSSensor(stacked[0], times_us[0], model.dvs, rng)
    events = np.concatenate([sensor.step(frame, t) for frame, t in zip(stacked[1:], times_us[1:])])
    sample = events["y"] // height
    events["y"] %= height
    order = np.argsort(sample, kind="stable")
    bounds = np.searchsorted(sample[order], np.arange(len(inks) + 1))
    return [events[order[bounds[i]:bounds[i + 1]]] for i in range(len(inks))]


def _generate_split(root: Path, split: str, digits: SourceDigits, plan: list[tuple[int, int]],
                    model: RecordingModel, seed: int) -> list[int]:
    """Write every sample of one split; return the event count of each."""
    split_dir = root / NMNIST_SPLIT_FOLDERS[split]
    for digit in NMNIST_CLASSES:
        (split_dir / digit).mkdir(parents=True, exist_ok=True)
    recording_ms = 3 * model.saccade_ms * (1 + model.duration_jitter)
    times_ms = np.arange(0.0, recording_ms + 2 * model.frame_step_ms, model.frame_step_ms)
    counts = []
    for start in range(0, len(plan), _BATCH):
        batch = plan[start:start + _BATCH]
        split_id = int(split == "test")
        rngs = [np.random.default_rng([seed, split_id, start + i]) for i in range(len(batch))]
        inks = [digits.images[src] for src, _ in batch]
        offsets = [_saccade_offsets(times_ms, model, r) for r in rngs]
        sensor_rng = np.random.default_rng([seed, split_id, start, 1])
        for i, events in enumerate(_simulate_batch(inks, offsets, times_ms, model, sensor_rng)):
            label = batch[i][1]
            write_nmnist_file(split_dir / NMNIST_CLASSES[label] / f"{start + i:05d}.bin", events)
            counts.append(len(events))
    return counts


# ---- folder life cycle, shared with synthetic_dvsgesture: marker first, manifest last


def read_manifest(root: Path | str) -> dict | None:
    """The manifest of a finished synthetic dataset in ``root``, or None."""
    path = Path(root) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = load_json(path, "synthetic-data manifest", "regenerate it")
    except UserError:
        return None
    return manifest if isinstance(manifest, dict) else None


def is_finished(root: Path, wanted: dict) -> bool:
    """True when ``root`` holds a completed dataset whose manifest agrees with ``wanted``."""
    manifest = read_manifest(root)
    return (manifest is not None and not (root / IN_PROGRESS_NAME).exists()
            and all(manifest.get(key) == value for key, value in wanted.items()))


def _clear_for_generation(root: Path, owned: list[str]) -> None:
    """Empty a folder we wrote before (stale or half-written) and mark it in progress.

    Only the ``owned`` entries and the manifest are removed, and only from a folder that carries our
    manifest or marker: anyone else's non-empty folder is refused.
    """
    if any(entry.name != LOCK_NAME for entry in root.iterdir()):
        if not ((root / MANIFEST_NAME).exists() or (root / IN_PROGRESS_NAME).exists()):
            raise UserError(f"{root}: folder is not empty and was not written by neurodeploy; "
                            "choose an empty or new output folder")
        for name in [*owned, MANIFEST_NAME]:
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (root / IN_PROGRESS_NAME).write_text(f"pid {os.getpid()}\n")


def generate_once(root: Path, wanted: dict, owned: list[str], build: Callable[[], dict]) -> Path:
    """Run ``build`` (which writes the files and returns the rest of the manifest) unless done already.

    Holds an exclusive lock (a file inside ``root``) so that two processes starting together generate
    once; the manifest, written last, is what marks the folder complete.
    """
    import fcntl  # POSIX only: imported where the lock is taken, so reading the set works everywhere

    check_output_dir(root, (SYNTHETIC_DATA,))  # not even a lock file in a user's folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / LOCK_NAME, "w")  # noqa: SIM115 - held across the build
    except OSError as exc:
        raise UserError(f"{root}: cannot write the synthetic dataset here ({exc.strerror}); "
                        "choose a writable cache or output folder") from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_finished(root, wanted):
            return root
        _clear_for_generation(root, owned)
        write_json(root / MANIFEST_NAME, {**wanted, **build()})
        (root / IN_PROGRESS_NAME).unlink()
    return root


def events_summary(counts: list[int]) -> dict:
    values = np.asarray(counts)
    return {"mean": float(values.mean()), "min": int(values.min()), "max": int(values.max())}


def generate_synthetic_nmnist(root: Path | str, *, train_per_class: int = 100, test_per_class: int = 30,
                              seed: int = 0, source: str = DEFAULT_SOURCE,
                              recording: RecordingModel | None = None) -> Path:
    """Write a synthetic N-MNIST tree (``Train/<digit>/NNNNN.bin``, ``Test/...``) to ``root``.

    ``source`` picks the digits shown (:mod:`neurodeploy.data.digit_sources`); ``recording`` replaces the
    default recording model (for experiments). Reuses ``root`` untouched when its manifest says it was
    generated with the same settings; a half-written or differently generated folder is regenerated. The
    manifest is written last.
    """
    if train_per_class < 1 or test_per_class < 1:
        raise ValueError("train_per_class and test_per_class must be >= 1")
    if source not in DIGIT_SOURCES:
        raise UserError(f"--source {source}: unknown digit source; choose one of {', '.join(DIGIT_SOURCES)}")
    root = Path(root)
    model = recording if recording is not None else RECORDING
    wanted = {"generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed,
              "train_per_class": train_per_class, "test_per_class": test_per_class,
              "synthetic_source": source, "recording": model.to_dict()}

    def build() -> dict:
        digits = load_source_digits(source)
        plan = _plan(digits.labels, train_per_class, test_per_class, np.random.default_rng(seed))
        counts = {split: _generate_split(root, split, digits, plan[split], model, seed)
                  for split in ("train", "test")}
        return {
            "dataset": "nmnist",
            "source": "synthetic",
            "description": f"{digits.origin} through a DVS model on N-MNIST's saccades (not N-MNIST)",
            "sensor_size": list(NMNIST_SENSOR),
            "counts": {split: len(values) for split, values in counts.items()},
            "events_per_sample": events_summary(counts["train"] + counts["test"]),
            "dvs": model.dvs.to_dict(),
            "source_digits": {split: [src for src, _ in plan[split]] for split in plan},  # rows of the source
            "unique_source_digits": {split: len({src for src, _ in plan[split]}) for split in plan},
            "reused_source_digits": {split: len(plan[split]) - len({src for src, _ in plan[split]})
                                     for split in plan},
        }

    return generate_once(root, wanted, list(NMNIST_SPLIT_FOLDERS.values()), build)
