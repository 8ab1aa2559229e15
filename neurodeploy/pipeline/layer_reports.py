"""Report numbers, each built in one place: per-layer counts -> :class:`LayerReport` (spikes, synops, neuron
updates, energy, resources) and the per-sample totals, from measured SNN spikes (:class:`SNNLayerRecord`) or
from a static cost (RNN/LSTM). Equations and units in docs/report_schema.md and docs/energy.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurodeploy.metrics.cost import CostReport, synops_per_sample
from neurodeploy.metrics.energy import (
    EnergyBreakdown,
    OpCounts,
    combine,
    estimate_layer_energy,
    estimate_static_energy,
)
from neurodeploy.metrics.hardware import HardwareProfile, LayerFootprint, ResourceMap, map_resources
from neurodeploy.metrics.placement import ConvShape
from neurodeploy.reports.schema import EnergyInfo, LayerReport, PerSample


@dataclass(frozen=True)
class SNNLayerRecord:
    """Measured spikes of one SNN layer: counts summed over the T steps of each sample.

    ``fan_out`` (n_in,) outgoing synapses per input neuron (:func:`neurodeploy.metrics.cost.layer_fan_out`),
    ``input_spikes`` (N, n_in), ``output_spikes`` (N, n_out); ``active_neuron_updates`` (N,) optional:
    neuron-steps where the neuron's state changed (unknown -> all updates priced as active);
    ``spike_hops`` (N,) optional: tile hops of the output spikes on the core mapping (unknown -> within-tile
    delivery only).
    """

    name: str
    type: str
    shape: tuple[int, ...]
    params: int
    fan_out: np.ndarray
    input_spikes: np.ndarray
    output_spikes: np.ndarray
    fan_in: int | None = None
    active_neuron_updates: np.ndarray | None = None
    spike_hops: np.ndarray | None = None  # (N,) tile hops travelled by this layer's output spikes
    conv: ConvShape | None = None  # a conv layer's geometry: mapped in spatial tiles (metrics/placement.py)

    def __post_init__(self):
        inputs, outputs = np.asarray(self.input_spikes), np.asarray(self.output_spikes)
        if inputs.ndim != 2 or outputs.ndim != 2 or inputs.shape[0] != outputs.shape[0]:
            raise ValueError(f"layer {self.name}: input/output spikes must be (N, n) with the same N, got "
                             f"{inputs.shape} and {outputs.shape}")
        if outputs.shape[1] != self.neurons:
            raise ValueError(f"layer {self.name}: {outputs.shape[1]} output neurons, shape {self.shape} says "
                             f"{self.neurons}")
        if np.asarray(self.fan_out).shape != (inputs.shape[1],):
            raise ValueError(f"layer {self.name}: fan_out must be ({inputs.shape[1]},)")

    @property
    def neurons(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class LayerBuild:
    """Layer reports with the energy (dynamic + static, per sample) and core mapping they came from."""

    layers: list[LayerReport]
    energy: EnergyBreakdown | None
    resources: ResourceMap | None

    def per_sample(self, latency_s: float | None) -> PerSample:
        """Totals of the layers; energy includes static energy when the build had any."""
        totals = {key: float(sum(getattr(layer, key) for layer in self.layers))
                  for key in ("synops", "neuron_updates", "spikes", "macs", "adds", "muls")}
        return PerSample(**totals, energy_j=None if self.energy is None else self.energy.total_j,
                         latency_s=latency_s)

    def energy_info(self, measured_j: float | None = None, meter: str = "nvml") -> EnergyInfo:
        """``energy`` section: the estimate, or a measured figure (then ``profile`` names the meter)."""
        if measured_j is not None:
            return EnergyInfo("measured", meter, measured_j)
        if self.energy is None:
            return EnergyInfo("estimated", None, None, notes=("no hardware profile: energy not estimated",))
        return EnergyInfo.from_breakdown(self.energy)


def layer_report(name: str, kind: str, shape: Sequence[int], neurons: int, params: int, count: OpCounts,
                 profile: HardwareProfile | None, cores: int | None = None,
                 synapses: int = 0) -> tuple[LayerReport, EnergyBreakdown | None]:
    """The one place a layer's report numbers are made, from its per-sample :class:`OpCounts`.

    spike rate = spikes_out / neuron_updates [spikes / neuron / step] (0 without neuron updates);
    energy = :func:`neurodeploy.metrics.energy.estimate_layer_energy` (count, profile), None without a profile.
    """
    breakdown = estimate_layer_energy(count, profile) if profile is not None else None
    rate = count.spikes_out / count.neuron_updates if count.neuron_updates else 0.0
    report = LayerReport(
        name=name, type=kind, shape=tuple(shape), neurons=neurons, params=params, spikes=count.spikes_out,
        spike_rate=rate, synops=count.synops, neuron_updates=count.neuron_updates, macs=count.macs,
        adds=count.adds, muls=count.muls, energy_j=None if breakdown is None else breakdown.total_j, cores=cores,
        energy_by_op_j={} if breakdown is None else dict(breakdown.joules), synapses=synapses,
    )
    return report, breakdown


def _resources(footprints: list[LayerFootprint], profile: HardwareProfile | None) -> ResourceMap | None:
    if profile is None or not profile.has("neurons_per_core"):
        return None
    return map_resources(footprints, profile)


def build_snn_layer_reports(records: Sequence[SNNLayerRecord], steps: int,
                            profile: HardwareProfile | None = None, *,
                            wall_time_s: float | None = None, chip_time_s: float | None = None,
                            chip_time_source: str = "") -> LayerBuild:
    """Per-sample layer reports of an SNN run from per-layer spike counts.

    synops = (1/N) sum_n sum_j in_{n,j} fan_out_j;  neuron updates = neurons x steps;
    spike rate = spikes / (neurons x steps) [spikes / neuron / step]; energy from ``profile``
    (:func:`neurodeploy.metrics.energy.estimate_layer_energy`), plus static power x ``wall_time_s`` (per sample,
    measured on the chip), x ``chip_time_s`` (a chip model's time per sample) or x steps x time per step in
    the total; cores from the profile's limits.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    counts, layers, breakdowns = [], [], []
    for rec in records:
        spikes = float(np.asarray(rec.output_spikes, dtype=np.float64).sum(axis=1).mean())
        updates = rec.neurons * steps
        active = None if rec.active_neuron_updates is None else float(np.mean(rec.active_neuron_updates))
        synops = synops_per_sample(rec.input_spikes, rec.fan_out)
        hops = None if rec.spike_hops is None else float(np.mean(rec.spike_hops))
        counts.append(OpCounts(synops=synops, neuron_updates=updates, neuron_updates_active=active,
                               spikes_out=spikes, spike_hops=hops))
    footprints = [LayerFootprint(rec.name, rec.neurons, int(np.sum(rec.fan_out)),
                                 rec.fan_in or math.ceil(np.sum(rec.fan_out) / max(1, rec.neurons)), conv=rec.conv)
                  for rec in records]
    resources = _resources(footprints, profile)
    for index, (rec, count) in enumerate(zip(records, counts)):
        report, breakdown = layer_report(rec.name, rec.type, rec.shape, rec.neurons, rec.params, count, profile,
                                         None if resources is None else resources.layers[index].cores,
                                         synapses=int(np.sum(rec.fan_out)))
        layers.append(report)
        breakdowns.append(breakdown)
    energy = None
    if profile is not None:
        static = estimate_static_energy(profile, steps=steps, wall_time_s=wall_time_s, chip_time_s=chip_time_s,
                                        chip_time_source=chip_time_source)
        energy = combine([*breakdowns, static])
    return LayerBuild(layers, energy, resources)


def build_static_layer_reports(cost: CostReport, steps: int,
                               profile: HardwareProfile | None = None) -> LayerBuild:
    """Per-sample layer reports of an RNN / LSTM / ANN run, whose work does not depend on activity:
    MACs, adds and muls per step (:func:`neurodeploy.metrics.cost.static_cost`) x steps, energy from ``profile``."""
    if cost.family == "snn":
        raise ValueError("SNN work depends on spikes: use build_snn_layer_reports")
    layers, breakdowns = [], []
    for layer in cost.layers:
        count = OpCounts(macs=float(layer.macs_per_step * steps), adds=float(layer.adds_per_step * steps),
                         muls=float(layer.muls_per_step * steps))
        report, breakdown = layer_report(layer.name, layer.kind, layer.out_shape, layer.neurons, layer.params, count,
                                         profile)
        layers.append(report)
        breakdowns.append(breakdown)
    energy = combine(breakdowns) if profile is not None else None
    return LayerBuild(layers, energy, None)
