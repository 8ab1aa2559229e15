"""Reading a lava-dl netx HDF5 network exactly as ``lava.lib.dl.netx.hdf5.Network`` interprets it
(docs/fixed_point.md).

:func:`load_netx` opens the file through :func:`neurodeploy.safe_hdf5.open_hdf5` (no links to other files,
no virtual or externally stored datasets, sizes bounded), reads each dataset only after checking its size
against the shapes the layers declare, checks every numeric field against Loihi's range
(:mod:`neurodeploy.kernels.loihi_ranges`) before converting it to integers, and raises
:class:`~neurodeploy.errors.UserError` naming the file and layer for anything netx would reject or misread.
The records it returns are in :mod:`neurodeploy.deploy.netx_records`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np

from neurodeploy.deploy.netx_records import NETX_DEFAULT_VTH_MANT, NEURON_TYPES, CubaParams, NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.lava_limits import MAX_DELAY
from neurodeploy.kernels.loihi_ranges import MAX_LAYER_NEURONS, RANGES, RangeError, check_field, check_values
from neurodeploy.safe_hdf5 import open_hdf5, read_dataset

SUPPORTED_LAYER_TYPES = ("input", "flatten", "dense", "dense_rec", "conv")
NETX_REJECTS = {
    "pool": "netx raises NotImplementedError for pool",
    "convT": "netx raises NotImplementedError for convT",
    "unpool": "netx raises NotImplementedError for unpool",
    "average": "netx raises NotImplementedError for average",
    "concat": "netx raises NotImplementedError for concat",
    "dense_comp": "netx cannot build complex dense layers",
}
SUPPORTED_HINT = "supported: input, flatten, dense, dense_rec, conv with CUBA/LOIHI neurons"
SMALL_KEY_ELEMENTS = 8  # type, shape, stride, padding, ... and the neuron's scalars
MAX_WEIGHTS = 1 << 28  # synapses a layer's weight matrix may hold


class _LayerReader:
    """Reads one ``layer/<i>`` group the way netx's ``NetDict`` does, with errors naming file and layer."""

    def __init__(self, path: Path, index: int, group: h5py.Group):
        self.path, self.index, self.group = path, index, group

    def fail(self, what: str, fix: str) -> UserError:
        return UserError(f"{self.path}: layer {self.index}: {what}; {fix}")

    def has(self, key: str) -> bool:
        return key in self.group

    def raw(self, key: str, group: h5py.Group | None = None, max_elements: int = SMALL_KEY_ELEMENTS) -> np.ndarray:
        """The dataset ``key`` of the layer (or of ``group``), refused before it is read when it holds more
        than ``max_elements`` values (what the layer's declared shapes allow)."""
        group = self.group if group is None else group
        if key not in group:
            where = "" if group is self.group else "neuron/"
            raise self.fail(f"missing key '{where}{key}'", "re-export the network with lava-dl")
        item = group[key]
        if not isinstance(item, h5py.Dataset):
            raise self.fail(f"'{key}' is not a dataset", "re-export the network with lava-dl")
        value = read_dataset(self.path, item.name.lstrip("/"), item, max_elements)
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise self.fail(f"'{key}' contains NaN or inf", "fix the trained model and export it again")
        return value

    def declared_shape(self, key: str) -> tuple[int, ...] | None:
        """The shape a dataset declares (read from its header, not its values), None when it is not one."""
        item = self.group.get(key)
        return tuple(item.shape) if isinstance(item, h5py.Dataset) and item.shape is not None else None

    def integers(self, key: str, group: h5py.Group | None = None, max_elements: int = SMALL_KEY_ELEMENTS,
                 field: str | None = None) -> np.ndarray:
        """A ``copy_keys`` array: netx reads it with ``astype(int)`` (truncation toward zero). Checked against
        Loihi's range of ``field`` (default: ``key``, when it has one) before the conversion."""
        value = self.raw(key, group, max_elements)
        field = field or key
        try:
            if field in RANGES:
                check_field(value, field)
            else:
                check_values(value, field, -(1 << 31), (1 << 31) - 1)
        except RangeError as exc:
            raise self.fail(f"'{key}': {exc}", "re-export the network with lava-dl's quantization") from None
        return value.astype(np.int64)

    def scalar_int(self, key: str, group: h5py.Group | None = None) -> int:
        value = self.raw(key, group)
        if value.size != 1 or value.dtype.kind not in "iu":
            raise self.fail(
                f"'{key}' must be one integer (Lava's fixed-point LIF shifts it), got {value.dtype} "
                f"{value.shape}",
                "store it as an integer scalar",
            )
        self._check_range(key, value)
        return int(value.reshape(-1)[0])

    def _check_range(self, key: str, value: np.ndarray) -> None:
        if key in RANGES:
            try:
                check_field(value, key)
            except RangeError as exc:
                raise self.fail(f"'{key}': {exc}", "re-export the network with lava-dl") from None

    def shape(self) -> tuple[int, ...]:
        value = self.raw("shape").reshape(-1)
        if value.dtype.kind not in "iu" or value.size == 0 or np.any(value < 1):
            raise self.fail(f"invalid shape {value.tolist()}", "shapes are positive integers (C, H, W)")
        self._check_range("shape", value)
        if np.prod(value.astype(np.float64)) > MAX_LAYER_NEURONS:
            raise self.fail(f"shape {value.tolist()} declares more than {MAX_LAYER_NEURONS:,} neurons",
                            "check the file")
        return tuple(int(v) for v in value)

    def pair(self, key: str) -> tuple[int, int]:
        value = self.raw(key).reshape(-1)
        if value.size == 1:
            value = np.repeat(value, 2)
        if value.size != 2 or value.dtype.kind not in "iu":
            raise self.fail(f"'{key}' must be one or two integers (H, W), got {value.tolist()}", "re-export")
        self._check_range(key, value)
        return (int(value[0]), int(value[1]))

    def layer_type(self) -> str:
        return _decode_str(self.raw("type"))

    def neuron(self, required: bool) -> CubaParams | None:
        if "neuron" not in self.group:
            if required:
                raise self.fail("missing key 'neuron'", "netx needs a neuron group for this layer type")
            return None
        group = self.group["neuron"]
        if not isinstance(group, h5py.Group):
            raise self.fail("'neuron' is not a group", "re-export the network with lava-dl")
        kind = _decode_str(self.raw("type", group))
        if kind not in NEURON_TYPES:
            raise self.fail(f"neuron type {kind!r} is not supported", SUPPORTED_HINT)
        graded = bool(self.integers("gradedSpike", group).any()) if "gradedSpike" in group else False
        ref_delay = self.scalar_int("refDelay", group) if "refDelay" in group else 1
        try:
            return CubaParams(
                i_decay=self.scalar_int("iDecay", group),
                v_decay=self.scalar_int("vDecay", group),
                v_th_mant=self.scalar_int("vThMant", group),
                ref_delay=ref_delay,
                graded_spike=graded,
                model=kind,
            )
        except (TypeError, ValueError) as exc:
            raise self.fail(f"invalid neuron ({exc})", "re-export the network with lava-dl") from exc


