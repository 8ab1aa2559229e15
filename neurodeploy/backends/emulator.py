"""neurodeploy's batched fixed-point emulator of Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` execution.

:func:`run_emulator` gives the same spikes as :func:`neurodeploy.backends.lava_sim.run_lava`, bit for bit,
for every layer and sample (see :class:`~neurodeploy.backends.spike_run.SpikeRun` for the time alignment). It runs
layer after layer: a layer's synaptic input for all T steps is one exact integer product of the previous
layer's spikes with the weights (:mod:`neurodeploy.kernels.fixed_point`), then only the neuron update loops over
time. Samples are independent and processed in chunks.

Two engines compute the same integers:

- ``"numpy"``: the reference kernels of :mod:`neurodeploy.kernels.fixed_point` (float32/float64 BLAS where every
  partial sum is an integer the format holds exactly, int32 numpy for the neuron update).
- ``"numba"``: event-driven accumulation (add the weight row, or kernel column, of each input spike); for
  a convolution with many spikes, one torch ``conv2d`` over every sample and step instead
  (:func:`accumulate_conv_torch`; exact, see there); a fused neuron loop, compiled with numba (a required
  dependency); the same integer arithmetic. Several times faster (tens of times on convolutional nets);
  ``"auto"`` is this engine.

Layers or parameters the emulator cannot reproduce exactly raise :class:`UserError` naming the file and
layer; it never approximates.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from neurodeploy.backends.spike_run import SpikeRun
from neurodeploy.deploy.netx_records import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import (
    FLOAT32_EXACT_SUM,
    ConvGeometry,
    ConvSynapse,
    CubaKernelParams,
    DelayedSynapse,
    DelayGroup,
    SynapseWeights,
    WeightRangeError,
    conv_synaptic_input,
    cuba_run,
    delayed_synaptic_input,
    netx_dense_synapses,
)

ENGINES = ("auto", "numpy", "numba")
INT32_LIMIT = 1 << 31
# Elements of one (samples, T, neurons) work array per chunk of samples: bounds memory (~32 MB of int64).
CHUNK_ELEMENTS = 1 << 22
# Convolutions: one event-driven add (a scatter into a channels-last accumulator) costs about this many of
# torch conv2d's dense multiply-adds; the cheaper of the two runs.
EVENT_COST = 8


@dataclass(frozen=True, eq=False)
class LayerProgram:
    """One layer ready to emulate: the integers Lava's process models use for it."""

    layer: NetxLayer
    neuron: CubaKernelParams
    forward: DelayedSynapse | None = None
    recurrent: SynapseWeights | None = None
    conv: ConvSynapse | None = None


def _layer_error(net: NetxNetwork, layer: NetxLayer, what: str, fix: str) -> UserError:
    return UserError(f"{net.path}: layer {layer.index} ({layer.kind}): {what}; {fix}")


