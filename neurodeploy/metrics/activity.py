"""Spike counts that reports and parity use: per (sample, neuron) over time and per (sample, step) over
neurons, computed from full spike trains or kept by a backend that counted them itself."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@functools.lru_cache(maxsize=1)
def _count_kernel():
    import numba  # a required dependency, imported (and its kernels compiled) only where used

    @numba.njit(parallel=True, cache=True, nogil=True)
    def count(spikes, out):
        n_samples, neurons, steps = spikes.shape
        for k in numba.prange(n_samples):
            for j in range(neurons):
                total = 0
                for t in range(steps):
                    total += spikes[k, j, t]
                out[k, j] = total

    return count


def count_over_time(spikes: np.ndarray) -> np.ndarray:
    """Spikes of each (sample, neuron) summed over the steps: (N, n, T) 0/1 -> int32 (N, n).

    numpy reduces a short last axis slowly (seconds for the 10,000 x 2312 x 15 inputs of an N-MNIST test
    set); with numba a compiled loop does it, samples in parallel.
    """
    if spikes.ndim != 3:
        return spikes.sum(axis=-1, dtype=np.int32)
    out = np.empty(spikes.shape[:2], dtype=np.int32)
    _count_kernel()(np.ascontiguousarray(spikes), out)
    return out


@dataclass(frozen=True, eq=False)
class LayerActivity:
    """One layer's spikes reduced to what reports and parity use.

    ``per_neuron`` int32 (N, n): each neuron's spikes summed over the T steps of each sample;
    ``per_step`` int32 (N, T): each step's spikes summed over the neurons; ``first`` uint8 (n, T): the first
    sample's spike trains (for a raster). Neurons in (C, H, W) order.
    """

    per_neuron: np.ndarray
    per_step: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, spikes: np.ndarray) -> LayerActivity:
        """From full spike trains (N, n, T)."""
        return cls(count_over_time(spikes), spikes.sum(axis=1, dtype=np.int32), spikes[0])
