"""NIR graph -> a deployable run folder: ``model.net`` (netx, for Lava, the emulator and Loihi 2) plus the
graph itself as the float reference (``neurodeploy import``).

What is deployed
----------------
A chip layer is one spiking neuron node (``IF``, ``LIF`` or ``CubaLIF``) with the stateless nodes on the
single path into it from the previous neuron (or the ``Input``): Affine, Linear, Scale, Conv1d, Conv2d,
SumPool2d, AvgPool2d and Flatten, composed into one synapse. A path made of pooling, 2-D convolutions and
scales becomes a netx ``conv`` layer when the composition is itself a convolution (checked numerically:
e.g. SumPool2d 2 then a 3x3 conv is a 6x6 conv of stride 2 and padding 2); anything else becomes a
``dense`` layer (the composed matrix, inputs flattened in C order). A neuron with a path from itself back
to itself (a recurrent subgraph, e.g. snnTorch's ``lif1.lif -> lif1.w_rec -> lif1.lif``) becomes a
``dense_rec`` layer. Everything else is refused with the node and the reason (UserError, exit 2):
branches, sums of several inputs, Delay, Threshold, and the non-spiking I / LI / CubaLI nodes (the chip
backends record spikes, so a voltage readout could not be compared).

Continuous time -> Loihi's discrete CUBA at dt (the float reference's discretisation is in
:mod:`neurodeploy.models.nir_reference`; lava-dl's convention, current/voltage decays in 1/4096)::

    CubaLIF  iDecay = round(4096 dt / tau_syn)   vDecay = round(4096 dt / tau_mem)
    LIF      iDecay = 4096 (current = input)     vDecay = round(4096 dt / tau)
    IF       iDecay = 4096                       vDecay = 0 (no leak)

Loihi adds the integer synaptic input ``a`` to the current ``u`` and ``u`` (plus a bias) to the voltage;
the graph's voltage ``v`` maps to Loihi's as ``v_loihi = s (v - v_reset)`` for a per-layer scale ``s``
(integer weight units per graph voltage unit, ``vThMant = round(s (v_th - v_reset))``), so each graph
weight ``W`` becomes ``round(s g W)`` with the per-neuron input gain ``g``:

    CubaLIF  g = (dt/tau_mem) R (dt/tau_syn) w_in      LIF  g = (dt/tau) R      IF  g = R

and constant drives become Loihi's voltage bias (``bias_mant``, per step):
``s [(dt/tau_mem) R w_in b + (dt/tau_mem)(v_leak - v_reset)]`` for a CubaLIF (b: the synapse's bias),
``s [(dt/tau) (R b + v_leak - v_reset)]`` for a LIF, ``s R b`` for an IF.

8-bit weights: the file holds even integers in [-256, 254] (an 8-bit mantissa with exponent 1, lava-dl's
own convention, which netx loads without loss). The scale is ``s = 64 * 2^e`` per layer; ``e`` minimises
the number of weights that clip (beyond the range) or vanish (non-zero in the graph, zero on the chip),
then the rounding error, then |e| (so a graph whose weights are already on lava-dl's 1/64 grid keeps it).
Both counts are reported per layer.

Where Loihi's neuron differs from the graph's, the layer's ``notes`` say so and the closest form is
deployed: a bias that the graph filters through the synaptic current is added to the voltage (same steady
state; exact when the current has no memory), a non-zero ``v_reset`` is deployed by shifting the voltage
(exact except the initial state), decays and thresholds are rounded to Loihi's integers, and a leak slower
than 1/8192 per step vanishes. Loihi's 24-bit current wraps and its voltage saturates; the float reference
has neither. Frameworks that reset by subtraction (Sinabs' IAF, snnTorch's ``subtract``) cannot say so in
NIR; the graph, the reference and the chip all reset to ``v_reset``.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from rich.table import Table

from neurodeploy import atomic, folders
from neurodeploy.deploy.netx import CubaParams, NetxLayer, pool_conv_groups, write_netx
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import ConvGeometry
from neurodeploy.models.nir_reference import FlatGraph, flatten_graph, static_forward

IMPORT_RECORD = "nir_import.json"
GRAPH_FILE = "model.nir"
NET_FILE = "model.net"
SCHEMA_VERSION = 1
DEFAULT_DT_MS = 1.0
SAMPLE_DURATION_MS = 300.0  # an N-MNIST sample: three saccades of about 100 ms
DATASET_INPUTS = {(2, 34, 34): "nmnist", (2, 128, 128): "dvsgesture"}
WEIGHT_MIN, WEIGHT_MAX = -256, 254  # even integers: an 8-bit mantissa << 1, as lava-dl exports
SCALE_EXPONENTS = range(-6, 13)  # s = 64 * 2^e
MAX_VTH_MANT = (1 << 17) - 1  # Lava's vth is 17 bits
MAX_DENSE_WEIGHTS = 20_000_000
DECAY_UNIT = 4096
SYNAPSE_NODES = (nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d,
                 nir.Flatten)
CHIP_NEURONS = (nir.IF, nir.LIF, nir.CubaLIF)
REFUSED = {
    nir.Delay: "Delay nodes are not deployed (netx ignores conv delays and neurodeploy maps no NIR delay)",
    nir.Threshold: "a bare Threshold has no Loihi neuron (use IF / LIF / CubaLIF)",
    nir.I: "the non-spiking integrator I has no spikes to read back from the chip",
    nir.LI: "the non-spiking LI readout has no spikes to read back from the chip (end the graph with LIF / "
            "CubaLIF and count spikes)",
    nir.CubaLI: "the non-spiking CubaLI readout has no spikes to read back from the chip (end the graph with "
                "CubaLIF and count spikes)",
}


@dataclass(frozen=True)
class ImportedLayer:
    """One deployed layer and how it was mapped (a row of the import table)."""

    name: str  # the NIR neuron node whose spikes this layer reproduces
    kind: str  # dense | dense_rec | conv
    neuron: str  # IF | LIF | CubaLIF
    nodes: tuple[str, ...]  # NIR nodes folded into the layer, input side first
    shape: tuple[int, ...]
    i_decay: int
    v_decay: int
    v_th_mant: int
    weight_scale: float  # s: integer weight units per graph voltage unit
    weights: int
    clipped: int
    vanished: int
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "nodes": list(self.nodes), "shape": list(self.shape), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImportedLayer:
        return cls(**{**raw, "nodes": tuple(raw["nodes"]), "shape": tuple(raw["shape"]),
                      "notes": tuple(raw["notes"])})


@dataclass(frozen=True)
class NirImport:
    """What ``import`` did: the record ``nir_import.json`` of an imported run folder.

    ``input_shape`` (C, H, W) or (n,): what the chip's input neurons receive; ``dataset``: the event
    dataset whose frames fit that input (None: ``run`` needs ``--input X.npy``); ``steps``: T of a sample
    when ``run`` loads the dataset.
    """

    source: str
    dt_ms: float
    input_shape: tuple[int, ...]
    dataset: str | None
    steps: int
    layers: tuple[ImportedLayer, ...]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "source": self.source, "dt_ms": self.dt_ms,
                "input_shape": list(self.input_shape), "dataset": self.dataset, "steps": self.steps,
                "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NirImport:
        return cls(source=raw["source"], dt_ms=float(raw["dt_ms"]), input_shape=tuple(raw["input_shape"]),
                   dataset=raw["dataset"], steps=int(raw["steps"]),
                   layers=tuple(ImportedLayer.from_dict(layer) for layer in raw["layers"]),
                   schema_version=int(raw["schema_version"]))


def read_graph(path: Path) -> nir.NIRGraph:
    """``nir.read`` with a one-line UserError for a missing, non-HDF5 or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; give a NIR graph (.nir) written with nir.write")
    try:
        graph = nir.read(path)
    except Exception as exc:  # noqa: BLE001 - nir/h5py raise many types for a file they cannot parse
        raise UserError(f"{path}: not a NIR graph nir {nir.__version__} can read ({type(exc).__name__}: "
                        f"{exc}); write it again with nir.write") from exc
    if not isinstance(graph, nir.NIRGraph):
        raise UserError(f"{path}: holds a single {type(graph).__name__} node, not a NIRGraph")
    return graph


