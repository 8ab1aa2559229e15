"""Chip latency and energy of a deployed SNN from SANA-FE, a performance model calibrated on Loihi.

SANA-FE (Boyle et al., "SANA-FE: Simulating Advanced Neuromorphic Architectures for Fast Exploration",
IEEE TCAD 44(8), 2025) simulates a spiking network time step by time step on an architecture description
and charges every activity (synaptic spike processed, soma access / update / spike out, axon message,
tile hop) with the energy and latency of its description. Its bundled Loihi description is calibrated on
Intel's Loihi 1; the paper reports energy within 12 % and latency within 25 % of the real chip on three
applications. For a Loihi 2 profile the figures stay Loihi 1 figures, and :class:`ChipEstimate` says so.

The network handed to SANA-FE is ours, layer by layer: the integer weights Lava multiplies (dense:
``w 2^weight_exp``, conv: the exact sparse convolution), scaled by 2^6 as Lava's ``a << 6``; CUBA decays
``input_decay = 1 - iDecay/4096`` and ``leak_decay = 1 - vDecay/4096``; threshold ``vThMant << 6``; the
bias. Neurons are placed on Loihi cores with our own core mapping (:func:`neurodeploy.hardware.map_resources`
gives each layer's core count, its neurons are spread evenly over them, layer after layer).

SANA-FE's neuron is the same CUBA in floating point, without Lava's truncating fixed-point rounding, so its
spikes can drift from Lava's. Two ways to drive it (``activity``):

- ``"emulator"`` (default): every layer receives the spikes our bit-exact emulator gave the layer before
  (replayed by zero-cost input neurons placed on that layer's cores), so synaptic work and network
  traffic are exactly the emulated run's; each layer's own spikes (soma spike-out) are SANA-FE's, and
  their agreement with the emulator is reported per layer.
- ``"sanafe"``: only the network input is replayed and SANA-FE's neurons drive each other.

Synaptic delays are not modelled (noted when the network has any). Samples are simulated one by one from
zero state; ``max_samples`` limits how many (the figures are then means over those, and say so).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import sanafe
import scipy.sparse

from neurodeploy.backends.chip_placement import (
    NEURON_NS,
    SPIKE_NS,
    SYNAPSE_NS,
    Placement,
    balanced_resources,
    layer_cores,
    layer_resources,
)
from neurodeploy.backends.chip_placement import routing_hops as placement_hops
from neurodeploy.backends.chip_placement import synaptic_layers as _synaptic_layers
from neurodeploy.backends.sanafe_net import (
    SANAFE_CORE_NEURONS,
    Replay,
    architecture,
    connect,
    group_spikes,
    lif_group,
)
from neurodeploy.deploy.netx_records import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import netx_dense_synapses
from neurodeploy.metrics.hardware import HardwareProfile

__all__ = ["ChipEstimate", "LayerAgreement", "Placement", "SanafeDeclined", "estimate_chip", "layer_cores",
           "layer_resources",
           "chip_placement", "nonzero_fan_out", "routing_hops", "synapse_matrix"]

ACTIVITIES = ("emulator", "sanafe")
PLACEMENTS = ("minimal", "balanced")
ENERGY_PARTS = ("synapse", "dendrite", "soma", "network")
ACT_SHIFT = 6  # Lava adds a << 6 to the current and compares v with vThMant << 6
DECAY_UNITY = 4096
SANAFE_SOURCE = ("SANA-FE {version}, Loihi architecture description (sanafe/examples/loihi.yaml); Boyle et al., "
                 "IEEE TCAD 44(8), 2025: within 12 % (energy) and 25 % (latency) of measured Loihi 1")
LOIHI1_NOTE = "SANA-FE's Loihi description is calibrated on Loihi 1; no Loihi 2 description is published"


class SanafeDeclined(UserError):
    """The network is above :data:`MAX_TOTAL_CONNECTIONS`: SANA-FE is not run (``reason``: one short line)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LayerAgreement:
    """Spikes of one layer per sample, SANA-FE vs the emulator, over the simulated samples.

    ``neuron_count_agreement`` is the fraction of (sample, neuron) pairs with equal spike counts.
    """

    name: str
    spikes_sanafe: float
    spikes_emulator: float
    neuron_count_agreement: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class ChipEstimate:
    """SANA-FE's per-sample chip figures for one network and input set (means over ``samples``).

    ``latency_per_step_s`` = chip time of a sample / steps; ``dynamic_energy_j`` splits as SANA-FE does
    (synapse, dendrite, soma, network); ``static_energy_j`` = static power of the profile x chip time
    (None when the profile has no static power).
    """

    model: str
    activity: str
    samples: int
    samples_total: int
    steps: int
    latency_per_sample_s: float
    latency_per_step_s: tuple[float, ...]
    dynamic_energy_j: dict[str, float]
    dynamic_energy_per_step_j: tuple[float, ...]
    static_energy_j: float | None
    static_source: str | None
    packets: float
    hops: float
    layers: tuple[LayerAgreement, ...]
    cores: int
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if self.activity not in ACTIVITIES:
            raise ValueError(f"activity {self.activity!r} must be one of {', '.join(ACTIVITIES)}")

    @property
    def dynamic_total_j(self) -> float:
        return float(sum(self.dynamic_energy_j.values()))

    @property
    def total_energy_j(self) -> float:
        return self.dynamic_total_j + (self.static_energy_j or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "activity": self.activity, "samples": self.samples,
            "samples_total": self.samples_total, "steps": self.steps,
            "latency_per_sample_s": self.latency_per_sample_s,
            "latency_per_step_s": list(self.latency_per_step_s),
            "dynamic_energy_j": {**self.dynamic_energy_j, "total": self.dynamic_total_j},
            "dynamic_energy_per_step_j": list(self.dynamic_energy_per_step_j),
            "static_energy_j": self.static_energy_j, "static_source": self.static_source,
            "total_energy_j": self.total_energy_j, "packets": self.packets, "hops": self.hops,
            "cores": self.cores, "layers": [layer.to_dict() for layer in self.layers],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class _Synapse:
    """Effective float weights of one connection: sparse (n_src, n_dst) and the hardware unit it uses."""

    matrix: scipy.sparse.csr_matrix
    hw: str


def _feed_forward(layer: NetxLayer) -> tuple[_Synapse, _Synapse | None]:
    """Lava's effective weights x 2^6 (the current scale) as SANA-FE connection weights."""
    scale = float(1 << ACT_SHIFT)
    if layer.kind == "conv":
        matrix = layer.conv_geometry().weight_matrix(layer.weight).astype(np.float64) * scale
        return _Synapse(matrix.tocsr(), "loihi_conv_synapse"), None
    forward, recurrent = netx_dense_synapses(layer.weight, layer.weight_rec)
    gain = scale * 2.0 ** forward.weight_exp
    ff = _Synapse(scipy.sparse.csr_matrix(forward.weight.T.astype(np.float64) * gain), "loihi_dense_synapse")
    rec = None
    if recurrent is not None:
        rec = _Synapse(scipy.sparse.csr_matrix(recurrent.weight.T.astype(np.float64) * gain),
                       "loihi_dense_synapse")
    return ff, rec


def synapse_matrix(layer: NetxLayer) -> scipy.sparse.csr_matrix:
    """Feed-forward synapses of a layer as a sparse (n_in, n_out) matrix of effective weights x 2^6."""
    return _feed_forward(layer)[0].matrix


def nonzero_fan_out(layer: NetxLayer) -> np.ndarray:
    """Feed-forward synapses with a non-zero weight leaving each input neuron, int64 (n_in,): the synapse count
    of every report, ``cost``-free run figure, NeuroBench's effective ACs and the chip model
    (docs/report_schema.md, "Synapses")."""
    return np.asarray((synapse_matrix(layer) != 0).sum(axis=1), dtype=np.int64).ravel()


def _neuron_attributes(layer: NetxLayer) -> dict[str, float]:
    neuron = layer.neuron
    return {
        "threshold": float(neuron.v_th_mant << ACT_SHIFT),
        "reset": 0.0,
        "input_decay": 1.0 - neuron.i_decay / DECAY_UNITY,
        "leak_decay": 1.0 - neuron.v_decay / DECAY_UNITY,
    }


def _bias(layer: NetxLayer) -> np.ndarray:
    """Per-neuron bias in voltage units (Lava: bias_mant << 6)."""
    if layer.bias is None:
        return np.zeros(layer.neurons)
    bias = np.asarray(layer.bias, dtype=np.float64) * (1 << ACT_SHIFT)
    if layer.kind == "conv":
        bias = np.repeat(bias, layer.neurons // bias.size)
    return np.broadcast_to(bias, (layer.neurons,))


def routing_hops(net: NetxNetwork, placement: Placement) -> list[np.ndarray]:
    """Tile hops one spike of each source neuron travels, per synaptic layer
    (:func:`neurodeploy.backends.chip_placement.routing_hops` on this network's synapses)."""
    return placement_hops(net, placement, [synapse_matrix(layer) for layer in _synaptic_layers(net)])


def _silence_child() -> None:
    """Worker start-up: SANA-FE's C++ kernel writes progress to fd 1 and aborts with a message on fd 2."""
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    os.dup2(sink, 2)


def estimate_chip(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                  profile: HardwareProfile, *, activity: str = "emulator",
                  max_samples: int | None = 8, input_bias: np.ndarray | None = None,
                  placement: str = "minimal") -> ChipEstimate:
    """SANA-FE's chip latency and energy for ``net`` on ``inputs`` (N, n_in, T).

    ``layer_spikes`` are the emulator's (N, n, T) spikes of every synaptic layer (the replayed activity
    and the reference for agreement). A network whose input layer has neurons driven by their bias (lava-dl's
    PilotNet) takes that bias as ``input_bias`` (N, n_in) and ``inputs`` = the input layer's spikes; its
    neurons are then simulated (and priced) on the input cores. ``placement``: ``"minimal"`` (the core
    mapping of lint and the resource report) or ``"balanced"`` (the chip's spare cores shared out by the
    run's work, :func:`neurodeploy.backends.chip_placement.balanced_resources`). Samples 0..max_samples-1
    are simulated, in a child process: SANA-FE's C++ kernel aborts the whole process on some networks, which
    then becomes a UserError here.
    """
    if activity not in ACTIVITIES:
        raise UserError(f"unknown chip-model activity {activity!r}; choose one of {', '.join(ACTIVITIES)}")
    if placement not in PLACEMENTS:
        raise UserError(f"unknown chip-model placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
    layers = _synaptic_layers(net)
    if len(layer_spikes) != len(layers):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(layers)} synaptic layers")
    samples = inputs.shape[0] if max_samples is None else min(inputs.shape[0], max_samples)
    connections = sum(int(synapse_matrix(layer).nnz) for layer in layers)
    if connections > MAX_TOTAL_CONNECTIONS:
        raise SanafeDeclined(f"{net.path}: {connections:,} synapses with non-zero weight, more than the "
                             f"{MAX_TOTAL_CONNECTIONS:,} the chip model simulates (SANA-FE 2.2.9 holds about 2.3 kB "
                             "per connection); no SANA-FE estimate",
                             f"{connections:,} non-zero synapses > {MAX_TOTAL_CONNECTIONS:,}")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=_silence_child) as pool:
        future = pool.submit(_estimate_chip, net, inputs[:samples], [s[:samples] for s in layer_spikes], profile,
                             activity, inputs.shape[0], None if input_bias is None else input_bias[:samples],
                             placement)
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise UserError(f"{net.path}: SANA-FE {metadata.version('sanafe')} stopped while simulating this "
                            "network (its C++ kernel aborted); no chip estimate") from exc


def _input_neuron(net: NetxNetwork) -> NetxLayer | None:
    first = net.layers[0]
    return first if first.kind == "input" and first.neuron is not None else None


MAX_CONNECTIONS = 1_000_000  # per SANA-FE simulation: 2.2.9 holds about 2.3 kB per connection (measured)
MAX_TOTAL_CONNECTIONS = 20_000_000  # beyond this the parts take too long here (PilotNet LIF: 14 M)


@dataclass(frozen=True)
class _Part:
    """One SANA-FE simulation: the neurons ``idx`` of each synaptic layer ``k`` it holds, and whether it holds
    the bias-driven input layer."""

    layers: tuple[tuple[int, np.ndarray], ...]
    input_layer: bool = False


def _parts(layers: list[NetxLayer], placement: Placement, activity: str, input_layer: bool) -> list[_Part]:
    """Cut the network into simulations of at most :data:`MAX_CONNECTIONS` connections, core by core (a core
    is never cut). With SANA-FE's own activity the layers drive each other: one simulation."""
    if activity != "emulator":
        return [_Part(tuple((k, np.arange(layer.neurons)) for k, layer in enumerate(layers)), input_layer)]
    parts: list[_Part] = [_Part((), True)] if input_layer else []
    current: list[tuple[int, np.ndarray]] = []
    size = 0
    for k, (layer, homes) in enumerate(zip(layers, placement.layers)):
        forward, recurrent = _feed_forward(layer)
        incoming = np.diff(forward.matrix.tocsc().indptr)
        if recurrent is not None:
            incoming = incoming + np.diff(recurrent.matrix.tocsc().indptr)
        homes = np.asarray(homes)
        for core in np.unique(homes):
            idx = np.flatnonzero(homes == core)
            cost = int(incoming[idx].sum())
            if current and size + cost > MAX_CONNECTIONS:
                parts.append(_Part(tuple(current)))
                current, size = [], 0
            if current and current[-1][0] == k:
                current[-1] = (k, np.concatenate([current[-1][1], idx]))
            else:
                current.append((k, idx))
            size += cost
    if current:
        parts.append(_Part(tuple(current)))
    return parts


@dataclass
class _Run:
    """Sums over the simulated samples (and parts)."""

    energy: dict[str, float]
    latency: np.ndarray  # (samples, steps): per part the slowest so far
    energy_steps: np.ndarray  # (steps,)
    packets: float = 0.0
    hops: float = 0.0


def _simulate_part(part: _Part, net: NetxNetwork, placement: Placement, per_core: int, activity: str,
                   inputs: np.ndarray, layer_spikes: list[np.ndarray], input_bias: np.ndarray | None,
                   run: _Run, sanafe_spikes: list[np.ndarray]) -> None:
    """Build one part's SANA-FE network and simulate every sample on it, adding into ``run``."""
    layers = _synaptic_layers(net)
    samples, _, steps = inputs.shape
    matrices = {k: _feed_forward(layers[k]) for k, _ in part.layers}
    # replay groups: the source neurons with a synapse into this part (the emulator's spikes, zero cost)
    sources: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # name -> (neurons, homes, spikes)

    def need(name: str, homes, spikes, rows: np.ndarray) -> None:
        known = sources.get(name)
        rows = rows if known is None else np.union1d(known[0], rows)
        sources[name] = (rows, np.asarray(homes)[rows], spikes)

    for k, idx in part.layers:
        forward, recurrent = matrices[k]
        if activity == "emulator" or k == 0:
            rows = np.flatnonzero(np.diff(forward.matrix[:, idx].tocsr().indptr))
            if k == 0:
                need("input", placement.inputs, inputs, rows)
            else:
                need(f"{layers[k - 1].name}.replay", placement.layers[k - 1], layer_spikes[k - 1], rows)
        if recurrent is not None and activity == "emulator":
            rows = np.flatnonzero(np.diff(recurrent.matrix[:, idx].tocsr().indptr))
            need(f"{layers[k].name}.rec", placement.layers[k], layer_spikes[k], rows)
    replay_cores = [homes for _, homes, _ in sources.values()]
    per_core_units = np.bincount(np.concatenate(replay_cores)) if replay_cores else np.zeros(1, dtype=np.int64)
    arch = architecture(per_core, per_core_units)
    cores = arch.cores()
    snn = sanafe.Network()
    slots: dict[int, int] = {}
    lif_slots: dict[int, int] = {}
    replays = {name: Replay(snn, name, homes.tolist(), cores, slots) for name, (_, homes, _) in sources.items()}
    input_group = None
    if part.input_layer and input_bias is not None:
        input_layer = net.layers[0]
        input_group = lif_group(snn, input_layer.name, _neuron_attributes(input_layer), placement.inputs, cores,
                                lif_slots, None, False)
    groups: dict[int, Any] = {}
    for k, idx in part.layers:
        layer = layers[k]
        homes = np.asarray(placement.layers[k])[idx].tolist()
        group = lif_group(snn, layer.name, _neuron_attributes(layer), homes, cores, lif_slots, _bias(layer)[idx], True)
        groups[k] = group
        forward, recurrent = matrices[k]
        if activity == "emulator" or k == 0:
            name = "input" if k == 0 else f"{layers[k - 1].name}.replay"
            rows = sources[name][0]
            connect(replays[name].group, group, forward.matrix[rows][:, idx], forward.hw)
        else:
            connect(groups[k - 1], group, forward.matrix, forward.hw)
        if recurrent is not None:
            if activity == "emulator":
                rows = sources[f"{layer.name}.rec"][0]
                connect(replays[f"{layer.name}.rec"].group, group, recurrent.matrix[rows][:, idx], recurrent.hw)
            else:
                connect(group, group, recurrent.matrix, recurrent.hw)
    chip = sanafe.SpikingChip(arch)
    names = [layers[k].name for k, _ in part.layers]
    for n in range(samples):
        for name, (rows, _, spikes) in sources.items():
            replays[name].set(spikes[n][rows])
        if input_group is not None:
            for neuron, value in zip(input_group, np.asarray(input_bias[n], dtype=np.float64) * (1 << ACT_SHIFT)):
                neuron.set_attributes(model_attributes={"bias": float(value)})
        chip.reset()
        chip.load(snn)
        result = chip.sim(steps, spike_trace=True, perf_trace=True)
        for part_name in ENERGY_PARTS:
            run.energy[part_name] += float(result["energy"][part_name])
        trace = result["perf_trace"]
        run.latency[n] = np.maximum(run.latency[n], np.asarray(trace["sim_time"], dtype=np.float64)[:steps])
        run.energy_steps += np.asarray(trace["total_energy"], dtype=np.float64)[:steps]
        run.packets += float(result["packets_sent"])
        run.hops += float(np.sum(trace["hops"]))
        fired = group_spikes(result["spike_trace"], names, [len(idx) for _, idx in part.layers], steps)
        for (k, idx), spikes in zip(part.layers, fired):
            sanafe_spikes[k][n][idx] = spikes


def _work(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray],
          input_layer: bool) -> tuple[list[float], float]:
    """Per synaptic layer (and the input layer's neurons) the core time its activity asks, in ns summed over
    the samples: synaptic events x 3.5 + neuron updates x 9.7 + spikes out x 30 (SANA-FE's Loihi latencies)."""
    work, previous = [], inputs
    for layer, spikes in zip(_synaptic_layers(net), layer_spikes):
        events = float((previous.sum(axis=2, dtype=np.int64) * nonzero_fan_out(layer)).sum())
        work.append(events * SYNAPSE_NS + layer.neurons * spikes.shape[0] * spikes.shape[2] * NEURON_NS
                    + float(spikes.sum()) * SPIKE_NS)
        previous = spikes
    input_work = 0.0
    if input_layer:
        input_work = net.num_inputs * inputs.shape[0] * inputs.shape[2] * NEURON_NS + float(inputs.sum()) * SPIKE_NS
    return work, input_work


