"""The conversion-ready ANN (Deng et al. 2020, Model-1 and the source of Model-2): ReLU, no biases, average
pooling, the constraints under which an ANN converts to IF neurons (docs/conversion.md).

``nFC`` is a bias-free linear layer, ``nC3`` a bias-free 3 x 3 convolution (padding 1), ``APk`` average pooling;
every layer but the output is followed by ReLU. Max pooling has no IF counterpart and is refused.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.models.arch import Architecture, ConvLayer, DenseLayer, PoolLayer


class AnnNetwork(nn.Module):
    """``forward(x)`` -> class scores (N, classes, 1): ``x`` images (N, C, H, W) in [0, 1], or spike frames
    (N, C, H, W, T) whose mean over T (the rate) stands for the image. ``activations(x)`` -> every layer's
    output after its ReLU (the output layer's raw scores last), what data-based normalisation measures."""

    def __init__(self, arch: Architecture, input_shape: tuple[int, int, int]):
        super().__init__()
        self.arch = arch
        self.input_shape = tuple(input_shape)
        layers: list[nn.Module] = []
        shapes = arch.shapes(self.input_shape)
        for position, (layer, (in_shape, _)) in enumerate(zip(arch.layers, shapes)):
            if isinstance(layer, DenseLayer):
                layers.append(nn.Linear(math.prod(in_shape), layer.units, bias=False))
            elif isinstance(layer, ConvLayer) and layer.kind == "conv" and getattr(layer, "stride", 1) > 1:
                # a frame ANN's stride-2 convolution (neurodeploy.models.frame_ann.StridedConv)
                layers.append(nn.Sequential(nn.ZeroPad2d(layer.torch_padding()),
                                            nn.Conv2d(in_shape[0], layer.channels, layer.kernel, stride=layer.stride,
                                                      bias=False)))
            elif isinstance(layer, ConvLayer) and layer.kind == "conv":
                layers.append(nn.Conv2d(in_shape[0], layer.channels, layer.kernel, padding=layer.padding, bias=False))
            elif isinstance(layer, PoolLayer) and layer.mode == "avg":
                layers.append(nn.AvgPool2d(layer.size))
            else:
                raise UserError(f"{arch.notation()}: layer {position + 1} ({layer.token()}) has no IF-neuron "
                                "counterpart; a convertible ANN has nFC, nC3 and APk layers only")
        self.layers = nn.ModuleList(layers)

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() == 5:
            x = x.mean(dim=-1)
        outputs = []
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if isinstance(layer, nn.Linear):
                x = x.reshape(x.shape[0], -1)
            x = layer(x)
            if index < last and not isinstance(layer, nn.AvgPool2d):
                x = torch.relu(x)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)[-1].unsqueeze(-1)


def build_ann(arch: Architecture, input_shape: tuple[int, int, int]) -> AnnNetwork:
    return AnnNetwork(arch, input_shape)
