"""A NIR neuron in Loihi's integer units: decays, input gains and threshold (:func:`map_neuron`), and the
per-layer weight scale that quantizes the graph's weights to 8 bits (:func:`choose_scale`); the formulas
are in nir_import's docstring."""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.deploy.nir_topology import refuse

WEIGHT_MIN, WEIGHT_MAX = -256, 254  # even integers: an 8-bit mantissa << 1, as lava-dl exports
SCALE_EXPONENTS = range(-6, 13)  # s = 64 * 2^e
MAX_VTH_MANT = (1 << 17) - 1  # Lava's vth is 17 bits
DECAY_UNIT = 4096


@dataclass(frozen=True)
class NeuronMapping:
    """A graph neuron in Loihi terms before the weight scale: decays, per-neuron input gain ``gain`` (graph
    input -> Loihi voltage units at s = 1), the voltage drive per step from the synapse bias
    (``bias_gain`` x bias) and from the leak (``drive``), and the shifted threshold."""

    neuron: str
    i_decay: int
    v_decay: int
    current_decay: float
    gain: np.ndarray
    bias_gain: np.ndarray
    drive: np.ndarray
    threshold: float
    notes: tuple[str, ...]


def _uniform(name: str, node: nir.NIRNode, field_name: str) -> float:
    values = np.asarray(getattr(node, field_name), dtype=np.float64)
    if values.size and not np.allclose(values, values.reshape(-1)[0], rtol=1e-6, atol=0):
        raise refuse(name, node, f"{field_name} differs between neurons; netx holds one value per layer")
    return float(values.reshape(-1)[0])


def _decay(name: str, node: nir.NIRNode, what: str, tau_s: float, dt_s: float, notes: list[str]) -> tuple[int, float]:
    if not tau_s > 0:
        raise refuse(name, node, f"{what} {tau_s} s is not positive")
    fraction = dt_s / tau_s
    if fraction > 1.0 + 1e-9:
        raise refuse(name, node, f"{what} {tau_s * 1e3:g} ms is shorter than dt {dt_s * 1e3:g} ms: a decay above "
                                  f"1 per step cannot be expressed; import with --dt {tau_s * 1e3:g} or smaller")
    exact = fraction * DECAY_UNIT
    decay = int(round(exact))
    if abs(decay - exact) > 1e-6:
        effect = "the leak vanishes" if decay == 0 else f"tau {dt_s / (decay / DECAY_UNIT) * 1e3:.4g} ms"
        notes.append(f"{what}: decay dt/tau = {exact:.2f}/4096 rounded to {decay} ({effect})")
    return decay, fraction


def map_neuron(name: str, node: nir.NIRNode, dt_s: float) -> NeuronMapping:
    """Decays, gains and threshold of one neuron node (module docstring)."""
    notes: list[str] = []
    shape = np.asarray(node.v_threshold).shape
    r = np.broadcast_to(np.asarray(node.r, dtype=np.float64), shape)
    v_reset = _uniform(name, node, "v_reset")
    threshold = _uniform(name, node, "v_threshold") - v_reset
    if threshold <= 0:
        raise refuse(name, node, "v_threshold is not above v_reset; the neuron would fire forever")
    if isinstance(node, nir.IF):
        i_decay, v_decay, alpha_i, alpha_v = DECAY_UNIT, 0, 1.0, 0.0
        gain, bias_gain, drive = r, r, np.zeros(shape)
        notes.append("reset: to v_reset, as the graph and Loihi do; Sinabs' IAF, the usual writer of IF nodes, "
                     "resets by subtracting the threshold, which NIR cannot express")
    elif isinstance(node, nir.LIF):
        v_decay, alpha_v = _decay(name, node, "tau", _uniform(name, node, "tau"), dt_s, notes)
        i_decay, alpha_i = DECAY_UNIT, 1.0
        gain = bias_gain = alpha_v * r
        drive = alpha_v * (np.asarray(node.v_leak, dtype=np.float64) - v_reset)
    else:
        i_decay, alpha_i = _decay(name, node, "tau_syn", _uniform(name, node, "tau_syn"), dt_s, notes)
        v_decay, alpha_v = _decay(name, node, "tau_mem", _uniform(name, node, "tau_mem"), dt_s, notes)
        w_in = np.broadcast_to(np.asarray(node.w_in, dtype=np.float64), shape)
        gain = alpha_v * r * alpha_i * w_in
        bias_gain = alpha_v * r * w_in
        drive = alpha_v * (np.asarray(node.v_leak, dtype=np.float64) - v_reset)
    if v_reset != 0:
        notes.append(f"v_reset {v_reset:g}: deployed as a voltage shift (threshold and leak target minus "
                     f"v_reset); Loihi starts at the shifted {-v_reset:g}, the graph at 0")
    if np.any(drive != 0) and not isinstance(node, nir.IF):
        notes.append("v_leak: a constant voltage bias (exact)")
    return NeuronMapping(name, i_decay, v_decay, alpha_i, np.asarray(gain), np.asarray(bias_gain),
                         np.broadcast_to(drive, shape).copy(), threshold, tuple(notes))


# ------------------------------------------------------------------------------------------ quantisation


@dataclass(frozen=True)
class ScaleChoice:
    """The per-layer weight scale s = 64 * 2^exponent and what it did to the weights."""

    exponent: int
    weights: list[np.ndarray]
    v_th_mant: int
    clipped: int
    vanished: int

    @property
    def scale(self) -> float:
        return 64.0 * 2.0 ** self.exponent


def quantize_weights(weights: np.ndarray, scale: float) -> np.ndarray:
    """Even integers in [-256, 254]: ``2 round(scale w / 2)``, clipped."""
    return np.clip(2 * np.round(weights * scale / 2), WEIGHT_MIN, WEIGHT_MAX).astype(np.int64)


def choose_scale(weights: list[np.ndarray], threshold: float) -> ScaleChoice:
    """The exponent that clips or zeroes the fewest weights, then rounds them least, then is nearest 0."""
    best_key, best = None, None
    total_magnitude = sum(float(np.abs(w).sum()) for w in weights) or 1.0
    for exponent in SCALE_EXPONENTS:
        scale = 64.0 * 2.0 ** exponent
        v_th = int(round(threshold * scale))
        if not 1 <= v_th <= MAX_VTH_MANT:
            continue
        quantized = [quantize_weights(w, scale) for w in weights]
        raw = [2 * np.round(w * scale / 2) for w in weights]
        clipped = sum(int(np.count_nonzero((r < WEIGHT_MIN) | (r > WEIGHT_MAX))) for r in raw)
        vanished = sum(int(np.count_nonzero((w != 0) & (q == 0))) for w, q in zip(weights, quantized))
        error = sum(float(np.abs(q / scale - w).sum()) for w, q in zip(weights, quantized)) / total_magnitude
        error += abs(v_th / scale - threshold) / threshold
        key = (clipped + vanished, round(error, 9), abs(exponent))
        if best_key is None or key < best_key:
            best_key, best = key, ScaleChoice(exponent, quantized, v_th, clipped, vanished)
    if best is None:
        raise ValueError(f"no weight scale represents the threshold {threshold}")
    return best