def chip_placement(net: NetxNetwork, profile: HardwareProfile, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                   kind: str = "minimal", input_layer: bool = False) -> Placement:
    """The chip model's placement of ``net``: ``"minimal"`` (lint's core mapping) or ``"balanced"`` (spare cores
    shared out by this run's work); ``input_layer``: the input layer's own neurons count as work."""
    per_core = int(profile.si("neurons_per_core")) if profile.has("neurons_per_core") else SANAFE_CORE_NEURONS
    if kind == "balanced":
        layer_work, input_work = _work(net, inputs, layer_spikes, input_layer)
        mapping, input_cores = balanced_resources(net, profile, layer_work, input_work)
        return Placement.plan(net, mapping, per_core, input_cores)
    return Placement.plan(net, layer_resources(net, profile), per_core)


def static_energy(profile: HardwareProfile, latency_s: float, time_label: str) -> tuple[float | None, str | None]:
    """E_static = P_static x t_chip per sample, with its source; (None, None) when the profile has no static
    power. ``time_label`` names where t_chip comes from."""
    if not profile.has("static"):
        return None, None
    coefficient = profile.coefficient("static")
    source = (f"{coefficient.value:g} {coefficient.unit} ({coefficient.source}"
              + (f"; {coefficient.note}" if coefficient.note else "")
              + f") x {time_label} (pacing: as fast as possible, samples back to back)")
    return profile.si("static") * latency_s, source


