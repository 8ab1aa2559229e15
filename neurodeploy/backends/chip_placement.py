"""Where every neuron of a netx network sits on a Loihi chip: our one core mapping, core by core.

:func:`layer_resources` maps each synaptic layer with :func:`neurodeploy.metrics.hardware.map_resources` (the
mapping lint and the resource report use): dense layers in rows spread evenly over their cores, conv layers in
spatial tiles of all channels (:mod:`neurodeploy.metrics.placement`). :class:`Placement` turns that into a
core index per neuron, numbered as SANA-FE's Loihi numbers them (core c on tile c // 4 of an 8 x 4 mesh), and
:func:`routing_hops` counts the mesh hops each spike travels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from neurodeploy.deploy.netx import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import HardwareProfile, LayerFootprint, LayerResources, map_resources
from neurodeploy.metrics.placement import ConvShape, ConvTiling, spatial_tiles, tile_cores

CORES_PER_CHIP = 128  # SANA-FE's Loihi: 32 tiles x 4 cores on an 8 x 4 mesh
CORES_PER_TILE = 4
MESH_HEIGHT = 4  # SANA-FE numbers the 8 x 4 mesh's tiles column by column


def synaptic_layers(net: NetxNetwork) -> list[NetxLayer]:
    return [layer for layer in net.layers if layer.kind != "input"]


def _effective_groups(layer: NetxLayer) -> int:
    """Conv groups as the chip needs them: a grouped conv whose weight is the channel diagonal (a pooling
    layer written grouped, deploy/netx.py) is depthwise."""
    per_group = layer.weight.shape[1]
    if layer.groups > 1 and per_group > 1 and layer.out_shape[0] == layer.in_shape[0]:
        off_diagonal = np.ones(layer.weight.shape[:2], dtype=bool)
        off_diagonal[np.arange(layer.out_shape[0]), np.arange(layer.out_shape[0]) % per_group] = False
        if not np.any(layer.weight[off_diagonal]):
            return int(layer.out_shape[0])
    return int(layer.groups)


def netx_footprint(layer: NetxLayer) -> LayerFootprint:
    """What one synaptic netx layer asks of a chip (conv layers with their geometry, for spatial tiles)."""
    synapses = layer.synapses
    if layer.kind != "conv":
        return LayerFootprint(layer.name, layer.neurons, synapses, layer.num_inputs)
    geometry = layer.conv_geometry()
    conv = ConvShape(tuple(layer.in_shape), tuple(layer.out_shape), geometry.kernel, geometry.stride,
                     geometry.dilation, _effective_groups(layer))
    return LayerFootprint(layer.name, layer.neurons, synapses, math.ceil(synapses / max(1, layer.neurons)),
                          conv=conv)


def layer_resources(net: NetxNetwork, profile: HardwareProfile) -> list[LayerResources]:
    """Cores (and conv tiles) of each synaptic layer under the profile's limits."""
    return list(map_resources([netx_footprint(layer) for layer in synaptic_layers(net)], profile).layers)


def layer_cores(net: NetxNetwork, profile: HardwareProfile) -> list[int]:
    """Cores each synaptic layer of ``net`` takes under the profile's limits (our resource mapping)."""
    return [item.cores for item in layer_resources(net, profile)]


# SANA-FE's Loihi latencies (sanafe/examples/loihi.yaml), ns: a work estimate for balancing cores
SYNAPSE_NS, NEURON_NS, SPIKE_NS = 3.5, 9.7, 30.0


