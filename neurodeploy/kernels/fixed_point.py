"""Integer kernels reproducing Lava's ``fixed_pt`` CPU models bit for bit (pure numpy, no I/O, no Lava).

Everything here is batched over samples: neuron state is ``(N, neurons)``, spike series are ``(N, neurons,
T)`` (the layout of :class:`~neurodeploy.backends.spike_run.SpikeRun`) and synaptic input series ``(N, T, neurons)``.
Sources (lava-nc 0.10.0 / lava-dl 0.6.0, with line numbers in docs/fixed_point.md):

- CUBA neuron: ``lava/proc/lif/models.py`` ``AbstractPyLifModelFixed`` / ``PyLifModelBitAcc``.
- Dense weights: ``lava/lib/dl/netx/utils.py:optimize_weight_bits`` at load time, then
  ``lava/utils/weightutils.py`` ``clip_weights`` / ``truncate_weights`` and the ``weight_exp`` shift in
  ``lava/proc/dense/models.py`` (``PyDenseModelBitAcc``, ``PyDelayDenseModelBitAcc``).
- Convolution: ``lava/proc/conv/models.py:PyConvModelFixed`` (``utils.conv`` then ``signed_clamp(x, 24)``).

Integer widths follow Lava's numpy dtypes, not only the nominal hardware widths: the synaptic input travels
as int32 (``a_out`` ports are int32), ``u`` and ``v`` are int32 arrays, the bias mantissa is stored as int16.
Where Lava's own arithmetic would wrap at 32 bits we wrap the same way (``astype(np.int32)``).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from neurodeploy.kernels.lava_limits import CONV_ACC_BITS, STATE_BITS, WEIGHT_BITS

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096: decay constants are 12-bit fractions of this
STATE_MAX = 1 << (STATE_BITS - 1)  # 2**23: u and v are 24-bit signed
ACT_SHIFT = 6  # synaptic input is MSB-aligned: a << 6
VTH_SHIFT = 6  # threshold mantissa: vth << 6
NETX_BIAS_EXP = 6  # netx always passes bias_exp=6: bias = bias_mant << 6

# Largest sum of |w| for which a float32 (float64) matrix product of 0/1 spikes with integer weights is exact:
# every partial sum, in any summation order, is an integer of magnitude <= this bound.
FLOAT32_EXACT_SUM = 1 << 24
FLOAT64_EXACT_SUM = 1 << 53


class SignMode(enum.IntEnum):
    """Synapse sign modes shared by netx and Lava (``SYNAPSE_SIGN_MODE`` / ``SignMode``)."""

    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


@dataclass(frozen=True)
class OptimizedWeights:
    """Output of netx's ``optimize_weight_bits``: weights pre-shifted by ``-weight_exp`` bits."""

    weight: np.ndarray
    num_weight_bits: int
    weight_exp: int
    sign_mode: SignMode


@dataclass(frozen=True)
class SynapseWeights:
    """Weights exactly as a Lava Dense/DelayDense model multiplies them, plus its output shift.

    ``weight`` is int64 (out, in); the synapse emits ``shift_by_exponent(weight @ s, weight_exp)``.
    """

    weight: np.ndarray
    weight_exp: int

    @property
    def max_abs_row_sum(self) -> int:
        """max_j sum_i |w_ji|: the largest synaptic input any neuron can receive in one step."""
        if self.weight.size == 0:
            return 0
        return int(np.abs(self.weight).sum(axis=1).max())


class WeightRangeError(ValueError):
    """Weights that netx or Lava cannot load (netx would crash or shift by a negative amount)."""


