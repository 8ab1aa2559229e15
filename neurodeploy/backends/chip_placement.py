"""Where every neuron of a netx network sits on a Loihi chip: our one core mapping, core by core.

:func:`layer_resources` maps each synaptic layer with :func:`neurodeploy.metrics.hardware.map_resources` (the
mapping lint and the resource report use): dense layers in rows spread evenly over their cores, conv layers in
spatial tiles of all channels (:mod:`neurodeploy.metrics.placement`). :class:`Placement` turns that into a
core index per neuron, numbered as SANA-FE's Loihi numbers them (core c on tile c // 4 of an 8 x 4 mesh), and
:func:`routing_hops` counts the mesh hops each spike travels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from neurodeploy.deploy.netx import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import HardwareProfile, LayerFootprint, LayerResources, map_resources
from neurodeploy.metrics.placement import ConvShape, ConvTiling, tile_cores

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


def _spread(n: int, first: int, cores: int) -> list[int]:
    """Core index of each of n neurons spread over cores first..first+cores-1 in blocks of ceil(n / cores)."""
    block = math.ceil(n / cores)
    return [first + i // block for i in range(n)]


def _input_homes(shape: tuple[int, ...], per_core: int) -> list[int]:
    """The network input in row bands of all channels (an image), else in blocks of ``per_core``."""
    n = math.prod(shape)
    if len(shape) == 3 and shape[0] * shape[2] <= per_core:
        channels, height, width = shape
        band = per_core // (channels * width)
        tiling = ConvTiling(channels, band, width, 1, math.ceil(height / band), 1, 0, 0, "neurons")
        return tile_cores(tiling, shape).tolist()
    return _spread(n, 0, math.ceil(n / per_core))


@dataclass(frozen=True)
class Placement:
    """Core index of every neuron: network input, then each layer on its own cores (our core mapping).

    Cores are numbered as SANA-FE's Loihi numbers them: core c sits on tile c // 4 of an 8 x 4 mesh
    (tile t at x = t // 4, y = t % 4, as SANA-FE's hop counts show).
    """

    inputs: list[int]
    layers: list[list[int]]

    @classmethod
    def plan(cls, net: NetxNetwork, mapping: list[int] | list[LayerResources], per_core: int) -> Placement:
        """``mapping``: per synaptic layer its :class:`LayerResources` (conv tiles kept) or a core count
        (neurons spread evenly); ``per_core`` neurons per core for the network input."""
        inputs = _input_homes(tuple(net.input_shape), per_core)
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