def load_import(run_dir: Path) -> NirImport:
    """The import record of an imported run folder."""
    path = Path(run_dir) / IMPORT_RECORD
    try:
        raw = json.loads(path.read_text())
        record = NirImport.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable import record ({exc}); import the graph again") from exc
    if record.schema_version > SCHEMA_VERSION:
        raise UserError(f"{path}: schema {record.schema_version} is newer than this neurodeploy; upgrade it")
    return record


# ---------------------------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class LayerPath:
    """A chip layer in graph terms: the neuron, its source (previous neuron or Input), the stateless nodes
    between them, and the stateless nodes of its recurrent loop (empty when it has none)."""

    neuron: str
    source: str
    synapse: tuple[str, ...]
    recurrent: tuple[str, ...] | None


def _refuse(name: str, node: nir.NIRNode, why: str) -> UserError:
    return UserError(f"NIR node '{name}' ({type(node).__name__}): {why}")


def _walk_back(graph: FlatGraph, start: str, first: str) -> tuple[str, tuple[str, ...]]:
    """From ``first`` (a node feeding ``start``) back through stateless nodes to a neuron or the Input."""
    chain: list[str] = []
    name = first
    while True:
        node = graph.nodes[name]
        if name == graph.input_node or isinstance(node, CHIP_NEURONS):
            return name, tuple(reversed(chain))
        for kind, why in REFUSED.items():
            if isinstance(node, kind):
                raise _refuse(name, node, why)
        if not isinstance(node, SYNAPSE_NODES + (nir.Input, nir.Output)):
            raise _refuse(name, node, "this node type is not deployable")
        if len(graph.successors(name)) != 1:
            raise _refuse(name, node, f"feeds {len(graph.successors(name))} nodes; netx layers form a chain "
                                      "without branches")
        chain.append(name)
        sources = graph.inputs[name] + graph.recurrent_inputs[name]
        if len(sources) != 1:
            raise _refuse(name, node, f"sums {len(sources)} inputs; a netx layer has one input path "
                                      f"(on the way to '{start}')")
        name = sources[0]


