"""The chain of chip layers in a NIR graph: each spiking neuron node with the stateless nodes on the single
path into it (and its recurrent loop), or a one-line refusal naming the node (nir_import's docstring)."""

from __future__ import annotations

from dataclasses import dataclass

import nir

from neurodeploy.errors import UserError
from neurodeploy.models.nir_reference import FlatGraph

SYNAPSE_NODES = (nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d,
                 nir.Flatten)
CHIP_NEURONS = (nir.IF, nir.LIF, nir.CubaLIF)
REFUSED = {
    nir.Delay: "Delay nodes are not deployed (netx ignores conv delays and neurodeploy maps no NIR delay)",
    nir.Threshold: "a bare Threshold has no Loihi neuron (use IF / LIF / CubaLIF)",
    nir.I: "the non-spiking integrator I has no spikes to read back from the chip",
    nir.LI: "the non-spiking LI readout has no spikes to read back from the chip (end the graph with LIF / "
            "CubaLIF and count spikes)",
    nir.CubaLI: "the non-spiking CubaLI readout has no spikes to read back from the chip (end the graph with "
                "CubaLIF and count spikes)",
}



@dataclass(frozen=True)
class LayerPath:
    """A chip layer in graph terms: the neuron, its source (previous neuron or Input), the stateless nodes
    between them, and the stateless nodes of its recurrent loop (empty when it has none)."""

    neuron: str
    source: str
    synapse: tuple[str, ...]
    recurrent: tuple[str, ...] | None


def refuse(name: str, node: nir.NIRNode, why: str) -> UserError:
    return UserError(f"NIR node '{name}' ({type(node).__name__}): {why}")


def _walk_back(graph: FlatGraph, start: str, first: str) -> tuple[str, tuple[str, ...]]:
    """From ``first`` (a node feeding ``start``) back through stateless nodes to a neuron or the Input."""
    chain: list[str] = []
    name = first
    while True:
        node = graph.nodes[name]
        if name == graph.input_node or isinstance(node, CHIP_NEURONS):
            return name, tuple(reversed(chain))
        for kind, why in REFUSED.items():
            if isinstance(node, kind):
                raise refuse(name, node, why)
        if not isinstance(node, SYNAPSE_NODES + (nir.Input, nir.Output)):
            raise refuse(name, node, "this node type is not deployable")
        if len(graph.successors(name)) != 1:
            raise refuse(name, node, f"feeds {len(graph.successors(name))} nodes; netx layers form a chain "
                                      "without branches")
        chain.append(name)
        sources = graph.inputs[name] + graph.recurrent_inputs[name]
        if len(sources) != 1:
            raise refuse(name, node, f"sums {len(sources)} inputs; a netx layer has one input path "
                                      f"(on the way to '{start}')")
        name = sources[0]


def layer_paths(graph: FlatGraph) -> list[LayerPath]:
    """The chain of chip layers from the Input to the Output node (module docstring), or UserError."""
    for name in graph.order:
        node = graph.nodes[name]
        for kind, why in REFUSED.items():
            if isinstance(node, kind):
                raise refuse(name, node, why)
    neurons = [name for name in graph.order if isinstance(graph.nodes[name], CHIP_NEURONS)]
    if not neurons:
        raise UserError("NIR graph: no IF, LIF or CubaLIF node; nothing spikes, so nothing can run on the chip")
    paths = []
    for name in neurons:
        node = graph.nodes[name]
        if len(graph.inputs[name]) != 1:
            raise refuse(name, node, f"receives {len(graph.inputs[name])} feed-forward inputs; a netx layer has "
                                      "exactly one")
        source, synapse = _walk_back(graph, name, graph.inputs[name][0])
        recurrent = None
        if graph.recurrent_inputs[name]:
            if len(graph.recurrent_inputs[name]) != 1:
                raise refuse(name, node, "has several recurrent inputs; netx has one recurrent matrix per layer")
            origin, recurrent = _walk_back(graph, name, graph.recurrent_inputs[name][0])
            if origin != name:
                raise refuse(name, node, f"receives a recurrent connection from '{origin}'; netx recurrence "
                                          "stays within one layer")
        paths.append(LayerPath(name, source, synapse, recurrent))
    expected = graph.input_node
    for path in paths:
        if path.source != expected:
            raise refuse(path.neuron, graph.nodes[path.neuron],
                          f"is fed by '{path.source}', not by '{expected}'; netx runs a chain of layers")
        expected = path.neuron
    last, tail = _walk_back(graph, graph.output_node, graph.inputs[graph.output_node][0]) \
        if len(graph.inputs[graph.output_node]) == 1 else (None, ())
    if last != expected or any(not isinstance(graph.nodes[n], (nir.Flatten, nir.Output)) for n in tail):
        raise UserError(f"NIR graph: the Output node '{graph.output_node}' must receive the spikes of the last "
                        f"neuron '{expected}' (a stateless readout after it has no chip neuron)")
    return paths

