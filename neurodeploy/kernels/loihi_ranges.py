"""Loihi's range for every numeric field of a netx network, and the one check that enforces it.

The netx reader checks each field read from a file with :func:`check_field` *before* it converts it to
integers (so a float weight of 1e30 or NaN is refused in one line, without numpy warnings, instead of
becoming INT64_MIN); the records (:class:`~neurodeploy.deploy.netx_records.NetxLayer`,
:class:`~neurodeploy.deploy.netx_records.CubaParams`) check the same ranges when they are built, so every
network the emulator, the Lava runner or the netx writer receives is in range: they trust it.

Ranges (lava-nc 0.10.0 fixed-point LIF and Dense process models; docs/fixed_point.md):

- ``weight``, ``weight_rec``: an 8-bit mantissa with a weight exponent up to 7 (netx's
  ``optimize_weight_bits`` turns larger integers into mantissa << exponent), so [-256 << 7, 255 << 7];
  lava-dl's own export writes even integers in [-256, 254].
- ``bias``: Lava's ``bias_mant`` is 13 bits (``LavaPyType(np.int16, precision=13)``): [-4096, 4095].
- ``vThMant``: 17 bits on the chip; lava-dl writes (1 << 18) - 1 for a non-spiking readout (above the
  saturated voltage, so it never fires), which is the largest value accepted: [0, 2**18 - 1].
- ``iDecay``, ``vDecay``: 12-bit decays in [0, 4096] (4096: no memory).
- ``delay``: not negative (netx clips delays above 62 to 62, as lava-dl does); ``refDelay`` [0, 255].
- shapes, conv geometry: positive integers, at most ``MAX_LAYER_NEURONS`` neurons a layer.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.kernels.lava_limits import MAX_CONV_GROUPS

WEIGHT_EXP_MAX = 7
WEIGHT_RANGE = (-256 << WEIGHT_EXP_MAX, 255 << WEIGHT_EXP_MAX)
BIAS_RANGE = (-(1 << 12), (1 << 12) - 1)
VTH_MANT_RANGE = (0, (1 << 18) - 1)
DECAY_RANGE = (0, 4096)
REF_DELAY_RANGE = (0, 255)
DELAY_MIN = 0
MAX_LAYER_NEURONS = 1 << 24
MAX_GEOMETRY = 1 << 16  # kernel, stride, padding, dilation, one shape axis

RANGES: dict[str, tuple[float, float]] = {
    "weight": WEIGHT_RANGE,
    "weight_rec": WEIGHT_RANGE,
    "bias": BIAS_RANGE,
    "vThMant": VTH_MANT_RANGE,
    "iDecay": DECAY_RANGE,
    "vDecay": DECAY_RANGE,
    "refDelay": REF_DELAY_RANGE,
    "delay": (DELAY_MIN, np.inf),
    "gradedSpike": (0, 1),
    "shape": (1, MAX_LAYER_NEURONS),
    "inFeatures": (1, MAX_LAYER_NEURONS),
    "outFeatures": (1, MAX_LAYER_NEURONS),
    "kernelSize": (1, MAX_GEOMETRY),
    "stride": (1, MAX_GEOMETRY),
    "padding": (0, MAX_GEOMETRY),
    "dilation": (1, MAX_GEOMETRY),
    "groups": (1, MAX_CONV_GROUPS),
}


class RangeError(ValueError):
    """A numeric field that is not a number, not finite, or outside Loihi's range (one line, no fix)."""


def check_values(values, field: str, low: float, high: float, *, truncated: bool = True) -> None:
    """RangeError unless every value of ``values`` is a finite number in [low, high].

    ``truncated``: the value is used after truncation toward zero (netx's ``astype(int)``), so 254.7 is 254.
    Runs without numpy warnings whatever the values (NaN, inf, 1e300, byte strings).
    """
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise RangeError(f"{field} holds {array.dtype} values, not numbers")
    if array.size == 0:
        return
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise RangeError(f"{field} holds NaN or inf")
        if truncated:
            array = np.trunc(array)
    low_seen, high_seen = array.min(), array.max()
    if low_seen < low or high_seen > high:
        shown = [_show(v) for v in (low_seen, high_seen)]
        raise RangeError(f"{field} spans [{shown[0]}, {shown[1]}], outside Loihi's range "
                         f"[{_show(low)}, {_show(high)}]")


def check_field(values, field: str) -> None:
    """:func:`check_values` against ``RANGES[field]``."""
    low, high = RANGES[field]
    check_values(values, field, low, high)


def _show(value) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"
