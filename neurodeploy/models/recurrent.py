"""RNN and LSTM baselines with the same structure as the SNN built from the same architecture string.

Source paper: He et al., "Comparing SNNs and RNNs on neuromorphic vision datasets: similarities and
differences", Neural Networks 132 (2020). Every hidden layer of the architecture becomes a
recurrent layer, the trailing number a linear readout applied at every step:

- ``nFC``, rnn:  ``h[t] = tanh(W1 x[t] + W2 h[t-1] + b)`` (the paper's vanilla RNN), via ``nn.RNNCell``.
- ``nFC``, lstm: ``i, f, g, o = sigma, sigma, tanh, sigma(W_x x[t] + W_h h[t-1] + b)``,
  ``c[t] = f * c[t-1] + i * g``, ``h[t] = o * tanh(c[t])`` (standard LSTM), via ``nn.LSTMCell``.
- ``nC3``: the same with convolutions (ConvRNN; ConvLSTM of Shi et al., NeurIPS 2015, without the
  peephole terms, as ``nn.LSTMCell`` has none): ``W1 x`` is a k x k convolution of the input, ``W2 h`` a
  3 x 3 convolution of the hidden state, both 'same' padded.
- ``MPk`` / ``APk``: k x k max / average pooling of every step; flatten before the first dense after images.
- output ``n``: ``y[t] = W_y h[t] + b_y``, the class scores of step t.

The cells are stepped by an explicit loop so that per-step activity can be observed and so that NeuroBench
can count their operations (it supports ``nn.RNNCell`` / ``nn.LSTMCell`` but not ``nn.RNN`` / ``nn.LSTM``).
PyTorch's dense cells carry two bias vectors (b_ih + b_hh); that is one ``b`` of the equations with H extra
parameters per layer (4H for the LSTM). The convolutional cells have a single bias. Initialisation is
PyTorch's default (uniform +-1/sqrt(fan_in)). States start at zero for every sample.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional

from neurodeploy.errors import UserError
from neurodeploy.models.arch import Architecture, ConvLayer, ConvLSTMLayer, DenseLayer, PoolLayer

FAMILIES = ("rnn", "lstm")
HIDDEN_KERNEL = 3  # source paper: the recurrent weight of a conv cell is a 3x3 convolution over the hidden state

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


@dataclass(frozen=True)
class LayerActivity:
    """Activity of one layer over the last recorded forward pass (all samples and steps).

    ``nonzero_fraction`` is the fraction of nonzero outputs, ``input_nonzero_fraction`` that of its inputs
    (what effective-operation counts such as NeuroBench's scale with).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    neurons: int
    nonzero_fraction: float
    input_nonzero_fraction: float

    def to_dict(self) -> dict:
        return asdict(self)


class _StepLayer(nn.Module):
    """One layer advanced one time step at a time: ``step(x[t], state) -> (out[t], new state)``."""

    kind = ""

    def initial_state(self, batch: int, like: torch.Tensor) -> State:
        return None

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError


class DenseRNN(_StepLayer):
    """``h[t] = tanh(W1 x[t] + W2 h[t-1] + b)``; inputs of more than one dimension are flattened."""

    kind = "rnn"

    def __init__(self, in_features: int, units: int):
        super().__init__()
        self.cell = nn.RNNCell(in_features, units, nonlinearity="tanh")

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.cell.hidden_size)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cell(x.flatten(1), state)
        return h, h


class DenseLSTM(_StepLayer):
    """Standard LSTM cell (forget, input, output gates and cell state c); the output is h."""

    kind = "lstm"

    def __init__(self, in_features: int, units: int):
        super().__init__()
        self.cell = nn.LSTMCell(in_features, units)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(batch, self.cell.hidden_size)
        return zeros, zeros

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = self.cell(x.flatten(1), state)
        return h, (h, c)


class ConvRNN(_StepLayer):
    """``h[t] = tanh(conv_k(x[t]; W1) + conv_3x3(h[t-1]; W2) + b)``, spatial size kept ('same' padding)."""

    kind = "convrnn"

    def __init__(self, in_channels: int, channels: int, kernel: int, gates: int = 1):
        super().__init__()
        self.channels = channels
        self.input_conv = nn.Conv2d(in_channels, gates * channels, kernel, padding=kernel // 2)
        self.hidden_conv = nn.Conv2d(channels, gates * channels, HIDDEN_KERNEL, padding=HIDDEN_KERNEL // 2,
                                     bias=False)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.channels, like.shape[-2], like.shape[-1])

    def _preactivation(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.input_conv(x) + self.hidden_conv(h)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self._preactivation(x, state))
        return h, h


