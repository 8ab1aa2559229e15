"""Float reference simulation of a NIR graph (``nir.NIRGraph``), the yardstick for deployed networks.

NIR (the Neuromorphic Intermediate Representation; Pedersen et al., Nature Communications 15:8122, 2024)
declares continuous-time node equations and leaves the discretisation to each backend. This module fixes
one, at a step of ``dt`` seconds (``dt_ms`` / 1000), in float64, for a batch of samples at once.

Time and signals
----------------
Frame ``x[t]`` (t = 0 .. T-1) is the value the ``Input`` node emits during step t: 1 for a spike in that
step, as every NIR exporter that targets a discrete-time simulator treats it (a spike is an amplitude of
one for one step, not a Dirac impulse of area 1/dt). A node's input is the sum of the outputs of the nodes
with an edge into it. Feed-forward edges carry a node's output within the same step (NIR has no synaptic
delay); an edge that closes a cycle (a recurrent connection, found by a depth-first search from the input)
carries the source's output of the previous step, t-1. Every state starts at zero.

Node equations (forward Euler; the current is updated first and the voltage uses the new current, which is
the order of Loihi's CUBA neuron and of SLAYER)::

    Affine      y = W x + b                 Linear   y = W x            Scale   y = s * x
    Conv1d/2d   y = conv(x, W) + b (stride, padding, dilation, groups as given)
    SumPool2d   y = sum over each window    AvgPool2d  y = mean over each window (zero padding counted)
    Flatten     reshape of dims start_dim..end_dim (NIR's dims exclude the batch)
    Threshold   z = [x > theta]
    I           v[t] = v[t-1] + R x[t]
    IF          v[t] = v[t-1] + R x[t];   z = [v > v_th];  v <- v_reset where z
    LI          v[t] = v[t-1] + dt/tau (v_leak - v[t-1] + R x[t])
    LIF         LI, then z = [v > v_th];  v <- v_reset where z
    CubaLI      I[t] = I[t-1] + dt/tau_syn (-I[t-1] + w_in x[t])
                v[t] = v[t-1] + dt/tau_mem (v_leak - v[t-1] + R I[t])
    CubaLIF     CubaLI, then z = [v > v_th];  v <- v_reset where z

The integrators (I, IF) add ``R x`` per step, not ``dt R x``: a NIR ``IF`` with R = 1 is the per-step
integrate-and-fire neuron of the frameworks that write it (Sinabs' IAF, snnTorch's Leaky with beta = 1).
With ``w_in = tau_syn/dt`` and ``R = tau_mem/dt`` (how snnTorch and lava-dl convert to NIR) a CubaLIF reads
``I[t] = (1 - dt/tau_syn) I[t-1] + x[t]``, ``v[t] = (1 - dt/tau_mem) v[t-1] + I[t]``: the discrete CUBA
neuron of Loihi with current decay dt/tau_syn and voltage decay dt/tau_mem.

NIR resets a spiking neuron to ``v_reset``. Several frameworks reset by subtracting the threshold instead
(Sinabs' IAF, snnTorch's ``reset_mechanism="subtract"``), which a NIR graph cannot say;
``reset_by_subtraction=True`` simulates that (``v <- v - v_th``) to show what the source framework computed.

Output and prediction
---------------------
:attr:`NirTrace.output` holds what the ``Output`` node receives, (N, *shape, T): spikes (0/1) when a
spiking node feeds it, values (e.g. an LI readout's voltage) otherwise. The predicted class of a sample is
the argmax over output features of the sum over time (:meth:`NirTrace.predictions`): the spike count of a
spiking readout, or the time-averaged value of a non-spiking one (ties go to the lowest index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.errors import UserError

SPIKING_NODES = (nir.IF, nir.LIF, nir.CubaLIF, nir.Threshold)
NEURON_NODES = (nir.I, nir.IF, nir.LI, nir.LIF, nir.CubaLI, nir.CubaLIF)
STATIC_NODES = (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d,
                nir.SumPool2d, nir.AvgPool2d, nir.Flatten, nir.Threshold)


@dataclass(frozen=True)
class FlatGraph:
    """A NIR graph with nested subgraphs inlined (names ``outer.inner``), in evaluation order.

    ``order``: every node, each after the nodes it receives same-step input from. ``inputs[name]``: the
    sources of a node's same-step input; ``recurrent_inputs[name]``: sources whose previous-step output it
    receives (the edges that close cycles). ``input_node`` / ``output_node``: the graph's ``Input`` and
    ``Output`` nodes.
    """

    nodes: dict[str, nir.NIRNode]
    order: tuple[str, ...]
    inputs: dict[str, tuple[str, ...]]
    recurrent_inputs: dict[str, tuple[str, ...]]
    input_node: str
    output_node: str

    @property
    def recurrent_edges(self) -> tuple[tuple[str, str], ...]:
        return tuple((src, dst) for dst, sources in self.recurrent_inputs.items() for src in sources)

    def successors(self, name: str) -> list[str]:
        return [dst for dst in self.order if name in self.inputs[dst] or name in self.recurrent_inputs[dst]]

    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.nodes[self.input_node].input_type["input"])


def _inline(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """Nodes and edges with every nested ``NIRGraph`` replaced by its own nodes (its Input and Output become
    pass-through nodes named ``sub.<name>``)."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    ports: dict[str, tuple[str, str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _inline(node, full + ".")
            entry = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Input)]
            exit_ = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Output)]
            if len(entry) != 1 or len(exit_) != 1:
                raise UserError(f"NIR subgraph '{full}' needs exactly one Input and one Output node "
                                f"(has {len(entry)} and {len(exit_)})")
            ports[full] = (entry[0], exit_[0])
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        src, dst = prefix + src, prefix + dst
        src = ports[src][1] if src in ports else src
        dst = ports[dst][0] if dst in ports else dst
        edges.append((src, dst))
    return nodes, edges