def _estimate_chip(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray], profile: HardwareProfile,
                   activity: str, samples_total: int, input_bias: np.ndarray | None = None,
                   placement_kind: str = "minimal") -> ChipEstimate:
    """:func:`estimate_chip` in the worker, on the samples to simulate."""
    layers = _synaptic_layers(net)
    per_core = int(profile.si("neurons_per_core")) if profile.has("neurons_per_core") else SANAFE_CORE_NEURONS
    samples, _, steps = inputs.shape
    input_layer = _input_neuron(net) is not None and input_bias is not None
    placement = chip_placement(net, profile, inputs, layer_spikes, placement_kind, input_layer)
    notes = [f"activity: {activity}", f"placement ({placement_kind}): {placement.cores} cores, conv layers in "
             f"spatial tiles of all channels, up to {per_core} neurons per core (docs/chip_model.md)"]
    if per_core > SANAFE_CORE_NEURONS:
        notes.append(f"a core of more than {SANAFE_CORE_NEURONS} neurons is modelled as SANA-FE's Loihi core with "
                     f"one soma and dendrite unit per {SANAFE_CORE_NEURONS} neurons (Loihi 1 costs, timed in turn)")
    if input_layer:
        notes.append(f"{net.layers[0].name}: the input layer's neurons (bias-driven) are simulated on the input "
                     "cores; their spikes reach the next layer through the replayed emulator spikes")
    elif _input_neuron(net) is not None:
        notes.append(f"{net.layers[0].name}: the input layer's own neurons are not priced (no input bias given)")
    notes.extend(f"{layer.name}: synaptic delays not modelled" for layer in layers
                 if layer.delay is not None and np.any(layer.delay))
    parts = _parts(layers, placement, activity, input_layer)
    if len(parts) > 1:
        notes.append(f"simulated in {len(parts)} parts of at most {MAX_CONNECTIONS:,} connections (memory): energy, "
                     "packets and hops add up exactly; the chip time of a step is the slowest part's, which leaves "
                     "out a core's time sending messages to cores of other parts")
    run = _Run({part: 0.0 for part in ENERGY_PARTS}, np.zeros((samples, steps)), np.zeros(steps))
    sanafe_spikes = [np.zeros((samples, layer.neurons, steps), dtype=np.uint8) for layer in layers]
    for part in parts:
        _simulate_part(part, net, placement, per_core, activity, inputs, layer_spikes, input_bias, run,
                       sanafe_spikes)
    agreements = tuple(
        LayerAgreement(layer.name, float(mine.sum() / samples), float(ref[:samples].sum() / samples),
                       float(np.mean(mine.sum(axis=2) == ref[:samples].sum(axis=2))))
        for layer, mine, ref in zip(layers, sanafe_spikes, layer_spikes)
    )
    latency_steps = run.latency.sum(axis=0)
    latency = float(latency_steps.sum() / samples)
    static_j, static_source = static_energy(profile, latency, "SANA-FE's chip time per sample")
    if profile.name != "loihi1":
        notes.append(LOIHI1_NOTE)
    if samples < samples_total:
        notes.append(f"simulated {samples} of {samples_total} samples; figures are means over those")
    version = metadata.version("sanafe")
    return ChipEstimate(
        model=SANAFE_SOURCE.format(version=version), activity=activity, samples=samples,
        samples_total=samples_total, steps=steps, latency_per_sample_s=latency,
        latency_per_step_s=tuple(float(v) for v in latency_steps / samples),
        dynamic_energy_j={part: value / samples for part, value in run.energy.items()},
        dynamic_energy_per_step_j=tuple(float(v) for v in run.energy_steps / samples),
        static_energy_j=static_j, static_source=static_source, packets=run.packets / samples,
        hops=run.hops / samples, layers=agreements, cores=placement.cores, notes=tuple(notes),
    )
