"""lava-dl netx HDF5: the one module that reads and writes it.

:func:`load_netx` reads a netx file exactly as ``lava.lib.dl.netx.hdf5.Network`` interprets it
(docs/fixed_point.md) and raises :class:`~neurodeploy.errors.UserError` naming the file for
anything netx would reject or misread. :func:`write_netx` writes records back in the same layout, and
:func:`write_slayer_netx` writes a trained SLAYER network (lava-dl's block exporters, pooling as a grouped
convolution). Reading and writing records never imports Lava; only the SLAYER writer does (via lava_compat).

Conventions
-----------
- ``layers`` are the blocks Lava builds, in order: ``input`` (only when the file's input layer has a
  neuron), ``dense``, ``dense_rec`` and ``conv``. A file ``input`` layer without a neuron only sets
  :attr:`NetxNetwork.input_shape`; a ``flatten`` layer sets ``flatten_before`` on the next layer.
- Shapes are slayer's: ``(C, H, W)`` for input and conv layers, ``(n,)`` for dense layers. netx itself works
  in the reversed ``(x, y, z) = (W, H, C)`` order; neurodeploy never exposes that order.
- Flat neuron indices are the C-order flattening of ``(C, H, W)``: ``c*H*W + h*W + w``. This is how netx
  connects a conv layer to a dense one through ``flatten`` (``out.transpose([2, 1, 0]).flatten()``).
- Integer arrays hold what netx reads: ``weight``, ``weight_rec`` and ``bias`` through ``astype(int)``
  (truncation toward zero); delays clipped to [0, 62] and truncated as netx's Dense block does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy import lava_compat
from neurodeploy.atomic import atomic_path
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import ConvGeometry
from neurodeploy.kernels.lava_limits import MAX_CONV_GROUPS, MAX_DELAY
from neurodeploy.safe_files import check_regular_file

SUPPORTED_LAYER_TYPES = ("input", "flatten", "dense", "dense_rec", "conv")
NEURON_TYPES = ("CUBA", "LOIHI")
# netx's default neuron for a dense block without a `neuron` group: a non-leaky integrator. Its threshold is
# written `1 << 18 - 1` in hdf5.py, which Python parses as 1 << 17; (1 << 17) << 6 = 2**23 is above the
# saturated voltage 2**23 - 1, so such a layer never spikes (a readout whose voltage nobody records).
NETX_DEFAULT_VTH_MANT = 1 << 17
NETX_REJECTS = {
    "pool": "netx raises NotImplementedError for pool",
    "convT": "netx raises NotImplementedError for convT",
    "unpool": "netx raises NotImplementedError for unpool",
    "average": "netx raises NotImplementedError for average",
    "concat": "netx raises NotImplementedError for concat",
    "dense_comp": "netx cannot build complex dense layers",
}
SUPPORTED_HINT = "supported: input, flatten, dense, dense_rec, conv with CUBA/LOIHI neurons"


@dataclass(frozen=True)
class CubaParams:
    """CUBA neuron of a netx layer, in netx's integer units.

    ``i_decay``/``v_decay`` are 12-bit decays in [0, 4096] (4096 = no memory), ``v_th_mant`` the threshold
    mantissa (Lava compares ``v > v_th_mant << 6``), ``ref_delay`` and ``graded_spike`` as exported (Lava's
    CPU LIF has no refractory period and always emits 0/1 spikes, so both are informational).
    """

    i_decay: int
    v_decay: int
    v_th_mant: int
    ref_delay: int = 1
    graded_spike: bool = False
    model: str = "CUBA"

    def __post_init__(self):
        for name in ("i_decay", "v_decay", "v_th_mant", "ref_delay"):
            if not isinstance(getattr(self, name), (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("i_decay", "v_decay"):
            if not 0 <= getattr(self, name) <= 4096:
                raise ValueError(f"{name}={getattr(self, name)} is outside [0, 4096]")
        if self.model not in NEURON_TYPES:
            raise ValueError(f"neuron type {self.model!r} is not one of {NEURON_TYPES}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.model,
            "iDecay": int(self.i_decay),
            "vDecay": int(self.v_decay),
            "vThMant": int(self.v_th_mant),
            "refDelay": int(self.ref_delay),
            "gradedSpike": bool(self.graded_spike),
        }


def _pair(value: tuple[int, int]) -> tuple[int, int]:
    return (int(value[0]), int(value[1]))


@dataclass(frozen=True, eq=False)
class NetxLayer:
    """One block Lava builds from a netx file.

    ``index`` is the file's layer number (the HDF5 group name). ``in_shape``/``out_shape`` are slayer
    shapes (module docstring). ``weight`` is (out, in) for dense layers and (C_out, C_in/groups, kH, kW) for
    conv layers; for an ``input`` layer it holds netx's unused input transform ``[weight]`` and ``bias``
    holds ``[bias]``. ``bias`` is per neuron (dense) or per output channel (conv). ``delay`` broadcasts
    against ``weight`` (dense only). Conv pairs are (H, W).
    """

    index: int
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    weight_rec: np.ndarray | None = None
    bias: np.ndarray | None = None
    delay: np.ndarray | None = None
    neuron: CubaParams | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None
    groups: int = 1
    flatten_before: bool = False
    name: str = field(default="")

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", f"{self.kind}_{self.index}")
        if self.kind not in ("input", "dense", "dense_rec", "conv"):
            raise ValueError(f"unknown layer kind {self.kind!r}")
        if self.kind != "input" and self.neuron is None:
            raise ValueError(f"{self.kind} layer {self.index} needs a neuron")
        if self.kind in ("dense", "dense_rec"):
            self._check_dense()
        elif self.kind == "conv":
            self._check_conv()
        for name in ("weight", "weight_rec", "bias", "delay"):
            value = getattr(self, name)
            if value is not None and value.dtype.kind not in "iu":
                raise ValueError(f"{name} must be an integer array, got {value.dtype}")

    def _check_dense(self):
        n_in, n_out = self.in_shape[0], self.out_shape[0]
        if len(self.in_shape) != 1 or len(self.out_shape) != 1:
            raise ValueError(f"dense shapes must be 1-D, got {self.in_shape} -> {self.out_shape}")
        if self.weight is None or self.weight.shape != (n_out, n_in):
            shape = None if self.weight is None else self.weight.shape
            raise ValueError(f"weight shape {shape} does not match (out, in) = {(n_out, n_in)}")
        if self.kind == "dense_rec":
            if self.weight_rec is None or self.weight_rec.shape != (n_out, n_out):
                shape = None if self.weight_rec is None else self.weight_rec.shape
                raise ValueError(f"weight_rec shape {shape} does not match (out, out) = {(n_out, n_out)}")
        elif self.weight_rec is not None:
            raise ValueError("weight_rec is only valid for dense_rec layers")
        if self.bias is not None and self.bias.shape != (n_out,):
            raise ValueError(f"bias shape {self.bias.shape} does not match ({n_out},)")
        if self.delay is not None:
            try:
                np.broadcast_shapes(self.delay.shape, self.weight.shape)
            except ValueError:
                raise ValueError(f"delay shape {self.delay.shape} does not broadcast to {self.weight.shape}") from None
            if self.delay.min(initial=0) < 0 or self.delay.max(initial=0) > MAX_DELAY:
                raise ValueError(f"delays must lie in [0, {MAX_DELAY}]")

    def _check_conv(self):
        geometry = self.conv_geometry()
        if tuple(self.out_shape) != geometry.out_shape:
            raise ValueError(
                f"output shape {self.out_shape} does not match the convolution's {geometry.out_shape}"
            )
        expected = (self.out_shape[0], self.in_shape[0] // self.groups, *self.kernel)
        if self.weight is None or self.weight.shape != expected:
            shape = None if self.weight is None else self.weight.shape
            raise ValueError(f"weight shape {shape} does not match (C_out, C_in/groups, kH, kW) = {expected}")
        if self.bias is not None and self.bias.shape != (self.out_shape[0],):
            raise ValueError(f"bias shape {self.bias.shape} does not match ({self.out_shape[0]},)")
        if self.delay is not None or self.weight_rec is not None:
            raise ValueError("conv layers take no delay or weight_rec")

    @property
    def num_inputs(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def neurons(self) -> int:
        return int(np.prod(self.out_shape))

    def conv_geometry(self) -> ConvGeometry:
        if self.kind != "conv":
            raise ValueError(f"layer {self.index} is {self.kind}, not conv")
        return ConvGeometry(
            in_shape=tuple(int(s) for s in self.in_shape),
            out_channels=int(self.out_shape[0]),
            kernel=_pair(self.kernel),
            stride=_pair(self.stride),
            padding=_pair(self.padding),
            dilation=_pair(self.dilation),
            groups=int(self.groups),
        )

    def fan_out(self) -> np.ndarray:
        """Feed-forward synapses leaving each input neuron, int64 (num_inputs,).

        Dense: ``out_features`` for every input. Conv: the exact number of output neurons each input pixel
        reaches, border effects included. Input layers have no synapses (zeros). Recurrent synapses are
        counted by :meth:`recurrent_fan_out`.
        """
        if self.kind in ("dense", "dense_rec"):
            return np.full(self.num_inputs, self.neurons, dtype=np.int64)
        if self.kind == "conv":
            return self.conv_geometry().fan_out()
        return np.zeros(self.num_inputs, dtype=np.int64)

    def recurrent_fan_out(self) -> np.ndarray:
        """Recurrent synapses leaving each of this layer's neurons (zeros unless ``dense_rec``)."""
        count = self.neurons if self.kind == "dense_rec" else 0
        return np.full(self.neurons, count, dtype=np.int64)

    @property
    def synapses(self) -> int:
        """Number of synaptic connections (feed-forward plus recurrent), zero weights included."""
        return int(self.fan_out().sum() + self.recurrent_fan_out().sum())

    @property
    def params(self) -> int:
        """Stored weights plus biases (an input layer's transform constants are not parameters)."""
        if self.kind == "input":
            return 0
        return sum(int(a.size) for a in (self.weight, self.weight_rec, self.bias) if a is not None)

    def to_dict(self) -> dict[str, Any]:
        """Summary without the arrays (for reports)."""
        row: dict[str, Any] = {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            "neurons": self.neurons,
            "params": self.params,
            "synapses": self.synapses,
            "flatten_before": self.flatten_before,
            "delay": self.delay is not None,
            "neuron": None if self.neuron is None else self.neuron.to_dict(),
        }
        if self.kind == "conv":
            row.update(kernel=list(self.kernel), stride=list(self.stride), padding=list(self.padding),
                       dilation=list(self.dilation), groups=self.groups)
        return row


