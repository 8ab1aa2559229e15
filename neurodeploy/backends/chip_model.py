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
import math
import multiprocessing
import os
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import sanafe
import scipy.sparse

from neurodeploy.backends.chip_placement import Placement, layer_cores, layer_resources
from neurodeploy.backends.chip_placement import routing_hops as placement_hops
from neurodeploy.backends.chip_placement import synaptic_layers as _synaptic_layers
from neurodeploy.deploy.netx import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import netx_dense_synapses
from neurodeploy.metrics.hardware import HardwareProfile

__all__ = ["ChipEstimate", "LayerAgreement", "Placement", "estimate_chip", "layer_cores", "layer_resources",
           "routing_hops", "synapse_matrix"]

ACTIVITIES = ("emulator", "sanafe")
ENERGY_PARTS = ("synapse", "dendrite", "soma", "network")
ACT_SHIFT = 6  # Lava adds a << 6 to the current and compares v with vThMant << 6
DECAY_UNITY = 4096
SANAFE_CORE_NEURONS = 1024
SANAFE_SOURCE = ("SANA-FE {version}, Loihi architecture description (sanafe/examples/loihi.yaml); Boyle et al., "
                 "IEEE TCAD 44(8), 2025: within 12 % (energy) and 25 % (latency) of measured Loihi 1")
LOIHI1_NOTE = "SANA-FE's Loihi description is calibrated on Loihi 1; no Loihi 2 description is published"


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


REPLAY_DENDRITE = "replay_dendrites"
_SYNAPSES = "          synapse:\n"  # the replay dendrites go last, after the default one


def _replay_dendrite(slot: int) -> str:
    """The zero-energy dendrite unit of replay neuron ``slot`` on its core (1,024 compartments each)."""
    return f"{REPLAY_DENDRITE}[{slot // SANAFE_CORE_NEURONS}]"