def flatten_graph(graph: nir.NIRGraph) -> FlatGraph:
    """Inline subgraphs, find the recurrent (cycle-closing) edges and an evaluation order.

    A depth-first search from the ``Input`` node marks an edge whose target is still on the search path as
    recurrent; the reverse post-order of the remaining (acyclic) edges is the evaluation order.
    """
    nodes, edges = _inline(graph)
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise UserError(f"NIR graph: edge ({src!r}, {dst!r}) names a node '{end}' the graph does not have")
    top_inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    top_outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(top_inputs) != 1 or len(top_outputs) != 1:
        raise UserError(f"NIR graph: needs exactly one Input and one Output node (has {len(top_inputs)} and "
                        f"{len(top_outputs)}); multi-input or multi-output graphs are not supported")
    successors: dict[str, list[str]] = {name: [] for name in nodes}
    for src, dst in edges:
        successors[src].append(dst)
    state = dict.fromkeys(nodes, 0)  # 0 unseen, 1 on the search path, 2 done
    post_order: list[str] = []
    recurrent: set[tuple[str, str]] = set()
    roots = top_inputs + [name for name in nodes if name not in top_inputs]
    for root in roots:
        if state[root]:
            continue
        stack = [(root, iter(successors[root]))]
        state[root] = 1
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[name] = 2
                post_order.append(name)
            elif state[child] == 1:
                recurrent.add((name, child))
            elif state[child] == 0:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    order = tuple(reversed(post_order))
    same_step = {name: tuple(src for src, dst in edges if dst == name and (src, name) not in recurrent)
                 for name in nodes}
    previous = {name: tuple(src for src, dst in edges if dst == name and (src, name) in recurrent)
                for name in nodes}
    return FlatGraph(nodes=nodes, order=order, inputs=same_step, recurrent_inputs=previous,
                     input_node=top_inputs[0], output_node=top_outputs[0])


# ------------------------------------------------------------------------------------------ node kernels


