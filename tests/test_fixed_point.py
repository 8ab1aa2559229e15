"""Golden values for the fixed-point kernels (hand-computed), and equivalence with Lava's own helpers."""

import contextlib
import io
import warnings

import numpy as np
import pytest

from neurodeploy.kernels.fixed_point import (
    ConvGeometry,
    ConvSynapse,
    CubaKernelParams,
    CubaState,
    DelayedSynapse,
    SignMode,
    SynapseWeights,
    WeightRangeError,
    clip_weights,
    conv_synaptic_input,
    cuba_run,
    cuba_step,
    decay_toward_zero,
    delayed_synaptic_input,
    lava_sign_mode,
    netx_dense_synapses,
    netx_optimize_weight_bits,
    saturate_voltage,
    truncate_weights,
    wrap_current,
    wrap_signed,
)

M = 1 << 23


def run_single(a_values, i_decay, v_decay, v_th_mant, bias=0):
    """One neuron driven by the synaptic inputs ``a_values``: (u, v, spike) after every step."""
    params = CubaKernelParams.from_netx(i_decay, v_decay, v_th_mant, np.array([bias]))
    state = CubaState.zeros(1, 1)
    trace = []
    for a in a_values:
        spike = cuba_step(state, np.array([[a]], np.int32), params)
        trace.append((int(state.u[0, 0]), int(state.v[0, 0]), bool(spike[0, 0])))
    return trace


def test_decay_rounds_toward_zero():
    x = np.array([1000, -1000, 4095, -4095, 1, -1, -321], np.int32)
    # x * 3072 / 4096 = 0.75 x, truncated toward zero (floor would give -751, -3072, -1, -241)
    assert decay_toward_zero(x, 1024).tolist() == [750, -750, 3071, -3071, 0, 0, -240]
    assert decay_toward_zero(x, 0).tolist() == x.tolist()  # iDecay 0: no decay
    assert decay_toward_zero(x, 4096).tolist() == [0] * 7  # 4096: no memory


def test_current_wraps_once_and_voltage_saturates():
    u = np.array([M, M + 1, -M, -M + 1, 3 * M, -3 * M], np.int64)
    # Lava subtracts/adds 2**24 once: 3*2**23 becomes 2**23 (still outside 24 bits), not a modulo
    assert wrap_current(u).tolist() == [M, -M + 1, M, -M + 1, M, -M]
    assert saturate_voltage(np.array([M, -M, 5, 10 * M])).tolist() == [M - 1, -M + 1, 5, M - 1]
    assert wrap_signed(np.array([M, M - 1, -M - 1, 3 * M]), 24).tolist() == [-M, M - 1, M - 1, -M]


def test_cuba_trajectory_hand_computed():
    # iDecay 1024 (u keeps 3/4), vDecay 512 (v keeps 7/8), threshold 10 << 6 = 640
    trace = run_single([5, 0, 0, 3], 1024, 512, 10)
    assert trace == [
        (320, 320, False),  # u = 5 << 6; v = 0 + u
        (240, 520, False),  # u = 0.75 * 320; v = 0.875 * 320 + 240
        (180, 635, False),  # v = 455 + 180
        (327, 0, True),  # u = 135 + 192; v = 555 + 327 = 882 > 640: spike, v reset, u kept
    ]


def test_negative_current_truncates_toward_zero():
    trace = run_single([-5, 0], 1024, 4096, 100)
    assert [u for u, _, _ in trace] == [-320, -240]


def test_edge_decays_and_bias():
    # iDecay 0: the current integrates; vDecay 4096: v = u + bias every step
    trace = run_single([1, 1, 1], 0, 4096, 1000, bias=3)
    assert trace == [(64, 64 + 192, False), (128, 128 + 192, False), (192, 192 + 192, False)]
    # a bias alone drives a neuron: bias 3 << 6 = 192 > threshold 2 << 6 = 128 at every step
    assert [s for _, _, s in run_single([0, 0, 0], 4096, 4096, 2, bias=3)] == [True, True, True]


def test_threshold_is_strict():
    assert run_single([10], 4096, 4096, 10)[0] == (640, 640, False)  # v == vth << 6 does not spike
    assert run_single([11], 4096, 4096, 10)[0] == (704, 0, True)


def test_bias_mantissa_is_stored_as_int16():
    params = CubaKernelParams.from_netx(4096, 4096, 1, np.array([40000, -3]))
    assert params.bias.tolist() == [(40000 - 65536) << 6, -3 << 6]