def _architecture(neurons_per_core: int, input_units: int):
    """SANA-FE's Loihi description with ``input_units`` zero-cost replay units per core and room for them
    beside the core's own neurons (the bundled file has 1,024 replay units per core, slow to build).

    A core holding more than 1,024 neurons (Loihi 2: up to 8,192) gets one ``loihi_lif`` soma and one
    ``loihi_dendrites`` unit per 1,024 of them, each with Loihi 1's costs (SANA-FE times them one after
    the other). The replay neurons also get their own zero-energy, zero-latency dendrite units (``replay_dendrites``,
    one per 1,024 replay neurons of a core): on the core's one dendrite unit, SANA-FE 2.2.9 indexes
    compartments beyond its 1,024 and aborts, which every conv layer over 512 neurons reached (its own
    neurons plus as many replay neurons on the same cores)."""
    text = (Path(sanafe.__file__).parent / "examples" / "loihi.yaml").read_text()
    for fixed in ("max_neurons_supported: 1024", "loihi_inputs[0..1023]", _SYNAPSES):
        if fixed not in text:
            raise UserError("SANA-FE's loihi.yaml is not the one of sanafe 2.2.9: install sanafe==2.2.9")
    text = text.replace("max_neurons_supported: 1024", f"max_neurons_supported: {neurons_per_core + input_units}")
    text = text.replace("loihi_inputs[0..1023]", f"loihi_inputs[0..{max(1, input_units) - 1}]")
    lif_units = max(1, math.ceil(neurons_per_core / SANAFE_CORE_NEURONS)) - 1
    for unit in ("loihi_lif", "loihi_dendrites"):
        line = f"            - name: {unit}\n"
        if line not in text:
            raise UserError("SANA-FE's loihi.yaml is not the one of sanafe 2.2.9: install sanafe==2.2.9")
        text = text.replace(line, f"            - name: {unit}[0..{lif_units}]\n", 1)
    units = max(1, math.ceil(input_units / SANAFE_CORE_NEURONS))
    replay = (f"            - name: {REPLAY_DENDRITE}[0..{units - 1}]\n              attributes:\n"
              "                model: accumulator\n                energy_update: 0.0\n"
              "                latency_update: 0.0\n")
    text = text.replace(_SYNAPSES, replay + _SYNAPSES, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loihi.yaml"
        path.write_text(text)
        return sanafe.load_arch(str(path))


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


def _replay_homes(placement: Placement, layers: list[NetxLayer], activity: str) -> list[tuple[str, list[int]]]:
    """(name, core of each neuron) of every replay group, in the order :func:`_set_replays` fills them."""
    groups = [("input", placement.inputs)]
    if activity != "emulator":
        return groups
    for index, (layer, homes) in enumerate(zip(layers, placement.layers)):
        if layer.kind == "dense_rec":
            groups.append((f"{layer.name}.rec", homes))
        if index + 1 < len(layers):
            groups.append((f"{layer.name}.replay", homes))
    return groups


class _Replay:
    """Zero-cost input neurons replaying a spike train, one ``loihi_inputs[slot]`` unit each."""

    def __init__(self, sanafe_net, name: str, homes: list[int], cores: list, slots: dict[int, int]):
        self.group = sanafe_net.create_neuron_group(name, len(homes), soma_hw_name="loihi_inputs[0]")
        self.units = []
        for neuron, core in zip(self.group, homes):
            slot = slots.get(core, 0)
            slots[core] = slot + 1
            self.units.append((f"loihi_inputs[{slot}]", _replay_dendrite(slot)))
            neuron.map_to_core(cores[core])

    def set(self, spikes: np.ndarray) -> None:
        """spikes (n, T) 0/1."""
        for neuron, (unit, dendrite), row in zip(self.group, self.units, spikes):
            neuron.set_attributes(soma_hw_name=unit, dendrite_hw_name=dendrite,
                                  model_attributes={"spikes": [bool(v) for v in row]})


def _connect(src_group, dst_group, synapse: _Synapse) -> None:
    coo = synapse.matrix.tocoo()
    keep = coo.data != 0
    pairs = list(zip(coo.row[keep].tolist(), coo.col[keep].tolist()))
    if pairs:
        src_group.connect_neurons_sparse(dst_group, {"weight": coo.data[keep].tolist()}, pairs)
        for neuron in dst_group:
            neuron.set_attributes(default_synapse_hw_name=synapse.hw)


def _group_spikes(trace, names: list[str], sizes: list[int], steps: int) -> list[np.ndarray]:
    """(n, T) spikes per logged group from SANA-FE's spike trace."""
    out = {name: np.zeros((size, steps), dtype=np.uint8) for name, size in zip(names, sizes)}
    for t, fired in enumerate(trace[:steps]):
        for address in fired:
            group, _, index = str(address).rpartition(".")
            if group in out:
                out[group][int(index), t] = 1
    return [out[name] for name in names]


def _silence_child() -> None:
    """Worker start-up: SANA-FE's C++ kernel writes progress to fd 1 and aborts with a message on fd 2."""
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    os.dup2(sink, 2)


def estimate_chip(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                  profile: HardwareProfile, *, activity: str = "emulator",
                  max_samples: int | None = 8, input_bias: np.ndarray | None = None) -> ChipEstimate:
    """SANA-FE's chip latency and energy for ``net`` on ``inputs`` (N, n_in, T).

    ``layer_spikes`` are the emulator's (N, n, T) spikes of every synaptic layer (the replayed activity
    and the reference for agreement). A network whose input layer has neurons driven by their bias (lava-dl's
    PilotNet) takes that bias as ``input_bias`` (N, n_in) and ``inputs`` = the input layer's spikes; its
    neurons are then simulated (and priced) on the input cores. Samples 0..max_samples-1 are simulated, in a
    child process: SANA-FE's C++ kernel aborts the whole process on some networks, which then becomes a UserError here.
    """
    if activity not in ACTIVITIES:
        raise UserError(f"unknown chip-model activity {activity!r}; choose one of {', '.join(ACTIVITIES)}")
    layers = _synaptic_layers(net)
    if len(layer_spikes) != len(layers):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(layers)} synaptic layers")
    samples = inputs.shape[0] if max_samples is None else min(inputs.shape[0], max_samples)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=_silence_child) as pool:
        future = pool.submit(_estimate_chip, net, inputs[:samples], [s[:samples] for s in layer_spikes], profile,
                             activity, inputs.shape[0], None if input_bias is None else input_bias[:samples])
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise UserError(f"{net.path}: SANA-FE {metadata.version('sanafe')} stopped while simulating this "
                            "network (its C++ kernel aborted); no chip estimate") from exc