@dataclass(frozen=True, eq=False)
class NetxNetwork:
    """A netx network: its file, Lava's blocks in order, and the shape of the spike input (slayer order)."""

    path: Path
    layers: tuple[NetxLayer, ...]
    input_shape: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("a network needs at least one layer")

    @property
    def num_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def num_outputs(self) -> int:
        return self.layers[-1].neurons

    @property
    def synaptic_layers(self) -> int:
        """Layers that receive input through a synapse (each adds one step of lag)."""
        return sum(layer.kind != "input" for layer in self.layers)


# ----------------------------------------------------------------------------------------------- reading


class _LayerReader:
    """Reads one ``layer/<i>`` group the way netx's ``NetDict`` does, with errors naming file and layer."""

    def __init__(self, path: Path, index: int, group: h5py.Group):
        self.path, self.index, self.group = path, index, group

    def fail(self, what: str, fix: str) -> UserError:
        return UserError(f"{self.path}: layer {self.index}: {what}; {fix}")

    def has(self, key: str) -> bool:
        return key in self.group

    def raw(self, key: str, group: h5py.Group | None = None) -> np.ndarray:
        group = self.group if group is None else group
        if key not in group:
            where = "" if group is self.group else "neuron/"
            raise self.fail(f"missing key '{where}{key}'", "re-export the network with lava-dl")
        item = group[key]
        if not isinstance(item, h5py.Dataset):
            raise self.fail(f"'{key}' is not a dataset", "re-export the network with lava-dl")
        try:
            value = np.asarray(item[()])
        except (OSError, RuntimeError, TypeError, ValueError) as exc:  # h5py on a damaged datatype or layout
            raise self.fail(f"'{key}' cannot be read ({type(exc).__name__}: {exc})",
                            "the file is damaged; export the network again") from exc
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise self.fail(f"'{key}' contains NaN or inf", "fix the trained model and export it again")
        return value

    def integers(self, key: str, group: h5py.Group | None = None) -> np.ndarray:
        """A ``copy_keys`` array: netx reads it with ``astype(int)`` (truncation toward zero)."""
        value = self.raw(key, group)
        if value.dtype.kind not in "iufb":
            raise self.fail(f"'{key}' has non-numeric dtype {value.dtype}", "re-export the network")
        return value.astype(np.int64)

    def scalar_int(self, key: str, group: h5py.Group | None = None) -> int:
        value = self.raw(key, group)
        if value.size != 1 or value.dtype.kind not in "iu":
            raise self.fail(
                f"'{key}' must be one integer (Lava's fixed-point LIF shifts it), got {value.dtype} "
                f"{value.shape}",
                "store it as an integer scalar",
            )
        return int(value.reshape(-1)[0])

    def shape(self) -> tuple[int, ...]:
        value = self.raw("shape").reshape(-1)
        if value.dtype.kind not in "iu" or value.size == 0 or np.any(value < 1):
            raise self.fail(f"invalid shape {value.tolist()}", "shapes are positive integers (C, H, W)")
        return tuple(int(v) for v in value)

    def pair(self, key: str) -> tuple[int, int]:
        value = self.raw(key).reshape(-1)
        if value.size == 1:
            value = np.repeat(value, 2)
        if value.size != 2 or value.dtype.kind not in "iu":
            raise self.fail(f"'{key}' must be one or two integers (H, W), got {value.tolist()}", "re-export")
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
            raise self.fail(f"invalid neuron ({exc})", "decays are integers in [0, 4096]") from exc


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
    if not path.exists():
        raise UserError(f"{path}: no such file; give the path of a netx .net/.h5 file")
    check_regular_file(path, "netx network")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not an HDF5 file ({exc}); give a netx network exported by lava-dl") from exc
    with handle:
        try:
            groups = _open_layers(path, handle)
            if num_layers is not None:
                if num_layers < 1:
                    raise UserError(f"{path}: num_layers={num_layers}; keep at least one layer")
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
    transform_weight = reader.integers("weight").reshape(-1) if reader.has("weight") else np.array([64])
    transform_bias = reader.integers("bias").reshape(-1) if reader.has("bias") else np.array([0])
    return NetxLayer(index=reader.index, kind="input", in_shape=shape, out_shape=shape,
                     weight=transform_weight[:1], bias=transform_bias[:1], neuron=neuron)