def layer_paths(graph: FlatGraph) -> list[LayerPath]:
    """The chain of chip layers from the Input to the Output node (module docstring), or UserError."""
    for name in graph.order:
        node = graph.nodes[name]
        for kind, why in REFUSED.items():
            if isinstance(node, kind):
                raise _refuse(name, node, why)
    neurons = [name for name in graph.order if isinstance(graph.nodes[name], CHIP_NEURONS)]
    if not neurons:
        raise UserError("NIR graph: no IF, LIF or CubaLIF node; nothing spikes, so nothing can run on the chip")
    paths = []
    for name in neurons:
        node = graph.nodes[name]
        if len(graph.inputs[name]) != 1:
            raise _refuse(name, node, f"receives {len(graph.inputs[name])} feed-forward inputs; a netx layer has "
                                      "exactly one")
        source, synapse = _walk_back(graph, name, graph.inputs[name][0])
        recurrent = None
        if graph.recurrent_inputs[name]:
            if len(graph.recurrent_inputs[name]) != 1:
                raise _refuse(name, node, "has several recurrent inputs; netx has one recurrent matrix per layer")
            origin, recurrent = _walk_back(graph, name, graph.recurrent_inputs[name][0])
            if origin != name:
                raise _refuse(name, node, f"receives a recurrent connection from '{origin}'; netx recurrence "
                                          "stays within one layer")
        paths.append(LayerPath(name, source, synapse, recurrent))
    expected = graph.input_node
    for path in paths:
        if path.source != expected:
            raise _refuse(path.neuron, graph.nodes[path.neuron],
                          f"is fed by '{path.source}', not by '{expected}'; netx runs a chain of layers")
        expected = path.neuron
    last, tail = _walk_back(graph, graph.output_node, graph.inputs[graph.output_node][0]) \
        if len(graph.inputs[graph.output_node]) == 1 else (None, ())
    if last != expected or any(not isinstance(graph.nodes[n], (nir.Flatten, nir.Output)) for n in tail):
        raise UserError(f"NIR graph: the Output node '{graph.output_node}' must receive the spikes of the last "
                        f"neuron '{expected}' (a stateless readout after it has no chip neuron)")
    return paths


# --------------------------------------------------------------------------------------------- synapses


@dataclass(frozen=True)
class Synapse:
    """A composed stateless path as one linear map plus a constant: dense (out, in) or conv."""

    kind: str  # dense | conv
    weight: np.ndarray  # dense (n_out, n_in); conv (C_out, C_in/groups, kH, kW)
    bias: np.ndarray  # per output neuron (dense) or per output channel (conv)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    geometry: ConvGeometry | None = None