def test_large_input_wraps_like_lava_int32():
    # (2**25) << 6 overflows int32 to -2**31 in Lava's numpy arithmetic; the 24-bit wrap then adds 2**24
    # once, leaving u far outside 24 bits, and v saturates
    trace = run_single([1 << 25], 4096, 4096, 1 << 16)
    assert trace[0] == (-(1 << 31) + (1 << 24), -M + 1, False)


def test_cuba_run_matches_steps_and_recurrence():
    rng = np.random.default_rng(0)
    a = rng.integers(-200, 200, size=(2, 6, 4)).astype(np.int32)
    params = CubaKernelParams.from_netx(2048, 1024, 3, np.zeros(4))
    spikes = cuba_run(a, params)
    state = CubaState.zeros(2, 4)
    for t in range(6):
        assert np.array_equal(spikes[:, :, t], cuba_step(state, a[:, t], params))
    rec = SynapseWeights(np.full((4, 4), 50), 0)
    with_rec = cuba_run(a, params, rec)
    state = CubaState.zeros(2, 4)
    previous = np.zeros((2, 4), np.uint8)
    for t in range(6):
        extra = previous.astype(np.int64) @ rec.weight.T
        previous = cuba_step(state, a[:, t] + extra.astype(np.int32), params).astype(np.uint8)
        assert np.array_equal(with_rec[:, :, t], previous)


@pytest.mark.parametrize(
    "weight, expected",
    [
        # slayer export: even, [-256, 254] -> MIXED, no scaling, lossless 8 bits
        ([[-256, 254], [2, 0]], ([[-256, 254], [2, 0]], 8, 0, SignMode.MIXED)),
        # small excitatory: scale 255/20 -> 3 bits; OR(10, 20) has one trailing zero -> 8 - 3 - 1 = 4 bits
        ([[10, 20]], ([[80, 160]], 4, -3, SignMode.EXCITATORY)),
        # inhibitory: scale 256/5 -> 5 bits; odd -> 8 - 5 - 0 = 3 bits
        ([[-3, -5]], ([[-96, -160]], 3, -5, SignMode.INHIBITORY)),
        # max == 0 > min counts as MIXED for netx: scale 128/4 -> 5 + 1 bits; -4 has 2 zeros -> 8 - 6 - 1
        ([[0, -4]], ([[0, -256]], 1, -6, SignMode.MIXED)),
    ],
)
def test_netx_optimize_weight_bits_golden(weight, expected):
    opt = netx_optimize_weight_bits(np.array(weight))
    assert (opt.weight.tolist(), opt.num_weight_bits, opt.weight_exp, opt.sign_mode) == expected


def test_lava_sign_mode_differs_from_netx_at_zero_max():
    # Lava re-derives INHIBITORY, clips -256 to -255 and truncates 7 bits: -128 >> 6 = -2, half the file's -4
    assert lava_sign_mode(np.array([0, -4])) == SignMode.INHIBITORY
    synapse, _ = netx_dense_synapses(np.array([[0, -4]]))
    assert synapse.weight.tolist() == [[0, -128]] and synapse.weight_exp == -6


def test_weights_netx_cannot_load_are_refused():
    with pytest.raises(WeightRangeError, match="all weights are zero"):
        netx_optimize_weight_bits(np.zeros((2, 2), int))
    with pytest.raises(WeightRangeError, match="8-bit"):
        netx_optimize_weight_bits(np.array([[300, 10]]))


def test_clip_and_truncate():
    w = np.array([-300, -7, 7, 300])
    assert clip_weights(w, SignMode.MIXED).tolist() == [-256, -7, 7, 255]
    assert clip_weights(np.array([3, 300]), SignMode.EXCITATORY).tolist() == [3, 255]
    assert clip_weights(np.array([-3, -300]), SignMode.INHIBITORY).tolist() == [-3, -255]
    assert truncate_weights(np.array([-7, 7]), SignMode.MIXED, 6).tolist() == [-8, 0]  # k = 3, floor
    assert truncate_weights(np.array([-7]), SignMode.INHIBITORY, 6).tolist() == [-4]  # k = 2 on |w|


