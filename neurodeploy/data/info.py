"""What a dataset holds (``neurodeploy data info``): counts, events per sample, frame density, contrast.

Counts cover the whole dataset; event statistics, densities and the temporal contrast (source paper eq. 16-17) are
measured on a class-balanced, seeded subset of ``limit`` training samples, streamed one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy.atomic import atomic_path
from neurodeploy.data.contrast import TemporalContrast, temporal_contrast
from neurodeploy.data.datasets import DATASETS, SPLITS, DatasetSource, balanced_subset
from neurodeploy.data.events import events_to_frames


@dataclass(frozen=True)
class EventStats:
    """Events per sample and sample duration over the measured subset."""

    samples: int
    mean: float
    std: float
    min: int
    max: int
    duration_ms_mean: float
    duration_ms_max: float

    @classmethod
    def from_samples(cls, counts: list[int], durations_us: list[int]) -> EventStats:
        values, durations = np.asarray(counts), np.asarray(durations_us) / 1000.0
        return cls(len(values), float(values.mean()), float(values.std()), int(values.min()),
                   int(values.max()), float(durations.mean()), float(durations.max()))

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's description; ``to_dict`` is what ``data info --json`` writes."""

    source: DatasetSource
    dt_ms: float
    steps: int
    samples: dict[str, int]
    samples_per_class: dict[str, dict[str, int]]
    events: EventStats
    density_by_dt: dict[float, float]  # fraction of ones in the first `steps` frames, per dt (ms)
    contrast: TemporalContrast

    def to_dict(self) -> dict:
        return {
            "dataset": self.source.name,
            "data": self.source.to_dict(),
            "dt_ms": self.dt_ms,
            "steps": self.steps,
            "samples": dict(self.samples),
            "samples_per_class": {split: dict(c) for split, c in self.samples_per_class.items()},
            "events_per_sample": self.events.to_dict(),
            "frame_density_by_dt_ms": {f"{dt:g}": density for dt, density in self.density_by_dt.items()},
            "temporal_contrast": self.contrast.to_dict(),
        }


def dataset_info(source: DatasetSource, dt_ms: float, steps: int, limit: int | None = 200,
                 seed: int = 0) -> DatasetInfo:
    """Describe ``source``: counts per split and class, then statistics over ``limit`` train samples."""
    kind = DATASETS[source.name]
    index = {split: kind.index(source.root, split) for split in SPLITS}
    per_class = {split: {name: 0 for name in source.classes} for split in SPLITS}
    for split, entries in index.items():
        for _, label in entries:
            per_class[split][source.classes[label]] += 1
    train = index["train"]
    chosen = balanced_subset([label for _, label in train], limit, seed)
    dts = sorted({*kind.defaults.paper_dt_ms, float(dt_ms)})
    counts, durations, ones = [], [], dict.fromkeys(dts, 0)

    def frames_at_requested_dt():  # streams the subset once: stats on the side, frames to the contrast
        for i in chosen:
            events = kind.read(train[i][0])
            counts.append(len(events))
            durations.append(int(events["t"].max() - events["t"].min()) if len(events) else 0)
            for dt in dts:
                ones[dt] += int(np.count_nonzero(events_to_frames(events, source.sensor_size, dt, steps)))
            yield events_to_frames(events, source.sensor_size, dt_ms, steps)

    contrast = temporal_contrast(frames_at_requested_dt())
    width, height, polarities = source.sensor_size
    cells = len(chosen) * polarities * height * width * steps
    return DatasetInfo(
        source=source,
        dt_ms=float(dt_ms),
        steps=int(steps),
        samples={split: len(entries) for split, entries in index.items()},
        samples_per_class=per_class,
        events=EventStats.from_samples(counts, durations),
        density_by_dt={dt: ones[dt] / cells for dt in dts},
        contrast=contrast,
    )


def plot_contrast(matrix: np.ndarray, path: Path | str, title: str = "Temporal contrast") -> Path:
    """Heat-map PNG of a CE matrix: rows tx, columns ty (frame offsets within the window)."""
    # matplotlib only when plotting (slow import); no pyplot: no global backend, safe in threads
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    fig = Figure(figsize=(4.2, 3.6), dpi=120)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis", origin="upper")
    ax.set_xlabel("frame $t_y$ (offset in window)")
    ax.set_ylabel("frame $t_x$ (offset in window)")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if value < matrix.mean() else "black")
    fig.colorbar(image, ax=ax, label="CE (nats)")
    ax.set_title(f"{title}\nmean {matrix.mean():.3f}, var {matrix.var():.3f}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