def _forward(graph: FlatGraph, chain: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    for name in chain:
        x = static_forward(name, graph.nodes[name], x)
    return x


def _conv_candidate(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...]):
    """Geometry (kernel, stride, padding, groups) of a pool/conv/scale path, or None if it is not one."""
    if len(in_shape) != 3 or not chain:
        return None
    kernel, stride, padding, jump = [1, 1], [1, 1], [0, 0], [1, 1]
    convs = 0
    groups = None
    for name in chain:
        node = graph.nodes[name]
        if isinstance(node, (nir.Scale, nir.Input, nir.Output)):
            continue
        if isinstance(node, nir.Conv2d):
            if isinstance(node.padding, str) or np.any(np.asarray(node.dilation) != 1):
                return None
            k = np.asarray(node.weight).shape[2:]
            s, p = np.asarray(node.stride).reshape(-1), np.asarray(node.padding).reshape(-1)
            convs += 1
            groups = int(node.groups)
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            k = np.asarray(node.kernel_size).reshape(-1)
            s, p = np.asarray(node.stride).reshape(-1), np.asarray(node.padding).reshape(-1)
        else:
            return None
        for axis in (0, 1):
            kk, ss, pp = int(k[min(axis, len(k) - 1)]), int(s[min(axis, len(s) - 1)]), int(p[min(axis, len(p) - 1)])
            kernel[axis] += (kk - 1) * jump[axis]
            padding[axis] += pp * jump[axis]
            jump[axis] *= ss
            stride[axis] = jump[axis]
    if convs > 1:
        groups = 1
    return tuple(kernel), tuple(stride), tuple(padding), groups


