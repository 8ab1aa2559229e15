"""RSNN: a ConvLSTM front end on the host and a spiking classifier on the chip, trained together (docs/rsnn.md).

Source paper: "RSNN: Recurrent Spiking Neural Networks for Dynamic Spatial-Temporal Information Processing".
The architecture string splits after its last ``nCLk`` layer (:func:`split_rsnn`):

- front end (host, torch, float): the leading ConvLSTM (``nCLk``) and pooling layers, stepped over the T event
  frames, ``h[t]`` of the last layer per step (:class:`neurodeploy.models.recurrent.ConvLSTM`);
- aggregation of the T feature maps into one (C', H, W) map ``a``: ``last`` h[T-1], ``sum`` sum_t h[t],
  ``mean`` (1/T) sum_t h[t], or ``stack`` the T maps concatenated as channels (C' = C T);
- boundary (count encoding, :func:`boundary_levels`, :func:`count_spikes`): each value becomes an integer
  level ``L = round(clamp(a, 0, 1) T)`` in [0, T] and a binary train of exactly L spikes spread evenly over the
  T steps, ``s[t] = ceil((t+1) L / T) - ceil(t L / T)`` (integer arithmetic, first spike at t = 0). The chip
  receives ordinary 0/1 input spikes, so the emulator and Lava run the classifier bit-exactly as any SNN;
  training passes the gradient straight through (d s[t] / d a = 1 on [0, 1], 0 outside);
- classifier (chip): the remaining layers as a SLAYER CUBA network (:class:`neurodeploy.models.snn.SpikingNetwork`)
  whose input is the (C', H, W) spike map, exported to netx like any SNN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from neurodeploy.errors import UserError
from neurodeploy.models.arch import Architecture, ConvLSTMLayer, Layer, PoolLayer
from neurodeploy.models.recurrent import step_layer, step_through
from neurodeploy.models.snn import LIFMapping, SpikingNetwork

AGGREGATIONS = ("last", "sum", "mean", "stack")
DEFAULT_AGGREGATION = "mean"


@dataclass(frozen=True)
class RSNNSplit:
    """Where an RSNN architecture splits: host front-end layers, their per-step output shape, the aggregated
    boundary shape (C', H, W) and the classifier architecture that runs on the chip."""

    front: tuple[Layer, ...]
    front_shape: tuple[int, int, int]
    boundary_shape: tuple[int, int, int]
    classifier: Architecture


def split_rsnn(arch: Architecture, input_shape: tuple[int, int, int], aggregation: str, steps: int) -> RSNNSplit:
    """Split ``arch`` after its last ConvLSTM layer; UserError when it is no RSNN architecture."""
    if aggregation not in AGGREGATIONS:
        raise UserError(f"unknown --aggregation '{aggregation}'; choose one of {', '.join(AGGREGATIONS)}")
    notation = arch.notation()
    last = max((i for i, layer in enumerate(arch.layers) if isinstance(layer, ConvLSTMLayer)), default=None)
    if last is None:
        raise UserError(f"{notation}: an rsnn needs ConvLSTM layers (nCLk) in front of the spiking classifier, "
                        "e.g. 'Input-MP4-16CL3-AP2-64C3-AP2-11'")
    front = arch.layers[:last + 1]
    if any(not isinstance(layer, (ConvLSTMLayer, PoolLayer)) for layer in front):
        raise UserError(f"{notation}: the rsnn front end (up to the last nCLk) holds only ConvLSTM and pooling "
                        "layers; move conv/dense layers behind it")
    back = arch.layers[last + 1:]
    if isinstance(back[0], PoolLayer) and back[0].mode == "max":
        raise UserError(f"{notation}: max pooling right after the front end has no Loihi mapping; put it before "
                        "the last nCLk (host) or use APk")
    shapes = arch.shapes(input_shape)
    channels, height, width = shapes[last][1]
    boundary = (channels * steps if aggregation == "stack" else channels, height, width)
    return RSNNSplit(tuple(front), (channels, height, width), boundary, Architecture(tuple(back)))


def boundary_levels(features: torch.Tensor, steps: int) -> torch.Tensor:
    """Integer spike counts ``round(clamp(a, 0, 1) T)`` in [0, T] (int64) of the aggregated front-end output."""
    return torch.round(features.detach().clamp(0.0, 1.0) * steps).to(torch.int64)


def count_spikes(levels: torch.Tensor, steps: int) -> torch.Tensor:
    """Binary trains (levels.shape + (T,)) with exactly ``levels`` spikes each, spread evenly:
    ``s[t] = ceil((t+1) L / T) - ceil(t L / T)``, in integers (ceil(a / b) = -((-a) // b))."""
    t = torch.arange(steps + 1, device=levels.device)
    ceil = -((-(levels.unsqueeze(-1) * t)) // steps)
    return (ceil[..., 1:] - ceil[..., :-1]).to(torch.uint8)


def encode_boundary(features: torch.Tensor, steps: int) -> torch.Tensor:
    """Float spikes (N, C', H, W, T) of the count encoding, with the straight-through gradient of the rate."""
    spikes = count_spikes(boundary_levels(features, steps), steps).to(features.dtype)
    rate = features.clamp(0.0, 1.0).unsqueeze(-1)
    return spikes + (rate - rate.detach())


class FrontEnd(nn.Module):
    """``forward(x (N, C, H, W, T)) -> aggregated features (N, C', H', W')`` of the host layers."""

    def __init__(self, arch: Architecture, split: RSNNSplit, input_shape: tuple[int, int, int], aggregation: str):
        super().__init__()
        self.aggregation = aggregation
        shapes = arch.shapes(input_shape)
        self.layers = nn.ModuleList(step_layer("lstm", layer, in_shape)
                                    for layer, (in_shape, _) in zip(split.front, shapes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = step_through(self.layers, x)
        if self.aggregation == "last":
            return outputs[-1]
        if self.aggregation == "stack":
            return torch.cat(outputs, dim=1)
        total = torch.stack(outputs).sum(dim=0)
        return total / len(outputs) if self.aggregation == "mean" else total


class RSNN(nn.Module):
    """Front end -> count encoding -> spiking classifier: ``forward(x (N, C, H, W, T)) -> output spikes
    (N, classes, T)``. The classifier's layers are named by their position in the whole architecture."""

    def __init__(self, arch: Architecture, input_shape: tuple[int, int, int], mapping: LIFMapping,
                 aggregation: str, steps: int):
        super().__init__()
        self.arch = arch
        self.input_shape = tuple(int(v) for v in input_shape)
        self.steps = int(steps)
        self.split = split_rsnn(arch, self.input_shape, aggregation, self.steps)
        self.front = FrontEnd(arch, self.split, self.input_shape, aggregation)
        self.classifier = SpikingNetwork(self.split.classifier, self.split.boundary_shape, mapping,
                                         name_offset=len(self.split.front))

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or tuple(x.shape[1:4]) != self.input_shape or x.shape[-1] != self.steps:
            raise UserError(f"input of shape {tuple(x.shape)} does not fit this rsnn, built for "
                            f"(N, {', '.join(map(str, self.input_shape))}, T={self.steps}); use the run's data")

    def boundary_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """The spikes that cross to the chip, float (N, C', H, W, T), differentiable (straight through)."""
        self._check_input(x)
        return encode_boundary(self.front(x), self.steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.boundary_spikes(x))

    def wake_silent_layers(self, x: torch.Tensor):
        """:meth:`SpikingNetwork.wake_silent_layers` of the classifier on the boundary spikes of ``x``."""
        with torch.no_grad():
            spikes = self.boundary_spikes(x)
        return self.classifier.wake_silent_layers(spikes)

    def apply_leak(self) -> None:
        self.classifier.apply_leak()


def build_rsnn(arch: Architecture, input_shape: tuple[int, int, int], mapping: LIFMapping, aggregation: str,
               steps: int) -> RSNN:
    """The RSNN of ``arch`` for inputs (C, H, W) x ``steps`` frames."""
    return RSNN(arch, input_shape, mapping, aggregation, steps)
