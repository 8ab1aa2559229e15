"""Writing lava-dl netx HDF5: :func:`write_netx` writes network records (:mod:`neurodeploy.deploy.netx_records`,
in range by construction) in netx's layout, :func:`write_slayer_netx` writes a trained SLAYER network
(lava-dl's block exporters, pooling as a grouped convolution). Writing records never imports Lava; only the
SLAYER writer does (via lava_compat).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurodeploy import lava_compat
from neurodeploy.atomic import atomic_path
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer, NetxNetwork
from neurodeploy.kernels.lava_limits import MAX_CONV_GROUPS


def _write_type(group: h5py.Group, kind: str) -> None:
    group.create_dataset("type", (1,), "S10", [kind.encode("ascii")])


def _write_neuron(group: h5py.Group, neuron: CubaParams) -> None:
    sub = group.create_group("neuron")
    for key, value in neuron.to_dict().items():
        if key == "type":
            sub.create_dataset("type", data=value.encode("ascii"), dtype=h5py.string_dtype("ascii"))
        else:
            sub.create_dataset(key, data=value)


def _write_layer(group: h5py.Group, layer: NetxLayer) -> None:
    _write_type(group, layer.kind)
    group.create_dataset("shape", data=np.asarray(layer.out_shape, dtype=np.int64))
    if layer.neuron is not None:
        _write_neuron(group, layer.neuron)
    if layer.kind == "input":
        group.create_dataset("weight", data=layer.weight.astype(np.int64))
        group.create_dataset("bias", data=layer.bias.astype(np.int64))
        return
    group.create_dataset("weight", data=layer.weight.astype(np.int64))
    if layer.bias is not None:
        group.create_dataset("bias", data=layer.bias.astype(np.int64))
    if layer.kind == "conv":
        group.create_dataset("inChannels", data=layer.in_shape[0])
        group.create_dataset("outChannels", data=layer.out_shape[0])
        for key, value in (("kernelSize", layer.kernel), ("stride", layer.stride),
                           ("padding", layer.padding), ("dilation", layer.dilation)):
            group.create_dataset(key, data=np.asarray(value, dtype=np.int64))
        group.create_dataset("groups", data=layer.groups)
        return
    group.create_dataset("inFeatures", data=layer.num_inputs)
    group.create_dataset("outFeatures", data=layer.neurons)
    if layer.weight_rec is not None:
        group.create_dataset("weight_rec", data=layer.weight_rec.astype(np.int64))
    if layer.delay is not None:
        group.create_dataset("delay", data=_delay_for_file(layer))


def _delay_for_file(layer: NetxLayer) -> np.ndarray:
    """Smallest form netx reads back to the same per-synapse delays."""
    n_out, n_in = layer.weight.shape
    delay = layer.delay
    if delay.shape == (1, 1):
        return delay.reshape(-1)[:1] * np.ones(n_out, dtype=np.int64)
    if delay.shape == (n_out, 1):
        return delay.reshape(-1)
    if delay.shape == (1, n_in) and n_in != n_out:
        return delay.reshape(-1)
    return np.broadcast_to(delay, (n_out, n_in)).copy()


def write_netx(path: str | Path, network_or_layers: NetxNetwork | list[NetxLayer], input_shape=None) -> Path:
    """Write layers in netx layout (atomically): an ``input`` layer, ``flatten`` markers, then the blocks.

    Layer indices are renumbered in file order; :func:`load_netx` of the result gives records equal to
    ``layers`` apart from ``index``.
    """
    if isinstance(network_or_layers, NetxNetwork):
        layers, input_shape = network_or_layers.layers, network_or_layers.input_shape
    else:
        layers = list(network_or_layers)
        input_shape = tuple(input_shape) if input_shape is not None else layers[0].in_shape
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        root = handle.create_group("layer")
        slot = 0
        if layers[0].kind != "input":
            group = root.create_group(str(slot))
            _write_type(group, "input")
            group.create_dataset("shape", data=np.asarray(input_shape, dtype=np.int64))
            slot += 1
        for layer in layers:
            if layer.flatten_before:
                group = root.create_group(str(slot))
                _write_type(group, "flatten")
                group.create_dataset("shape", data=np.asarray([layer.num_inputs, 1, 1], dtype=np.int64))
                slot += 1
            _write_layer(root.create_group(str(slot)), layer)
            slot += 1
    return path


def write_slayer_netx(network, path: str | Path) -> None:
    """Write a trained :class:`~neurodeploy.models.snn.SpikingNetwork` as lava-dl netx HDF5 (one ``layer/<i>``
    group per block: lava-dl's own ``export_hdf5`` for dense and conv blocks, :func:`export_pool_as_conv` for
    pooling, and an ``input`` layer in front of a convolutional network)."""
    network.trace_shapes()
    pool_type = lava_compat.slayer().block.cuba.Pool
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        offset = 0
        if not network.flat_input:  # netx infers a conv network's input shape only from an input layer
            entry = group.create_group("0")
            entry.create_dataset("type", (1,), "S10", [b"input"])
            entry.create_dataset("shape", data=np.array(network.chip_input_shape))
            offset = 1
        for index, block in enumerate(network.blocks):
            if isinstance(block, pool_type):
                export_pool_as_conv(block, group.create_group(str(index + offset)))
            else:
                block.export_hdf5(group.create_group(str(index + offset)))


def export_pool_as_conv(block, handle: h5py.Group) -> None:
    """Write a SLAYER Pool block as an equivalent netx ``conv`` layer (netx cannot load ``pool``).

    SLAYER's pool synapse applies one fixed k x k kernel to every channel separately, stride k. The same
    synaptic input comes from a C -> C convolution, stride k, whose weight is that kernel on the channel
    diagonal (W[c, c] = kernel, W[c, d != c] = 0); the neuron parameters are the block's own. The weight is
    written grouped (see :func:`pool_conv_groups`) so Lava's CPU conv skips the zero kernels between groups.
    """
    synapse = block.synapse
    kernel = synapse.pre_hook_fx(synapse.weight, descale=True).reshape(synapse.weight.shape[2:4])
    kernel = kernel.detach().cpu().numpy()
    channels = int(block.neuron.shape[0])
    groups = pool_conv_groups(channels)
    per_group = channels // groups
    weight = np.zeros((channels, per_group, *kernel.shape), dtype=kernel.dtype)
    weight[np.arange(channels), np.arange(channels) % per_group] = kernel  # the diagonal, within each group
    handle.create_dataset("type", (1,), "S10", [b"conv"])
    handle.create_dataset("shape", data=np.array(block.neuron.shape))
    handle.create_dataset("inChannels", data=channels)
    handle.create_dataset("outChannels", data=channels)
    handle.create_dataset("kernelSize", data=np.array(synapse.kernel_size[:-1]))
    handle.create_dataset("stride", data=np.array(synapse.stride[:-1]))
    handle.create_dataset("padding", data=np.array(synapse.padding[:-1]))
    handle.create_dataset("dilation", data=np.array(synapse.dilation[:-1]))
    handle.create_dataset("groups", data=groups)
    handle.create_dataset("weight", data=weight)
    handle.create_dataset("mappedFrom", (1,), "S10", [b"pool"])
    for key, value in block.neuron.device_params.items():
        handle.create_dataset(f"neuron/{key}", data=value)


def pool_conv_groups(channels: int) -> int:
    """Convolution groups for a pooling layer of ``channels`` channels: as many as Lava's Conv can hold.

    A depthwise conv (groups = channels) would be ideal, but Lava's CPU ``Conv`` model stores ``groups`` as
    int8, and 128 groups wrap to -128 and silently produce no output; so the largest divisor of ``channels``
    up to 127 (128 channels -> 64 groups of 2). Lava then runs channels x channels / groups per-channel
    convolutions per step instead of channels^2 (256 instead of 16,384 for 128 channels).
    """
    return max(d for d in range(1, min(channels, MAX_CONV_GROUPS) + 1) if channels % d == 0)
