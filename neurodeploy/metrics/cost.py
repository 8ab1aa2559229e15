"""Parameters, memory and operations of an architecture per family (docs/cost.md).

Companion paper (Deng et al., "Rethinking the performance comparison between SNNs and ANNs", Neural
Networks 2020), eq. 8-9, inference only:

    memory   ANN  M = M_w + M_a                SNN  M = M_w + M_p + M_s                        [bit]
    compute  ANN  C = C_mul + C_add            SNN  C = C_add (one accumulate per spike and synapse)

Source paper (He et al., "Comparing SNNs and RNNs on neuromorphic vision datasets", 2020) Table XIV: an RNN
layer of M units on N inputs does O(MN + M^2) MACs per step, an LSTM layer O(4(MN + M^2)).

Conventions (every number of a :class:`CostReport` follows them; ``notes`` repeats them in the report):

- Op kinds are disjoint: ``macs`` multiply-accumulates; ``muls`` / ``adds`` only the multiplies / additions
  that are not part of a MAC (biases, gate products, pooling, SNN accumulates). So energy is
  ``macs e_mac + muls e_mul + adds e_add`` with nothing counted twice, and the companion paper's
  C_mul + C_add = 2 macs + muls + adds. Nonlinearities (tanh, sigmoid, threshold) are not counted.
- Dense layer: fan_in x fan_out MACs per step; conv: out_H out_W out_C k k in_C (padded taps included,
  as frameworks compute them); max pooling: out x (k^2 - 1) comparisons, kept apart in
  ``comparisons_per_step`` and excluded from MACs/adds; average pooling: out x (k^2 - 1) adds + out muls.
- snn: SLAYER CUBA blocks. No biases (``slayer.synapse.Dense/Conv`` are ``Conv3d(..., bias=False)``; the
  optional MeanOnlyBatchNorm bias is a running-mean buffer, not a parameter; the two neuron decays of a
  block are non-trainable parameters, not counted). Both MPk and APk become SLAYER's Pool block: fixed,
  non-trainable k x k sum weights (not counted) feeding CUBA neurons. Op counts are the DENSE UPPER BOUND
  per step (every input neuron spikes at every step): adds = stored synapses = sum of fan-outs (padded conv
  taps excluded); real synops scale with spikes (:func:`synops_per_sample`). Neuron updates: neurons per step.
- rnn / lstm: every hidden dense layer gets dense recurrence (hidden x hidden, x4 gates for the LSTM), every
  conv layer a 3x3 convolution over its hidden state (ConvRNN / ConvLSTM); pooling has no recurrence; the
  final layer is a plain linear readout (no recurrence). Dense cells count PyTorch's two bias vectors
  (b_ih + b_hh of ``nn.RNNCell`` / ``nn.LSTMCell``) unless ``torch_cell_biases=False`` (the equations'
  single b); conv cells and readouts have one. The LSTM adds per unit 1 add (c = f c + i g) and 3 muls.
- ann: the same layers feed-forward, with biases, no recurrence.
- ann with ``frames`` (companion paper Models 4 and 5, :mod:`neurodeploy.data.frames`): the ANN runs once per
  sample on frames made from the events, so "per step" is per sample. ``binary``: T binary frames unfolded
  into one (1, T, C*H*W) image, and every k x k convolution has stride 2 (the paper's Model-4) with
  floor(n / 2) outputs per side, the paper's arithmetic (Table 6); ``intensity``: one (C, H, W) frame of
  normalised counts, stride 1.
- tcnn (Deng Table 7's temporal CNN, :mod:`neurodeploy.models.tcnn`): convolutions k x k x k over (T, H, W)
  ('same' padding, padded taps included), pooling k x k x k; one bias per unit; the network runs once per
  sample on all T steps, so "per step" is per sample (``steps`` = T is part of the input shape).
- rsnn (docs/rsnn.md): the front end (layers up to the last ``nCLk``) counted as the lstm family's ConvLSTM
  and pooling layers (host, float MACs), the classifier behind the boundary as the snn family (chip, adds =
  dense synop upper bound); the boundary's input channels follow the aggregation (``stack``: C x T).
- Memory (eq. 8): weights x bits (biases ignored unless ``include_bias``); state: SNN one membrane
  potential per neuron, ANN one activation per output value (LSTM: h and c), x bits; spikes (SNN only):
  the most spikes at one step, statically bounded by the number of neurons, x spike_bits. The input events
  are not counted. With a profile, ``memory_bits_chip`` repeats this at the chip's bit widths (SNN state:
  u and v per neuron).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from neurodeploy.data.frames import FRAME_KINDS, frame_input_shape
from neurodeploy.errors import OptionError, UserError
from neurodeploy.metrics.energy import HostChipEnergy, host_chip_energy
from neurodeploy.metrics.hardware import HardwareProfile, LayerFootprint, load_profile
from neurodeploy.metrics.placement import ConvShape
from neurodeploy.models.arch import Architecture, ConvLayer, ConvLSTMLayer, DenseLayer, Layer, PoolLayer
from neurodeploy.models.frame_ann import BINARY_FRAMES_STRIDE, frame_layers
from neurodeploy.models.rsnn import DEFAULT_AGGREGATION, split_rsnn
from neurodeploy.models.tcnn import tcnn_shapes

FAMILIES = ("snn", "rnn", "lstm", "ann", "rsnn", "tcnn")
SPLIT_PROFILE = "cmos45nm"  # the per-op energies SNN-vs-ANN papers price both parts with (E_MAC, E_AC)
RECURRENT_KERNEL = 3  # source paper: ConvRNN / ConvLSTM recurrence is a 3x3 convolution over the hidden state
# layer names as snn.py / recurrent.py
_NAME_PREFIX = {DenseLayer: "fc", ConvLayer: "conv", PoolLayer: "pool", ConvLSTMLayer: "convlstm"}


@dataclass(frozen=True)
class LayerCost:
    """Static cost of one layer; ops are per time step."""

    name: str
    kind: str  # dense | conv | maxpool | avgpool | sumpool (SNN) | readout
    recurrence: str  # none | dense | conv3x3
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    neurons: int
    weights: int
    params: int
    macs_per_step: int
    muls_per_step: int
    adds_per_step: int
    comparisons_per_step: int
    neuron_updates_per_step: int
    synapses: int  # stored connections: SNN sum of fan-outs, others the weights
    fan_in: int  # input axons (weights) per neuron
    state_values: int  # membrane potentials (SNN) or activations / h, c (ANN family)
    spike_values: int  # SNN: most spikes at one step (upper bound: neurons)
    memory_bits: dict[str, int]  # weights, state, spikes

    def __post_init__(self):
        for name in ("neurons", "weights", "params", "macs_per_step", "muls_per_step", "adds_per_step",
                     "comparisons_per_step", "neuron_updates_per_step", "synapses", "fan_in"):
            if getattr(self, name) < 0:
                raise ValueError(f"{self.name}: {name} must be >= 0")

    @property
    def activations(self) -> int:
        """Values this layer outputs per step, pooling outputs included (companion paper Table 6)."""
        return math.prod(self.out_shape)

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["in_shape"], out["out_shape"] = list(self.in_shape), list(self.out_shape)
        out["memory_bits"] = dict(self.memory_bits)
        out["activations"] = self.activations
        return out


_TOTALS = ("weights", "params", "neurons", "activations", "macs_per_step", "muls_per_step", "adds_per_step",
           "comparisons_per_step", "neuron_updates_per_step")


@dataclass(frozen=True)
class CostReport:
    """Per-layer costs and totals of one architecture in one family."""

    family: str
    arch: str
    input_shape: tuple[int, int, int]
    bits: int
    spike_bits: int
    layers: tuple[LayerCost, ...]
    memory_bits_chip: dict[str, int] | None = None
    chip_profile: str | None = None
    notes: tuple[str, ...] = ()
    host_layers: int = 0  # rsnn: the first ``host_layers`` layers are the front end on the host
    frames: str | None = None  # ann on event frames: binary | intensity (companion paper Models 4 / 5)

    def host_chip_energy(self, profile: HardwareProfile) -> HostChipEnergy:
        """rsnn, per step: front-end MACs x E_MAC and the classifier's dense synop bound x E_AC."""
        host, chip = self.layers[:self.host_layers], self.layers[self.host_layers:]
        return host_chip_energy(sum(layer.macs_per_step for layer in host),
                                sum(layer.adds_per_step for layer in chip), profile)

    def _sum(self, attr: str) -> int:
        return sum(getattr(layer, attr) for layer in self.layers)

    weights = property(lambda self: self._sum("weights"))
    params = property(lambda self: self._sum("params"))
    neurons = property(lambda self: self._sum("neurons"))
    activations = property(lambda self: self._sum("activations"))
    macs_per_step = property(lambda self: self._sum("macs_per_step"))
    muls_per_step = property(lambda self: self._sum("muls_per_step"))
    adds_per_step = property(lambda self: self._sum("adds_per_step"))
    comparisons_per_step = property(lambda self: self._sum("comparisons_per_step"))
    neuron_updates_per_step = property(lambda self: self._sum("neuron_updates_per_step"))

    @property
    def memory_bits(self) -> dict[str, int]:
        """{weights, state, spikes, total} at ``bits`` / ``spike_bits`` (eq. 8)."""
        out = {key: sum(layer.memory_bits[key] for layer in self.layers)
               for key in ("weights", "state", "spikes")}
        out["total"] = sum(out.values())
        return out

    def footprints(self, weight_bits: int | None = None) -> list[LayerFootprint]:
        """Per-layer chip footprints for :func:`neurodeploy.metrics.hardware.map_resources` (layers with neurons)."""
        return [LayerFootprint(layer.name, layer.neurons, layer.synapses, layer.fan_in, weight_bits,
                               conv=_conv_shape(layer)) for layer in self.layers if layer.neurons]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "family": self.family, "arch": self.arch, "input_shape": list(self.input_shape),
            "bits": self.bits, "spike_bits": self.spike_bits,
        }
        out.update({attr: getattr(self, attr) for attr in _TOTALS})
        out["memory_bits"] = self.memory_bits
        out["memory_bits_chip"] = self.memory_bits_chip
        out["chip_profile"] = self.chip_profile
        out["layers"] = [layer.to_dict() for layer in self.layers]
        out["notes"] = list(self.notes)
        out["host_layers"] = self.host_layers
        out["frames"] = self.frames
        return out


