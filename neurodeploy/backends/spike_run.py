"""The spikes of one run of a netx network over a batch of samples, from any backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.metrics.activity import LayerActivity


@dataclass(frozen=True, eq=False)
class SpikeRun:
    """Input and per-layer output spikes of N samples run for T steps each.

    Attributes
    ----------
    inputs:
        uint8 (N, n_in, T): the binary input spikes, flat in slayer's (C, H, W) C-order.
    layer_spikes:
        One uint8 (N, n_layer, T) array per recorded layer, in network order (``NetxNetwork.layers``); a
        conv layer's neurons are flat in (C, H, W) C-order.
    steps:
        T, the steps of every sample.
    backend:
        The name of the backend that produced it (``neurodeploy.backends.registry``).
    wall_s:
        Seconds the backend took for the whole batch (building and running; loading not included).
    layer_indices:
        Positions in ``NetxNetwork.layers`` of the entries of ``layer_spikes`` (all layers by default).
    counted:
        Layers whose spikes the backend counted instead of returning every value (Lava's ``SpikeCounter``):
        position in ``NetxNetwork.layers`` -> :class:`LayerActivity`. :meth:`activity` serves both kinds.

    Time alignment
    --------------
    Index t of every array is exactly what a Lava ``io.sink.RingBuffer`` connected to that layer's ``out``
    port records in column t of a fresh T-step run whose input ``io.source.RingBuffer`` holds
    ``inputs[n]``: step t (0-based) sends ``inputs[n, :, t]``; each synaptic layer (Dense, Conv,
    DelayDense) delivers the previous step's accumulation, so an input spike at t first reaches the k-th
    synaptic layer's neurons (k = 1, 2, ...) at t + k, plus any synaptic delay d (t + k + d); recurrent
    synapses add one step too. Spikes whose arrival would fall at or after T are not in the run. Every
    sample starts from zero state, as if it had its own run.
    """

    inputs: np.ndarray
    layer_spikes: list[np.ndarray]
    steps: int
    backend: str
    wall_s: float
    layer_indices: tuple[int, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    counted: dict[int, LayerActivity] = field(default_factory=dict)

    def __post_init__(self):
        if self.inputs.ndim != 3 or self.inputs.dtype != np.uint8:
            raise ValueError(f"inputs must be uint8 (N, n_in, T), got {self.inputs.dtype} {self.inputs.shape}")
        n_samples, _, steps = self.inputs.shape
        if steps != self.steps:
            raise ValueError(f"inputs have {steps} steps, expected {self.steps}")
        object.__setattr__(self, "layer_spikes", list(self.layer_spikes))
        if not self.layer_spikes:
            raise ValueError("a SpikeRun needs at least the output layer")
        for position, spikes in enumerate(self.layer_spikes):
            if spikes.ndim != 3 or spikes.dtype != np.uint8 or spikes.shape[0] != n_samples \
                    or spikes.shape[2] != steps:
                raise ValueError(
                    f"layer entry {position}: expected uint8 ({n_samples}, n, {steps}), "
                    f"got {spikes.dtype} {spikes.shape}"
                )
        indices = self.layer_indices
        if indices is None:
            indices = tuple(range(len(self.layer_spikes)))
        if len(indices) != len(self.layer_spikes):
            raise ValueError("layer_indices must name one layer per entry of layer_spikes")
        object.__setattr__(self, "layer_indices", tuple(int(i) for i in indices))

    def activity(self, index: int) -> LayerActivity:
        """Counts of layer ``index`` (a position in ``NetxNetwork.layers``), recorded or counted."""
        if index in self.counted:
            return self.counted[index]
        return LayerActivity.of(self.layer_spikes[self.layer_indices.index(index)])

    @property
    def samples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def output(self) -> np.ndarray:
        """Spikes of the last layer, uint8 (N, n_out, T)."""
        return self.layer_spikes[-1]

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s > 0 else float("inf")

    def spike_counts(self) -> list[int]:
        """Total spikes of each recorded layer over all samples and steps."""
        return [int(spikes.sum(dtype=np.int64)) for spikes in self.layer_spikes]

    def mismatch_counts(self, other: SpikeRun) -> list[int]:
        """Number of differing (sample, neuron, step) entries per layer both runs recorded."""
        if self.inputs.shape != other.inputs.shape or not np.array_equal(self.inputs, other.inputs):
            raise ValueError("the runs have different inputs")
        theirs = dict(zip(other.layer_indices, other.layer_spikes))
        counts = []
        for index, mine in zip(self.layer_indices, self.layer_spikes):
            if index in theirs:
                if theirs[index].shape != mine.shape:
                    raise ValueError(f"layer {index}: shapes {mine.shape} and {theirs[index].shape} differ")
                counts.append(int(np.count_nonzero(mine != theirs[index])))
        return counts

    def bit_exact(self, other: SpikeRun) -> bool:
        """True when every layer both runs recorded is identical (and at least the output is shared)."""
        if self.layer_indices[-1] != other.layer_indices[-1]:
            return False
        return not any(self.mismatch_counts(other))

    def to_dict(self) -> dict[str, Any]:
        """Summary without the arrays."""
        return {
            "backend": self.backend,
            "samples": self.samples,
            "steps": self.steps,
            "wall_s": self.wall_s,
            "layer_indices": list(self.layer_indices),
            "spike_counts": self.spike_counts(),
            **self.metadata,
        }