def _dense_layer(
    reader: _LayerReader, kind: str, in_shape, flatten_before: bool, layers_before: bool
) -> NetxLayer:
    n_out = int(np.prod(reader.shape()))
    if reader.has("weight/imag"):
        raise reader.fail("complex weights (weight/real, weight/imag)", SUPPORTED_HINT)
    weight = reader.integers("weight")
    weight_rec = reader.integers("weight_rec") if kind == "dense_rec" else None
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
    bias = reader.integers("bias").reshape(-1)
    if bias.size == 1:
        return np.full(n_out, bias[0], dtype=np.int64)
    if bias.size != n_out:
        raise reader.fail(f"bias has {bias.size} values for {n_out} neurons", "store one bias per neuron")
    return bias


def _dense_delay(reader: _LayerReader, weight_shape: tuple[int, int]) -> np.ndarray | None:
    """netx Dense delays: clip to [.., 62] if the max exceeds 62, broadcast, then ``astype(int)``."""
    if not reader.has("delay"):
        return None
    delay = reader.raw("delay").astype(np.float64)
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
    weight = reader.integers("weight")
    if weight.ndim > 4 and all(s == 1 for s in weight.shape[4:]):
        weight = weight.reshape(weight.shape[:4])  # slayer may keep a trailing time axis of 1
    if weight.ndim != 4:
        raise reader.fail(f"conv weight shape {weight.shape} is not (C_out, C_in/groups, kH, kW)", "re-export")
    bias = None
    if reader.has("bias"):
        bias = reader.integers("bias").reshape(-1)
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


# ----------------------------------------------------------------------------------------------- writing


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
