"""The ``torch`` backend: the trained float (SLAYER) network itself, mode ``float``, and the float reference
of chip runs; its spikes for many samples, fast and identical to SLAYER's own forward pass.

The float reference of a chip run (:func:`float_layer_spikes`) needs every layer's
spikes of the trained network. SLAYER's CPU forward pass loops over time in Python with int64 torch ops
(``_li_dynamics_fwd``) and runs dense synapses as dense ``conv3d``; on 10,000 N-MNIST samples that is
about half a minute of CPU. In inference a CUBA block computes, with ``s`` = ``s_scale`` (4096)::

    z[t]     = W s_in[t]                                       (synapse, float32)
    u[t]     = rtz(u[t-1] (4096 - D_u), 12) + int(s * z[t])    (current, int64; rtz rounds toward zero)
    c[t]     = float32(u[t]) / s
    v'[t]    = rtz(v[t-1] (4096 - D_v), 12) + int(s * c[t])    (voltage)
    v[t]     = 0 if float32(v'[t]) >= float32(theta s) else v'[t]   (reset), theta = threshold + eps
    out[t+1] = float32(v'[t]) / s >= float32(theta)            (spike; one step of delay, out[0] = 0)

which :func:`cuba_spikes` runs in compiled code, samples in parallel. Dense synapses on binary spikes
are computed event-driven on integers: SLAYER quantizes weights to multiples of 2/64, so every partial
sum W s is a multiple of 1/64 far below 2**24/64 and exact in float32 in any order; the integer sum
divided by 64 is the float32 result of ``conv3d`` bit for bit. A block this does not cover (per-neuron
decays, graded spikes, persistent state, dropout, unquantized weights) runs through SLAYER itself.
:func:`float_layer_spikes` also checks the first samples against SLAYER's forward pass and uses SLAYER for
everything if they differ.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import numpy as np
import torch

from neurodeploy import lava_compat
from neurodeploy.backends.emulator import numba_kernels
from neurodeploy.models.snn import downsample_events

FLOAT_PROFILE = "cmos45nm"  # the float model on a CPU is priced with 45 nm CMOS per-op energies
WEIGHT_UNITS = 64  # slayer's weight scale: quantized weights are integers / 64
EXACT_FLOAT32 = 1 << 24
CHECK_SAMPLES = 8
FRAME_BATCH_BYTES = 64 << 20  # input frames per batch
WORK_BATCH_BYTES = 128 << 20  # float32 synaptic input of the widest layer per batch (torch's conv
# buffers take several times that)
SLAYER_WORK_FACTOR = 16  # SLAYER's forward holds ~13x that (currents, voltages, graded outputs; measured)


@functools.lru_cache(maxsize=1)
def _kernel():
    import numba  # a required dependency (pyproject.toml), imported and compiled only where used

    @numba.njit(parallel=True, cache=True, nogil=True)
    def cuba_spikes(a, a_scale, keep_u, keep_v, scale, reset_at, spike_at, out):
        """Module docstring's equations for z = float32(a) * a_scale, a (N, n, T) -> out (N, n, T) uint8,
        delayed one step (a: float32 synaptic input, or integer sums with a_scale 1/64)."""
        n_samples, neurons, steps = a.shape
        for k in numba.prange(n_samples):
            for j in range(neurons):
                u = np.int64(0)
                v = np.int64(0)
                out[k, j, 0] = 0
                for t in range(steps):
                    p = u * keep_u
                    u = (p + ((p >> 63) & 4095)) >> 12
                    u += np.int64(scale * (np.float32(a[k, j, t]) * a_scale))
                    current = np.float32(u) / scale
                    q = v * keep_v
                    volt = (q + ((q >> 63) & 4095)) >> 12
                    volt += np.int64(scale * current)
                    if t + 1 < steps:
                        out[k, j, t + 1] = np.float32(volt) / scale >= spike_at
                    v = np.int64(0) if np.float32(volt) >= reset_at else volt

    return cuba_spikes


def _fast_neuron(neuron) -> tuple[int, int, np.float32, np.float32, np.float32] | None:
    """(4096 - D_u, 4096 - D_v, s, theta s, theta) of a SLAYER CUBA neuron this module reproduces, else None."""
    quantize = lava_compat.slayer().utils.quantize
    if (neuron.persistent_state or neuron.graded_spike or neuron.norm is not None or neuron.drop is not None
            or neuron.current_decay.numel() != 1 or neuron.voltage_decay.numel() != 1
            or not isinstance(neuron.threshold, float)):
        return None
    scale = float(neuron.s_scale)
    theta = neuron.threshold + neuron.threshold_eps
    return (4096 - int(quantize(neuron.current_decay).item()), 4096 - int(quantize(neuron.voltage_decay).item()),
            np.float32(scale), np.float32(theta * scale), np.float32(theta))


def _integer_weights(block) -> np.ndarray | None:
    """A dense block's quantized weights x 64 as int32 (n_in, n_out) when W s is exact in float32."""
    weight = block.synapse._pre_hook_fx(block.synapse.weight) if block.synapse._pre_hook_fx else \
        block.synapse.weight
    units = weight.detach().reshape(weight.shape[0], -1).double() * WEIGHT_UNITS
    if not torch.equal(units, torch.round(units)) or float(units.abs().sum(dim=1).max()) >= EXACT_FLOAT32:
        return None
    return np.ascontiguousarray(units.T.numpy().astype(np.int32))