def balanced_resources(net: NetxNetwork, profile: HardwareProfile, layer_work: list[float], input_work: float,
                       cores: int = CORES_PER_CHIP) -> tuple[list[LayerResources], int]:
    """The core mapping with the chip's spare cores shared out by work: (resources per synaptic layer, input
    cores).

    Each layer (and the input) keeps at least its minimal cores (:func:`layer_resources`) and gets
    ``floor(spare x work / total work)`` more, where spare = ``cores`` - the minimal total; conv layers are
    then tiled again by the same :func:`neurodeploy.metrics.placement.spatial_tiles` with at most
    ``ceil(neurons / target)`` neurons per core, dense layers spread over their target. A Loihi core works
    through its synaptic events and neuron updates one after the other while cores run in parallel, so a
    layer with much of the work on few cores sets every step's time: this is the placement a chip runs
    fastest on, and it still fits the chip. Falls back to the minimal mapping when the re-tiling overshoots.
    """
    minimal = layer_resources(net, profile)
    per_core = int(profile.si("neurons_per_core"))
    input_min = len(set(_input_homes(tuple(net.input_shape), per_core)))
    spare = cores - input_min - sum(item.cores for item in minimal)
    total = input_work + sum(layer_work)
    if spare <= 0 or total <= 0:
        return minimal, input_min
    for share in (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5):  # tiles round up: shrink until it fits
        mapping, target, used = _share_out(net, profile, minimal, layer_work, input_work, input_min,
                                           math.floor(spare * share))
        if used + sum(item.cores for item in mapping) <= cores:
            return mapping, target
    return minimal, input_min


def _share_out(net: NetxNetwork, profile: HardwareProfile, minimal: list[LayerResources], layer_work: list[float],
               input_work: float, input_min: int, spare: int) -> tuple[list[LayerResources], int, int]:
    """Cores per layer for ``spare`` extra cores, the input's target and the cores its bands then take."""
    total = input_work + sum(layer_work)
    per_core = int(profile.si("neurons_per_core"))
    input_target = input_min + math.floor(spare * input_work / total)
    used = len(set(_input_homes(tuple(net.input_shape), per_core, input_target)))  # bands round up
    out = []
    for layer, item, work in zip(synaptic_layers(net), minimal, layer_work):
        target = item.cores + math.floor(spare * work / total)
        footprint = netx_footprint(layer)
        if footprint.conv is not None and item.tiling is not None and target > item.cores:
            bits = profile.bit_width("weight") or 8
            tiling = spatial_tiles(footprint.conv, min(per_core, math.ceil(layer.neurons / target)),
                                   profile.si("fan_in_axons_per_core"), profile.si("synaptic_memory_per_core"),
                                   bits)
            if tiling is not None and tiling.cores >= item.cores:
                item = dataclasses.replace(item, cores=tiling.cores, tiling=tiling)
        elif footprint.conv is None:
            item = dataclasses.replace(item, cores=max(item.cores, min(target, layer.neurons)))
        out.append(item)
    return out, input_target, used


