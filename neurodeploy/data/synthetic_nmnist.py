"""Synthetic N-MNIST: scikit-learn's bundled handwritten digits seen by a DVS on N-MNIST's saccades.

Real N-MNIST (Orchard et al. 2015) filmed MNIST digits on a monitor with an ATIS sensor making three
saccades along a triangle, ~100 ms each. Here each 8x8 ``load_digits`` image is upscaled to 20x20,
smoothed, slightly rotated/scaled, padded to a 28x28 box (as MNIST pads its 20x20 digits) and placed in
the 34x34 field; the field moves along the same triangle (tonic's ``stabilize`` gives its corners:
(0, 0) -> (3.5, 7) -> (7, 0) -> (0, 0) px) and the rendered frames go through the DVS model. Samples are
written as real N-MNIST ``.bin`` files, so the real reader path is exercised. Train and test samples come
from disjoint source digits.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from neurodeploy.atomic import write_json
from neurodeploy.data.dvs_model import DVSParameters, DVSSensor
from neurodeploy.data.nmnist import NMNIST_CLASSES, NMNIST_SENSOR, NMNIST_SPLIT_FOLDERS, write_nmnist_file
from neurodeploy.errors import UserError
from neurodeploy.safe_files import load_json

GENERATOR = "neurodeploy.data.synthetic_nmnist"
GENERATOR_VERSION = 1
MANIFEST_NAME = "synthetic_manifest.json"
IN_PROGRESS_NAME = ".generating"
LOCK_NAME = ".lock"

SACCADE_MS = 100.0
SACCADE_CORNERS_PX = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])  # (dx, dy)
FRAME_STEP_MS = 2.0
DIGIT_PX = 20  # upscaled digit, padded to a 28 x 28 box as MNIST pads its 20 x 20 digits
BOX_PX = 28
STROKE_CUT = 0.3
BLACK_LEVEL = 0.12  # a monitor's black is not black: bounds the log contrast of an edge
DVS_PARAMS = DVSParameters(threshold_on=0.37, threshold_off=0.37, threshold_mismatch=0.1, noise_rate_hz=0.2)
_BATCH = 40  # samples simulated side by side in one tall sensor image


def _source_digits(train_per_class: int, test_per_class: int, rng: np.random.Generator):
    """Split each class of ``load_digits`` into disjoint train/test sources; return per-split lists."""
    from sklearn.datasets import load_digits  # scikit-learn's import is slow; only generating needs it

    digits = load_digits()
    images = digits.images / 16.0
    plan: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for label in range(len(NMNIST_CLASSES)):
        pool = rng.permutation(np.flatnonzero(digits.target == label))
        wanted = train_per_class + test_per_class
        n_test = min(test_per_class, len(pool) - 1, max(1, round(len(pool) * test_per_class / wanted)))
        splits = {"test": pool[:n_test], "train": pool[n_test:]}
        for split, per_class in (("train", train_per_class), ("test", test_per_class)):
            sources = splits[split]
            plan[split].extend((int(sources[i % len(sources)]), label) for i in range(per_class))
    for split, samples in plan.items():  # interleave classes, as in a shuffled recording session
        plan[split] = [samples[i] for i in rng.permutation(len(samples))]
    return images, plan


def _digit_ink(image8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """8x8 digit (0..1) -> 28x28 ink map: upscale, smooth, small random rotation/scale/stroke gain."""
    big = ndimage.zoom(image8, DIGIT_PX / image8.shape[0], order=1)
    big = ndimage.gaussian_filter(big, 0.6)
    big = np.clip((big - STROKE_CUT) / (1.0 - 2 * STROKE_CUT), 0.0, 1.0)  # thin the 8x8 blocks to strokes
    pad = (BOX_PX - DIGIT_PX) // 2
    box = np.pad(big, pad)
    angle = np.deg2rad(rng.uniform(-10, 10))
    scale = rng.uniform(0.9, 1.1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    centre = np.array(box.shape) / 2 - 0.5
    box = ndimage.affine_transform(box, rot, offset=centre - rot @ centre, order=1)
    box = np.clip(box * rng.uniform(0.8, 1.2), 0.0, 1.0)
    return box


def _saccade_offsets(times_ms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(dx, dy) of the digit at each time: three eased saccades along the triangle, jittered."""
    durations = SACCADE_MS * rng.uniform(0.95, 1.05, 3)
    corners = SACCADE_CORNERS_PX * rng.uniform(0.9, 1.1) + rng.uniform(-1.0, 0.0, 2)
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    offsets = np.repeat(corners[:1], len(times_ms), axis=0)
    for k in range(3):
        phase = np.clip((times_ms - starts[k]) / durations[k], 0.0, 1.0)
        eased = (1 - np.cos(np.pi * phase)) / 2
        moving = times_ms >= starts[k]
        offsets[moving] = corners[k] + eased[moving, None] * (corners[k + 1] - corners[k])
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


