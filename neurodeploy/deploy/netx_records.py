"""The records of a lava-dl netx network: :class:`CubaParams`, :class:`NetxLayer`, :class:`NetxNetwork`.

Each record checks Loihi's range of every numeric field when it is built
(:mod:`neurodeploy.kernels.loihi_ranges`), so a record that exists is in range: the netx reader
(:mod:`neurodeploy.deploy.netx_read`), the writers (:mod:`neurodeploy.deploy.netx_write`), the emulator and
the Lava runner all take it as it is.

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.kernels.fixed_point import ConvGeometry
from neurodeploy.kernels.lava_limits import MAX_DELAY
from neurodeploy.kernels.loihi_ranges import MAX_LAYER_NEURONS, check_field

NEURON_TYPES = ("CUBA", "LOIHI")
# netx's default neuron for a dense block without a `neuron` group: a non-leaky integrator. Its threshold is
# written `1 << 18 - 1` in hdf5.py, which Python parses as 1 << 17; (1 << 17) << 6 = 2**23 is above the
# saturated voltage 2**23 - 1, so such a layer never spikes (a readout whose voltage nobody records).
NETX_DEFAULT_VTH_MANT = 1 << 17
FILE_KEYS = {"i_decay": "iDecay", "v_decay": "vDecay", "v_th_mant": "vThMant", "ref_delay": "refDelay"}


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
        for name, key in FILE_KEYS.items():
            check_field(getattr(self, name), key)
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
        for shape in (self.in_shape, self.out_shape):
            check_field(np.asarray(shape, dtype=np.int64), "shape")
            if np.prod(np.asarray(shape, dtype=np.float64)) > MAX_LAYER_NEURONS:
                raise ValueError(f"shape {tuple(shape)} has more than {MAX_LAYER_NEURONS:,} neurons")
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
        if self.kind != "input":  # an input layer's weight and bias are netx's unused transform constants
            for name in ("weight", "weight_rec", "bias"):
                if getattr(self, name) is not None:
                    check_field(getattr(self, name), name)

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
        for key, value in (("kernelSize", self.kernel), ("stride", self.stride), ("padding", self.padding),
                           ("dilation", self.dilation), ("groups", self.groups)):
            check_field(np.asarray(value, dtype=np.int64), key)
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

