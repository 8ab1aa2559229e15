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

from neurodeploy.deploy.netx_records import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import netx_dense_synapses
from neurodeploy.metrics.hardware import HardwareProfile, LayerFootprint, map_resources

ACTIVITIES = ("emulator", "sanafe")
ENERGY_PARTS = ("synapse", "dendrite", "soma", "network")
ACT_SHIFT = 6  # Lava adds a << 6 to the current and compares v with vThMant << 6
DECAY_UNITY = 4096
CORES_PER_CHIP = 128  # SANA-FE's Loihi: 32 tiles x 4 cores on an 8 x 4 mesh
CORES_PER_TILE = 4
MESH_HEIGHT = 4  # SANA-FE numbers the 8 x 4 mesh's tiles column by column
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


def _architecture(neurons_per_core: int, input_units: int):
    """SANA-FE's Loihi description with ``input_units`` zero-cost replay units per core and room for them
    beside the core's own neurons (the bundled file has 1,024 replay units per core, slow to build)."""
    text = (Path(sanafe.__file__).parent / "examples" / "loihi.yaml").read_text()
    for fixed in ("max_neurons_supported: 1024", "loihi_inputs[0..1023]"):
        if fixed not in text:
            raise UserError("SANA-FE's loihi.yaml is not the one of sanafe 2.2.9: install sanafe==2.2.9")
    text = text.replace("max_neurons_supported: 1024", f"max_neurons_supported: {neurons_per_core + input_units}")
    text = text.replace("loihi_inputs[0..1023]", f"loihi_inputs[0..{max(1, input_units) - 1}]")
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


def layer_cores(net: NetxNetwork, profile: HardwareProfile) -> list[int]:
    """Cores each synaptic layer of ``net`` takes under the profile's limits (our resource mapping)."""
    footprints = []
    for layer in _synaptic_layers(net):
        synapses = layer.synapses
        fan_in = layer.num_inputs if layer.kind != "conv" else math.ceil(synapses / max(1, layer.neurons))
        footprints.append(LayerFootprint(layer.name, layer.neurons, synapses, fan_in))
    return [item.cores for item in map_resources(footprints, profile).layers]


def _synaptic_layers(net: NetxNetwork) -> list[NetxLayer]:
    return [layer for layer in net.layers if layer.kind != "input"]