def _dense_input(weight_t: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """64 W s for binary spikes (N, n_in, T): exact int32 sums, a (N, n_out, T) view."""
    n_samples, _, steps = spikes.shape
    acc = np.empty((n_samples, steps, weight_t.shape[1]), dtype=np.int32)
    numba_kernels().accumulate(np.ascontiguousarray(spikes), weight_t, 0, acc)
    return acc.transpose(0, 2, 1)


class _CompiledForward:
    """``network``'s forward pass by the module docstring's recipe, blocks prepared once."""

    def __init__(self, network):
        slayer = lava_compat.slayer()
        self.network = network
        self.steps = []  # per block: (block, neuron params or None, integer weights or None)
        for block in network.blocks:
            if isinstance(block, slayer.block.cuba.Flatten):
                self.steps.append((block, None, None))
                continue
            params = _fast_neuron(block.neuron)
            if block.delay is not None or not block.delay_shift or getattr(block, "mask", None) is not None:
                params = None
            weight_t = _integer_weights(block) if isinstance(block, slayer.block.cuba.Dense) else None
            self.steps.append((block, params, weight_t))
        self.flatten = slayer.block.cuba.Flatten
        self.pool = slayer.block.cuba.Pool

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        """Per-layer uint8 spikes (N, n, T) for uint8 frames (N, C, H, W, T)."""
        spikes = downsample_events(frames, self.network.input_pool)  # = SpikingNetwork._prepare_input
        if self.network.flat_input:
            spikes = spikes.reshape(spikes.shape[0], -1, spikes.shape[-1])
        layers = []
        for block, params, weight_t in self.steps:
            if isinstance(block, self.flatten):
                spikes = spikes.reshape(spikes.shape[0], -1, spikes.shape[-1])
                continue
            if params is None:
                x = torch.from_numpy(spikes).float()
                out = self.network._block_forward(block, x).numpy().astype(np.uint8)
            else:
                if weight_t is not None and spikes.ndim == 3:
                    a, a_scale = _dense_input(weight_t, spikes), np.float32(1 / WEIGHT_UNITS)
                else:
                    x = torch.from_numpy(spikes).float()
                    if isinstance(block, self.pool):  # floor mode, as in SpikingNetwork._block_forward
                        k = int(block.synapse.kernel_size[0])
                        x = x[:, :, : x.shape[2] // k * k, : x.shape[3] // k * k]
                    a, a_scale = np.ascontiguousarray(block.synapse(x).numpy(), dtype=np.float32), np.float32(1)
                out = np.empty(a.shape, dtype=np.uint8)
                flat = (a.shape[0], -1, a.shape[-1])
                _kernel()(a.reshape(flat), a_scale, *params, out.reshape(flat))
            layers.append(out.reshape(out.shape[0], -1, out.shape[-1]))
            spikes = out
        return layers


def _slayer_forward(network, frames: np.ndarray) -> list[np.ndarray]:
    network.record = True
    try:
        network(torch.from_numpy(frames).float())
        return [spikes.numpy().astype(np.uint8) for spikes in network.layer_spikes]
    finally:
        network.record = False


def float_layer_spikes(network, frames: np.ndarray, *, batch_size: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[np.ndarray], str]:
    """Per-layer spikes (N, n, T) of the trained SLAYER ``network`` on uint8 frames (N, C, H, W, T).

    Returns the spikes and the path used: ``"compiled"`` (this module's kernels, checked equal to SLAYER's
    forward pass on the first ``CHECK_SAMPLES`` samples) or ``"slayer"`` (SLAYER's own forward pass, when
    the check fails). Batches of ``batch_size`` samples (default: about 64 MB of frames
    and at most about 128 MB of float32 work in the widest layer); ``progress(done, total)`` after each.
    """
    network.eval()
    torch.set_num_threads(os.cpu_count() or 1)
    n_samples = len(frames)
    per_sample = max(1, math.prod(frames.shape[1:]))
    batch_size = batch_size or max(1, FRAME_BATCH_BYTES // per_sample)
    with torch.inference_mode():
        path = "slayer"
        forward = functools.partial(_slayer_forward, network)
        compiled = _CompiledForward(network)
        widest = max(math.prod(layer.shape[1:]) for layer in compiled(frames[:1])) * 4  # float32 bytes
        batch_size = max(1, min(batch_size, WORK_BATCH_BYTES // widest))
        check_batch = max(1, WORK_BATCH_BYTES // (widest * SLAYER_WORK_FACTOR))
        head = frames[:CHECK_SAMPLES]
        slices = [head[start:start + check_batch] for start in range(0, len(head), check_batch)]
        if all(np.array_equal(a, b) for part in slices for a, b in zip(compiled(part), forward(part))):
            path, forward = "compiled", compiled
        collected: list[np.ndarray] = []  # filled in place: no second copy of every layer at the end
        for start in range(0, n_samples, batch_size):
            layers = forward(frames[start:start + batch_size])
            if not collected:
                collected = [np.empty((n_samples, *layer.shape[1:]), dtype=np.uint8) for layer in layers]
            for out, spikes in zip(collected, layers):
                out[start:start + len(spikes)] = spikes
            if progress is not None:
                progress(min(start + batch_size, n_samples), n_samples)
    return collected, path