def _spread(n: int, first: int, cores: int) -> list[int]:
    """Core index of each of n neurons spread over cores first..first+cores-1 in blocks of ceil(n / cores)."""
    block = math.ceil(n / cores)
    return [first + i // block for i in range(n)]


def _input_homes(shape: tuple[int, ...], per_core: int, cores: int | None = None) -> list[int]:
    """The network input in row bands of all channels (an image), else in blocks of ``per_core``; with
    ``cores``, bands of ceil(height / cores) rows (at most ``cores`` cores)."""
    n = math.prod(shape)
    if len(shape) == 3 and shape[0] * shape[2] <= per_core:
        channels, height, width = shape
        band = per_core // (channels * width)
        if cores is not None:
            band = min(band, max(1, math.ceil(height / cores)))
        tiling = ConvTiling(channels, band, width, 1, math.ceil(height / band), 1, 0, 0, "neurons")
        return tile_cores(tiling, shape).tolist()
    blocks = math.ceil(n / per_core) if cores is None else max(math.ceil(n / per_core), min(cores, n))
    return _spread(n, 0, blocks)


@dataclass(frozen=True)
class Placement:
    """Core index of every neuron: network input, then each layer on its own cores (our core mapping).

    Cores are numbered as SANA-FE's Loihi numbers them: core c sits on tile c // 4 of an 8 x 4 mesh
    (tile t at x = t // 4, y = t % 4, as SANA-FE's hop counts show).
    """

    inputs: list[int]
    layers: list[list[int]]

    @classmethod
    def plan(cls, net: NetxNetwork, mapping: list[int] | list[LayerResources], per_core: int,
             input_cores: int | None = None) -> Placement:
        """``mapping``: per synaptic layer its :class:`LayerResources` (conv tiles kept) or a core count
        (neurons spread evenly); ``per_core`` neurons per core for the network input (spread over
        ``input_cores`` when given)."""
        inputs = _input_homes(tuple(net.input_shape), per_core, input_cores)
        first = max(inputs) + 1
        layers = []
        for layer, item in zip(synaptic_layers(net), mapping):
            tiling = getattr(item, "tiling", None)
            cores = item if isinstance(item, int) else item.cores
            if tiling is not None:
                layers.append(tile_cores(tiling, tuple(layer.out_shape), first).tolist())
            else:
                layers.append(_spread(layer.neurons, first, cores))
            first += cores
        if first > CORES_PER_CHIP:
            raise UserError(f"the network needs {first} cores, more than the {CORES_PER_CHIP} of one Loihi "
                            "chip; the chip model simulates one chip only")
        return cls(inputs, layers)

    @classmethod
    def for_profile(cls, net: NetxNetwork, profile: HardwareProfile) -> Placement:
        """The placement of ``net`` under the profile's core mapping (:func:`layer_resources`)."""
        return cls.plan(net, layer_resources(net, profile), int(profile.si("neurons_per_core")))

    @property
    def cores(self) -> int:
        return 1 + max(max(self.inputs), *(max(homes) for homes in self.layers))


def tile_distance(core_a: np.ndarray, core_b: np.ndarray) -> np.ndarray:
    """Mesh hops between the tiles of two cores: |x_a - x_b| + |y_a - y_b|."""
    tile_a, tile_b = np.asarray(core_a) // CORES_PER_TILE, np.asarray(core_b) // CORES_PER_TILE
    return (np.abs(tile_a // MESH_HEIGHT - tile_b // MESH_HEIGHT)
            + np.abs(tile_a % MESH_HEIGHT - tile_b % MESH_HEIGHT))


def routing_hops(net: NetxNetwork, placement: Placement, matrices: list[scipy.sparse.csr_matrix]) -> list[np.ndarray]:
    """Tile hops one spike of each source neuron travels, per synaptic layer k (sources: the input for
    k = 0, else layer k-1): one message per destination core it has a nonzero synapse on,

        hops_i = sum over cores c with some w_ij != 0, j on c, of distance(tile(core_i), tile(c)).

    ``matrices``: each layer's feed-forward (n_src, n_dst) synapses. Recurrent synapses stay on the layer's
    own cores and are not counted.
    """
    hops = []
    sources = placement.inputs
    for matrix, homes in zip(matrices, placement.layers):
        reach = (matrix != 0).astype(np.int64)
        dest_cores = np.asarray(homes)
        first = int(dest_cores.min())
        onehot = scipy.sparse.csr_matrix((np.ones(len(homes), dtype=np.int64),
                                          (np.arange(len(homes)), dest_cores - first)))
        touched = (reach @ onehot).toarray() > 0  # (n_src, layer cores)
        distance = tile_distance(np.asarray(sources)[:, None], np.arange(first, dest_cores.max() + 1)[None, :])
        hops.append((touched * distance).sum(axis=1).astype(np.float64))
        sources = homes
    return hops


def destination_cores(placement: Placement, matrices: list[scipy.sparse.csr_matrix]) -> list[np.ndarray]:
    """Per synaptic layer, the number of destination cores each source neuron's spike is sent to."""
    out = []
    for matrix, homes in zip(matrices, placement.layers):
        dest_cores = np.asarray(homes)
        first = int(dest_cores.min())
        onehot = scipy.sparse.csr_matrix((np.ones(len(homes), dtype=np.int64),
                                          (np.arange(len(homes)), dest_cores - first)))
        out.append(np.asarray(((matrix != 0).astype(np.int64) @ onehot > 0).sum(axis=1)).ravel())
    return out