def _as_conv(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...],
             out_shape: tuple[int, ...]) -> Synapse | None:
    """The path as one convolution, found by probing it with impulses and verified on random inputs."""
    candidate = _conv_candidate(graph, chain, in_shape)
    if candidate is None or len(out_shape) != 3:
        return None
    kernel, stride, padding, groups = candidate
    c_in, height, width = in_shape
    c_out = out_shape[0]
    if groups is None:  # pooling and scaling only: channel-diagonal, as groups as Lava's Conv can hold
        if c_out != c_in:
            return None
        groups = pool_conv_groups(c_in)
    geometry = ConvGeometry(in_shape=tuple(in_shape), out_channels=c_out, kernel=kernel, stride=stride,
                            padding=padding, dilation=(1, 1), groups=groups)
    if geometry.out_shape != tuple(out_shape):
        return None
    rows = [r for r in range(out_shape[1]) if r * stride[0] - padding[0] >= 0
            and r * stride[0] - padding[0] + kernel[0] <= height]
    cols = [c for c in range(out_shape[2]) if c * stride[1] - padding[1] >= 0
            and c * stride[1] - padding[1] + kernel[1] <= width]
    if not rows or not cols:
        return None
    r0, c0 = rows[0], cols[0]
    probes = torch.zeros((c_in * kernel[0] * kernel[1], *in_shape), dtype=torch.float64)
    index = 0
    for channel in range(c_in):
        for a in range(kernel[0]):
            for b in range(kernel[1]):
                probes[index, channel, r0 * stride[0] - padding[0] + a, c0 * stride[1] - padding[1] + b] = 1.0
                index += 1
    with torch.no_grad():
        constant = _forward(graph, chain, torch.zeros((1, *in_shape), dtype=torch.float64))[0]
        response = _forward(graph, chain, probes)[:, :, r0, c0] - constant[:, r0, c0]
    full = response.T.reshape(c_out, c_in, kernel[0], kernel[1])
    per_group_in, per_group_out = c_in // groups, c_out // groups
    weight = torch.stack([full[o, (o // per_group_out) * per_group_in:(o // per_group_out + 1) * per_group_in]
                          for o in range(c_out)])
    bias = constant[:, 0, 0]
    rng = np.random.default_rng(0)
    checks = torch.as_tensor(np.concatenate([(rng.random((2, *in_shape)) < 0.3), rng.normal(size=(2, *in_shape))]))
    with torch.no_grad():
        expected = _forward(graph, chain, checks)
        got = torch.nn.functional.conv2d(checks, weight, bias, stride=stride, padding=padding, groups=groups)
    scale = float(expected.abs().max()) or 1.0
    if not torch.allclose(expected, got, rtol=0, atol=1e-9 * scale):
        return None
    return Synapse("conv", weight.numpy(), bias.numpy(), tuple(in_shape), tuple(out_shape), geometry)


def _as_dense(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
              neuron: str) -> Synapse:
    """The path as a matrix over C-order flattened inputs and outputs (columns probed one input at a time)."""
    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    if n_in * n_out > MAX_DENSE_WEIGHTS:
        raise UserError(f"NIR node '{neuron}': the path into it composes to a {n_out} x {n_in} dense matrix, too "
                        "large to deploy; only pooling / 2-D convolution paths become netx conv layers")
    with torch.no_grad():
        constant = _forward(graph, chain, torch.zeros((1, *in_shape), dtype=torch.float64)).reshape(-1)
        columns = []
        for start in range(0, n_in, 1024):
            stop = min(start + 1024, n_in)
            basis = torch.zeros((stop - start, n_in), dtype=torch.float64)
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            columns.append(_forward(graph, chain, basis.reshape(-1, *in_shape)).reshape(stop - start, -1)
                           - constant)
    weight = torch.cat(columns).T.numpy()
    return Synapse("dense", weight, constant.numpy(), tuple(in_shape), (n_out,))


def compose_synapse(graph: FlatGraph, chain: tuple[str, ...], in_shape: tuple[int, ...],
                    out_shape: tuple[int, ...], neuron: str) -> Synapse:
    """A netx conv when the path is a convolution, else dense."""
    with torch.no_grad():
        produced = tuple(_forward(graph, chain, torch.zeros((1, *in_shape), dtype=torch.float64)).shape[1:])
    if math.prod(produced) != math.prod(out_shape):
        raise UserError(f"NIR node '{neuron}': receives {produced} values but has {tuple(out_shape)} neurons")
    if produced == tuple(out_shape):
        conv = _as_conv(graph, chain, in_shape, out_shape)
        if conv is not None:
            return conv
    return _as_dense(graph, chain, in_shape, out_shape, neuron)


# ----------------------------------------------------------------------------------------------- neurons


@dataclass(frozen=True)
class NeuronMapping:
    """A graph neuron in Loihi terms before the weight scale: decays, per-neuron input gain ``gain`` (graph
    input -> Loihi voltage units at s = 1), the voltage drive per step from the synapse bias
    (``bias_gain`` x bias) and from the leak (``drive``), and the shifted threshold."""

    neuron: str
    i_decay: int
    v_decay: int
    current_decay: float
    gain: np.ndarray
    bias_gain: np.ndarray
    drive: np.ndarray
    threshold: float
    notes: tuple[str, ...]


def _uniform(name: str, node: nir.NIRNode, field_name: str) -> float:
    values = np.asarray(getattr(node, field_name), dtype=np.float64)
    if values.size and not np.allclose(values, values.reshape(-1)[0], rtol=1e-6, atol=0):
        raise _refuse(name, node, f"{field_name} differs between neurons; netx holds one value per layer")
    return float(values.reshape(-1)[0])


def _decay(name: str, node: nir.NIRNode, what: str, tau_s: float, dt_s: float, notes: list[str]) -> tuple[int, float]:
    if not tau_s > 0:
        raise _refuse(name, node, f"{what} {tau_s} s is not positive")
    fraction = dt_s / tau_s
    if fraction > 1.0 + 1e-9:
        raise _refuse(name, node, f"{what} {tau_s * 1e3:g} ms is shorter than dt {dt_s * 1e3:g} ms: a decay above "
                                  f"1 per step cannot be expressed; import with --dt {tau_s * 1e3:g} or smaller")
    exact = fraction * DECAY_UNIT
    decay = int(round(exact))
    if abs(decay - exact) > 1e-6:
        effect = "the leak vanishes" if decay == 0 else f"tau {dt_s / (decay / DECAY_UNIT) * 1e3:.4g} ms"
        notes.append(f"{what}: decay dt/tau = {exact:.2f}/4096 rounded to {decay} ({effect})")
    return decay, fraction


def map_neuron(name: str, node: nir.NIRNode, dt_s: float) -> NeuronMapping:
    """Decays, gains and threshold of one neuron node (module docstring)."""
    notes: list[str] = []
    shape = np.asarray(node.v_threshold).shape
    r = np.broadcast_to(np.asarray(node.r, dtype=np.float64), shape)
    v_reset = _uniform(name, node, "v_reset")
    threshold = _uniform(name, node, "v_threshold") - v_reset
    if threshold <= 0:
        raise _refuse(name, node, "v_threshold is not above v_reset; the neuron would fire forever")
    if isinstance(node, nir.IF):
        i_decay, v_decay, alpha_i, alpha_v = DECAY_UNIT, 0, 1.0, 0.0
        gain, bias_gain, drive = r, r, np.zeros(shape)
        notes.append("reset: to v_reset, as the graph and Loihi do; Sinabs' IAF, the usual writer of IF nodes, "
                     "resets by subtracting the threshold, which NIR cannot express")
    elif isinstance(node, nir.LIF):
        v_decay, alpha_v = _decay(name, node, "tau", _uniform(name, node, "tau"), dt_s, notes)
        i_decay, alpha_i = DECAY_UNIT, 1.0
        gain = bias_gain = alpha_v * r
        drive = alpha_v * (np.asarray(node.v_leak, dtype=np.float64) - v_reset)
    else:
        i_decay, alpha_i = _decay(name, node, "tau_syn", _uniform(name, node, "tau_syn"), dt_s, notes)
        v_decay, alpha_v = _decay(name, node, "tau_mem", _uniform(name, node, "tau_mem"), dt_s, notes)
        w_in = np.broadcast_to(np.asarray(node.w_in, dtype=np.float64), shape)
        gain = alpha_v * r * alpha_i * w_in
        bias_gain = alpha_v * r * w_in
        drive = alpha_v * (np.asarray(node.v_leak, dtype=np.float64) - v_reset)
    if v_reset != 0:
        notes.append(f"v_reset {v_reset:g}: deployed as a voltage shift (threshold and leak target minus "
                     f"v_reset); Loihi starts at the shifted {-v_reset:g}, the graph at 0")
    if np.any(drive != 0) and not isinstance(node, nir.IF):
        notes.append("v_leak: a constant voltage bias (exact)")
    return NeuronMapping(name, i_decay, v_decay, alpha_i, np.asarray(gain), np.asarray(bias_gain),
                         np.broadcast_to(drive, shape).copy(), threshold, tuple(notes))


# ------------------------------------------------------------------------------------------ quantisation


@dataclass(frozen=True)
class ScaleChoice:
    """The per-layer weight scale s = 64 * 2^exponent and what it did to the weights."""

    exponent: int
    weights: list[np.ndarray]
    v_th_mant: int
    clipped: int
    vanished: int

    @property
    def scale(self) -> float:
        return 64.0 * 2.0 ** self.exponent


def quantize_weights(weights: np.ndarray, scale: float) -> np.ndarray:
    """Even integers in [-256, 254]: ``2 round(scale w / 2)``, clipped."""
    return np.clip(2 * np.round(weights * scale / 2), WEIGHT_MIN, WEIGHT_MAX).astype(np.int64)


def choose_scale(weights: list[np.ndarray], threshold: float) -> ScaleChoice:
    """The exponent that clips or zeroes the fewest weights, then rounds them least, then is nearest 0."""
    best_key, best = None, None
    total_magnitude = sum(float(np.abs(w).sum()) for w in weights) or 1.0
    for exponent in SCALE_EXPONENTS:
        scale = 64.0 * 2.0 ** exponent
        v_th = int(round(threshold * scale))
        if not 1 <= v_th <= MAX_VTH_MANT:
            continue
        quantized = [quantize_weights(w, scale) for w in weights]
        raw = [2 * np.round(w * scale / 2) for w in weights]
        clipped = sum(int(np.count_nonzero((r < WEIGHT_MIN) | (r > WEIGHT_MAX))) for r in raw)
        vanished = sum(int(np.count_nonzero((w != 0) & (q == 0))) for w, q in zip(weights, quantized))
        error = sum(float(np.abs(q / scale - w).sum()) for w, q in zip(weights, quantized)) / total_magnitude
        error += abs(v_th / scale - threshold) / threshold
        key = (clipped + vanished, round(error, 9), abs(exponent))
        if best_key is None or key < best_key:
            best_key, best = key, ScaleChoice(exponent, quantized, v_th, clipped, vanished)
    if best is None:
        raise ValueError(f"no weight scale represents the threshold {threshold}")
    return best


# ----------------------------------------------------------------------------------------------- import


def _neuron_shape(node: nir.NIRNode) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(node.v_threshold).shape)


def _row_values(values: np.ndarray, shape: tuple[int, ...], synapse: Synapse, name: str, node,
                what: str) -> np.ndarray:
    """Per-neuron values as the layer stores them: per neuron (dense) or per output channel (conv)."""
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), shape)
    if synapse.kind == "dense":
        return values.reshape(-1)
    per_channel = values.reshape(synapse.out_shape[0], -1)
    if not np.allclose(per_channel, per_channel[:, :1], rtol=1e-9, atol=0):
        raise _refuse(name, node, f"{what} differs within a channel; a netx conv layer shares it per channel")
    return per_channel[:, 0]