def _conv_shape(layer: LayerCost) -> ConvShape | None:
    """The convolution a conv / sumpool SNN layer deploys as (kernel from its fan-in), for the core mapping."""
    if layer.kind == "conv":
        kernel = math.isqrt(layer.fan_in // layer.in_shape[0])
        return ConvShape(layer.in_shape, layer.out_shape, (kernel, kernel))
    if layer.kind == "sumpool":
        size = math.isqrt(layer.fan_in)
        return ConvShape(layer.in_shape, layer.out_shape, (size, size), stride=(size, size), groups=layer.in_shape[0])
    return None


def layer_name(index: int, layer: Layer) -> str:
    """``fc<i>`` / ``conv<i>`` / ``pool<i>``, i = position in the architecture (as the model builders)."""
    return f"{_NAME_PREFIX[type(layer)]}{index}"


def _covered(size_in: int, size_out: int, kernel: int, padding: int) -> np.ndarray:
    """For each input row, how many output rows of a stride-1 k x k conv read it."""
    rows = np.arange(size_in)
    low = np.maximum(rows + padding - kernel + 1, 0)
    high = np.minimum(rows + padding, size_out - 1)
    return np.maximum(high - low + 1, 0)


def layer_fan_out(layer: Layer, in_shape: tuple[int, ...]) -> np.ndarray:
    """Outgoing synapses of every input neuron, shape (n_in,) in (C, H, W) order.

    Dense: fan_out = units. Conv (stride 1, padding k // 2): out_C x (output rows reading the input row) x
    (output columns reading the input column), so border inputs reach fewer outputs. Pool (non-overlapping
    k x k, SLAYER sum pool): 1 for inputs inside the pooled area, 0 for the cropped remainder.
    """
    out_shape = layer.output_shape(tuple(in_shape))
    n_in = math.prod(in_shape)
    if isinstance(layer, DenseLayer):
        return np.full(n_in, layer.units, dtype=np.int64)
    c, h, w = in_shape
    if isinstance(layer, ConvLayer):
        rows = _covered(h, out_shape[1], layer.kernel, layer.padding)
        cols = _covered(w, out_shape[2], layer.kernel, layer.padding)
        per_pixel = layer.channels * np.outer(rows, cols)
    else:
        rows = (np.arange(h) < out_shape[1] * layer.size).astype(np.int64)
        cols = (np.arange(w) < out_shape[2] * layer.size).astype(np.int64)
        per_pixel = np.outer(rows, cols)
    return np.broadcast_to(per_pixel, (c, h, w)).reshape(-1).astype(np.int64)


def _snn_layer(name: str, layer: Layer, in_shape, out_shape, bits: int, spike_bits: int) -> LayerCost:
    neurons = math.prod(out_shape)
    synapses = int(layer_fan_out(layer, in_shape).sum())
    if isinstance(layer, DenseLayer):
        kind, weights, fan_in = "dense", math.prod(in_shape) * layer.units, math.prod(in_shape)
    elif isinstance(layer, ConvLayer):
        kind, fan_in = "conv", in_shape[0] * layer.kernel**2
        weights = fan_in * layer.channels
    else:
        kind, weights, fan_in = "sumpool", 0, layer.size**2
    return LayerCost(
        name=name, kind=kind, recurrence="none", in_shape=tuple(in_shape), out_shape=tuple(out_shape),
        neurons=neurons, weights=weights, params=weights, macs_per_step=0, muls_per_step=0,
        adds_per_step=synapses, comparisons_per_step=0, neuron_updates_per_step=neurons, synapses=synapses,
        fan_in=fan_in, state_values=neurons, spike_values=neurons,
        memory_bits={"weights": weights * bits, "state": neurons * bits, "spikes": neurons * spike_bits},
    )


def _ann_layer(name: str, family: str, layer: Layer, in_shape, out_shape, is_output: bool, bits: int,
               include_bias: bool, torch_cell_biases: bool) -> LayerCost:
    outputs = math.prod(out_shape)
    if isinstance(layer, PoolLayer):
        window = layer.size**2
        is_max = layer.mode == "max"
        return LayerCost(
            name=name, kind="maxpool" if is_max else "avgpool", recurrence="none", in_shape=tuple(in_shape),
            out_shape=tuple(out_shape), neurons=0, weights=0, params=0, macs_per_step=0,
            muls_per_step=0 if is_max else outputs, adds_per_step=0 if is_max else outputs * (window - 1),
            comparisons_per_step=outputs * (window - 1) if is_max else 0, neuron_updates_per_step=0,
            synapses=0, fan_in=window, state_values=outputs, spike_values=0,
            memory_bits={"weights": 0, "state": outputs * bits, "spikes": 0},
        )
    recurrent = family in ("rnn", "lstm") and not is_output
    gates = 4 if family == "lstm" and recurrent else 1
    if isinstance(layer, DenseLayer):
        units = layer.units
        fan_in = math.prod(in_shape) + (units if recurrent else 0)
        weights = gates * units * fan_in
        macs = weights
        bias_vectors = 2 if recurrent and torch_cell_biases else 1
        recurrence = "dense" if recurrent else "none"
    else:
        units = layer.channels
        fan_in = in_shape[0] * layer.kernel**2 + (units * RECURRENT_KERNEL**2 if recurrent else 0)
        weights = gates * units * fan_in
        macs = weights * out_shape[1] * out_shape[2]
        bias_vectors = 1
        recurrence = "conv3x3" if recurrent else "none"
    biases = bias_vectors * gates * units
    lstm = family == "lstm" and recurrent
    state_values = outputs * (2 if lstm else 1)
    stored_weights = weights + (biases if include_bias else 0)
    return LayerCost(
        name=name, kind="readout" if is_output else layer.kind, recurrence=recurrence,
        in_shape=tuple(in_shape), out_shape=tuple(out_shape), neurons=outputs, weights=weights,
        params=weights + biases, macs_per_step=macs, muls_per_step=3 * outputs if lstm else 0,
        adds_per_step=gates * outputs + (outputs if lstm else 0), comparisons_per_step=0,
        neuron_updates_per_step=0, synapses=weights, fan_in=fan_in, state_values=state_values, spike_values=0,
        memory_bits={"weights": stored_weights * bits, "state": state_values * bits, "spikes": 0},
    )


def _chip_memory(family: str, layers: Sequence[LayerCost], profile: HardwareProfile,
                 include_bias: bool) -> dict[str, int]:
    keys = ("weight", "state_u", "state_v", "spike") if family == "snn" else ("weight", "activation")
    missing = [key for key in keys if profile.bit_width(key) is None]
    if missing:
        raise UserError(f"{profile.path or profile.name}: profile has no bit width for {', '.join(missing)} "
                        f"(needed for {family} memory); add bits.{missing[0]} or pick another profile")
    stored = sum(layer.params if include_bias else layer.weights for layer in layers)
    out = {"weights": stored * profile.bit_width("weight")}
    if family == "snn":
        neurons = sum(layer.neurons for layer in layers)
        out["state"] = neurons * (profile.bit_width("state_u") + profile.bit_width("state_v"))
        out["spikes"] = sum(layer.spike_values for layer in layers) * profile.bit_width("spike")
    else:
        out["state"] = sum(layer.state_values for layer in layers) * profile.bit_width("activation")
        out["spikes"] = 0
    out["total"] = sum(out.values())
    return out


def _frame_notes(frames: str | None, steps: int) -> list[str]:
    if frames == "binary":
        return [(f"ann on binary frames (companion paper Model-4): T = {steps} binary frames unfolded into one "
                 f"1 x {steps} x C*H*W image; convolutions stride {BINARY_FRAMES_STRIDE}, floor(n / "
                 f"{BINARY_FRAMES_STRIDE}) outputs per side; the ANN runs once per sample (ops per sample)")]
    if frames == "intensity":
        return [("ann on intensity frames (companion paper Model-5): event counts accumulated over the window "
                 "and normalised, one C x H x W frame; the ANN runs once per sample (ops per sample)")]
    return []


def _notes(family: str, include_bias: bool, torch_cell_biases: bool) -> tuple[str, ...]:
    notes = [("ops per time step; op kinds are disjoint (a MAC is not also counted as a mul and an add); "
              "nonlinearities not counted; input events not counted in memory"),
             "memory (companion paper eq. 8): " + ("biases included" if include_bias else "biases ignored")]
    if family == "snn":
        notes += [("snn adds = dense upper bound per step (every input neuron spikes every step); real "
                   "synops scale with spikes (measured by `neurodeploy run`); spikes memory = upper bound (all "
                   "neurons spike at once)"),
                  ("snn params: no biases (SLAYER synapses are bias-free); pooling = SLAYER Pool block with "
                   "fixed non-trainable sum weights (not counted) and CUBA neurons, for both MPk and APk")]
    else:
        notes.append("max pooling: comparisons counted apart (comparisons_per_step), not in MACs or adds")
    if family == "rsnn":
        notes.append("rsnn: front-end layers (host) counted as the lstm family's ConvLSTM, classifier layers "
                     "(chip) as the snn family; the boundary's count encoding is not counted")
    if family in ("rnn", "lstm"):
        notes.append(f"{family}: dense layers have dense recurrence, conv layers a 3x3 conv over the hidden "
                     "state (ConvRNN/ConvLSTM); the final layer is a plain linear readout (no recurrence)")
        notes.append("dense cells count " + ("PyTorch's two bias vectors (b_ih + b_hh)" if torch_cell_biases
                                              else "one bias vector per gate (the equations' b)"))
    return tuple(notes)


def static_cost(arch: Architecture, input_shape: tuple[int, int, int], family: str, *, bits: int = 32,
                spike_bits: int = 1, profile: HardwareProfile | None = None, include_bias: bool = False,
                torch_cell_biases: bool = True, aggregation: str = DEFAULT_AGGREGATION,
                steps: int = 1, frames: str | None = None) -> CostReport:
    """Parameters, memory (eq. 8) and per-step operations (eq. 9, Table XIV) of ``arch`` in ``family``.

    ``profile`` adds ``memory_bits_chip`` at the chip's bit widths (rsnn: of the chip part). ``aggregation``
    and ``steps`` (T) fix an rsnn's boundary shape. ``frames`` (family ann only): binary | intensity, the
    companion paper's Models 4 / 5 on event data of sensor shape ``input_shape``, ``steps`` = T binary
    frames. See the module docstring for every counting convention.
    """
    if family not in FAMILIES:
        raise UserError(f"unknown family '{family}'; choose one of {', '.join(FAMILIES)}")
    if bits < 1 or spike_bits < 1:
        raise UserError("bits and spike_bits must be >= 1")
    if family != "rsnn" and arch.has_convlstm:
        raise UserError(f"{arch.notation()}: nCLk (ConvLSTM) layers are the front end of the rsnn family; use "
                        "--family rsnn")
    if family == "tcnn":
        if frames is not None:
            raise OptionError(f"--frames {frames} is the input of a frame-based ANN (--family ann); the temporal CNN "
                              "reads the binned frames themselves")
        return _tcnn_cost(arch, tuple(input_shape), steps, bits, include_bias, profile)
    run_layers = arch.layers
    if frames is not None:
        if frames not in FRAME_KINDS:
            raise OptionError(f"unknown --frames '{frames}'; choose one of {', '.join(FRAME_KINDS)}")
        if family != "ann":
            raise OptionError(f"--frames {frames} is the input of a frame-based ANN; use it with --family ann "
                              f"(got --family {family})")
        input_shape = frame_input_shape(frames, tuple(input_shape), steps)
        run_layers = frame_layers(arch, frames)
    shapes = Architecture(run_layers).shapes(tuple(input_shape))
    last, front = len(arch.layers) - 1, 0
    if family == "rsnn":  # the classifier's input is the aggregated boundary, not the last front-end output
        split = split_rsnn(arch, tuple(input_shape), aggregation, steps)
        front = len(split.front)
        shapes = [*shapes[:front], *split.classifier.shapes(split.boundary_shape)]
    layers = []
    for index, (layer, (in_shape, out_shape)) in enumerate(zip(run_layers, shapes)):
        name = layer_name(index, arch.layers[index])
        if family == "snn" or (family == "rsnn" and index >= front):
            layers.append(_snn_layer(name, layer, in_shape, out_shape, bits, spike_bits))
        else:
            layers.append(_ann_layer(name, "lstm" if family == "rsnn" else family, layer, in_shape, out_shape,
                                     index == last, bits, include_bias, torch_cell_biases))
    chip = None
    if profile is not None:
        chip = (_chip_memory("snn", layers[front:], profile, include_bias) if family == "rsnn"
                else _chip_memory(family, layers, profile, include_bias))
    return CostReport(family, arch.notation(), tuple(input_shape), bits, spike_bits, tuple(layers), chip,
                      profile.name if profile is not None else None,
                      _notes(family, include_bias, torch_cell_biases) + tuple(_frame_notes(frames, steps)),
                      host_layers=front, frames=frames)


def _tcnn_cost(arch: Architecture, input_shape: tuple[int, int, int], steps: int, bits: int, include_bias: bool,
               profile: HardwareProfile | None) -> CostReport:
    """:func:`static_cost` of the temporal CNN: 3D convolutions and pooling over (C, T, H, W) maps."""
    layers, last = [], len(arch.layers) - 1
    for index, (layer, (in_shape, out_shape)) in enumerate(zip(arch.layers, tcnn_shapes(arch, input_shape, steps))):
        outputs = math.prod(out_shape)
        if isinstance(layer, PoolLayer):
            window, is_max = layer.size**3, layer.mode == "max"
            layers.append(LayerCost(
                name=layer_name(index, layer), kind="maxpool" if is_max else "avgpool", recurrence="none",
                in_shape=in_shape, out_shape=out_shape, neurons=0, weights=0, params=0, macs_per_step=0,
                muls_per_step=0 if is_max else outputs, adds_per_step=0 if is_max else outputs * (window - 1),
                comparisons_per_step=outputs * (window - 1) if is_max else 0, neuron_updates_per_step=0,
                synapses=0, fan_in=window, state_values=outputs, spike_values=0,
                memory_bits={"weights": 0, "state": outputs * bits, "spikes": 0}))
            continue
        dense = isinstance(layer, DenseLayer)
        units = layer.units if dense else layer.channels
        fan_in = math.prod(in_shape) if dense else in_shape[0] * layer.kernel**3
        weights = units * fan_in
        layers.append(LayerCost(
            name=layer_name(index, layer), kind="readout" if index == last else ("dense" if dense else "conv"),
            recurrence="none", in_shape=in_shape, out_shape=out_shape, neurons=outputs, weights=weights,
            params=weights + units, macs_per_step=weights if dense else weights * math.prod(out_shape[1:]),
            muls_per_step=0, adds_per_step=outputs, comparisons_per_step=0, neuron_updates_per_step=0,
            synapses=weights, fan_in=fan_in, state_values=outputs, spike_values=0,
            memory_bits={"weights": (weights + (units if include_bias else 0)) * bits, "state": outputs * bits,
                         "spikes": 0}))
    chip = _chip_memory("tcnn", layers, profile, include_bias) if profile is not None else None
    notes = _notes("tcnn", include_bias, True) + (
        f"tcnn (Deng Table 7): 3D convolutions / pooling over (C, T={steps}, H, W); the network runs once per "
        "sample (ops per sample); one bias per unit, its add counted in adds",)
    return CostReport("tcnn", arch.notation(), tuple(input_shape), bits, 1, tuple(layers), chip,
                      profile.name if profile is not None else None, notes)


def companion_ops(cost: CostReport) -> dict[str, int]:
    """An ANN's #Add and #Mul per step as the companion paper counts them (Deng Table 6, docs/cost.md): each
    MAC is one multiply and one add, an average pool adds each of its input values once and multiplies each
    output once (by 1 / k^2), biases are not counted. Family ann only (an SNN's #Add is its measured synops)."""
    if cost.family != "ann":
        raise UserError(f"companion_ops counts a feed-forward ANN's operations (family ann), not {cost.family}")
    pool_inputs = sum(math.prod(layer.in_shape) for layer in cost.layers if layer.kind == "avgpool")
    pool_outputs = sum(layer.activations for layer in cost.layers if layer.kind == "avgpool")
    return {"adds": cost.macs_per_step + pool_inputs, "muls": cost.macs_per_step + pool_outputs}


def synops_per_sample(input_spikes: np.ndarray, fan_out: np.ndarray) -> float:
    """Mean over samples of sum_j (input spikes of neuron j, summed over T) x fan_out_j.

    ``input_spikes`` is (N, n_in) or (n_in,) for one sample; ``fan_out`` is (n_in,).
    """
    counts = np.asarray(input_spikes, dtype=np.float64)
    counts = counts[None, :] if counts.ndim == 1 else counts
    fan_out = np.asarray(fan_out, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != fan_out.shape[0]:
        raise ValueError(f"input spikes {counts.shape} do not match fan-out ({fan_out.shape[0]},): expected "
                         "(samples, n_in) summed over time")
    if counts.shape[0] == 0:
        raise ValueError("no samples")
    return float((counts @ fan_out).mean())


def print_cost_table(cost: CostReport, console=None) -> None:
    """Per-layer static cost with a totals row and the counting conventions, as a rich table."""
    console = console or Console()
    shape = "x".join(map(str, cost.input_shape))
    frames = f" on {cost.frames} frames" if cost.frames else ""
    per = "sample" if cost.frames else "time step"
    table = Table(title=f"{cost.family} {cost.arch}{frames}, input {shape} (C x H x W), ops per {per}")
    columns = ("layer", "kind", "recurrence", "output", "neurons", "params", "MACs", "adds", "muls",
               "comparisons", "memory (bit)")
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:4] else "right")
    for layer in cost.layers:
        counts = (layer.neurons, layer.params, layer.macs_per_step, layer.adds_per_step, layer.muls_per_step,
                  layer.comparisons_per_step, sum(layer.memory_bits.values()))
        table.add_row(layer.name, layer.kind, layer.recurrence, "x".join(map(str, layer.out_shape)),
                      *(f"{value:,}" for value in counts))
    table.add_row("total", "", "", "", f"{cost.neurons:,}", f"{cost.params:,}", f"{cost.macs_per_step:,}",
                  f"{cost.adds_per_step:,}", f"{cost.muls_per_step:,}", f"{cost.comparisons_per_step:,}",
                  f"{cost.memory_bits['total']:,}", style="bold")
    console.print(table)
    if cost.memory_bits_chip is not None:
        console.print(f"memory at {cost.chip_profile} bit widths: {cost.memory_bits_chip['total']:,} bit")
    if cost.family == "rsnn":
        split = cost.host_chip_energy(load_profile(SPLIT_PROFILE))
        console.print(f"per step at {split.profile} (estimated): front end {split.host_macs:,.0f} MACs -> "
                      f"{split.host_j:.3e} J, chip at most {split.chip_synops:,.0f} synops (every input spikes) -> "
                      f"{split.chip_j:.3e} J; measured synops (`neurodeploy run`) are lower")
    for note in cost.notes:
        console.print(f"- {note}")


def deployed_architecture(network) -> tuple[Architecture, tuple[int, int, int]]:
    """The on-chip part of the architecture (input downsampling removed) and its input shape."""
    layers = network.arch.layers[1:] if network.input_pool else network.arch.layers
    return Architecture(tuple(layers)), network.chip_input_shape


def layer_names(network) -> list[str]:
    """Report names of the on-chip layers (``fc1``, ``conv2``, ... numbered as in the architecture string)."""
    offset = (1 if network.input_pool else 0) + network.name_offset
    arch, _ = deployed_architecture(network)
    return [layer_name(index + offset, layer) for index, layer in enumerate(arch.layers)]
