"""Spatial-tile core mapping of a convolution layer: each core holds one spatial tile of all its channels.

A conv layer's output (C_out, H, W) is cut into tiles of ``tile_h x tile_w`` positions; each core holds
every channel of its tile (``channel_groups`` > 1 only when one core cannot store the whole kernel), so a
spike of one input pixel reaches only the few cores whose tiles its kernel window overlaps, instead of
every core of a channel-major layout. Per core:

- neurons  = c_core x tile_h x tile_w                          <= neurons_per_core
- axons    = C_in(core) x rows_in x cols_in                     <= fan_in_axons_per_core
  (the input pixels its tile's kernel windows cover: rows_in = (tile_h - 1) stride_h + (k_h - 1) dil_h + 1,
  capped at the input height; C_in(core) the input channels its output channels read)
- memory   = c_core x C_in/groups x k_h x k_w x weight_bits   <= synaptic_memory_per_core
  (the kernel, stored once per core and shared by all its positions: convolutional weight sharing)

Among the tiles that fit, the one with the fewest cores wins (ties: fewer input axons per core). Dense
layers keep the row layout of :func:`neurodeploy.metrics.hardware.map_resources`. The same tiling places
neurons in the chip model (:func:`tile_cores`), so lint, the resource report and SANA-FE see one mapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ConvShape:
    """Geometry of one convolution layer; shapes (C, H, W), pairs (h, w)."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def input_extent(self, tile: int, axis: int) -> int:
        """Input rows (axis 0) or columns (axis 1) a tile of ``tile`` outputs reads, capped at the input."""
        reach = (tile - 1) * self.stride[axis] + (self.kernel[axis] - 1) * self.dilation[axis] + 1
        return min(reach, self.in_shape[1 + axis])

    def input_channels(self, channels: int) -> int:
        """Input channels ``channels`` consecutive output channels read (all of them unless grouped)."""
        per_group_out = self.out_shape[0] // self.groups
        per_group_in = self.in_shape[0] // self.groups
        return min(self.in_shape[0], math.ceil(channels / per_group_out) * per_group_in)

    def kernel_weights(self, channels: int) -> int:
        return channels * (self.in_shape[0] // self.groups) * self.kernel[0] * self.kernel[1]


@dataclass(frozen=True)
class ConvTiling:
    """A conv layer's tiles: ``channels`` x ``tile_h`` x ``tile_w`` neurons per core on a
    ``channel_groups`` x ``rows`` x ``cols`` grid of cores (core = (g rows + r) cols + c)."""

    channels: int
    tile_h: int
    tile_w: int
    channel_groups: int
    rows: int
    cols: int
    axons_per_core: int
    weight_bits_per_core: int
    limited_by: str

    @property
    def cores(self) -> int:
        return self.channel_groups * self.rows * self.cols

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "cores": self.cores}


def spatial_tiles(conv: ConvShape, neurons_per_core: float, axons_per_core: float, memory_bits_per_core: float,
                  weight_bits: int) -> ConvTiling | None:
    """The spatial tiling with the fewest cores under the three per-core limits, or None when not even one
    output neuron's inputs fit a core (the caller then splits neurons by fan-in)."""
    c_out, height, width = conv.out_shape
    best: tuple[tuple[int, int], ConvTiling] | None = None
    g_min = max(1, math.ceil(conv.kernel_weights(c_out) * weight_bits / memory_bits_per_core))
    for groups in range(g_min, c_out + 1):
        channels = math.ceil(c_out / groups)
        groups = math.ceil(c_out / channels)
        if best is not None and groups > best[1].cores:
            break
        weight_bits_core = conv.kernel_weights(channels) * weight_bits
        if weight_bits_core > memory_bits_per_core:
            continue
        in_channels = conv.input_channels(channels)
        for tile_h in range(1, height + 1):
            by_neurons = int(neurons_per_core // (tile_h * channels))
            rows_in = conv.input_extent(tile_h, 0)
            if by_neurons < 1 or in_channels * rows_in * conv.input_extent(1, 1) > axons_per_core:
                break
            low, high = 1, min(width, by_neurons)  # widest tile whose axons fit (axons grow with the width)
            while low < high:
                mid = (low + high + 1) // 2
                if in_channels * rows_in * conv.input_extent(mid, 1) <= axons_per_core:
                    low = mid
                else:
                    high = mid - 1
            tile_w = low
            axons = in_channels * rows_in * conv.input_extent(tile_w, 1)
            tiling = ConvTiling(channels, tile_h, tile_w, groups, math.ceil(height / tile_h),
                                math.ceil(width / tile_w), axons, weight_bits_core,
                                "neurons" if channels * tile_h * tile_w / neurons_per_core
                                >= axons / axons_per_core else "fan_in")
            key = (tiling.cores, axons)
            if best is None or key < best[0]:
                best = (key, tiling)
    return None if best is None else best[1]


def tile_cores(tiling: ConvTiling, out_shape: tuple[int, int, int], first: int = 0) -> np.ndarray:
    """Core of every neuron of a conv layer, flat in (C, H, W) order, under ``tiling`` (cores from ``first``)."""
    c, h, w = np.unravel_index(np.arange(math.prod(out_shape)), out_shape)
    return (first + ((c // tiling.channels) * tiling.rows + h // tiling.tile_h) * tiling.cols
            + w // tiling.tile_w).astype(np.int64)


def arch_conv_shape(layer, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> ConvShape | None:
    """The convolution an architecture layer deploys as (``nCk``: stride 1, 'same' padding; ``APk`` inside:
    a depthwise k x k conv with stride k), or None for a dense layer."""
    kind = getattr(layer, "kind", None)
    if kind == "conv":
        kernel = (layer.kernel, layer.kernel)
        return ConvShape(tuple(in_shape), tuple(out_shape), kernel)
    if kind == "pool" and getattr(layer, "mode", None) == "avg":
        size = (layer.size, layer.size)
        return ConvShape(tuple(in_shape), tuple(out_shape), size, stride=size, groups=int(in_shape[0]))
    return None
