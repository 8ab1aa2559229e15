"""Run figures that compare like for like: latency with its kind, energy split into dynamic and static,
accuracy with its 95 % Wilson interval, NeuroBench-named metrics, per-layer firing statistics.

Pure functions and records; the report builders fill them and ``compare`` only reads them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LATENCY_KINDS = ("chip_estimate", "measured", "host_wall")
ENERGY_KINDS = ("estimated", "measured")
Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


def _finite_nonnegative(owner: str, name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} = {value!r} must be a finite number >= 0")


def wilson_interval(correct: int, samples: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927), default 95 %.

        p = k / n,  c = (p + z^2 / 2n) / (1 + z^2 / n),  h = z / (1 + z^2 / n) sqrt(p (1 - p) / n + z^2 / 4n^2)
        interval = [c - h, c + h]
    """
    if samples < 1 or not 0 <= correct <= samples:
        raise ValueError(f"need 0 <= correct ({correct}) <= samples ({samples}) and samples >= 1")
    p = correct / samples
    z2 = z * z
    denominator = 1.0 + z2 / samples
    center = (p + z2 / (2 * samples)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / samples + z2 / (4 * samples * samples))
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class AccuracyInterval:
    """Accuracy k / n with its 95 % Wilson interval."""

    correct: int
    samples: int
    low: float
    high: float

    @classmethod
    def of(cls, correct: int, samples: int) -> AccuracyInterval:
        low, high = wilson_interval(correct, samples)
        return cls(int(correct), int(samples), low, high)

    def __post_init__(self):
        if self.samples < 1 or not 0 <= self.correct <= self.samples or not 0 <= self.low <= self.high <= 1:
            raise ValueError(f"accuracy interval {self.correct}/{self.samples} [{self.low}, {self.high}] "
                             "is not a proportion with its interval")

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AccuracyInterval:
        return cls(int(raw["correct"]), int(raw["samples"]), float(raw["low"]), float(raw["high"]))


@dataclass(frozen=True)
class Latency:
    """Latency of one inference and what kind of time it is.

    - ``chip_estimate``: chip time from a chip performance model (Loihi runs, emulated or simulated);
    - ``measured``: wall time of the device that ran the model, synchronised, after warm-up (torch runs);
    - ``host_wall``: the host's wall time of a simulator or emulator: its throughput, not a chip latency
      (``compare`` never shows it as a latency).

    ``batch_size``: samples per timed call; above 1 the figure is the call's time / batch size (batch-amortised,
    not the time one sample takes alone); None or 1: per sample.
    """

    kind: str
    per_sample_s: float | None
    source: str
    samples: int
    per_step_s: float | None = None
    device: str = ""
    notes: tuple[str, ...] = ()
    batch_size: int | None = None

    def __post_init__(self):
        if self.kind not in LATENCY_KINDS:
            raise ValueError(f"latency kind {self.kind!r} must be one of {', '.join(LATENCY_KINDS)}")
        _finite_nonnegative("latency", "per_sample_s", self.per_sample_s)
        _finite_nonnegative("latency", "per_step_s", self.per_step_s)
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ValueError(f"latency: batch_size = {self.batch_size!r} must be an integer >= 1")

    @property
    def amortised(self) -> bool:
        """The figure is a batch's time / its size, not one sample's own time."""
        return (self.batch_size or 1) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "per_sample_s": self.per_sample_s, "per_step_s": self.per_step_s,
                "source": self.source, "samples": self.samples, "device": self.device, "notes": list(self.notes),
                "batch_size": self.batch_size}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Latency:
        return cls(raw["kind"], raw.get("per_sample_s"), raw.get("source", ""), int(raw.get("samples", 0)),
                   raw.get("per_step_s"), raw.get("device", ""), tuple(raw.get("notes") or ()),
                   raw.get("batch_size"))


