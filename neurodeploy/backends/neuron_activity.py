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

from neurodeploy.backends.emulator import NumpyEngine, compile_network
from neurodeploy.deploy.netx import NetxNetwork
from neurodeploy.kernels.fixed_point import CubaState, cuba_step, dense_step_input


def active_neuron_updates(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray]) -> list[np.ndarray]:
    """Active neuron-steps of every synaptic layer, per sample: a list of (N,) int64.

    ``inputs`` (N, n_in, T) and ``layer_spikes`` [(N, n, T)] are a run's spikes (:class:`SpikeRun`).
    """
    engine = NumpyEngine()
    programs = compile_network(net)
    if len(programs) != len(layer_spikes):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(programs)} layers")
    counts = []
    previous = np.ascontiguousarray(inputs, dtype=np.uint8)
    for program, spikes in zip(programs, layer_spikes):
        a_in = engine.synaptic_input(program, previous)  # (N, T, n)
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
        counts.append(active)
        previous = spikes
    return counts