def build_layer(graph: FlatGraph, path: LayerPath, index: int, in_shape: tuple[int, ...], dt_s: float,
                flatten_before: bool) -> tuple[NetxLayer, ImportedLayer]:
    """The netx layer of one :class:`LayerPath` and its import-table row."""
    node = graph.nodes[path.neuron]
    shape = _neuron_shape(node)
    mapping = map_neuron(path.neuron, node, dt_s)
    synapse = compose_synapse(graph, path.synapse, in_shape, shape, path.neuron)
    if path.recurrent is not None and synapse.kind == "conv":  # netx recurrence exists for dense layers only
        synapse = _as_dense(graph, path.synapse, in_shape, shape, path.neuron)
    notes = list(mapping.notes)
    gain = _row_values(mapping.gain, shape, synapse, path.neuron, node, "the input gain (R, w_in)")
    bias_gain = _row_values(mapping.bias_gain, shape, synapse, path.neuron, node, "R * w_in")
    drive = _row_values(mapping.drive, shape, synapse, path.neuron, node, "v_leak")
    row = (slice(None),) + (None,) * (synapse.weight.ndim - 1)
    weights = [synapse.weight * gain[row]]
    bias = synapse.bias * bias_gain
    recurrent_nodes: tuple[str, ...] = ()
    if path.recurrent is not None:
        loop = compose_synapse(graph, path.recurrent, shape, shape, path.neuron)
        if loop.kind != "dense":
            loop = _as_dense(graph, path.recurrent, shape, shape, path.neuron)
        weights.append(loop.weight * gain.reshape(-1)[:, None])
        bias = bias + loop.bias * bias_gain
        recurrent_nodes = path.recurrent
    if np.any(bias != 0):
        notes.append("bias: added to the voltage each step (Loihi has no current bias); exact" if
                     mapping.current_decay == 1.0 else
                     "bias: the graph filters it through the synaptic current, Loihi adds it to the voltage: same "
                     "steady state, different first steps")
    choice = choose_scale(weights, mapping.threshold)
    exact_threshold = mapping.threshold * choice.scale
    if abs(choice.v_th_mant - exact_threshold) > 1e-6 * exact_threshold:
        notes.append(f"threshold: {exact_threshold:.3f} rounded to vThMant {choice.v_th_mant}")
    bias_mant = np.round((bias + drive) * choice.scale).astype(np.int64)
    cuba = CubaParams(mapping.i_decay, mapping.v_decay, choice.v_th_mant)
    common = dict(index=index, neuron=cuba, bias=bias_mant if np.any(bias_mant) else None, name=path.neuron)
    if synapse.kind == "conv":
        g = synapse.geometry
        layer = NetxLayer(kind="conv", in_shape=g.in_shape, out_shape=g.out_shape, weight=choice.weights[0],
                          kernel=g.kernel, stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups,
                          **common)
    else:
        layer = NetxLayer(kind="dense_rec" if path.recurrent is not None else "dense",
                          in_shape=(math.prod(in_shape),), out_shape=(math.prod(shape),), weight=choice.weights[0],
                          weight_rec=choice.weights[1] if path.recurrent is not None else None,
                          flatten_before=flatten_before, **common)
    row_record = ImportedLayer(
        name=path.neuron, kind=layer.kind, neuron=type(node).__name__,
        nodes=(*path.synapse, path.neuron, *recurrent_nodes), shape=tuple(layer.out_shape),
        i_decay=cuba.i_decay, v_decay=cuba.v_decay, v_th_mant=cuba.v_th_mant, weight_scale=choice.scale,
        weights=sum(int(np.count_nonzero(w)) for w in weights), clipped=choice.clipped, vanished=choice.vanished,
        notes=tuple(notes))
    return layer, row_record