def _render_into(out: np.ndarray, ink: np.ndarray, offsets: np.ndarray) -> None:
    """Fill ``out`` (K, 34, 34) with the ink box translated by ``offsets``, on the monitor's scale."""
    rows = _shift_matrices(offsets[:, 1], out.shape[1], ink.shape[0])
    cols = _shift_matrices(offsets[:, 0], out.shape[2], ink.shape[1])
    np.matmul(rows @ ink, cols.transpose(0, 2, 1), out=out)
    out *= 1.0 - BLACK_LEVEL  # bilinear weights keep the ink in [0, 1]
    out += BLACK_LEVEL


def _simulate_batch(inks: list[np.ndarray], offsets: list[np.ndarray], times_ms: np.ndarray,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """Run one DVS over the samples stacked vertically; split its events back per sample."""
    width, height, _ = NMNIST_SENSOR
    stacked = np.empty((len(times_ms), height * len(inks), width), dtype=np.float32)
    for i, (ink, off) in enumerate(zip(inks, offsets)):
        _render_into(stacked[:, i * height:(i + 1) * height], ink, off)
    times_us = np.rint(times_ms * 1000).astype(np.int64)
    sensor = DVSSensor(stacked[0], times_us[0], DVS_PARAMS, rng)
    events = np.concatenate([sensor.step(frame, t) for frame, t in zip(stacked[1:], times_us[1:])])
    sample = events["y"] // height
    events["y"] %= height
    order = np.argsort(sample, kind="stable")
    bounds = np.searchsorted(sample[order], np.arange(len(inks) + 1))
    return [events[order[bounds[i]:bounds[i + 1]]] for i in range(len(inks))]


def _generate_split(root: Path, split: str, images: np.ndarray, plan: list[tuple[int, int]],
                    seed: int) -> list[int]:
    """Write every sample of one split; return the event count of each."""
    split_dir = root / NMNIST_SPLIT_FOLDERS[split]
    for digit in NMNIST_CLASSES:
        (split_dir / digit).mkdir(parents=True, exist_ok=True)
    times_ms = np.arange(0.0, 3 * SACCADE_MS * 1.05 + 2 * FRAME_STEP_MS, FRAME_STEP_MS)
    counts = []
    for start in range(0, len(plan), _BATCH):
        batch = plan[start:start + _BATCH]
        split_id = int(split == "test")
        rngs = [np.random.default_rng([seed, split_id, start + i]) for i in range(len(batch))]
        inks = [_digit_ink(images[src], r) for (src, _), r in zip(batch, rngs)]
        offsets = [_saccade_offsets(times_ms, r) for r in rngs]
        sensor_rng = np.random.default_rng([seed, split_id, start, 1])
        for i, events in enumerate(_simulate_batch(inks, offsets, times_ms, sensor_rng)):
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
                              seed: int = 0) -> Path:
    """Write a synthetic N-MNIST tree (``Train/<digit>/NNNNN.bin``, ``Test/...``) to ``root``.

    Reuses ``root`` untouched when its manifest says it was generated with the same settings; a
    half-written or differently generated folder is regenerated. The manifest is written last.
    """
    if train_per_class < 1 or test_per_class < 1:
        raise ValueError("train_per_class and test_per_class must be >= 1")
    root = Path(root)
    wanted = {"generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed,
              "train_per_class": train_per_class, "test_per_class": test_per_class}

    def build() -> dict:
        images, plan = _source_digits(train_per_class, test_per_class, np.random.default_rng(seed))
        counts = {split: _generate_split(root, split, images, plan[split], seed) for split in ("train", "test")}
        return {
            "dataset": "nmnist",
            "source": "synthetic",
            "description": "scikit-learn load_digits through a DVS model on N-MNIST saccades (not N-MNIST)",
            "sensor_size": list(NMNIST_SENSOR),
            "counts": {split: len(values) for split, values in counts.items()},
            "events_per_sample": events_summary(counts["train"] + counts["test"]),
            "dvs": DVS_PARAMS.to_dict(),
            "source_digits": {split: [src for src, _ in plan[split]] for split in plan},  # load_digits rows
        }

    return generate_once(root, wanted, list(NMNIST_SPLIT_FOLDERS.values()), build)