class ConvLSTM(ConvRNN):
    """ConvLSTM without peepholes: gates ``i, f, g, o`` from ``conv_k(x[t]) + conv_3x3(h[t-1]) + b``,
    ``c[t] = f * c[t-1] + i * g``, ``h[t] = o * tanh(c[t])``."""

    kind = "convlstm"

    def __init__(self, in_channels: int, channels: int, kernel: int):
        super().__init__(in_channels, channels, kernel, gates=4)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(batch, self.channels, like.shape[-2], like.shape[-1])
        return zeros, zeros

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        i, f, g, o = self._preactivation(x, h).chunk(4, dim=1)  # same gate order as nn.LSTMCell
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class Pool(_StepLayer):
    """Non-overlapping k x k max or average pooling of every step."""

    def __init__(self, size: int, mode: str):
        super().__init__()
        self.size = size
        self.mode = mode
        self.kind = "maxpool" if mode == "max" else "avgpool"

    def step(self, x: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        pool = functional.max_pool2d if self.mode == "max" else functional.avg_pool2d
        return pool(x, self.size), None


class RecurrentNetwork(nn.Module):
    """``forward(x (N, C, H, W, T)) -> readout scores (N, classes, T)``, one score vector per step.

    Set ``record = True`` before a forward pass to collect per-layer activity, read with ``activity()``.
    Layer names follow the SNN's (``fc<i>``, ``conv<i>``, ``pool<i>``, i = position in the architecture).
    """

    def __init__(self, family: str, arch: Architecture, input_shape: tuple[int, int, int]):
        super().__init__()
        if family not in FAMILIES:
            raise UserError(f"unknown recurrent family '{family}'; choose one of {', '.join(FAMILIES)}")
        if len(arch.layers) < 2:
            raise UserError(f"{arch.notation()}: an {family} needs at least one hidden layer before the "
                            "outputs, e.g. 'Input-512FC-10'")
        self.family = family
        self.arch = arch
        self.input_shape = tuple(int(v) for v in input_shape)
        shapes = arch.shapes(self.input_shape)
        layers: list[_StepLayer] = []
        self.layer_names: list[str] = []
        self.layer_shapes: list[tuple[int, ...]] = []
        for index, (layer, (in_shape, out_shape)) in enumerate(zip(arch.layers[:-1], shapes[:-1])):
            layers.append(step_layer(family, layer, in_shape))
            self.layer_names.append(f"{_NAME_PREFIX[type(layer)]}{index}")
            self.layer_shapes.append(tuple(out_shape))
        self.layers = nn.ModuleList(layers)
        readout_in, _ = shapes[-1]
        self.readout = nn.Linear(math.prod(readout_in), arch.num_classes)
        self.readout_name = f"fc{len(arch.layers) - 1}"
        self.record = False
        self._counts: list[list[int]] = []  # per layer: [output nonzero, outputs, input nonzero, inputs]

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[1:4]) != self.input_shape or x.shape[-1] < 1:
            raise UserError(f"input of shape {tuple(x.shape)} does not fit this {self.family}, built for "
                            f"(N, {', '.join(map(str, self.input_shape))}, T >= 1); use data of the sensor "
                            "size the network was built for")
        if self.record:
            self._counts = [[0, 0, 0, 0] for _ in range(len(self.layers) + 1)]
        hidden = step_through(self.layers, x, self._count if self.record else None)
        last = torch.stack([h.flatten(1) for h in hidden], dim=1)  # (N, T, features)
        scores = self.readout(last)
        if self.record:
            self._count(len(self.layers), last, scores)
        return scores.permute(0, 2, 1)

    @torch.no_grad()
    def _count(self, index: int, layer_in: torch.Tensor, layer_out: torch.Tensor) -> None:
        counts = self._counts[index]
        counts[0] += int(torch.count_nonzero(layer_out))
        counts[1] += layer_out.numel()
        counts[2] += int(torch.count_nonzero(layer_in))
        counts[3] += layer_in.numel()

    def activity(self) -> list[LayerActivity]:
        """Per-layer activity of the last forward pass run with ``record = True``."""
        if not self._counts:
            raise RuntimeError("no activity recorded: set network.record = True and run a forward pass")
        entries = [(name, layer.kind, shape) for name, layer, shape
                   in zip(self.layer_names, self.layers, self.layer_shapes)]
        entries.append((self.readout_name, "readout", (self.num_classes,)))
        return [
            LayerActivity(name, kind, shape, math.prod(shape), out_nz / max(1, out_n), in_nz / max(1, in_n))
            for (name, kind, shape), (out_nz, out_n, in_nz, in_n) in zip(entries, self._counts)
        ]


def step_through(layers, x: torch.Tensor, observe=None) -> list[torch.Tensor]:
    """Advance step ``layers`` over ``x`` (N, C, H, W, T), states from zero; the last layer's output of every
    step. ``observe(index, layer input, layer output)`` is called after each layer step."""
    batch = x.shape[0]
    states: list[State] = []
    outputs: list[torch.Tensor] = []
    for t in range(x.shape[-1]):
        out = x[..., t]
        for index, layer in enumerate(layers):
            if t == 0:
                states.append(layer.initial_state(batch, out))
            layer_in = out
            out, states[index] = layer.step(out, states[index])
            if observe is not None:
                observe(index, layer_in, out)
        outputs.append(out)
    return outputs


_NAME_PREFIX = {DenseLayer: "fc", ConvLayer: "conv", PoolLayer: "pool", ConvLSTMLayer: "convlstm"}


def step_layer(family: str, layer, in_shape: tuple[int, ...]) -> _StepLayer:
    if isinstance(layer, DenseLayer):
        cell = DenseRNN if family == "rnn" else DenseLSTM
        return cell(math.prod(in_shape), layer.units)
    if isinstance(layer, ConvLayer):
        cell = ConvRNN if family == "rnn" else ConvLSTM
        return cell(in_shape[0], layer.channels, layer.kernel)
    return Pool(layer.size, layer.mode)


def build_recurrent_network(family: str, arch: Architecture,
                            input_shape: tuple[int, int, int]) -> RecurrentNetwork:
    """The ``family`` ('rnn' or 'lstm') network of ``arch`` for inputs of shape (C, H, W)."""
    return RecurrentNetwork(family, arch, input_shape)