def netx_optimize_weight_bits(weight: np.ndarray) -> OptimizedWeights:
    """netx ``optimize_weight_bits`` (lava-dl ``netx/utils.py:80-158``), without its prints.

    For integer weights W: sign mode MIXED if W has both signs (max >= 0 > min counts as MIXED),
    EXCITATORY if min >= 0, INHIBITORY if max < 0. Scale s = min(127/max, -128/min) (MIXED), 255/max (EXC),
    -256/min (INH); ``scale_bits = floor(log2 s) + is_signed``; n = the largest n <= 8 with W divisible by
    2**n, minus is_signed; ``num_weight_bits = 8 - scale_bits - n``; ``weight_exp = -scale_bits``;
    ``W <- W << scale_bits``. Weights are first clipped to [-256, 254] when both signs are present and one
    side overflows, as netx does.
    """
    weight = np.asarray(weight, dtype=np.int64)
    if weight.size == 0:
        raise WeightRangeError("empty weight matrix")
    max_weight = weight.max()
    min_weight = weight.min()
    if max_weight > 254 and min_weight < 0:
        weight = np.clip(weight, -256, 254)
        max_weight = weight.max()
    if min_weight < -256 and max_weight > 0:
        weight = np.clip(weight, -256, 254)
        min_weight = weight.min()
    if max_weight == 0 and min_weight == 0:
        raise WeightRangeError("all weights are zero (netx divides by the largest weight and fails)")

    if max_weight < 0:
        sign_mode, is_signed, scale = SignMode.INHIBITORY, 0, -256 / min_weight
    elif min_weight >= 0:
        sign_mode, is_signed, scale = SignMode.EXCITATORY, 0, 255 / max_weight
    else:
        sign_mode, is_signed = SignMode.MIXED, 1
        pos_scale = 127 / max_weight if max_weight != 0 else np.inf
        scale = min(pos_scale, -128 / min_weight)
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    if scale_bits < 0:
        raise WeightRangeError(
            f"weights in [{min_weight}, {max_weight}] exceed the 8-bit synapse range "
            f"(netx would shift them by {scale_bits} bits)"
        )
    # largest n <= 8 with every weight divisible by 2**n: the trailing zero bits of their bitwise OR
    low_bits = int(np.bitwise_or.reduce(weight.reshape(-1))) & 0xFF
    n = 8 if low_bits == 0 else (low_bits & -low_bits).bit_length() - 1
    n -= is_signed
    return OptimizedWeights(
        weight=np.left_shift(weight, scale_bits),
        num_weight_bits=WEIGHT_BITS - scale_bits - n,
        weight_exp=-scale_bits,
        sign_mode=sign_mode,
    )


def lava_sign_mode(weight: np.ndarray) -> SignMode:
    """Lava's ``determine_sign_mode``: EXC if min >= 0, else INH if max <= 0, else MIXED.

    It differs from netx's rule when max == 0 > min (netx: MIXED, Lava: INHIBITORY); Lava's Dense uses
    its own rule because netx does not pass ``sign_mode`` on.
    """
    if weight.min() >= 0:
        return SignMode.EXCITATORY
    if weight.max() <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def clip_weights(weight: np.ndarray, sign_mode: SignMode, num_bits: int = WEIGHT_BITS) -> np.ndarray:
    """Lava ``clip_weights``: MIXED -> [-2**b, 2**b - 1], EXC -> [0, 2**b - 1], INH -> [-(2**b - 1), 0]."""
    weight = weight.astype(np.int64)
    if sign_mode == SignMode.INHIBITORY:
        weight = -weight
    mixed = int(sign_mode == SignMode.MIXED)
    weight = np.clip(weight, -(1 << num_bits) * mixed, (1 << num_bits) - 1)
    return -weight if sign_mode == SignMode.INHIBITORY else weight


def truncate_weights(weight: np.ndarray, sign_mode: SignMode, num_weight_bits: int) -> np.ndarray:
    """Lava ``truncate_weights``: ``(w >> k) << k`` with ``k = WEIGHT_BITS - num_weight_bits + is_mixed``.

    The shift is arithmetic (floor); inhibitory weights are negated before and after.
    """
    weight = weight.astype(np.int64)
    if sign_mode == SignMode.INHIBITORY:
        weight = -weight
    k = WEIGHT_BITS - num_weight_bits + int(sign_mode == SignMode.MIXED)
    if k < 0:
        raise WeightRangeError(f"num_weight_bits={num_weight_bits} gives a negative truncation shift")
    weight = (weight >> k) << k
    return -weight if sign_mode == SignMode.INHIBITORY else weight


def lava_dense_weights(weight: np.ndarray, num_weight_bits: int, weight_exp: int) -> SynapseWeights:
    """What ``PyDenseModelBitAcc`` multiplies: int32 storage, then clip to 8 bits and truncate."""
    weight = np.asarray(weight, dtype=np.int64).astype(np.int32).astype(np.int64)
    sign_mode = lava_sign_mode(weight)
    weight = clip_weights(weight, sign_mode, 8)
    weight = truncate_weights(weight, sign_mode, num_weight_bits)
    return SynapseWeights(weight=weight, weight_exp=int(weight_exp))