@dataclass(frozen=True)
class EnergySplit:
    """Energy per sample as dynamic + static = total, each with its source and what it leaves out.

    Chip: dynamic from op counts or the chip model, static = static power x chip time. GPU (NVML): the
    board's energy over the run, split into idle (board power sampled before the run x run time) and the
    rest (dynamic).
    """

    kind: str
    dynamic_j: float | None
    static_j: float | None
    dynamic_source: str
    static_source: str
    leaves_out: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in ENERGY_KINDS:
            raise ValueError(f"energy kind {self.kind!r} must be one of {', '.join(ENERGY_KINDS)}")
        _finite_nonnegative("energy split", "dynamic_j", self.dynamic_j)
        _finite_nonnegative("energy split", "static_j", self.static_j)
        object.__setattr__(self, "leaves_out", tuple(self.leaves_out))

    @property
    def total_j(self) -> float | None:
        if self.dynamic_j is None:
            return None
        return self.dynamic_j + (self.static_j or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dynamic_j": self.dynamic_j, "static_j": self.static_j,
                "total_j": self.total_j, "dynamic_source": self.dynamic_source,
                "static_source": self.static_source, "leaves_out": list(self.leaves_out)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EnergySplit:
        return cls(raw["kind"], raw.get("dynamic_j"), raw.get("static_j"), raw.get("dynamic_source", ""),
                   raw.get("static_source", ""), tuple(raw.get("leaves_out") or ()))


def sample_set_digest(frames: np.ndarray, labels: np.ndarray) -> str:
    """First 16 hex digits of SHA-256 over the samples' inputs and labels: equal digests, same samples."""
    digest = hashlib.sha256(np.ascontiguousarray(frames).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------ NeuroBench-named


@dataclass(frozen=True)
class NeuroBenchMetrics:
    """NeuroBench's metrics under its names (Yik et al., Nature Communications 16:1545, 2025), per sample.

    activation_sparsity = 1 - nonzero / total over every activation of every layer, step and sample;
    connection_sparsity = zero weights / all weights of the connection layers;
    synaptic_operations = {effective_macs, effective_acs, dense}: operations with a nonzero input and a
    nonzero weight, counted as ACs when the input is binary (spikes) and MACs otherwise, and the dense count
    (every weight every step); footprint_bytes = parameters and buffers in bytes.
    """

    activation_sparsity: float | None  # None: activations not recorded (float baselines)
    connection_sparsity: float
    effective_macs: float
    effective_acs: float
    dense: float
    footprint_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"activation_sparsity": self.activation_sparsity, "connection_sparsity": self.connection_sparsity,
                "synaptic_operations": {"effective_macs": self.effective_macs, "effective_acs": self.effective_acs,
                                        "dense": self.dense},
                "footprint_bytes": self.footprint_bytes}


def activation_sparsity(activations: Sequence[np.ndarray]) -> float:
    """1 - nonzero / total over all arrays (every layer's outputs, all steps and samples)."""
    total = sum(int(np.asarray(a).size) for a in activations)
    if total == 0:
        return 0.0
    nonzero = sum(int(np.count_nonzero(a)) for a in activations)
    return 1.0 - nonzero / total


def connection_sparsity(weights: Sequence[np.ndarray]) -> float:
    """Zero weights / all weights, rounded to 4 decimals as NeuroBench does."""
    total = sum(int(np.asarray(w).size) for w in weights)
    if total == 0:
        return 0.0
    zeros = sum(int(np.asarray(w).size - np.count_nonzero(w)) for w in weights)
    return round(zeros / total, 4)


# ----------------------------------------------------------------------------------------- firing stats


@dataclass(frozen=True)
class FiringStats:
    """Per-layer firing: the fraction of neurons that never fired on any sample (dead) and each neuron's
    firing rate in spikes per step averaged over samples (as Sinabs' analyzer reports them)."""

    dead_fraction: float
    firing_rates: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dead_fraction": self.dead_fraction, "firing_rates": list(self.firing_rates)}


def firing_stats_of_counts(per_neuron: np.ndarray, steps: int) -> FiringStats:
    """From spike counts per (sample, neuron) (N, neurons) over ``steps`` steps: dead fraction and per-neuron
    rate = sum_{n,t} s / (N T)."""
    samples, neurons = per_neuron.shape
    totals = per_neuron.sum(axis=0, dtype=np.float64)
    rates = totals / max(1, samples * steps)
    dead = float(np.mean(totals == 0)) if neurons else 0.0
    return FiringStats(dead, tuple(float(r) for r in rates))


@dataclass(frozen=True)
class Comparability:
    """What differs between the rows of a comparison (empty lists: rows are like for like)."""

    sample_sets: list[str] = field(default_factory=list)
    data_sources: list[str] = field(default_factory=list)
    timing: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str | None:
        parts = []
        if len(self.sample_sets) > 1:
            parts.append(f"sample sets ({', '.join(self.sample_sets)})")
        if len(self.data_sources) > 1:
            parts.append(f"data sources ({', '.join(self.data_sources)})")
        if len(self.timing) > 1:
            parts.append(f"dt/T ({', '.join(self.timing)})")
        if not parts:
            return None
        return "warning: rows used different " + "; ".join(parts) + ": accuracies and energies are not like for like"