def _decode_str(value: np.ndarray) -> str:
    if value.size == 0:
        return ""
    item = value.reshape(-1)[0]
    return item.decode("ascii", errors="replace") if isinstance(item, bytes) else str(item)


def _open_layers(path: Path, handle: h5py.File) -> list[h5py.Group]:
    if "layer" not in handle or not isinstance(handle["layer"], h5py.Group):
        raise UserError(f"{path}: no 'layer' group; this is not a netx network (export it with lava-dl)")
    group = handle["layer"]
    names = sorted(group.keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    expected = [str(i) for i in range(len(names))]
    if names != expected:
        raise UserError(
            f"{path}: layer groups are {names}, expected '0'..'{len(names) - 1}'; netx reads layers by number"
        )
    if not names:
        raise UserError(f"{path}: the 'layer' group is empty; export the network again")
    layers = [group[name] for name in names]
    for name, layer in zip(names, layers):
        if not isinstance(layer, h5py.Group):
            raise UserError(f"{path}: layer/{name} is not a group; export the network again")
    return layers


def load_netx(path: str | Path, num_layers: int | None = None) -> NetxNetwork:
    """Read a netx HDF5 network; ``num_layers`` keeps only the first file layers, like netx's argument.

    Raises :class:`UserError` naming the file for: a missing or non-HDF5 file, no ``layer`` group, a layer
    type or neuron type netx cannot run, missing keys, NaN/inf values, and shapes that do not connect.
    """
    path = Path(path)
    if num_layers is not None and num_layers < 1:
        raise UserError(f"{path}: num_layers={num_layers}; keep at least one layer")
    with open_hdf5(path, "netx network", "give a netx network exported by lava-dl (.net/.h5)") as handle:
        try:
            groups = _open_layers(path, handle)
            if num_layers is not None:
                groups = groups[:num_layers]
            return _build_network(path, groups)
        except (OSError, RuntimeError, KeyError) as exc:  # h5py's errors for damaged internal structures
            raise UserError(f"{path}: damaged HDF5 file ({type(exc).__name__}: {exc}); export the network "
                            "again or re-copy the file") from exc


def _build_network(path: Path, groups: list[h5py.Group]) -> NetxNetwork:
    layers: list[NetxLayer] = []
    input_shape: tuple[int, ...] | None = None
    flatten_next = False
    for index, group in enumerate(groups):
        reader = _LayerReader(path, index, group)
        kind = reader.layer_type()
        if kind in NETX_REJECTS:
            hint = f"use num_layers={index} to keep the layers before it" if index else SUPPORTED_HINT
            raise reader.fail(f"type '{kind}' cannot run on Lava ({NETX_REJECTS[kind]})", hint)
        if kind not in SUPPORTED_LAYER_TYPES:
            raise reader.fail(f"unknown layer type {kind!r}", SUPPORTED_HINT)
        if kind == "input":
            if layers or input_shape is not None:
                raise reader.fail("an input layer must come first", "put the input layer at index 0")
            if reader.has("shape"):
                input_shape = reader.shape()
            neuron = reader.neuron(required=False)
            if neuron is not None:
                if input_shape is None:
                    raise reader.fail("missing key 'shape'", "an input layer with a neuron needs its shape")
                layers.append(_input_layer(reader, input_shape, neuron))
            continue
        if kind == "flatten":
            if layers and layers[-1].kind in ("dense", "dense_rec"):
                raise reader.fail("flatten after a dense layer", "netx only flattens conv/input outputs")
            flatten_next = True
            continue
        in_shape = layers[-1].out_shape if layers else input_shape
        try:
            if kind == "conv":
                if flatten_next:
                    raise reader.fail("flatten before a conv layer", "flatten only before a dense layer")
                layer = _conv_layer(reader, in_shape)
            else:
                layer = _dense_layer(reader, kind, in_shape, flatten_next, bool(layers))
        except ValueError as exc:
            raise reader.fail(str(exc), "re-export the network with lava-dl") from exc
        flatten_next = False
        layers.append(layer)
    if not layers:
        raise UserError(f"{path}: no layer with neurons (only input/flatten); export the whole network")
    first = layers[0]
    if input_shape is None or first.kind == "input":
        input_shape = first.in_shape
    elif int(np.prod(input_shape)) != first.num_inputs:
        raise UserError(
            f"{path}: input shape {input_shape} has {int(np.prod(input_shape))} values but layer "
            f"{first.index} expects {first.num_inputs} inputs; fix the input layer's shape"
        )
    return NetxNetwork(path=path, layers=tuple(layers), input_shape=tuple(input_shape))


def _input_layer(reader: _LayerReader, shape: tuple[int, ...], neuron: CubaParams) -> NetxLayer:
    size = int(np.prod(shape))
    transform_weight = (reader.integers("weight", max_elements=size, field="transform weight").reshape(-1)
                        if reader.has("weight") else np.array([64]))
    transform_bias = (reader.integers("bias", max_elements=size, field="transform bias").reshape(-1)
                      if reader.has("bias") else np.array([0]))
    return NetxLayer(index=reader.index, kind="input", in_shape=shape, out_shape=shape,
                     weight=transform_weight[:1], bias=transform_bias[:1], neuron=neuron)


def _dense_layer(
    reader: _LayerReader, kind: str, in_shape, flatten_before: bool, layers_before: bool
) -> NetxLayer:
    n_out = int(np.prod(reader.shape()))
    if reader.has("weight/imag"):
        raise reader.fail("complex weights (weight/real, weight/imag)", SUPPORTED_HINT)
    n_in_max = MAX_LAYER_NEURONS if in_shape is None else int(np.prod(in_shape))
    declared = reader.declared_shape("weight")
    if declared is not None and len(declared) == 2 and declared[0] == n_out and declared[1] != n_in_max \
            and in_shape is not None:
        raise reader.fail(f"weight expects {declared[1]} inputs but the previous layer has {n_in_max} outputs",
                          "fix the layer sizes")
    weight = reader.integers("weight", max_elements=min(n_out * n_in_max, MAX_WEIGHTS))
    weight_rec = reader.integers("weight_rec", max_elements=n_out * n_out) if kind == "dense_rec" else None
    if weight.ndim == 1:
        if weight.size % n_out:
            raise reader.fail(f"weight of {weight.size} values does not split into {n_out} rows", "re-export")
        weight = weight.reshape(n_out, -1)
        if weight_rec is not None and weight_rec.ndim == 1:
            weight_rec = weight_rec.reshape(n_out, -1)
    if weight.ndim != 2 or weight.shape[0] != n_out:
        raise reader.fail(f"weight shape {weight.shape} does not match {n_out} neurons", "re-export")
    n_in = weight.shape[1]
    if in_shape is not None and int(np.prod(in_shape)) != n_in:
        raise reader.fail(
            f"weight expects {n_in} inputs but the previous layer has {int(np.prod(in_shape))} outputs",
            "fix the layer sizes",
        )
    if layers_before and len(in_shape) > 1 and not flatten_before:
        raise reader.fail(f"dense layer after a {in_shape} layer without flatten", "add a flatten layer")
    for key, expected in (("inFeatures", n_in), ("outFeatures", n_out)):
        if reader.has(key) and reader.scalar_int(key) != expected:
            raise reader.fail(f"{key}={reader.scalar_int(key)} but weight implies {expected}", "re-export")
    neuron = reader.neuron(required=False) or CubaParams(0, 4096, NETX_DEFAULT_VTH_MANT)
    return NetxLayer(
        index=reader.index, kind=kind, in_shape=(n_in,), out_shape=(n_out,), weight=weight,
        weight_rec=weight_rec, bias=_dense_bias(reader, n_out), delay=_dense_delay(reader, weight.shape),
        neuron=neuron, flatten_before=flatten_before,
    )


def _dense_bias(reader: _LayerReader, n_out: int) -> np.ndarray | None:
    if not reader.has("bias"):
        return None
    bias = reader.integers("bias", max_elements=n_out).reshape(-1)
    if bias.size == 1:
        return np.full(n_out, bias[0], dtype=np.int64)
    if bias.size != n_out:
        raise reader.fail(f"bias has {bias.size} values for {n_out} neurons", "store one bias per neuron")
    return bias


def _dense_delay(reader: _LayerReader, weight_shape: tuple[int, int]) -> np.ndarray | None:
    """netx Dense delays: clip to [.., 62] if the max exceeds 62, broadcast, then ``astype(int)``."""
    if not reader.has("delay"):
        return None
    delay = reader.raw("delay", max_elements=weight_shape[0] * weight_shape[1])
    try:
        check_field(delay, "delay")
    except RangeError as exc:
        if delay.dtype.kind in "biuf":
            raise reader.fail("negative delays (Lava silently drops those synapses)", "delays must be >= 0") \
                from None
        raise reader.fail(f"'delay': {exc}", "re-export the network with lava-dl") from None
    delay = delay.astype(np.float64)
    if delay.min(initial=0) < 0:
        raise reader.fail("negative delays (Lava silently drops those synapses)", "delays must be >= 0")
    if delay.max(initial=0) > MAX_DELAY:
        warnings.warn(f"{reader.path}: layer {reader.index}: delays above {MAX_DELAY} clipped, as netx does",
                      stacklevel=2)
        delay = np.clip(delay, 0, MAX_DELAY)
    n_out, n_in = weight_shape
    if delay.ndim == 0:
        delay = delay.reshape(1, 1)
    elif delay.ndim == 1 and delay.size == n_out:  # netx checks axonal (per output neuron) first
        delay = delay.reshape(n_out, 1)
    elif delay.ndim == 1 and delay.size == n_in:
        delay = delay.reshape(1, n_in)
    elif delay.shape != weight_shape:
        raise reader.fail(f"delay shape {delay.shape} does not fit weight {weight_shape}", "re-export")
    return delay.astype(np.int64)


def _conv_layer(reader: _LayerReader, in_shape) -> NetxLayer:
    if in_shape is None:
        raise reader.fail("conv layer without an input shape", "add an input layer with 'shape' (C, H, W)")
    if len(in_shape) != 3:
        raise reader.fail(f"conv input {in_shape} is not (C, H, W)", "convolutions need image inputs")
    out_shape = reader.shape()
    if len(out_shape) != 3:
        raise reader.fail(f"conv shape {out_shape} is not (C, H, W)", "re-export")
    padding = reader.pair("padding") if reader.has("padding") else (0, 0)
    taps = (in_shape[1] + 2 * padding[0]) * (in_shape[2] + 2 * padding[1])
    weight = reader.integers("weight", max_elements=min(out_shape[0] * in_shape[0] * taps, MAX_WEIGHTS))
    if weight.ndim > 4 and all(s == 1 for s in weight.shape[4:]):
        weight = weight.reshape(weight.shape[:4])  # slayer may keep a trailing time axis of 1
    if weight.ndim != 4:
        raise reader.fail(f"conv weight shape {weight.shape} is not (C_out, C_in/groups, kH, kW)", "re-export")
    bias = None
    if reader.has("bias"):
        bias = reader.integers("bias", max_elements=out_shape[0]).reshape(-1)
        if bias.size != out_shape[0]:
            raise reader.fail(f"conv bias has {bias.size} values for {out_shape[0]} channels",
                              "store one bias per output channel (netx cannot broadcast it)")
    if reader.has("delay"):
        raise reader.fail("conv delays", "netx ignores conv delays; remove them from the export")
    groups = reader.scalar_int("groups")
    return NetxLayer(
        index=reader.index, kind="conv", in_shape=tuple(in_shape), out_shape=out_shape, weight=weight,
        bias=bias, neuron=reader.neuron(required=True), kernel=(weight.shape[2], weight.shape[3]),
        stride=reader.pair("stride"), padding=reader.pair("padding"), dilation=reader.pair("dilation"),
        groups=groups,
    )