def _lif_units(homes: list[int], slots: dict[int, int]) -> list[tuple[str, str]]:
    """(soma unit, dendrite unit) of each LIF neuron on its core: one pair per 1,024 neurons of a core."""
    units = []
    for core in homes:
        slot = slots.get(core, 0)
        slots[core] = slot + 1
        index = slot // SANAFE_CORE_NEURONS
        units.append((f"loihi_lif[{index}]", f"loihi_dendrites[{index}]"))
    return units


def _lif_group(snn, name: str, neuron_attributes: dict, homes: list[int], cores: list, slots: dict[int, int],
               bias: np.ndarray | None, log: bool):
    group = snn.create_neuron_group(name, len(homes), model_attributes=neuron_attributes,
                                    soma_hw_name="loihi_lif[0]", log_spikes=log)
    biases = np.zeros(len(homes)) if bias is None else bias
    for neuron, core, (soma, dendrite), value in zip(group, homes, _lif_units(homes, slots), biases):
        neuron.map_to_core(cores[core])
        neuron.set_attributes(soma_hw_name=soma, dendrite_hw_name=dendrite,
                              model_attributes={"bias": float(value)} if value else {})
    return group


def _input_neuron(net: NetxNetwork) -> NetxLayer | None:
    first = net.layers[0]
    return first if first.kind == "input" and first.neuron is not None else None