def resolve_input_shape(graph: FlatGraph, requested: tuple[int, ...] | None) -> tuple[int, ...]:
    """The Input node's shape, or ``--input`` when given (it must hold the same number of values)."""
    declared = graph.input_shape()
    if requested is None:
        return declared
    if math.prod(requested) != math.prod(declared):
        raise UserError(f"--input {requested[1]}x{requested[2]}x{requested[0]} has {math.prod(requested)} values "
                        f"but the graph's Input node '{graph.input_node}' takes {declared}")
    return tuple(requested)


def plan_import(graph: nir.NIRGraph, dt_ms: float) -> tuple[list[NetxLayer], list[ImportedLayer], tuple[int, ...]]:
    """Netx layers and import-table rows for ``graph`` at ``dt_ms``, and the chip's input shape: the Input
    node's (C, H, W) when the first layer is a convolution, else flat (n,)."""
    if dt_ms <= 0:
        raise UserError(f"--dt must be positive, got {dt_ms}")
    flat = flatten_graph(graph)
    layers, rows = [], []
    in_shape = flat.input_shape()
    for index, path in enumerate(layer_paths(flat)):
        layer, row = build_layer(flat, path, index, in_shape, dt_ms / 1000.0,
                                 flatten_before=bool(layers) and len(in_shape) > 1)
        layers.append(layer)
        rows.append(row)
        in_shape = _neuron_shape(flat.nodes[path.neuron])
    declared = flat.input_shape()
    return layers, rows, declared if layers[0].kind == "conv" else (math.prod(declared),)


