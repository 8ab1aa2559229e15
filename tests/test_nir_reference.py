"""The float NIR reference simulator: published graphs from other tools, hand-checked equations, cycles."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.errors import UserError
from neurodeploy.models.nir_reference import flatten_graph, simulate_nir

NIR_DATA = Path(__file__).parent / "data" / "nir"


def test_sinabs_nmnist_cnn_spikes_in_every_layer():
    graph = nir.read(NIR_DATA / "cnn_sinabs.nir")
    rng = np.random.default_rng(0)
    frames = (rng.random((2, 2, 34, 34, 12)) < 0.1).astype(np.uint8)
    trace = simulate_nir(graph, frames, dt_ms=1.0)
    assert trace.spiking_nodes == ("1", "3", "6", "10", "12")
    assert trace.node_outputs["1"].shape == (2, 16, 16, 16, 12)
    assert trace.output.shape == (2, 10, 12) and trace.output_is_spikes
    for name in trace.spiking_nodes:
        spikes = trace.node_outputs[name]
        assert spikes.dtype == np.uint8 and set(np.unique(spikes)) <= {0, 1}
        assert spikes.sum() > 0, f"layer {name} is silent"
    assert np.array_equal(trace.output, trace.node_outputs["12"])
    assert trace.predictions().shape == (2,)
    # no input, no spikes: nothing in the graph drives itself (its biases are zero)
    silent = simulate_nir(graph, np.zeros_like(frames), dt_ms=1.0)
    assert silent.output.sum() == 0


def _cuba_graph(**overrides) -> nir.NIRGraph:
    params = dict(tau_syn=np.array([2e-3]), tau_mem=np.array([4e-3]), r=np.array([2.0]), v_leak=np.array([0.0]),
                  v_threshold=np.array([1.0]), v_reset=np.array([0.0]), w_in=np.array([1.5]))
    params.update(overrides)
    return nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([1])}),
               "w": nir.Affine(weight=np.array([[0.8]]), bias=np.array([0.1])),
               "lif": nir.CubaLIF(**params),
               "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")])


def _cuba_by_hand(x, dt, reset_by_subtraction=False):
    i = v = 0.0
    spikes = []
    for value in x:
        y = 0.8 * value + 0.1
        i = i + dt / 2e-3 * (-i + 1.5 * y)
        v = v + dt / 4e-3 * (0.0 - v + 2.0 * i)
        spike = v > 1.0
        if spike:
            v = v - 1.0 if reset_by_subtraction else 0.0
        spikes.append(int(spike))
    return spikes


@pytest.mark.parametrize("subtract", [False, True])
def test_cuba_lif_follows_the_documented_euler_step(subtract):
    x = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1], dtype=np.uint8)
    trace = simulate_nir(_cuba_graph(), x.reshape(1, 1, -1), dt_ms=1.0, reset_by_subtraction=subtract)
    expected = _cuba_by_hand(x, 1e-3, subtract)
    assert sum(expected) >= 3
    assert trace.output[0, 0].tolist() == expected


def test_recurrent_edge_lags_one_step_and_subgraphs_are_inlined():
    # one IF neuron whose spike feeds back -1.0 through a subgraph: after a spike, the next step's input is cut
    inner = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([1])}),
               "lif": nir.IF(r=np.array([1.0]), v_threshold=np.array([1.5]), v_reset=np.array([0.0])),
               "w_rec": nir.Linear(weight=np.array([[-1.0]])),
               "output": nir.Output(output_type={"output": np.array([1])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([1])}), "rec": inner,
               "out": nir.Output(output_type={"output": np.array([1])})},
        edges=[("in", "rec"), ("rec", "out")], type_check=False)
    flat = flatten_graph(graph)
    assert flat.recurrent_edges == (("rec.w_rec", "rec.lif"),)
    trace = simulate_nir(graph, np.ones((1, 1, 8), np.uint8), dt_ms=1.0, record="all")
    # v: 1, 2 -> spike (reset 0); next step input 1 - 1 = 0: v 0; then 1, 2 -> spike ...
    assert trace.output[0, 0].tolist() == [0, 1, 0, 0, 1, 0, 0, 1]
    assert trace.node_outputs["rec.w_rec"][0, 0].tolist() == [0, -1, 0, 0, -1, 0, 0, -1]


def test_unsupported_node_is_named():
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([2])}), "d": nir.Delay(delay=np.array([1.0, 2.0])),
               "out": nir.Output(output_type={"output": np.array([2])})},
        edges=[("in", "d"), ("d", "out")])
    with pytest.raises(UserError, match="'d': Delay"):
        simulate_nir(graph, np.zeros((1, 2, 3), np.uint8), dt_ms=1.0)
