"""Neuron states (current u, voltage v, spikes) of every layer, step by step, with Lava's integers.

:func:`run_states` emulates a netx network the way lava-dl runs it on Loihi 2 and records what the chip's
state probes read, so the emulator can be held against states recorded on hardware
(:mod:`neurodeploy.pipeline.pilotnet`). Beyond :func:`neurodeploy.backends.emulator.run_emulator` it has:

- **an input layer with a neuron**, driven only through its bias as netx wires it (``Input.inp`` is never
  connected): ``input_bias`` (N, n_in) is the per-sample ``bias_mant`` of that layer (e.g. an image), and
  its spikes feed the first synaptic layer one step later, as any layer's do;
- **netx's periodic reset** (``reset_interval``): layer k (the input layer counting as 0) zeroes u and v
  before its update at every time step ``t`` (from 1) with ``t % interval == (offset + 1 + k) % interval``
  (``lava.lib.dl.netx.hdf5.Network`` gives each layer an offset one above the layer before it, starting
  from ``reset_offset + 1``; ``LIFReset`` zeroes before the update);
- **the read-out convention of v** (``v_readout``), which differs only at a neuron that spiked in that
  step: ``"chip"`` records :data:`CHIP_SPIKED_V` (128), what Loihi 2 read out for every such neuron of
  lava-dl's hardware-recorded PilotNet LIF states (all nine layers, docs/fixed_point.md); ``"lava"``
  records the reset 0, as Lava's CPU model (``Loihi2SimCfg`` fixed_pt) holds it; ``"pre_reset"`` the
  voltage before the reset. u and spikes do not depend on it.

Synaptic input is the emulator's exact integer accumulation (:class:`~neurodeploy.backends.emulator.
NumpyEngine`), layer after layer; states are (N, n, T) int32 with neurons flat in (C, H, W) order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neurodeploy.backends.emulator import compile_network, select_engine
from neurodeploy.deploy.netx import NetxLayer, NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.fixed_point import CubaKernelParams, CubaState, cuba_update, dense_step_input

V_READOUTS = ("chip", "lava", "pre_reset")
# v read from Loihi 2 for a neuron that spiked in the step: measured, not documented (docs/fixed_point.md)
CHIP_SPIKED_V = 128


@dataclass(frozen=True)
class LayerStates:
    """u, v and spikes of one layer: int32 / int32 / uint8 (N, neurons, T)."""

    name: str
    u: np.ndarray
    v: np.ndarray
    spikes: np.ndarray


def _input_params(layer: NetxLayer, input_bias: np.ndarray) -> CubaKernelParams:
    neuron = layer.neuron
    return CubaKernelParams.from_netx(neuron.i_decay, neuron.v_decay, neuron.v_th_mant, input_bias)


def _reset_steps(steps: int, interval: int | None, offset: int) -> np.ndarray:
    """Step indices (from 0) at which a layer with netx reset ``offset`` is zeroed before its update."""
    if interval is None:
        return np.zeros(steps, dtype=bool)
    time_step = np.arange(1, steps + 1)
    return time_step % interval == offset % interval


def _run_layer(a_in: np.ndarray | None, params: CubaKernelParams, shape: tuple[int, int, int], reset: np.ndarray,
               v_readout: str, recurrent=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u, v, spikes (N, n, T) of one layer for input a (N, T, n) (None: no synaptic input)."""
    n_samples, neurons, steps = shape
    state = CubaState.zeros(n_samples, neurons)
    u = np.zeros(shape, dtype=np.int32)
    v = np.zeros(shape, dtype=np.int32)
    spikes = np.zeros(shape, dtype=np.uint8)
    zero = np.zeros((n_samples, neurons), dtype=np.int32)
    for t in range(steps):
        if reset[t]:
            state = CubaState.zeros(n_samples, neurons)
        a_t = zero if a_in is None else a_in[:, t]
        if recurrent is not None and t > 0:
            a_t = a_t + dense_step_input(spikes[:, :, t - 1], recurrent)
        fired, pre_reset = cuba_update(state, a_t, params)
        u[:, :, t] = state.u
        if v_readout == "chip":
            v[:, :, t] = np.where(fired, CHIP_SPIKED_V, state.v)
        else:
            v[:, :, t] = pre_reset if v_readout == "pre_reset" else state.v
        spikes[:, :, t] = fired
    return u, v, spikes


def run_states(net: NetxNetwork, *, steps: int, inputs: np.ndarray | None = None,
               input_bias: np.ndarray | None = None, reset_interval: int | None = None, reset_offset: int = 0,
               v_readout: str = "chip") -> list[LayerStates]:
    """u / v / spikes of every layer of ``net`` (the input layer's first when it has a neuron).

    A network whose first layer is an input layer with a neuron takes ``input_bias`` (N, n_in) integers
    (its ``bias_mant`` per sample); any other takes ``inputs`` (N, n_in, T) 0/1 spikes.
    """
    if v_readout not in V_READOUTS:
        raise UserError(f"unknown v read-out {v_readout!r}; choose one of {', '.join(V_READOUTS)}")
    if reset_interval is not None and reset_interval < 1:
        raise UserError(f"reset interval {reset_interval}: give a positive number of steps")
    engine = select_engine("numpy")
    records: list[LayerStates] = []
    layers = list(net.layers)
    offset = reset_offset + 1  # netx: "time starts from 1 in hardware", then one more per layer
    if layers[0].kind == "input":
        if input_bias is None:
            raise UserError(f"{net.path}: its input layer has a neuron driven by its bias; give input_bias "
                            "(samples, inputs) integers, e.g. the image")
        bias = np.asarray(input_bias, dtype=np.int64)
        if bias.ndim != 2 or bias.shape[1] != net.num_inputs:
            raise UserError(f"input_bias: shape {bias.shape}, expected (samples, {net.num_inputs}) in (C, H, W) "
                            f"order {net.input_shape}")
        layer = layers.pop(0)
        shape = (bias.shape[0], layer.neurons, steps)
        u, v, spikes = _run_layer(None, _input_params(layer, bias), shape,
                                  _reset_steps(steps, reset_interval, offset), v_readout)
        records.append(LayerStates(layer.name, u, v, spikes))
        offset += 1
    else:
        if inputs is None:
            raise UserError(f"{net.path}: give inputs (samples, {net.num_inputs}, steps) spikes")
        spikes = np.ascontiguousarray(inputs, dtype=np.uint8)
    programs = compile_network(dataclasses.replace(net, layers=tuple(layers)))
    for program in programs:
        a_in = engine.synaptic_input(program, spikes)
        shape = (spikes.shape[0], program.layer.neurons, steps)
        u, v, spikes = _run_layer(a_in, program.neuron, shape, _reset_steps(steps, reset_interval, offset),
                                  v_readout, program.recurrent)
        records.append(LayerStates(program.layer.name, u, v, spikes))
        offset += 1
    return records
