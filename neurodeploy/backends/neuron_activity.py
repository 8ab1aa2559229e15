"""Which neurons change state each step: the active / inactive split of neuron updates.

Loihi prices a neuron update by whether the compartment is active (Davies et al. 2018, Table 2: 81 pJ
active, 52 pJ inactive). Here a neuron-step is *active* when the fixed-point CUBA update changes the
neuron's state: its current u or its voltage v differs from the step before (input arrived, state
decayed, bias integrated) or it spiked. Each layer is replayed from the spikes its input really had in
the run (the previous layer's recorded spikes), with the same integers as the emulator, so the counts are
exact for the emulated (and the bit-identical Lava) run.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.backends.emulator import CHUNK_ELEMENTS, compile_network, select_engine
from neurodeploy.deploy.netx_records import NetxNetwork
from neurodeploy.kernels.fixed_point import CubaState, cuba_step, dense_step_input


def active_neuron_updates(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray]) -> list[np.ndarray]:
    """Active neuron-steps of every synaptic layer, per sample: a list of (N,) int64.

    ``inputs`` (N, n_in, T) and ``layer_spikes`` [(N, n, T)] are a run's spikes (:class:`SpikeRun`). Samples
    are replayed in chunks (as in the emulator), so the int32 synaptic input is never held for all of them.
    """
    engine = select_engine("auto")  # the synaptic input is the same integers on either engine
    programs = compile_network(net)
    if len(programs) != len(layer_spikes):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(programs)} layers")
    n_samples, _, steps = inputs.shape
    chunk = max(1, CHUNK_ELEMENTS // (steps * max(p.layer.neurons for p in programs)))
    counts = [np.zeros(n_samples, dtype=np.int64) for _ in programs]
    for first in range(0, n_samples, chunk):
        previous = np.ascontiguousarray(inputs[first:first + chunk], dtype=np.uint8)
        for program, spikes, active in zip(programs, layer_spikes, counts):
            spikes = spikes[first:first + chunk]
            active[first:first + chunk] = _active_steps(engine.synaptic_input(program, previous), spikes, program)
            previous = spikes
    return counts


def _active_steps(a_in: np.ndarray, spikes: np.ndarray, program) -> np.ndarray:
    """Active neuron-steps per sample of one layer, from its synaptic input ``a_in`` (N, T, n) and its
    recorded spikes (N, n, T) (for the recurrent input)."""
    n_samples, steps, neurons = a_in.shape
    state = CubaState.zeros(n_samples, neurons)
    active = np.zeros(n_samples, dtype=np.int64)
    for t in range(steps):
        a_t = a_in[:, t]
        if program.recurrent is not None and t > 0:
            a_t = a_t + dense_step_input(spikes[:, :, t - 1], program.recurrent)
        u_before, v_before = state.u.copy(), state.v.copy()
        fired = cuba_step(state, a_t, program.neuron)
        changed = (state.u != u_before) | (state.v != v_before) | fired
        active += changed.sum(axis=1)
    return active