def _spread(n: int, first: int, cores: int) -> list[int]:
    """Core index of each of n neurons spread over cores first..first+cores-1 in blocks of ceil(n / cores)."""
    block = math.ceil(n / cores)
    return [first + i // block for i in range(n)]


@dataclass(frozen=True)
class Placement:
    """Core index of every neuron: network input, then each layer on its own cores (our core mapping).

    Cores are numbered as SANA-FE's Loihi numbers them: core c sits on tile c // 4 of an 8 x 4 mesh
    (tile t at x = t // 4, y = t % 4, as SANA-FE's hop counts show).
    """

    inputs: list[int]
    layers: list[list[int]]

    @classmethod
    def plan(cls, net: NetxNetwork, cores_needed: list[int], per_core: int) -> Placement:
        input_cores = math.ceil(net.num_inputs / per_core)
        total = input_cores + sum(cores_needed)
        if total > CORES_PER_CHIP:
            raise UserError(f"the network needs {total} cores, more than the {CORES_PER_CHIP} of one Loihi "
                            "chip; the chip model simulates one chip only")
        inputs = _spread(net.num_inputs, 0, input_cores)
        layers, first = [], input_cores
        for layer, cores in zip(_synaptic_layers(net), cores_needed):
            layers.append(_spread(layer.neurons, first, cores))
            first += cores
        return cls(inputs, layers)

    @property
    def cores(self) -> int:
        return 1 + max(max(self.inputs), *(max(homes) for homes in self.layers))


def tile_distance(core_a: np.ndarray, core_b: np.ndarray) -> np.ndarray:
    """Mesh hops between the tiles of two cores: |x_a - x_b| + |y_a - y_b|."""
    tile_a, tile_b = np.asarray(core_a) // CORES_PER_TILE, np.asarray(core_b) // CORES_PER_TILE
    return (np.abs(tile_a // MESH_HEIGHT - tile_b // MESH_HEIGHT)
            + np.abs(tile_a % MESH_HEIGHT - tile_b % MESH_HEIGHT))


def routing_hops(net: NetxNetwork, placement: Placement) -> list[np.ndarray]:
    """Tile hops one spike of each source neuron travels, per synaptic layer k (sources: the input for
    k = 0, else layer k-1): one message per destination core it has a nonzero synapse on,

        hops_i = sum over cores c with some w_ij != 0, j on c, of distance(tile(core_i), tile(c)).

    Recurrent synapses stay on the layer's own cores and are not counted.
    """
    hops = []
    sources = placement.inputs
    for layer, homes in zip(_synaptic_layers(net), placement.layers):
        forward, _ = _feed_forward(layer)
        reach = (forward.matrix != 0).astype(np.int64)
        dest_cores = np.asarray(homes)
        first = int(dest_cores.min())
        onehot = scipy.sparse.csr_matrix((np.ones(len(homes), dtype=np.int64),
                                          (np.arange(len(homes)), dest_cores - first)))
        touched = (reach @ onehot).toarray() > 0  # (n_src, layer cores)
        distance = tile_distance(np.asarray(sources)[:, None], np.arange(first, dest_cores.max() + 1)[None, :])
        hops.append((touched * distance).sum(axis=1).astype(np.float64))
        sources = homes
    return hops


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
            self.units.append(f"loihi_inputs[{slot}]")
            neuron.map_to_core(cores[core])

    def set(self, spikes: np.ndarray) -> None:
        """spikes (n, T) 0/1."""
        for neuron, unit, row in zip(self.group, self.units, spikes):
            neuron.set_attributes(soma_hw_name=unit, model_attributes={"spikes": [bool(v) for v in row]})


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
                  max_samples: int | None = 8) -> ChipEstimate:
    """SANA-FE's chip latency and energy for ``net`` on ``inputs`` (N, n_in, T).

    ``layer_spikes`` are the emulator's (N, n, T) spikes of every synaptic layer (the replayed activity
    and the reference for agreement). Samples 0..max_samples-1 are simulated, in a child process: SANA-FE's
    C++ kernel aborts the whole process on some networks, which then becomes a UserError here.
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
                             activity, inputs.shape[0])
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise UserError(f"{net.path}: SANA-FE {metadata.version('sanafe')} stopped while simulating this "
                            "network (its C++ kernel aborted); no chip estimate") from exc


def _estimate_chip(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray], profile: HardwareProfile,
                   activity: str, samples_total: int) -> ChipEstimate:
    """:func:`estimate_chip` in the worker, on the samples to simulate."""
    layers = _synaptic_layers(net)
    per_core = int(profile.si("neurons_per_core")) if profile.has("neurons_per_core") else SANAFE_CORE_NEURONS
    per_core = min(per_core, SANAFE_CORE_NEURONS)
    mapped = layer_cores(net, profile)
    cores_needed = [max(cores, math.ceil(layer.neurons / per_core)) for cores, layer in zip(mapped, layers)]
    placement = Placement.plan(net, cores_needed, per_core)
    replay_homes = _replay_homes(placement, layers, activity)
    per_core_units = np.bincount(np.concatenate([homes for _, homes in replay_homes]))
    arch = _architecture(per_core, int(per_core_units.max()))
    cores = arch.cores()
    samples, _, steps = inputs.shape

    snn = sanafe.Network()
    slots: dict[int, int] = {}
    replays = {name: _Replay(snn, name, homes, cores, slots) for name, homes in replay_homes}
    groups = []
    notes = [f"activity: {activity}"]
    if cores_needed != mapped:
        notes.append(f"SANA-FE's Loihi core holds {per_core} neurons: layers spread over {cores_needed} cores "
                     f"instead of the {profile.name} mapping's {mapped}")
    for index, (layer, homes) in enumerate(zip(layers, placement.layers)):
        group = snn.create_neuron_group(layer.name, layer.neurons, model_attributes=_neuron_attributes(layer),
                                        soma_hw_name="loihi_lif", log_spikes=True)
        for neuron, core, bias in zip(group, homes, _bias(layer)):
            neuron.map_to_core(cores[core])
            if bias:
                neuron.set_attributes(model_attributes={"bias": float(bias)})
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
