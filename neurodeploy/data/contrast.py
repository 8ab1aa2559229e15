"""Temporal contrast of binned event frames (source paper eq. 16-17). Pure numpy.

For a window of k consecutive frames S[t], ..., S[t+k-1] the contrast between two of its frames is the
cross-entropy

    CE(tx, ty) = -(1/N) sum_i [ S_i[tx] log_eps S_i[ty] + (1 - S_i[tx]) log_eps (1 - S_i[ty]) ],

    log_eps(s) = log(clip(s, eps, 1 - eps)),  eps = 1e-16,

with i over the N = P*H*W frame elements. The k x k matrix is averaged over every window start t and
every sample; its mean and variance summarise how much consecutive frames differ (high = strong
temporal contrast). For binary frames CE(tx, ty) ~ -log(eps) * (fraction of elements that differ).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-16
WINDOW = 4


def log_eps(values: np.ndarray, eps: float = EPS) -> np.ndarray:
    """log(clip(values, eps, 1 - eps)) in float64."""
    return np.log(np.clip(np.asarray(values, dtype=np.float64), eps, 1.0 - eps))


def cross_entropy_sums(frames: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Un-normalised CE between every pair of frames: (T, T) matrix of -sum_i [...] over all i.

    ``frames`` is (..., T) with values in [0, 1]; all leading axes are the index i. Two matrix
    products: CE_sum = -(S^T log_eps S + (1 - S)^T log_eps(1 - S)).
    """
    flat = np.asarray(frames, dtype=np.float64).reshape(-1, frames.shape[-1])
    return -(flat.T @ log_eps(flat, eps) + (1.0 - flat).T @ log_eps(1.0 - flat, eps))


def window_average(full: np.ndarray, window: int) -> np.ndarray:
    """Average a (T, T) pair matrix over all window starts: out[a, b] = mean_t full[t + a, t + b]."""
    steps = full.shape[0]
    if not 1 <= window <= steps:
        raise ValueError(f"window must be in [1, {steps}] for {steps} frames, got {window}")
    starts = steps - window + 1
    offsets = np.arange(window)
    rows = np.arange(starts)[:, None, None] + offsets[None, :, None]
    cols = np.arange(starts)[:, None, None] + offsets[None, None, :]
    return full[rows, cols].mean(axis=0)


@dataclass(frozen=True)
class TemporalContrast:
    """The window x window CE matrix of a dataset and its mean and variance (eq. 16-17)."""

    matrix: np.ndarray = field(repr=False)
    window: int
    eps: float
    samples: int

    def __post_init__(self) -> None:
        if self.matrix.shape != (self.window, self.window):
            raise ValueError(f"matrix must be {self.window}x{self.window}, got {self.matrix.shape}")

    @property
    def mean(self) -> float:
        return float(self.matrix.mean())

    @property
    def variance(self) -> float:
        return float(self.matrix.var())

    def to_dict(self) -> dict:
        return {"window": self.window, "eps": self.eps, "samples": self.samples, "mean": self.mean,
                "variance": self.variance, "matrix": self.matrix.tolist()}


def temporal_contrast(frames: Iterable[np.ndarray], window: int = WINDOW, eps: float = EPS) -> TemporalContrast:
    """CE matrix over a stream of samples, each (P, H, W, T) in [0, 1]; one sample in memory at a time.

    Every sample's elements join the average with equal weight (N counts elements over all samples).
    """
    total, elements, samples = None, 0, 0
    for sample in frames:
        sums = window_average(cross_entropy_sums(sample, eps), window)
        total = sums if total is None else total + sums
        elements += sample.size // sample.shape[-1]
        samples += 1
    if samples == 0:
        raise ValueError("temporal contrast needs at least one sample")
    return TemporalContrast(total / elements, window, eps, samples)