def _tensor(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def _pair(value) -> tuple[int, int]:
    flat = np.asarray(value).reshape(-1)
    return (int(flat[0]), int(flat[-1]))


def _conv_padding(padding, dims: int):
    if isinstance(padding, str):
        return padding
    flat = np.asarray(padding).reshape(-1)
    return int(flat[0]) if dims == 1 else (int(flat[0]), int(flat[-1]))


def static_forward(name: str, node: nir.NIRNode, x: torch.Tensor) -> torch.Tensor:
    """One step of a stateless node on a batch ``x`` (B, *shape)."""
    if isinstance(node, (nir.Input, nir.Output)):
        return x
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = _tensor(node.weight)
        if x.ndim != 2 or x.shape[1] != weight.shape[1]:
            raise UserError(f"NIR node '{name}': expects {weight.shape[1]} input features, gets shape "
                            f"{tuple(x.shape[1:])}; a Flatten node is missing before it")
        y = x @ weight.T
        return y + _tensor(node.bias) if isinstance(node, nir.Affine) else y
    if isinstance(node, nir.Scale):
        return x * _tensor(node.scale)
    if isinstance(node, nir.Conv2d):
        return F.conv2d(x, _tensor(node.weight), _tensor(node.bias), stride=_pair(node.stride),
                        padding=_conv_padding(node.padding, 2), dilation=_pair(node.dilation),
                        groups=int(node.groups))
    if isinstance(node, nir.Conv1d):
        return F.conv1d(x, _tensor(node.weight), _tensor(node.bias), stride=int(np.asarray(node.stride).flat[0]),
                        padding=_conv_padding(node.padding, 1), dilation=int(np.asarray(node.dilation).flat[0]),
                        groups=int(node.groups))
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        kernel = _pair(node.kernel_size)
        mean = F.avg_pool2d(x, kernel, stride=_pair(node.stride), padding=_pair(node.padding),
                            count_include_pad=True)
        return mean if isinstance(node, nir.AvgPool2d) else mean * (kernel[0] * kernel[1])
    if isinstance(node, nir.Flatten):
        shape = tuple(x.shape[1:])
        start = int(node.start_dim) % len(shape)
        end = int(node.end_dim) % len(shape)
        return x.reshape(x.shape[0], *shape[:start], int(np.prod(shape[start:end + 1])), *shape[end + 1:])
    if isinstance(node, nir.Threshold):
        return (x > _tensor(node.threshold)).to(x.dtype)
    raise UserError(f"NIR node '{name}': {type(node).__name__} is not supported by the reference simulator "
                    "(supported: Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, "
                    "Flatten, Threshold, I, IF, LI, LIF, CubaLI, CubaLIF)")


@dataclass
class _NeuronState:
    v: torch.Tensor
    i: torch.Tensor | None = None


def _neuron_step(node: nir.NIRNode, state: _NeuronState, x: torch.Tensor, dt_s: float,
                 reset_by_subtraction: bool) -> torch.Tensor:
    """Advance one neuron population by one step (module docstring); returns spikes or the voltage."""
    if isinstance(node, (nir.I, nir.IF)):
        state.v = state.v + _tensor(node.r) * x
    elif isinstance(node, (nir.LI, nir.LIF)):
        state.v = state.v + dt_s / _tensor(node.tau) * (_tensor(node.v_leak) - state.v + _tensor(node.r) * x)
    else:  # CubaLI, CubaLIF
        state.i = state.i + dt_s / _tensor(node.tau_syn) * (-state.i + _tensor(node.w_in) * x)
        state.v = state.v + dt_s / _tensor(node.tau_mem) * (_tensor(node.v_leak) - state.v
                                                              + _tensor(node.r) * state.i)
    if not isinstance(node, SPIKING_NODES):
        return state.v
    threshold = _tensor(node.v_threshold)
    spikes = state.v > threshold
    reset = state.v - threshold if reset_by_subtraction else _tensor(node.v_reset).expand_as(state.v)
    state.v = torch.where(spikes, reset, state.v)
    return spikes.to(state.v.dtype)


# ------------------------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class NirTrace:
    """Per-node outputs of :func:`simulate_nir` on N samples of T steps.

    ``node_outputs[name]``: (N, *shape, T) for every recorded node: uint8 spikes for spiking nodes (IF,
    LIF, CubaLIF, Threshold), float32 values otherwise. ``output``: what the ``Output`` node receives,
    (N, *shape, T) (uint8 when ``output_is_spikes``). ``spiking_nodes``: the recorded spiking nodes in
    evaluation order. ``recurrent_edges``: the edges simulated with a one-step lag.
    """

    node_outputs: dict[str, np.ndarray]
    output: np.ndarray
    output_is_spikes: bool
    dt_ms: float
    order: tuple[str, ...]
    spiking_nodes: tuple[str, ...]
    recurrent_edges: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def steps(self) -> int:
        return int(self.output.shape[-1])

    def predictions(self) -> np.ndarray:
        """Class per sample: argmax over output features of the output summed over time."""
        totals = self.output.reshape(self.output.shape[0], -1, self.steps).astype(np.float64).sum(axis=2)
        return totals.argmax(axis=1)


def _recorded(graph: FlatGraph, record) -> set[str]:
    if record == "all":
        return set(graph.order)
    if record == "neurons":
        return {name for name in graph.order
                if isinstance(graph.nodes[name], NEURON_NODES + (nir.Threshold,))}
    names = set(record)
    unknown = names - set(graph.order)
    if unknown:
        raise UserError(f"NIR graph: cannot record unknown node(s) {sorted(unknown)}")
    return names


def _frames_for(graph: FlatGraph, frames: np.ndarray) -> np.ndarray:
    """(N, *features, T) frames reshaped (C order) to the Input node's shape."""
    shape = graph.input_shape()
    if frames.ndim < 2:
        raise UserError(f"input frames must be (N, *features, T), got shape {frames.shape}")
    if tuple(frames.shape[1:-1]) != shape:
        if int(np.prod(frames.shape[1:-1])) != int(np.prod(shape)):
            raise UserError(f"input frames have features {tuple(frames.shape[1:-1])} but the NIR graph's Input "
                            f"node '{graph.input_node}' expects {shape}")
        frames = frames.reshape(frames.shape[0], *shape, frames.shape[-1])
    return frames


def _simulate_batch(graph: FlatGraph, frames: np.ndarray, dt_s: float, keep: set[str],
                    reset_by_subtraction: bool) -> dict[str, list[np.ndarray]]:
    steps = frames.shape[-1]
    x_all = torch.as_tensor(np.asarray(frames, dtype=np.float64))
    states: dict[str, _NeuronState] = {}
    previous: dict[str, torch.Tensor] = {}
    traces: dict[str, list[np.ndarray]] = {name: [] for name in keep}
    for t in range(steps):
        current: dict[str, torch.Tensor] = {}
        for name in graph.order:
            node = graph.nodes[name]
            if name == graph.input_node:
                value = x_all[..., t]
            else:
                parts = [current[src] for src in graph.inputs[name]]
                parts += [previous[src] for src in graph.recurrent_inputs[name] if src in previous]
                if not parts:
                    raise UserError(f"NIR graph: node '{name}' has no input on the first step (it is not reachable "
                                    "from the Input node, or only through a recurrent edge)")
                value = parts[0]
                for part in parts[1:]:
                    value = value + part
                if isinstance(node, NEURON_NODES):
                    if name not in states:
                        states[name] = _NeuronState(
                            v=torch.zeros_like(value),
                            i=torch.zeros_like(value) if isinstance(node, (nir.CubaLI, nir.CubaLIF)) else None)
                    value = _neuron_step(node, states[name], value, dt_s, reset_by_subtraction)
                else:
                    value = static_forward(name, node, value)
            current[name] = value
            if name in traces:
                traces[name].append(value.numpy())
        previous = current
    return traces


def simulate_nir(graph: nir.NIRGraph, frames: np.ndarray, dt_ms: float, *, record="neurons",
                 reset_by_subtraction: bool = False, batch_size: int = 32) -> NirTrace:
    """Run ``graph`` on ``frames`` (N, C, H, W, T) or (N, features, T) at a step of ``dt_ms`` milliseconds.

    ``record``: ``"neurons"`` (every neuron and Threshold node, plus the output), ``"all"``, or an iterable
    of node names. Frames whose feature count matches the Input node's shape are reshaped to it (C order).
    Returns a :class:`NirTrace`; the equations are in the module docstring.
    """
    if dt_ms <= 0:
        raise UserError(f"dt must be positive, got {dt_ms} ms")
    flat = flatten_graph(graph)
    frames = _frames_for(flat, np.asarray(frames))
    keep = _recorded(flat, record) | {flat.output_node}
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in keep}
    for start in range(0, frames.shape[0], batch_size):
        batch = _simulate_batch(flat, frames[start:start + batch_size], dt_ms / 1000.0, keep, reset_by_subtraction)
        for name, steps in batch.items():
            chunks[name].append(np.stack(steps, axis=-1))
    spiking_sources = _spiking_names(flat)
    outputs: dict[str, np.ndarray] = {}
    for name in flat.order:
        if name not in keep:
            continue
        values = np.concatenate(chunks[name]) if chunks[name] else np.zeros((0,), np.float32)
        outputs[name] = values.astype(np.uint8) if name in spiking_sources else values.astype(np.float32)
    output_name = flat.output_node
    return NirTrace(
        node_outputs={name: value for name, value in outputs.items() if name != output_name},
        output=outputs[output_name],
        output_is_spikes=output_name in spiking_sources,
        dt_ms=float(dt_ms),
        order=flat.order,
        spiking_nodes=tuple(name for name in flat.order if name in keep and name in spiking_sources
                            and name != output_name),
        recurrent_edges=flat.recurrent_edges,
    )


def _spiking_names(graph: FlatGraph) -> set[str]:
    """Nodes whose output is 0/1 spikes: spiking neurons, and pass-through nodes fed only by them."""
    spiking = {name for name, node in graph.nodes.items() if isinstance(node, SPIKING_NODES)}
    for name in graph.order:
        node = graph.nodes[name]
        sources = graph.inputs[name] + graph.recurrent_inputs[name]
        if isinstance(node, (nir.Output, nir.Flatten)) and len(sources) == 1 and sources[0] in spiking:
            spiking.add(name)
    return spiking
