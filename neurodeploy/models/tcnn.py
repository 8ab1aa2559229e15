"""The temporal CNN of Deng et al. 2020, Table 7 (docs/frames.md): a float baseline on event frames whose
convolutions and pooling are 3D over (T, H, W).

Table 7's note: "In temporal CNN, the convolution and pooling here are 3D operations. Here C3 refers to
3x3x3 convolution, and AP2 refers to 2x2x2 average pooling." So the architecture string of the 2D CNN
(``Input-64C3-128C3-AP2-128C3-AP2-256FC-10``, models/nmnist_cnn.yaml) reads here as: ``nCk`` a k x k x k
convolution over (T, H, W) with padding k // 2 (T, H and W kept), ``APk`` / ``MPk`` k x k x k pooling with
floor(n / k) outputs per axis, ``nFC`` a dense layer on the flattened (C, T, H, W) maps. Every layer has a
bias (the paper's temporal CNN is an ordinary float network; it gives no other detail) and every layer but
the output a ReLU. The input is the run's binned frames (N, P, H, W, T), P channels over T x H x W; the
network runs once per sample and returns (N, classes, 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.models.arch import Architecture, ConvLayer, ConvLSTMLayer, DenseLayer, PoolLayer


def tcnn_shapes(arch: Architecture, sensor_shape: tuple[int, int, int], steps: int) \
        -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(input, output) shape of every layer: (C, T, H, W) for conv / pool, (units,) for dense; UserError when
    a layer would be empty or the architecture has layers a 3D CNN has not (ConvLSTM)."""
    channels, height, width = (int(v) for v in sensor_shape)
    shape: tuple[int, ...] = (channels, int(steps), height, width)
    result = []
    for layer in arch.layers:
        if isinstance(layer, ConvLSTMLayer):
            raise UserError(f"{arch.notation()}: {layer.token()} (ConvLSTM) is not a layer of the temporal CNN")
        if isinstance(layer, DenseLayer):
            out: tuple[int, ...] = (layer.units,)
        elif len(shape) != 4:
            raise UserError(f"layer {layer.token()} of {arch.notation()} needs (C, T, H, W) maps but follows a "
                            f"dense layer {shape}")
        elif isinstance(layer, PoolLayer):
            out = (shape[0], *(n // layer.size for n in shape[1:]))
        else:  # ConvLayer: k x k x k, 'same' padding
            out = (layer.channels, *shape[1:])
        if min(out) < 1:
            raise UserError(f"layer {layer.token()} of {arch.notation()} gets input {shape} (C, T, H, W) and would "
                            "be empty; use a larger input, more time steps or fewer pooling layers")
        result.append((shape, out))
        shape = out
    return result


class TemporalCnn(nn.Module):
    """``forward(x)``: binned frames (N, P, H, W, T) -> class scores (N, classes, 1)."""

    def __init__(self, arch: Architecture, sensor_shape: tuple[int, int, int], steps: int):
        super().__init__()
        self.arch, self.steps = arch, int(steps)
        self.sensor_shape = tuple(sensor_shape)
        self.shapes = tcnn_shapes(arch, self.sensor_shape, self.steps)
        layers: list[nn.Module] = []
        for layer, (in_shape, _) in zip(arch.layers, self.shapes):
            if isinstance(layer, DenseLayer):
                layers.append(nn.Linear(math.prod(in_shape), layer.units))
            elif isinstance(layer, PoolLayer):
                layers.append(nn.AvgPool3d(layer.size) if layer.mode == "avg" else nn.MaxPool3d(layer.size))
            elif isinstance(layer, ConvLayer):
                layers.append(nn.Conv3d(in_shape[0], layer.channels, layer.kernel, padding=layer.kernel // 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise UserError(f"the temporal CNN reads binned frames (N, P, H, W, T), got shape {tuple(x.shape)}")
        x = x.to(torch.float32).permute(0, 1, 4, 2, 3)  # (N, P, T, H, W): Conv3d's (N, C, D, H, W)
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if isinstance(layer, nn.Linear):
                x = x.reshape(x.shape[0], -1)
            x = layer(x)
            if index < last and isinstance(layer, (nn.Linear, nn.Conv3d)):
                x = torch.relu(x)
        return x.unsqueeze(-1)