def _estimate_chip(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray], profile: HardwareProfile,
                   activity: str, samples_total: int, input_bias: np.ndarray | None = None) -> ChipEstimate:
    """:func:`estimate_chip` in the worker, on the samples to simulate."""
    layers = _synaptic_layers(net)
    per_core = int(profile.si("neurons_per_core")) if profile.has("neurons_per_core") else SANAFE_CORE_NEURONS
    placement = Placement.plan(net, layer_resources(net, profile), per_core)
    replay_homes = _replay_homes(placement, layers, activity)
    per_core_units = np.bincount(np.concatenate([homes for _, homes in replay_homes]))
    input_layer = _input_neuron(net) if input_bias is not None else None
    arch = _architecture(per_core, int(per_core_units.max()))
    cores = arch.cores()
    samples, _, steps = inputs.shape

    snn = sanafe.Network()
    slots: dict[int, int] = {}
    replays = {name: _Replay(snn, name, homes, cores, slots) for name, homes in replay_homes}
    groups = []
    notes = [f"activity: {activity}", f"placement: {placement.cores} cores, conv layers in spatial tiles of all "
             f"channels, up to {per_core} neurons per core (docs/chip_model.md)"]
    if per_core > SANAFE_CORE_NEURONS:
        notes.append(f"a core of more than {SANAFE_CORE_NEURONS} neurons is modelled as SANA-FE's Loihi core with "
                     f"one soma and dendrite unit per {SANAFE_CORE_NEURONS} neurons (Loihi 1 costs, timed in turn)")
    lif_slots: dict[int, int] = {}
    input_group = None
    if input_layer is not None:
        input_group = _lif_group(snn, input_layer.name, _neuron_attributes(input_layer), placement.inputs, cores,
                                 lif_slots, None, False)
        notes.append(f"{input_layer.name}: the input layer's neurons (bias-driven) are simulated on the input "
                     "cores; their spikes reach the next layer through the replayed emulator spikes")
    elif _input_neuron(net) is not None:
        notes.append(f"{net.layers[0].name}: the input layer's own neurons are not priced (no input bias given)")
    for index, (layer, homes) in enumerate(zip(layers, placement.layers)):
        group = _lif_group(snn, layer.name, _neuron_attributes(layer), homes, cores, lif_slots, _bias(layer), True)
        forward, recurrent = _feed_forward(layer)
        if index == 0:
            source = replays["input"].group
        else:
            source = replays[f"{layers[index - 1].name}.replay"].group if activity == "emulator" else groups[-1]
        _connect(source, group, forward)
        if recurrent is not None:
            _connect(replays[f"{layer.name}.rec"].group if activity == "emulator" else group, group, recurrent)
        if layer.delay is not None and np.any(layer.delay):
            notes.append(f"{layer.name}: synaptic delays not modelled")
        groups.append(group)

    chip = sanafe.SpikingChip(arch)
    totals = {part: 0.0 for part in ENERGY_PARTS}
    latency_steps = np.zeros(steps)
    energy_steps = np.zeros(steps)
    packets = hops = 0.0
    sanafe_spikes = [np.zeros((samples, layer.neurons, steps), dtype=np.uint8) for layer in layers]
    for n in range(samples):
        _set_replays(list(replays.values()), layers, inputs[n], [s[n] for s in layer_spikes], activity)
        if input_group is not None:
            for neuron, value in zip(input_group, np.asarray(input_bias[n], dtype=np.float64) * (1 << ACT_SHIFT)):
                neuron.set_attributes(model_attributes={"bias": float(value)})
        chip.reset()
        chip.load(snn)
        result = chip.sim(steps, spike_trace=True, perf_trace=True)
        for part in ENERGY_PARTS:
            totals[part] += float(result["energy"][part])
        trace = result["perf_trace"]
        latency_steps += np.asarray(trace["sim_time"], dtype=np.float64)[:steps]
        energy_steps += np.asarray(trace["total_energy"], dtype=np.float64)[:steps]
        packets += float(result["packets_sent"])
        hops += float(np.sum(trace["hops"]))
        fired = _group_spikes(result["spike_trace"], [layer.name for layer in layers],
                              [layer.neurons for layer in layers], steps)
        for store, spikes in zip(sanafe_spikes, fired):
            store[n] = spikes

    agreements = tuple(
        LayerAgreement(layer.name, float(mine.sum() / samples), float(ref[:samples].sum() / samples),
                       float(np.mean(mine.sum(axis=2) == ref[:samples].sum(axis=2))))
        for layer, mine, ref in zip(layers, sanafe_spikes, layer_spikes)
    )
    latency = float(latency_steps.sum() / samples)
    static_j = static_source = None
    if profile.has("static"):
        static_j = profile.si("static") * latency
        static_source = profile.coefficient("static").source
    if profile.name != "loihi1":
        notes.append(LOIHI1_NOTE)
    if samples < samples_total:
        notes.append(f"simulated {samples} of {samples_total} samples; figures are means over those")
    version = metadata.version("sanafe")
    return ChipEstimate(
        model=SANAFE_SOURCE.format(version=version), activity=activity, samples=samples,
        samples_total=samples_total, steps=steps, latency_per_sample_s=latency,
        latency_per_step_s=tuple(float(v) for v in latency_steps / samples),
        dynamic_energy_j={part: value / samples for part, value in totals.items()},
        dynamic_energy_per_step_j=tuple(float(v) for v in energy_steps / samples),
        static_energy_j=static_j, static_source=static_source, packets=packets / samples, hops=hops / samples,
        layers=agreements, cores=placement.cores, notes=tuple(notes),
    )


def _set_replays(replays: list[_Replay], layers: list[NetxLayer], sample_input: np.ndarray,
                 sample_layers: list[np.ndarray], activity: str) -> None:
    """Load one sample's spike trains into the replay neurons (network input, then layer replays)."""
    replays[0].set(sample_input)
    if activity != "emulator":
        return
    position = 1
    for index, layer in enumerate(layers):
        if layer.kind == "dense_rec":
            replays[position].set(sample_layers[index])
            position += 1
        if index + 1 < len(layers):
            replays[position].set(sample_layers[index])
            position += 1