def test_delays_add_lag_and_shift_per_slot():
    spikes = np.zeros((1, 1, 6), np.uint8)
    spikes[0, 0, 0] = 1
    synapse = DelayedSynapse.from_weights(SynapseWeights(np.array([[2], [3]]), 0), np.array([[0], [2]]))
    a = delayed_synaptic_input(spikes, synapse)
    assert a[0, :, 0].tolist() == [0, 2, 0, 0, 0, 0] and a[0, :, 1].tolist() == [0, 0, 0, 3, 0, 0]
    # two inputs reach one neuron at t = 2 through delays 0 and 1; Lava shifts each slot: 1>>1 + 1>>1 = 0
    spikes = np.zeros((1, 2, 4), np.uint8)
    spikes[0, 0, 1] = spikes[0, 1, 0] = 1
    synapse = DelayedSynapse.from_weights(SynapseWeights(np.array([[1, 1]]), -1), np.array([[0, 1]]))
    assert delayed_synaptic_input(spikes, synapse)[0, :, 0].tolist() == [0, 0, 0, 0]
    no_delay = DelayedSynapse.from_weights(SynapseWeights(np.array([[1, 1]]), -1))
    both = np.zeros((1, 2, 3), np.uint8)
    both[0, :, 0] = 1
    assert delayed_synaptic_input(both, no_delay)[0, :, 0].tolist() == [0, 1, 0]  # (1 + 1) >> 1


def test_conv_matrix_matches_torch_and_fan_out():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for geometry in [
        ConvGeometry((2, 7, 6), 4, (3, 3)),
        ConvGeometry((4, 9, 8), 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
    ]:
        weight = rng.integers(-5, 6, size=(geometry.out_channels, geometry.in_shape[0] // geometry.groups,
                                           *geometry.kernel))
        x = (rng.random((3, *geometry.in_shape)) < 0.4).astype(np.uint8)
        expected = torch.nn.functional.conv2d(
            torch.tensor(x, dtype=torch.float64), torch.tensor(weight, dtype=torch.float64),
            stride=geometry.stride, padding=geometry.padding, dilation=geometry.dilation, groups=geometry.groups,
        ).numpy()
        assert expected.shape[1:] == geometry.out_shape
        matrix = geometry.weight_matrix(weight)
        assert np.array_equal(x.reshape(3, -1) @ matrix.toarray(), expected.reshape(3, -1))
        assert geometry.max_abs_input(weight) == abs(matrix).sum(axis=0).max()
        ones = geometry.weight_matrix(np.ones_like(weight))
        assert np.array_equal(geometry.fan_out(), np.diff(ones.indptr))
        # conv input: one step of lag and a 24-bit wrap of the sum
        series = np.repeat(x.reshape(3, -1, 1), 2, axis=2)
        a = conv_synaptic_input(series, ConvSynapse.from_weights(geometry, weight))
        assert np.array_equal(a[:, 1], expected.reshape(3, -1)) and not a[:, 0].any()


@pytest.mark.lava
def test_weight_helpers_match_lava():
    from neurodeploy import lava_compat

    netx_utils = lava_compat.netx().utils
    weightutils = lava_compat.lava_module("lava.utils.weightutils")
    rng = np.random.default_rng(2)
    for trial in range(400):
        scale = [1, 2, 4, 8, 32][trial % 5]
        weight = rng.integers(-256 // scale, 256 // scale, size=(3, 4)) * scale
        if trial % 7 == 0:
            weight = np.minimum(np.abs(weight), 255)
        if trial % 11 == 0:
            weight = -np.abs(weight)
        if not weight.any():
            continue
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_weight, ref_bits, ref_exp, ref_mode = netx_utils.optimize_weight_bits(weight.copy())
        opt = netx_optimize_weight_bits(weight)
        assert np.array_equal(opt.weight, ref_weight)
        assert (opt.num_weight_bits, opt.weight_exp, int(opt.sign_mode)) == (ref_bits, ref_exp, int(ref_mode))
        lava_mode = weightutils.determine_sign_mode(ref_weight)
        assert int(lava_sign_mode(ref_weight)) == lava_mode.value
        clipped = weightutils.clip_weights(ref_weight, lava_mode, num_bits=8)
        assert np.array_equal(clip_weights(ref_weight, SignMode(lava_mode.value)), clipped)
        truncated = weightutils.truncate_weights(clipped, lava_mode, ref_bits)
        assert np.array_equal(truncate_weights(clipped, SignMode(lava_mode.value), ref_bits), truncated)
