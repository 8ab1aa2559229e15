"""Spiking networks built from lava-dl SLAYER CUBA blocks, and their export to netx HDF5.

The source paper's iterative LIF neuron (Comparing SNNs and RNNs on neuromorphic vision datasets, eq. 1-3)

    u[t] = k * u[t-1] * (1 - o[t-1]) + W o_prev[t],     o[t] = H(u[t] - u_th)

with leakage factor k = exp(-dt / tau) = 0.3 and threshold u_th = 0.3 maps onto Loihi's CUBA neuron

    i[t] = (1 - a_i) i[t-1] + W s[t]        (current)
    v[t] = (1 - a_v) v[t-1] + i[t]          (voltage), spike and v <- 0 when v > theta

as follows (see :class:`LIFMapping`): a_i = 1 (current decay 4096/4096: the current follows the input, so
i[t] = W s[t]); a_v = 1 - k (voltage decay 0.7 -> vDecay = round(0.7 * 4096) = 2867, effective
k = 0.30005); the hard reset of v after a spike is the paper's factor (1 - o[t-1]). The network is linear in
(W, u) below threshold, so weights, state and threshold can be scaled by one factor s without changing the
function: SLAYER stores weights in steps of 2/64 (8-bit on chip), so the paper's threshold 0.3 is scaled by
s = 1.25 / 0.3 to SLAYER's customary 1.25 (vThMant = 80), giving weights 40 quantisation steps per
threshold. The paper's rectangular surrogate gradient of width a (height 1/a, area 1) is scaled the same
way (width s * a) and approximated by SLAYER's Laplace-shaped surrogate with the same area and the same
standard deviation: scale 1/(2 tau) exp(-|v - theta| / tau) with tau = s * a / sqrt(24).

Variants for the paper's ablations (Tables IX and XII), recorded in the run config:

- no leak: k = 1 (voltage decay 0), the neuron integrates without forgetting;
- no reset: u[t] = k u[t-1] + W o_prev[t] (the factor (1 - o[t-1]) dropped). Lava's CUBA neuron always
  resets, so such a network is trained and evaluated in float only (export refuses it);
- adaptive leakage: k = exp(-dt / tau) with tau fixed (ms), recomputed at whatever dt the network runs at,
  so a model trained at 3 ms and tested at 1 ms decays by exp(-1/tau) per step instead of exp(-3/tau);
- recurrence: hidden dense layers become SLAYER's recurrent CUBA block (``slayer.block.cuba.Recurrent``),
  s[t] = f(W s_in[t] + R s[t-1]) with a trainable cross-neuron R, exported as netx ``dense_rec``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from neurodeploy import lava_compat
from neurodeploy.errors import UserError
from neurodeploy.kernels.lava_limits import SLAYER_MAX_WEIGHT
from neurodeploy.models.arch import Architecture, ConvLayer, DenseLayer, PoolLayer

# SLAYER's cuba.Neuron multiplies tau_grad by threshold * TAU_RHO_MULT and scale_grad by SCALE_RHO_MULT
# (lava/lib/dl/slayer/neuron/cuba.py); we invert that so the surrogate has the intended width and area.
_SLAYER_TAU_RHO_MULT = 100
_SLAYER_SCALE_RHO_MULT = 0.1
_P_SCALE = 4096
# wake_silent_layers: a layer counts as silent when under 1% of its neurons spike on the calibration batch;
# it is scaled until its mean rate reaches 1% of steps (about the input density of the DVS Gesture CNN's
# deeper layers at init), by at most 2^8
SILENT_ACTIVE_FRACTION = 0.01
WAKE_TARGET_RATE = 0.01
WAKE_MAX_GAIN = 256.0


@dataclass(frozen=True)
class LIFMapping:
    """Paper LIF parameters and their CUBA equivalents (SLAYER units)."""

    leak: float = 0.3  # k = exp(-dt/tau), source paper
    threshold: float = 0.3  # u_th, source paper
    surrogate_width: float = 0.25  # a: 0.25 N-MNIST, 0.5 DVS Gesture CNN (source paper)
    slayer_threshold: float = 1.25  # threshold after scaling to SLAYER's weight scale
    reset: bool = True  # False: no reset after a spike (float only, see the module docstring)

    @classmethod
    def for_run(cls, *, dt_ms: float, leak: bool = True, leak_tau_ms: float | None = None, reset: bool = True,
                surrogate_width: float = 0.25) -> "LIFMapping":
        """The mapping of a run: k = 0.3 (paper), k = 1 without leak, k = exp(-dt_ms / leak_tau_ms) with a
        fixed time constant (adaptive leakage)."""
        k = cls.leak
        if not leak:
            k = 1.0
        elif leak_tau_ms is not None:
            k = math.exp(-dt_ms / leak_tau_ms)
        return cls(leak=k, surrogate_width=surrogate_width, reset=reset)

    @property
    def scale(self) -> float:
        """s: the factor that maps the paper's units onto SLAYER's."""
        return self.slayer_threshold / self.threshold

    def cuba_params(self) -> dict[str, float]:
        """Keyword arguments of ``slayer.block.cuba.*`` ``neuron_params``."""
        theta = int(self.slayer_threshold * 64) / 64  # SLAYER quantises the threshold the same way
        tau = self.scale * self.surrogate_width / math.sqrt(24.0)
        return {
            "threshold": self.slayer_threshold,
            "current_decay": 1.0,
            "voltage_decay": round((1.0 - self.leak) * _P_SCALE) / _P_SCALE,
            "tau_grad": tau / (theta * _SLAYER_TAU_RHO_MULT),
            "scale_grad": 1.0 / _SLAYER_SCALE_RHO_MULT,
            "requires_grad": False,
        }

    def to_dict(self) -> dict:
        return {**asdict(self), "scale": self.scale, "cuba": self.cuba_params()}


@dataclass(frozen=True)
class WokenLayer:
    """A layer :meth:`SpikingNetwork.wake_silent_layers` scaled: its weight gain, and on the calibration batch
    the fraction of its neurons that spiked and its mean rate (spikes per neuron per step) before and after."""

    layer: str
    gain: float
    active_before: float
    rate_before: float
    active_after: float
    rate_after: float

    def to_dict(self) -> dict:
        return asdict(self)


class SpikingNetwork(nn.Module):
    """A feed-forward CUBA network: ``forward(x (N, C, H, W, T)) -> output spikes (N, classes, T)``.

    With ``record=True`` the spikes of every block are kept in ``layer_spikes`` (list of (N, n, T)).
    Each block delays its output by one step (SLAYER ``delay_shift``), as Lava's synapses do. With
    ``recurrent=True`` every hidden dense layer is a recurrent CUBA block; its state starts at zero for every
    batch (SLAYER's recurrent block keeps it between calls otherwise), as each sample does on the chip.
    Layers are named by position in ``arch`` plus ``name_offset`` (the host layers in front of an RSNN's).
    """

    def __init__(self, arch: Architecture, input_shape: tuple[int, int, int], mapping: LIFMapping,
                 recurrent: bool = False, name_offset: int = 0, thresholds: list[float] | None = None):
        super().__init__()
        self.name_offset = name_offset
        slayer = lava_compat.slayer()
        self.arch = arch
        self.input_shape = tuple(input_shape)
        self.mapping = mapping
        self.recurrent = recurrent
        params = mapping.cuba_params()
        blocks: list[nn.Module] = []
        self.block_names: list[str] = []
        self.input_pool = input_pooling(arch)
        shapes = arch.shapes(self.input_shape)
        layers = list(zip(range(name_offset, name_offset + len(arch.layers)), arch.layers, shapes))
        if self.input_pool:
            layers = layers[1:]
        self.deployed = [(layer, out_shape) for _, layer, (_, out_shape) in layers]
        self.flat_input = isinstance(layers[0][1], DenseLayer)
        if thresholds is not None and len(thresholds) != len(layers):
            raise UserError(f"{arch.notation()}: {len(thresholds)} thresholds for {len(layers)} spiking layers; the "
                            "run config is damaged, convert again")
        shared = params
        for position, (index, layer, (in_shape, _)) in enumerate(layers):
            # a converted network (neurodeploy.pipeline.convert) has one threshold per layer
            params = shared if thresholds is None else {**shared, "threshold": float(thresholds[position])}
            if isinstance(layer, DenseLayer):
                if len(in_shape) == 3 and not self.flat_input:
                    blocks.append(slayer.block.cuba.Flatten())
                    self.block_names.append(f"flatten{index}")
                hidden = index < name_offset + len(arch.layers) - 1
                if recurrent and hidden:
                    # a copy: the recurrent block turns on persistent_state in the dict it is given
                    blocks.append(slayer.block.cuba.Recurrent(dict(params), math.prod(in_shape), layer.units))
                    self.block_names.append(f"rec{index}")
                else:
                    blocks.append(slayer.block.cuba.Dense(params, math.prod(in_shape), layer.units))
                    self.block_names.append(f"fc{index}")
            elif isinstance(layer, ConvLayer):
                blocks.append(
                    slayer.block.cuba.Conv(params, in_shape[0], layer.channels, layer.kernel,
                                           padding=layer.padding)
                )
                self.block_names.append(f"conv{index}")
            elif isinstance(layer, PoolLayer):
                if layer.mode != "avg":
                    raise UserError(
                        f"{arch.notation()}: max pooling inside a spiking network has no Loihi mapping; "
                        "use APk (average pooling) there"
                    )
                blocks.append(slayer.block.cuba.Pool(params, layer.size, stride=layer.size))
                self.block_names.append(f"pool{index}")
        if not mapping.reset:
            for block in blocks:
                if hasattr(block, "neuron"):
                    block.neuron = _no_reset_neuron_type()(**shared)
        self.blocks = nn.ModuleList(blocks)
        self._init_weights()
        self.layer_spikes: list[torch.Tensor] = []
        self.record = False

    def _init_weights(self) -> None:
        """PyTorch's default uniform(+-1/sqrt(fan_in)) init in the paper's units, scaled by s.

        SLAYER's own init is ~7x smaller, which its 2/64 weight quantisation rounds to zero for large fan-in.
        """
        for block in self.blocks:
            synapse = feedforward_synapse(block)
            if synapse is None or isinstance(block, lava_compat.slayer().block.cuba.Pool):
                continue
            fan_in = math.prod(synapse.weight.shape[1:])
            bound = self.mapping.scale / math.sqrt(fan_in)
            with torch.no_grad():
                synapse.weight.uniform_(-bound, bound)

    def _prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_pool:
            x = torch.nn.functional.max_pool3d(x, (self.input_pool, self.input_pool, 1))
        if self.flat_input:
            x = x.reshape(x.shape[0], -1, x.shape[-1])
        return x

    def _block_forward(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(block, lava_compat.slayer().block.cuba.Pool):  # floor mode, as a stride-k conv on the chip
            k = int(block.synapse.kernel_size[0])
            x = x[:, :, : x.shape[2] // k * k, : x.shape[3] // k * k]
        return block(x)

    def apply_leak(self) -> None:
        """Set every neuron's voltage decay from ``self.mapping`` (after loading weights: the decay is a
        state-dict entry, and an adaptive-leakage run evaluated at another dt needs its own)."""
        decay = self.mapping.cuba_params()["voltage_decay"]
        with torch.no_grad():
            for block in self.blocks:
                neuron = getattr(block, "neuron", None)
                if neuron is not None and hasattr(neuron, "voltage_decay"):
                    neuron.voltage_decay.fill_(neuron.p_scale * decay)

    def _reset_recurrent_state(self) -> None:
        for block in self.blocks:
            if isinstance(block, lava_compat.slayer().block.cuba.Recurrent):
                block.neuron.current_state = torch.zeros(1, device=block.neuron.current_state.device)
                block.neuron.voltage_state = torch.zeros(1, device=block.neuron.voltage_state.device)
                block.spike_state = torch.zeros(1, device=block.spike_state.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._prepare_input(x)
        self._reset_recurrent_state()
        self.layer_spikes = []
        for block in self.blocks:
            x = self._block_forward(block, x)
            if self.record and not isinstance(block, lava_compat.slayer().block.cuba.Flatten):
                self.layer_spikes.append(x.detach().reshape(x.shape[0], -1, x.shape[-1]))
        self._reset_recurrent_state()  # and after: the state is a state-dict entry, saved with the weights
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def wake_silent_layers(self, x: torch.Tensor, *, active_below: float = SILENT_ACTIVE_FRACTION,
                           target_rate: float = WAKE_TARGET_RATE,
                           max_gain: float = WAKE_MAX_GAIN) -> list[WokenLayer]:
        """Data-driven init for deep networks: scale up the weights of layers that stay silent on ``x``.

        Layer by layer (each seeing the already corrected layers before it), a trained layer (dense or conv)
        in which fewer than ``active_below`` of the neurons spike at all over the batch ``x`` gets its weights
        multiplied by the smallest power of sqrt(2) (at most ``max_gain``) that brings its mean firing rate
        (spikes per neuron per step) to ``target_rate``. A layer that is silent at init passes no gradient
        through its surrogate, and nothing behind it learns: with PyTorch's default init, the DVS Gesture CNN's
        fc6 (8192 inputs at ~0.4% rate, weights quantised to 2/64) never reaches threshold. Layers with
        activity are left alone, so shallow networks (the N-MNIST MLP) are unchanged. The gain also stops
        before the largest weight would pass SLAYER's exportable range (|w| <= 254/64): a woken layer must still
        export to the chip's 8-bit weights without clipping. Returns one record per scaled layer.
        """
        pool_type = lava_compat.slayer().block.cuba.Pool
        flatten_type = lava_compat.slayer().block.cuba.Flatten
        changes = []
        with torch.no_grad():
            h = self._prepare_input(x)
            for name, block in zip(self.block_names, self.blocks):
                out = self._block_forward(block, h)
                trainable = not isinstance(block, (pool_type, flatten_type))
                active = float((out.sum(dim=-1) > 0).float().mean())
                if trainable and active < active_below:
                    weight = feedforward_synapse(block).weight
                    original = weight.detach().clone()
                    before_rate, gain = float(out.mean()), 1.0
                    largest = float(original.abs().max())
                    gain_limit = min(max_gain, SLAYER_MAX_WEIGHT / largest if largest > 0 else max_gain)
                    while float(out.mean()) < target_rate and gain * math.sqrt(2) <= gain_limit * (1 + 1e-9):
                        gain *= math.sqrt(2)
                        weight.copy_(original * gain)
                        out = self._block_forward(block, h)
                    changes.append(WokenLayer(name, gain, active, before_rate,
                                              float((out.sum(dim=-1) > 0).float().mean()), float(out.mean())))
                h = out
        return changes

    def layer_shapes(self) -> list[tuple[int, ...]]:
        """Output shape of every spiking (non-flatten) block: (C, H, W) or (n,)."""
        return [out for _, out in self.deployed]

    @property
    def chip_input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the spikes that enter the chip (after input downsampling)."""
        c, h, w = self.input_shape
        k = self.input_pool or 1
        return (c, h // k, w // k)

    def trace_shapes(self) -> None:
        """Run one zero sample through the network: SLAYER's Flatten blocks learn their shape in forward."""
        with torch.no_grad():
            self.forward(torch.zeros(1, *self.input_shape, 2))


def feedforward_synapse(block):
    """The synapse from the previous layer: ``synapse`` of a feed-forward block, ``input_synapse`` of a
    recurrent one (None for Flatten)."""
    return getattr(block, "synapse", None) or getattr(block, "input_synapse", None)


@functools.cache
def _no_reset_neuron_type():
    """``slayer.neuron.cuba.Neuron`` without the reset: its voltage dynamics get an infinite reset threshold
    (SLAYER's leaky integrator resets only where v >= threshold), spikes still fire at the real threshold.
    ``_threshold`` is the attribute behind SLAYER's read-only ``threshold`` property."""
    cuba = lava_compat.slayer().neuron.cuba

    class NoResetNeuron(cuba.Neuron):
        def dynamics(self, input):
            threshold = self._threshold
            self._threshold = math.inf
            try:
                return super().dynamics(input)
            finally:
                self._threshold = threshold

    return NoResetNeuron


def input_pooling(arch: Architecture) -> int | None:
    """k when the architecture starts with MPk: done as event downsampling before the chip."""
    first = arch.layers[0]
    return first.size if isinstance(first, PoolLayer) and first.mode == "max" else None


def downsample_events(frames, k: int | None):
    """Max pooling k x k of binary frames (N, C, H, W, T) = logical OR per window; numpy, exact."""
    if not k:
        return frames
    n, c, h, w, t = frames.shape
    h2, w2 = h // k, w // k
    view = frames[:, :, :h2 * k, :w2 * k].reshape(n, c, h2, k, w2, k, t)
    return view.max(axis=(3, 5))


def build_spiking_network(arch: Architecture, input_shape: tuple[int, int, int],
                          mapping: LIFMapping | None = None, recurrent: bool = False,
                          thresholds: list[float] | None = None) -> SpikingNetwork:
    """The SLAYER network of ``arch`` for inputs of shape (C, H, W); ``thresholds``: one per spiking layer
    (SLAYER units) instead of the mapping's."""
    return SpikingNetwork(arch, input_shape, mapping or LIFMapping(), recurrent=recurrent, thresholds=thresholds)