def compile_network(net: NetxNetwork) -> list[LayerProgram]:
    """Translate every layer into Lava's effective integers, refusing anything not emulated exactly."""
    programs = []
    for layer in net.layers:
        if layer.kind == "input":
            raise _layer_error(
                net, layer, "an input layer with a neuron is driven only through its bias in netx "
                "(its input port is not connected), so spike inputs cannot reach the network",
                "export the network without an input neuron (plain 'input' layer with a shape)",
            )
        bias = layer.bias if layer.bias is not None else np.zeros(1, dtype=np.int64)
        if layer.kind == "conv":
            bias = np.repeat(bias, layer.neurons // bias.size)  # per channel -> per (c, h, w) neuron
        neuron = CubaKernelParams.from_netx(
            layer.neuron.i_decay, layer.neuron.v_decay, layer.neuron.v_th_mant,
            np.broadcast_to(bias, (layer.neurons,)),
        )
        if layer.kind == "conv":
            programs.append(_compile_conv(net, layer, neuron))
            continue
        if layer.kind == "dense_rec" and layer.delay is not None:
            raise _layer_error(
                net, layer, "recurrent layers with delays: netx drops weight_exp and reuses the "
                "feed-forward delays for the recurrent synapse", "remove the delays",
            )
        try:
            forward, recurrent = netx_dense_synapses(layer.weight, layer.weight_rec)
        except WeightRangeError as exc:
            raise _layer_error(net, layer, f"netx cannot load these weights ({exc})",
                               "quantize weights to 8 bits as lava-dl's export does") from exc
        bound = forward.max_abs_row_sum + (recurrent.max_abs_row_sum if recurrent else 0)
        if bound >= INT32_LIMIT:
            raise _layer_error(net, layer, f"synaptic input can reach {bound}, beyond int32",
                               "use fewer inputs per neuron or smaller weights")
        programs.append(LayerProgram(layer, neuron, forward=DelayedSynapse.from_weights(forward, layer.delay),
                                     recurrent=recurrent))
    return programs


def _compile_conv(net: NetxNetwork, layer: NetxLayer, neuron: CubaKernelParams) -> LayerProgram:
    if np.abs(layer.weight).max(initial=0) >= INT32_LIMIT:
        raise _layer_error(net, layer, "conv weights beyond int32", "quantize the weights to 8 bits")
    conv = ConvSynapse.from_weights(layer.conv_geometry(), layer.weight)
    if conv.bound >= INT32_LIMIT:
        raise _layer_error(net, layer, f"a convolution sum can reach {conv.bound}, beyond int32",
                           "use smaller weights")
    return LayerProgram(layer, neuron, conv=conv)


# --------------------------------------------------------------------------------------------- engines


@functools.lru_cache(maxsize=1)
def numba_kernels() -> SimpleNamespace:
    """The compiled kernels."""
    import numba  # a required dependency (pyproject.toml), imported and compiled only where used

    jit = numba.njit(parallel=True, cache=True, nogil=True)

    @jit
    def accumulate(spikes, weight_t, lag, out):
        """out[k, t] = sum of weight_t[i] over inputs i spiking at t - lag, input-stationary per sample.

        Each weight row is loaded once per block of steps and added at every step its input spikes; a
        local accumulator of ~2**16 values (blocks of steps) stays in cache and lets LLVM vectorize.
        """
        n_samples, n_in, steps = spikes.shape
        n_out = weight_t.shape[1]
        block = min(steps, max(1, 65536 // n_out))
        for k in numba.prange(n_samples):
            acc = np.zeros((block, n_out), out.dtype)
            for t0 in range(0, steps, block):
                t1 = min(t0 + block, steps)
                acc[:] = 0
                for i in range(n_in):
                    for t in range(max(t0 - lag, 0), t1 - lag):
                        if spikes[k, i, t]:
                            for j in range(n_out):
                                acc[t + lag - t0, j] += weight_t[i, j]
                out[k, t0:t1] = acc[: t1 - t0]

    @jit
    def accumulate_conv(spikes, weight_t, geometry, out):
        """Event-driven convolution, one step of lag: out[k, t] = conv(s[k, :, t - 1]) as (C, H, W) flat.

        ``weight_t`` (groups, C_in/g, kH, kW, C_out/g); ``geometry`` = (C_in, H, W, C_out, H_out, W_out,
        stride h/w, padding h/w, dilation h/w). Each input spike adds its kernel column to every output it
        reaches, ``ho = (hi + p - kh d) / s`` when that divides and lies inside; the accumulator is
        channels-last so the innermost loop runs over contiguous output channels. (sample, step) pairs run
        in parallel.
        """
        n_samples, _, steps = spikes.shape
        groups, cin_g, k_h, k_w, cout_g = weight_t.shape
        c_in, h_in, w_in, c_out, h_out, w_out = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4], \
            geometry[5]
        s_h, s_w, p_h, p_w, d_h, d_w = geometry[6], geometry[7], geometry[8], geometry[9], geometry[10], geometry[11]
        for job in numba.prange(n_samples * (steps - 1)):
            k, t = job // (steps - 1), job % (steps - 1) + 1
            acc = np.zeros((h_out, w_out, c_out), out.dtype)
            for ci in range(c_in):
                g, cg = ci // cin_g, ci % cin_g
                for hi in range(h_in):
                    for wi in range(w_in):
                        if not spikes[k, (ci * h_in + hi) * w_in + wi, t - 1]:
                            continue
                        for kh in range(k_h):
                            num_h = hi + p_h - kh * d_h
                            if num_h < 0 or num_h % s_h or num_h // s_h >= h_out:
                                continue
                            for kw in range(k_w):
                                num_w = wi + p_w - kw * d_w
                                if num_w < 0 or num_w % s_w or num_w // s_w >= w_out:
                                    continue
                                row = acc[num_h // s_h, num_w // s_w, g * cout_g:(g + 1) * cout_g]
                                column = weight_t[g, cg, kh, kw]
                                for c in range(cout_g):
                                    row[c] += column[c]
            for co in range(c_out):
                for ho in range(h_out):
                    for wo in range(w_out):
                        out[k, t, (co * h_out + ho) * w_out + wo] = acc[ho, wo, co]

    @jit
    def cuba_loop(a_in, current_decay, voltage_decay, threshold, bias, rec_t, rec_exp, out):
        """fixed_point.cuba_run for one layer: a_in (N, T, n), out (N, n, T).

        Neurons without a recurrent synapse are independent, so (sample, block of neurons) pairs run in
        parallel (one sample of a big conv layer still uses every core); a recurrent layer's block is the
        whole layer. int64 scalars; ``((x + 2**31) & (2**32 - 1)) - 2**31`` wraps to int32 where Lava's int32
        numpy arithmetic wraps (written out: numba cannot cache kernels that call closures). The neuron
        loop is branch-free so that LLVM vectorizes it.
        """
        n_samples, steps, neurons = a_in.shape
        keep_u = 4096 - current_decay
        keep_v = 4096 - voltage_decay
        has_rec = rec_t.shape[0] > 0
        block = neurons if has_rec else min(neurons, 4096)
        n_blocks = (neurons + block - 1) // block
        for job in numba.prange(n_samples * n_blocks):
            k, first = job // n_blocks, job % n_blocks * block
            width = min(block, neurons - first)
            u = np.zeros(width, np.int64)
            v = np.zeros(width, np.int64)
            rec = np.zeros(width, np.int64)
            spikes = np.zeros((steps, width), np.uint8)
            for t in range(steps):
                if has_rec and t > 0:  # first == 0 and width == neurons here
                    rec[:] = 0
                    for i in range(neurons):
                        if spikes[t - 1, i]:
                            for j in range(neurons):
                                rec[j] += rec_t[i, j]
                    for j in range(neurons):
                        r = rec[j] << rec_exp if rec_exp > 0 else rec[j] >> -rec_exp
                        rec[j] = ((r + 2147483648) & 4294967295) - 2147483648
                for j in range(width):
                    a = np.int64(a_in[k, t, first + j])
                    if has_rec:
                        a = ((a + rec[j] + 2147483648) & 4294967295) - 2147483648
                    p = u[j] * keep_u
                    p = (p + ((p >> 63) & 4095)) >> 12  # truncation toward zero
                    act = (((a << 6) + 2147483648) & 4294967295) - 2147483648
                    cur = ((p + act + 2147483648) & 4294967295) - 2147483648
                    cur = cur - 16777216 * (cur > 8388608) + 16777216 * (cur <= -8388608)
                    u[j] = cur
                    q = v[j] * keep_v
                    q = (q + ((q >> 63) & 4095)) >> 12
                    volt = ((q + cur + bias[first + j] + 2147483648) & 4294967295) - 2147483648
                    volt = min(max(volt, -8388607), 8388607)
                    spike = volt > threshold
                    spikes[t, j] = spike
                    v[j] = 0 if spike else volt
            out[k, first:first + width] = spikes.T

    return SimpleNamespace(accumulate=accumulate, accumulate_conv=accumulate_conv, cuba_loop=cuba_loop)


def accumulate_conv_torch(spikes: np.ndarray, synapse: ConvSynapse) -> np.ndarray:
    """:data:`~neurodeploy.kernels.fixed_point.ConvAccumulator` as ONE torch ``conv2d`` call per layer.

    A convolution's input at step t depends only on the previous layer's spikes at t - 1, so the frames of
    every sample and step (N x (T - 1) of them) form one batch::

        out[k, t] = conv2d(s[k, :, t - 1], W)   for t >= 1,   out[k, 0] = 0

    Exact: each product is 0 or an integer weight and every partial sum, in any summation order, is an
    integer of magnitude <= ``synapse.bound``; float32 holds all of them exactly when the bound is <= 2**24,
    float64 below 2**53 (:func:`compile_network` refuses bounds >= 2**31). torch's CPU conv2d sums products
    (oneDNN direct convolution for float32, im2col + GEMM for float64), it never transforms (no Winograd /
    FFT), so the result is the integer convolution. That rests on torch's internals, so the result is checked
    to be integral, and recomputed without oneDNN in float64 (im2col + GEMM) if it is not. int32 out (no sum
    can exceed the bound).
    """
    n_samples, _, steps = spikes.shape
    geometry = synapse.geometry
    n_out = synapse.n_out
    out = np.zeros((n_samples, steps, n_out), dtype=np.int32)
    if steps < 2:
        return out
    dtype = torch.float32 if synapse.bound <= FLOAT32_EXACT_SUM else torch.float64
    frames = torch.from_numpy(np.ascontiguousarray(spikes[:, :, :-1].transpose(0, 2, 1)))  # (N, T - 1, n_in)
    frames = frames.reshape(-1, *geometry.in_shape).to(dtype)
    weight = torch.from_numpy(synapse.weight).to(dtype)
    with torch.inference_mode():
        acc = _conv2d(frames, weight, geometry)
        if not torch.equal(acc, acc.round()):  # a transformed algorithm after all: redo it the plain way
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mkldnn.flags warns about Intel-GPU TF32 on entry and exit
                with torch.backends.mkldnn.flags(enabled=False):
                    acc = _conv2d(frames.double(), weight.double(), geometry)
    out[:, 1:] = acc.reshape(n_samples, steps - 1, n_out).numpy()
    return out


def _conv2d(frames: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    return torch.nn.functional.conv2d(frames, weight, stride=geometry.stride, padding=geometry.padding,
                                      dilation=geometry.dilation, groups=geometry.groups)


class NumpyEngine:
    """Reference engine: :mod:`neurodeploy.kernels.fixed_point` as written."""

    name = "numpy"

    def synaptic_input(self, program: LayerProgram, spikes: np.ndarray) -> np.ndarray:
        """int32 (N, T, n_out) input of ``program``'s neurons for spikes (N, n_in, T)."""
        if program.conv is not None:
            return conv_synaptic_input(spikes, program.conv)
        return delayed_synaptic_input(spikes, program.forward)

    def neurons(self, program: LayerProgram, a_in: np.ndarray) -> np.ndarray:
        """uint8 spikes (N, n, T) of ``program``'s neurons for input a (N, T, n)."""
        return cuba_run(a_in, program.neuron, program.recurrent)


class NumbaEngine(NumpyEngine):
    """Compiled engine: the same integers; event-driven accumulation (or a batched torch convolution when
    that is less work) and a fused neuron loop."""

    name = "numba"

    def __init__(self, kernels: SimpleNamespace):
        self.kernels = kernels

    def _accumulate(self, spikes: np.ndarray, group: DelayGroup) -> np.ndarray:
        """Integer accumulation, int32 when ``group.bound`` < 2**31 (then no sum can overflow)."""
        n_samples, _, steps = spikes.shape
        dtype = np.int32 if group.bound < INT32_LIMIT else np.int64
        out = np.empty((n_samples, steps, group.weight_t.shape[1]), dtype=dtype)
        self.kernels.accumulate(spikes, group.weight_t, group.lag, out)
        return out

    def _accumulate_conv_events(self, spikes: np.ndarray, synapse: ConvSynapse) -> np.ndarray:
        """Event-driven :data:`~neurodeploy.kernels.fixed_point.ConvAccumulator`, int32 (every partial sum
        is at most ``synapse.bound`` < 2**31 in magnitude)."""
        geometry = synapse.geometry
        c_out, c_in = geometry.out_channels, geometry.in_shape[0]
        cin_g, cout_g = c_in // geometry.groups, c_out // geometry.groups
        # (C_out, C_in/g, kH, kW) -> (groups, C_in/g, kH, kW, C_out/g)
        weight_t = synapse.weight.reshape(geometry.groups, cout_g, cin_g, *geometry.kernel).transpose(0, 2, 3, 4, 1)
        shape = np.array([*geometry.in_shape, *geometry.out_shape, *geometry.stride, *geometry.padding,
                          *geometry.dilation], dtype=np.int64)
        n_samples, _, steps = spikes.shape
        out = np.zeros((n_samples, steps, synapse.n_out), dtype=np.int32)
        if steps > 1:
            self.kernels.accumulate_conv(spikes, np.ascontiguousarray(weight_t, dtype=np.int32), shape, out)
        return out

    def _accumulate_conv(self, spikes: np.ndarray, synapse: ConvSynapse) -> np.ndarray:
        """Event-driven while input spikes x fan-out is below 1/EVENT_COST of the dense convolution's
        multiply-adds, else one batched torch ``conv2d``; both exact."""
        fan_out = synapse.geometry.out_channels // synapse.geometry.groups * int(np.prod(synapse.geometry.kernel))
        events = int(np.count_nonzero(spikes[:, :, :-1])) * fan_out
        dense = spikes.shape[0] * (spikes.shape[2] - 1) * synapse.n_out * synapse.weight[0].size
        if events * EVENT_COST < dense:
            return self._accumulate_conv_events(spikes, synapse)
        return accumulate_conv_torch(spikes, synapse)

    def synaptic_input(self, program: LayerProgram, spikes: np.ndarray) -> np.ndarray:
        if program.conv is not None:
            return conv_synaptic_input(spikes, program.conv, self._accumulate_conv)
        return delayed_synaptic_input(spikes, program.forward, self._accumulate)

    def neurons(self, program: LayerProgram, a_in: np.ndarray) -> np.ndarray:
        params, rec = program.neuron, program.recurrent
        rec_t = np.zeros((0, 0), np.int64) if rec is None else np.ascontiguousarray(rec.weight.T)
        rec_exp = 0 if rec is None else rec.weight_exp
        n_samples, steps, neurons = a_in.shape
        out = np.empty((n_samples, neurons, steps), dtype=np.uint8)
        self.kernels.cuba_loop(np.ascontiguousarray(a_in), params.current_decay, params.voltage_decay,
                               params.threshold, params.bias.astype(np.int64), rec_t, rec_exp, out)
        return out


def select_engine(engine: str = "auto") -> NumpyEngine:
    """``"auto"`` and ``"numba"``: the compiled engine; ``"numpy"``: the reference kernels."""
    if engine not in ENGINES:
        raise UserError(f"unknown emulator engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "numpy":
        return NumpyEngine()
    return NumbaEngine(numba_kernels())


# ------------------------------------------------------------------------------------------------ runs


def _binary(values: np.ndarray) -> bool:
    if values.dtype == np.bool_:
        return True
    if values.dtype.kind in "iu":
        return bool(values.min() >= 0 and values.max() <= 1)
    return bool(np.logical_or(values == 0, values == 1).all())


def validate_inputs(net: NetxNetwork, inputs: np.ndarray) -> np.ndarray:
    """Check (N, n_in, T) binary spikes for ``net``; returns them as contiguous uint8."""
    inputs = np.asarray(inputs)
    if inputs.ndim != 3 or inputs.shape[1] != net.num_inputs or inputs.shape[0] < 1 or inputs.shape[2] < 1:
        raise UserError(
            f"inputs: shape {inputs.shape} does not fit {net.path.name}; expected (samples, {net.num_inputs}, "
            f"steps) with the inputs flat in (C, H, W) order {net.input_shape}"
        )
    if inputs.dtype.kind not in "biuf" or not _binary(inputs):
        raise UserError("inputs: spikes must be 0 or 1; binarize the event frames first")
    return np.ascontiguousarray(inputs, dtype=np.uint8)


def run_emulator(net: NetxNetwork, inputs: np.ndarray, *, engine: str = "auto",
                 progress: Callable[[int, int], None] | None = None) -> SpikeRun:
    """Emulate ``net`` on ``inputs`` (N, n_in, T) 0/1 spikes; every layer recorded, bit-exact with Lava.

    ``progress(done, total)`` is called after each chunk of samples."""
    inputs = validate_inputs(net, inputs)
    started = time.perf_counter()
    programs = compile_network(net)
    runner = select_engine(engine)
    n_samples, _, steps = inputs.shape
    widest = max(p.layer.neurons for p in programs)
    chunk = max(1, CHUNK_ELEMENTS // (steps * widest))
    outputs = [np.empty((n_samples, p.layer.neurons, steps), dtype=np.uint8) for p in programs]
    for first in range(0, n_samples, chunk):
        spikes = inputs[first:first + chunk]  # (n, n_in, T): the layout of SpikeRun, no transposes
        for program, output in zip(programs, outputs):
            spikes = runner.neurons(program, runner.synaptic_input(program, spikes))
            output[first:first + chunk] = spikes
        if progress is not None:
            progress(min(first + chunk, n_samples), n_samples)
    return SpikeRun(
        inputs=inputs, layer_spikes=outputs, steps=steps, backend="emulator",
        wall_s=time.perf_counter() - started, metadata={"engine": runner.name},
    )
