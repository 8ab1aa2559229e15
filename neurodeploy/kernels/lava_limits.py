"""The limits of Lava's CPU models and of netx that neurodeploy checks against, in one place.

Each constant names the Lava (lava-nc 0.10.0 / lava-dl 0.6.0) source that sets it; docs/fixed_point.md
explains the arithmetic they bound.
"""

from __future__ import annotations

STATE_BITS = 24  # lava/proc/lif/models.py: u and v are 24-bit signed (saturate / wrap at 2**23)
CONV_ACC_BITS = 24  # lava/proc/conv/models.py PyConvModelFixed: a_buf = signed_clamp(a, 24)
WEIGHT_BITS = 8  # lava/utils/weightutils.py clip_weights(num_bits=8): 8-bit weight mantissa
MAX_DELAY = 62  # lava/lib/dl/netx/blocks/process.py: DelayDense(max_delay=62); netx clips delays to 62
MAX_CONV_GROUPS = 127  # lava/proc/conv/models.py stores Conv.groups as int8: 128 wraps to -128

# SLAYER's export of a weight w (lava-dl neuron/base.py, quantize then clamp): q = clamp(2 round(64 w / 2),
# -256, 254), an even 8-bit integer; weights beyond these float bounds are clipped on the chip.
SLAYER_WEIGHT_SCALE = 64
SLAYER_MAX_WEIGHT = 254 / SLAYER_WEIGHT_SCALE