def import_nir(path: Path, out_dir: Path, *, dt_ms: float | None = None,
               input_shape: tuple[int, ...] | None = None, steps: int | None = None) -> NirImport:
    """Write ``out_dir`` (model.net, model.nir, nir_import.json) for the NIR graph at ``path``."""
    path, out_dir = Path(path), Path(out_dir)
    atomic.check_writable_dir(out_dir)
    folders.check_output_dir(out_dir, (folders.IMPORTED_RUN,))  # never a user's folder or a training run
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be at least 1 (got {steps})")
    graph = read_graph(path)
    data_shape = resolve_input_shape(flatten_graph(graph), input_shape)
    dt = DEFAULT_DT_MS if dt_ms is None else float(dt_ms)
    layers, rows, chip_input = plan_import(graph, dt)
    dataset = DATASET_INPUTS.get(tuple(data_shape))
    record = NirImport(source=str(path), dt_ms=dt, input_shape=tuple(chip_input), dataset=dataset,
                       steps=steps or int(math.ceil(SAMPLE_DURATION_MS / dt)), layers=tuple(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_netx(out_dir / NET_FILE, layers, input_shape=chip_input)
    with atomic.atomic_path(out_dir / GRAPH_FILE) as tmp:
        shutil.copyfile(path, tmp)
    atomic.write_json(out_dir / IMPORT_RECORD, record.to_dict())
    return record


def print_import_table(record: NirImport, out_dir: Path, console) -> None:
    table = Table(title=f"NIR import: {record.source} -> {out_dir} (dt {record.dt_ms:g} ms)")
    for column in ("layer", "type", "NIR nodes", "neurons", "iDecay", "vDecay", "vThMant", "scale", "weights",
                   "clipped", "vanished", "differences from the graph"):
        table.add_column(column, overflow="fold")
    for row in record.layers:
        table.add_row(row.name, f"{row.kind} ({row.neuron})", ", ".join(row.nodes), str(math.prod(row.shape)),
                      str(row.i_decay), str(row.v_decay), str(row.v_th_mant), f"{row.weight_scale:g}",
                      str(row.weights), str(row.clipped), str(row.vanished), "; ".join(row.notes) or "none")
    console.print(table)