def netx_dense_synapses(
    weight: np.ndarray, weight_rec: np.ndarray | None = None
) -> tuple[SynapseWeights, SynapseWeights | None]:
    """Effective weights of a netx ``dense`` (or ``dense_rec``) block, file integers in, Lava integers out.

    netx optimizes ``hstack(weight, weight_rec)`` jointly for ``dense_rec``, so both synapses share
    ``num_weight_bits`` and ``weight_exp``; Lava then picks each synapse's sign mode on its own.
    """
    weight = np.asarray(weight, dtype=np.int64)
    joint = weight if weight_rec is None else np.hstack((weight, np.asarray(weight_rec, dtype=np.int64)))
    opt = netx_optimize_weight_bits(joint)
    n_in = weight.shape[1]
    forward = lava_dense_weights(opt.weight[:, :n_in], opt.num_weight_bits, opt.weight_exp)
    if weight_rec is None:
        return forward, None
    return forward, lava_dense_weights(opt.weight[:, n_in:], opt.num_weight_bits, opt.weight_exp)


def shift_by_exponent(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """Dense output scaling: ``acc << weight_exp`` if weight_exp > 0 else ``acc >> -weight_exp`` (floor)."""
    if weight_exp > 0:
        return np.left_shift(acc, weight_exp)
    if weight_exp < 0:
        return np.right_shift(acc, -weight_exp)
    return acc


def exact_spike_matmul(spikes: np.ndarray, weight_t: np.ndarray, max_abs_row_sum: int) -> np.ndarray:
    """Exact ``spikes @ weight_t`` for 0/1 spikes (M, n_in) and integer weights (n_in, n_out) -> int64.

    Uses float32 BLAS when every partial sum is an integer below 2**24 in magnitude (guaranteed when
    ``max_abs_row_sum`` = max_j sum_i |w_ij| <= 2**24), float64 below 2**53, else int64 numpy.
    Floating point is exact here because every intermediate value is an integer the format represents.
    """
    if max_abs_row_sum <= FLOAT32_EXACT_SUM:
        dtype = np.float32
    elif max_abs_row_sum <= FLOAT64_EXACT_SUM:
        dtype = np.float64
    else:
        return spikes.astype(np.int64) @ weight_t.astype(np.int64)
    out = spikes.astype(dtype, copy=False) @ weight_t.astype(dtype, copy=False)
    return out.astype(np.int64)


@dataclass(frozen=True, eq=False)
class DelayGroup:
    """The synapses of one Dense layer that share a delay, ready to multiply.

    ``weight_t`` is (n_in, len(rows)) with the weights of synapses whose delay is ``delay`` (others 0),
    in the smallest of int16/int32/int64 that holds them (less memory traffic); ``rows`` are the output
    neurons it feeds (None = all); ``bound`` = max over those neurons of sum |w| (the largest input a
    neuron can receive: it decides which accumulator types are exact).
    """

    delay: int
    rows: np.ndarray | None
    weight_t: np.ndarray
    bound: int

    @property
    def lag(self) -> int:
        """Steps from a presynaptic spike to its arrival: Dense's one-step buffer plus the delay."""
        return 1 + self.delay


# (spikes (N, n_in, T) 0/1, group) -> int (N, T, n_out): out[k, t] = sum_i w_i s[k, i, t - lag], 0 for t < lag
SpikeAccumulator = Callable[[np.ndarray, DelayGroup], np.ndarray]
def accumulate_spikes(spikes: np.ndarray, group: DelayGroup) -> np.ndarray:
    """Reference :data:`SpikeAccumulator`: one exact BLAS product over all samples and steps, int64."""
    n_samples, n_in, steps = spikes.shape
    out = np.zeros((n_samples, steps, group.weight_t.shape[1]), dtype=np.int64)
    if group.lag < steps:
        rows = spikes[:, :, : steps - group.lag].transpose(0, 2, 1).reshape(-1, n_in)
        acc = exact_spike_matmul(rows, group.weight_t, group.bound)
        out[:, group.lag:] = acc.reshape(n_samples, steps - group.lag, -1)
    return out


@dataclass(frozen=True, eq=False)
class DelayedSynapse:
    """A Dense or DelayDense synapse split by delay value: what :func:`delayed_synaptic_input` runs."""

    groups: tuple[DelayGroup, ...]
    n_out: int
    weight_exp: int

    @classmethod
    def from_weights(cls, synapse: SynapseWeights, delay: np.ndarray | None = None) -> DelayedSynapse:
        """One group without delays; otherwise one per delay value (``delay`` broadcasts to (out, in))."""
        if delay is None:
            parts = [(0, None, synapse.weight)]
        else:
            full = np.broadcast_to(delay, synapse.weight.shape)
            parts = []
            for d in np.unique(full):
                rows = np.flatnonzero((full == d).any(axis=1))
                parts.append((int(d), rows, np.where(full[rows] == d, synapse.weight[rows], 0)))
        groups = []
        for d, rows, weight in parts:
            bound = int(np.abs(weight).sum(axis=1).max()) if weight.size else 0
            largest = int(np.abs(weight).max(initial=0))
            dtype = np.int16 if largest < (1 << 15) else np.int32 if largest < (1 << 31) else np.int64
            groups.append(DelayGroup(d, rows, np.ascontiguousarray(weight.T, dtype=dtype), bound))
        return cls(tuple(groups), synapse.weight.shape[0], synapse.weight_exp)


def delayed_synaptic_input(
    spikes: np.ndarray, synapse: DelayedSynapse, accumulate: SpikeAccumulator = accumulate_spikes
) -> np.ndarray:
    """Input a Dense/DelayDense synapse delivers to its neurons at every step, int32 (N, T, n_out).

    With spikes s (N, n_in, T) and delay d_ji (0 without delays)::

        a[t] = int32( sum_d shift(sum_{i: d_ji = d} w_ji * s_i[t - 1 - d], weight_exp) )

    i.e. one step of lag (Dense sends the previous step's accumulation) plus the synaptic delay, with the
    exponent shift applied per delay slot as ``PyDelayDenseModelBitAcc`` does. Values before t = 0 are 0.
    The int32 cast reproduces Lava's int32 ``a_out`` port and int32 ``a_buff`` (an int32 sum of
    wrapped terms equals the wrapped int64 sum).
    """
    groups = synapse.groups
    if len(groups) == 1 and groups[0].rows is None:
        acc = shift_by_exponent(accumulate(spikes, groups[0]), synapse.weight_exp)
        return acc.astype(np.int32, copy=False)
    n_samples, _, steps = spikes.shape
    out = np.zeros((n_samples, steps, synapse.n_out), dtype=np.int64)
    for group in groups:
        acc = shift_by_exponent(accumulate(spikes, group).astype(np.int64), synapse.weight_exp)
        if group.rows is None:
            out += acc
        else:
            out[:, :, group.rows] += acc
    return out.astype(np.int32)


def dense_step_input(spikes: np.ndarray, synapse: SynapseWeights) -> np.ndarray:
    """One Dense step for a recurrent synapse: int32 ``shift(W @ s, weight_exp)`` for s (N, n_in)."""
    acc = exact_spike_matmul(spikes, synapse.weight.T, synapse.max_abs_row_sum)
    return shift_by_exponent(acc, synapse.weight_exp).astype(np.int32)


@dataclass(frozen=True)
class ConvGeometry:
    """2-D convolution in slayer/PyTorch conventions: shapes (C, H, W), pairs (H, W)."""

    in_shape: tuple[int, int, int]
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        c_in = self.in_shape[0]
        if self.groups < 1 or c_in % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"channels in={c_in} out={self.out_channels} are not divisible by groups={self.groups}"
            )
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0 or min(self.kernel) < 1:
            raise ValueError(f"invalid convolution geometry {self}")
        if min(self.out_shape[1:]) < 1:
            raise ValueError(f"convolution output {self.out_shape} is empty")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C_out, H_out, W_out), ``floor((n + 2p - d(k - 1) - 1) / s) + 1`` per axis (Lava and PyTorch)."""
        size = [
            (self.in_shape[1 + a] + 2 * self.padding[a] - self.dilation[a] * (self.kernel[a] - 1) - 1)
            // self.stride[a]
            + 1
            for a in range(2)
        ]
        return (self.out_channels, size[0], size[1])

    def _axis_taps(self, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (output position, kernel tap, input position) triples along one axis inside the input."""
        n_out = self.out_shape[1 + axis]
        out_pos, tap = np.meshgrid(np.arange(n_out), np.arange(self.kernel[axis]), indexing="ij")
        in_pos = out_pos * self.stride[axis] - self.padding[axis] + tap * self.dilation[axis]
        inside = (in_pos >= 0) & (in_pos < self.in_shape[1 + axis])
        return out_pos[inside], tap[inside], in_pos[inside]

    def fan_out(self) -> np.ndarray:
        """Synapses leaving each input neuron, (C*H*W,) flat in C-order: (C_out/groups) x taps(h) x taps(w)."""
        counts = []
        for axis in range(2):
            _, _, in_pos = self._axis_taps(axis)
            counts.append(np.bincount(in_pos, minlength=self.in_shape[1 + axis]))
        per_pixel = np.outer(counts[0], counts[1])
        per_channel = self.out_channels // self.groups
        return np.broadcast_to(per_pixel * per_channel, self.in_shape).reshape(-1).astype(np.int64)

    def max_abs_input(self, weight: np.ndarray) -> int:
        """max over output neurons of sum |w| over the synapses reaching it (taps inside the input only)::

            S[co, ho, wo] = sum_{ci, kh in taps_h(ho), kw in taps_w(wo)} |W[co, ci, kh, kw]|
        """
        per_tap = np.abs(np.asarray(weight, dtype=np.int64)).sum(axis=1)  # (C_out, kH, kW)
        masks = []
        for axis in range(2):
            out_pos, tap, _ = self._axis_taps(axis)
            mask = np.zeros((self.out_shape[1 + axis], self.kernel[axis]), dtype=np.int64)
            mask[out_pos, tap] = 1
            masks.append(mask)
        return int(np.einsum("hk,ckl,wl->chw", masks[0], per_tap, masks[1]).max(initial=0))

    def weight_matrix(self, weight: np.ndarray) -> scipy.sparse.csr_matrix:
        """Sparse int64 (C_in*H*W, C_out*H_out*W_out) matrix equal to the convolution (cross-correlation).

        ``weight`` is (C_out, C_in/groups, kH, kW) as slayer and PyTorch store it.
        """
        c_in, h_in, w_in = self.in_shape
        c_out, h_out, w_out = self.out_shape
        cin_g, cout_g = c_in // self.groups, c_out // self.groups
        ho, kh, hi = self._axis_taps(0)
        wo, kw, wi = self._axis_taps(1)
        # every (output channel, input channel of its group, h tap, w tap)
        co = np.arange(c_out)[:, None, None, None]
        ci_g = np.arange(cin_g)[None, :, None, None]
        ci = (co // cout_g) * cin_g + ci_g
        hh = np.arange(len(ho))[None, None, :, None]
        ww = np.arange(len(wo))[None, None, None, :]
        shape = (c_out, cin_g, len(ho), len(wo))
        rows = (np.broadcast_to(ci, shape) * h_in + hi[hh]) * w_in + wi[ww]
        cols = (np.broadcast_to(co, shape) * h_out + ho[hh]) * w_out + wo[ww]
        values = np.asarray(weight, dtype=np.int64)[co, ci_g, kh[hh], kw[ww]]
        matrix = scipy.sparse.coo_matrix(
            (values.ravel(), (rows.ravel(), cols.ravel())), shape=(c_in * h_in * w_in, c_out * h_out * w_out)
        )
        return matrix.tocsr()


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Lava ``signed_clamp``: ``(x + 2**(b-1)) mod 2**b - 2**(b-1)`` (a modular wrap, not a saturation)."""
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


@dataclass(frozen=True, eq=False)
class ConvSynapse:
    """A Lava Conv synapse ready to accumulate: its geometry and integer kernel.

    ``weight`` is int64 (C_out, C_in/groups, kH, kW); ``bound`` = :meth:`ConvGeometry.max_abs_input` (the
    largest sum any output can reach in one step, and a bound on every partial sum of it: it decides which
    accumulator types are exact).
    """

    geometry: ConvGeometry
    weight: np.ndarray
    bound: int

    @classmethod
    def from_weights(cls, geometry: ConvGeometry, weight: np.ndarray) -> ConvSynapse:
        weight = np.asarray(weight, dtype=np.int64)
        return cls(geometry, weight, geometry.max_abs_input(weight))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.geometry.out_shape))

    @functools.cached_property
    def matrix(self) -> scipy.sparse.csr_matrix:
        """The equal sparse (C_in*H*W, C_out*H_out*W_out) matrix, built on first use (seconds on big layers)."""
        return self.geometry.weight_matrix(self.weight)


# (spikes (N, n_in, T) 0/1, conv) -> int (N, T, n_out): out[k, t] = conv(s[k, :, t - 1], W), 0 at t = 0
ConvAccumulator = Callable[[np.ndarray, ConvSynapse], np.ndarray]


def accumulate_conv_sparse(spikes: np.ndarray, synapse: ConvSynapse) -> np.ndarray:
    """Reference :data:`ConvAccumulator`: spikes as CSR events times the sparse conv matrix, int64.

    Event-driven: the cost is (number of spikes) x (fan-out).
    """
    n_samples, n_in, steps = spikes.shape
    out = np.zeros((n_samples, steps, synapse.n_out), dtype=np.int64)
    if steps > 1:
        rows = spikes[:, :, :-1].transpose(0, 2, 1).reshape(-1, n_in)
        events = scipy.sparse.csr_matrix(rows.astype(np.int64))
        out[:, 1:] = np.asarray((events @ synapse.matrix).toarray()).reshape(n_samples, steps - 1, -1)
    return out


def conv_synaptic_input(
    spikes: np.ndarray, synapse: ConvSynapse, accumulate: ConvAccumulator = accumulate_conv_sparse
) -> np.ndarray:
    """Input a Lava Conv synapse delivers at every step, int32 (N, T, n_out), one step of lag::

        a[t] = wrap24(int32(conv(s[t - 1], W)))

    ``PyConvModelFixed`` computes the convolution exactly (float64 sums of integers), casts to int32 and
    wraps to 24 bits; it applies no weight exponent and no weight clipping. Spikes are (N, n_in, T). When
    ``synapse.bound`` < 2**23 no sum can leave the 24-bit range and both casts are the identity.
    """
    acc = accumulate(spikes, synapse)
    if synapse.bound < 1 << (CONV_ACC_BITS - 1):
        return acc.astype(np.int32, copy=False)
    acc = acc.astype(np.int32).astype(np.int64)
    return wrap_signed(acc, CONV_ACC_BITS).astype(np.int32)


@dataclass(frozen=True)
class CubaKernelParams:
    """Integer constants of one CUBA layer as ``PyLifModelBitAcc`` uses them.

    ``current_decay`` D_u = du + 1 = netx iDecay; ``voltage_decay`` D_v = dv = netx vDecay (both in
    [0, 4096]); ``threshold`` = vth << 6; ``bias`` = int32(int16(bias_mant)) << bias_exp, per neuron.
    """

    current_decay: int
    voltage_decay: int
    threshold: int
    bias: np.ndarray

    @classmethod
    def from_netx(cls, i_decay: int, v_decay: int, v_th_mant: int, bias_mant: np.ndarray) -> CubaKernelParams:
        """Build from netx values; the bias mantissa passes Lava's int16 Var storage (wraps outside int16)."""
        bias16 = np.asarray(bias_mant, dtype=np.int64).astype(np.int32).astype(np.int16)
        bias = np.left_shift(bias16.astype(np.int32), NETX_BIAS_EXP)
        return cls(int(i_decay), int(v_decay), int(v_th_mant) << VTH_SHIFT, bias)


def decay_toward_zero(x: np.ndarray, decay: int) -> np.ndarray:
    """``sign(x (4096 - D)) * (|x (4096 - D)| >> 12)``: 12-bit decay rounded toward zero, int32 out.

    Computed as ``(p + (4095 if p < 0)) >> 12``, which equals truncation toward zero for int64 p.
    """
    if decay == DECAY_UNITY:
        return np.zeros_like(x, dtype=np.int32)
    if decay == 0:
        return x.astype(np.int32, copy=True)
    p = x.astype(np.int64) * (DECAY_UNITY - decay)
    p += (p >> 63) & (DECAY_UNITY - 1)
    p >>= DECAY_SHIFT
    return p.astype(np.int32)


def wrap_current(u: np.ndarray) -> np.ndarray:
    """Lava's 24-bit current overflow: one conditional wrap, not a full modulo.

    ``u - 2**24 if u > 2**23``; ``u + 2**24 if u <= -2**23`` (applied to the unwrapped value).
    """
    wrapped = np.where(u > STATE_MAX, u - 2 * STATE_MAX, u)
    return np.where(wrapped <= -STATE_MAX, u + 2 * STATE_MAX, wrapped).astype(np.int32)


def saturate_voltage(v: np.ndarray) -> np.ndarray:
    """Clip v to the symmetric 24-bit range [-(2**23 - 1), 2**23 - 1]."""
    return np.clip(v, -STATE_MAX + 1, STATE_MAX - 1).astype(np.int32)


@dataclass
class CubaState:
    """Mutable state of a batch of CUBA neurons: current u and voltage v, int32 (N, neurons)."""

    u: np.ndarray
    v: np.ndarray

    @classmethod
    def zeros(cls, n_samples: int, neurons: int) -> CubaState:
        return cls(np.zeros((n_samples, neurons), np.int32), np.zeros((n_samples, neurons), np.int32))


def cuba_update(state: CubaState, a_in: np.ndarray, params: CubaKernelParams) -> tuple[np.ndarray, np.ndarray]:
    """One ``PyLifModelBitAcc`` step in place on ``state``; returns (spikes bool, v before the reset).

    With a the int32 synaptic input of this step::

        u <- wrap24( trunc(u (4096 - D_u) / 4096) + (a << 6) )
        v <- sat24( trunc(v (4096 - D_v) / 4096) + u + bias )      # uses the new u
        s  = v > vth << 6 ;  v[s] <- 0                              # u is not reset

    int32 arithmetic (``a << 6`` and the sums) wraps exactly as Lava's int32 numpy arithmetic does. The
    second result is v of this step before the reset: what Loihi 2 reads out for a neuron that spiked
    (Lava's CPU model reads the reset 0, docs/fixed_point.md).
    """
    a_in = np.asarray(a_in, dtype=np.int32)
    current = decay_toward_zero(state.u, params.current_decay)
    with np.errstate(over="ignore"):
        current += np.left_shift(a_in, ACT_SHIFT)
    state.u = wrap_current(current)
    voltage = decay_toward_zero(state.v, params.voltage_decay)
    with np.errstate(over="ignore"):
        voltage += state.u
        voltage += params.bias
    state.v = saturate_voltage(voltage)
    pre_reset = state.v.copy()
    spikes = state.v > params.threshold
    state.v[spikes] = 0
    return spikes, pre_reset


def cuba_step(state: CubaState, a_in: np.ndarray, params: CubaKernelParams) -> np.ndarray:
    """One ``PyLifModelBitAcc`` step in place on ``state`` (:func:`cuba_update`); returns the 0/1 spikes as
    bool (N, neurons)."""
    return cuba_update(state, a_in, params)[0]


def cuba_run(
    a_in: np.ndarray, params: CubaKernelParams, recurrent: SynapseWeights | None = None
) -> np.ndarray:
    """Run :func:`cuba_step` over a whole input series a (N, T, n) int32; returns uint8 spikes (N, n, T).

    With a recurrent synapse R (``dense_rec``) the neurons also receive last step's own spikes::

        a'[t] = int32(a[t] + shift(R s[t - 1], weight_exp))

    the int32 sum Lava's input port forms over its two connections.
    """
    n_samples, steps, neurons = a_in.shape
    state = CubaState.zeros(n_samples, neurons)
    spikes = np.zeros((n_samples, neurons, steps), dtype=np.uint8)
    for t in range(steps):
        a_t = a_in[:, t]
        if recurrent is not None and t > 0:
            a_t = a_t + dense_step_input(spikes[:, :, t - 1], recurrent)
        spikes[:, :, t] = cuba_step(state, a_t, params)
    return spikes
