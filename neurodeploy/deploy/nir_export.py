"""Trained SNN run -> NIR graph (``neurodeploy export RUN --format nir``), readable by any NIR tool.

Each trained SLAYER CUBA block becomes a synapse node and a neuron node named after the layer (``fc1_w``
and ``fc1``; ``conv2_w`` and ``conv2``; a pool block becomes ``pool3_sum`` (SumPool2d) and ``pool3_scale``
(Scale, its kernel weight) before ``pool3``), behind an ``Input`` of the chip's input shape (after any
input downsampling) and a ``Flatten`` where the network flattens. The weights are the quantised ones the
netx export writes, in SLAYER's units (integer weight / w_scale, w_scale = 64). The neuron of a block with
12-bit decays ``iDecay``, ``vDecay`` and threshold mantissa ``vThMant`` at a step of ``dt`` becomes a
``CubaLIF`` in continuous time (lava-dl's convention, the inverse of what ``import`` does)::

    tau_syn = dt / (iDecay / 4096)    tau_mem = dt / (vDecay / 4096)    v_threshold = vThMant / w_scale
    w_in = tau_syn / dt               r = tau_mem / dt                  v_leak = v_reset = 0

so that the float reference's Euler step (:mod:`neurodeploy.models.nir_reference`) is SLAYER's CUBA update:
``I[t] = (1 - iDecay/4096) I[t-1] + W s[t]``, ``v[t] = (1 - vDecay/4096) v[t-1] + I[t]``. A block with no
leak (vDecay 0) and a current that follows its input (iDecay 4096) becomes an ``IF`` with R = 1. SLAYER
computes these updates in fixed point (states in 1/4096 steps, rounded toward zero each step) and the NIR
reference in float64, so a voltage that lands within a rounding step of the threshold can spike on one
side only; there is no 24-bit current wrap in either. A current that never decays (iDecay 0) has no NIR
time constant and is refused. neurodeploy's SNNs are feed-forward; a recurrent block would be a subgraph
edge back into its neuron, which ``import`` understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
from rich.table import Table

from neurodeploy import atomic, folders, lava_compat
from neurodeploy.deploy.run_folder import chip_network, load_run_config, load_trained_network
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import layer_names
from neurodeploy.models.training import SPIKING_FAMILIES

NIR_FILE = "model.nir"
DECAY_UNIT = 4096


@dataclass(frozen=True)
class ExportedNode:
    """One node of the exported graph (a row of the export table)."""

    name: str
    type: str
    shape: tuple[int, ...]
    detail: str


@dataclass(frozen=True)
class NirExport:
    path: Path
    dt_ms: float
    nodes: tuple[ExportedNode, ...]


def neuron_node(name: str, params: dict, w_scale: float, shape: tuple[int, ...], dt_s: float) -> nir.NIRNode:
    """The CubaLIF (or IF) of a SLAYER CUBA neuron with netx ``device_params`` (module docstring)."""
    i_decay, v_decay = int(params["iDecay"]), int(params["vDecay"])
    threshold = np.full(shape, int(params["vThMant"]) / w_scale)
    if i_decay == 0:
        raise UserError(f"layer {name}: its current never decays (iDecay 0), which no NIR time constant expresses")
    if v_decay == 0:
        if i_decay != DECAY_UNIT:
            raise UserError(f"layer {name}: no voltage leak but a filtered current (iDecay {i_decay}); NIR has no "
                            "such neuron (CubaLIF needs a finite tau_mem)")
        return nir.IF(r=np.ones(shape), v_threshold=threshold, v_reset=np.zeros(shape))
    tau_syn = dt_s * DECAY_UNIT / i_decay
    tau_mem = dt_s * DECAY_UNIT / v_decay
    return nir.CubaLIF(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem),
                       r=np.full(shape, tau_mem / dt_s), v_leak=np.zeros(shape), v_threshold=threshold,
                       v_reset=np.zeros(shape), w_in=np.full(shape, tau_syn / dt_s))


def _weights(block) -> np.ndarray:
    """The block's quantised weights in SLAYER units, as the netx export writes them (divided by w_scale)."""
    synapse = block.synapse
    integers = synapse.pre_hook_fx(synapse.weight, descale=True).detach().cpu().numpy().astype(np.float64)
    return integers / float(block.neuron.w_scale)


def _pair(values) -> np.ndarray:
    return np.asarray([int(v) for v in tuple(values)[:2]])


def network_to_nir(network, dt_ms: float) -> nir.NIRGraph:
    """The NIR graph of a trained :class:`~neurodeploy.models.snn.SpikingNetwork` at a step of ``dt_ms``."""
    slayer = lava_compat.slayer()
    dt_s = dt_ms / 1000.0
    with torch.no_grad():  # SLAYER blocks learn their neuron shapes in forward: run one sample through
        network.forward(torch.zeros(1, *network.input_shape, 2))
    shape = tuple(int(s) for s in network.chip_input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    chain = ["input"]
    if network.flat_input:
        nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
        chain.append("flatten")
        shape = (int(np.prod(shape)),)
    names = iter(layer_names(network))  # the report's layer names, so an imported run's report matches
    for block_name, block in zip(network.block_names, network.blocks):
        if isinstance(block, slayer.block.cuba.Flatten):
            name = block_name
            nodes[name] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            chain.append(name)
            shape = (int(np.prod(shape)),)
            continue
        name = next(names)
        out_shape = tuple(int(s) for s in block.neuron.shape)
        if isinstance(block, slayer.block.cuba.Dense):
            weight = _weights(block).reshape(out_shape[0], -1)
            nodes[f"{name}_w"] = nir.Linear(weight=weight)
            chain.append(f"{name}_w")
        elif isinstance(block, slayer.block.cuba.Conv):
            weight = _weights(block)
            weight = weight.reshape(weight.shape[:4])
            synapse = block.synapse
            nodes[f"{name}_w"] = nir.Conv2d(
                input_shape=np.array(shape[1:]), weight=weight, stride=_pair(synapse.stride),
                padding=_pair(synapse.padding), dilation=_pair(synapse.dilation), groups=int(synapse.groups),
                bias=np.zeros(weight.shape[0]))
            chain.append(f"{name}_w")
        elif isinstance(block, slayer.block.cuba.Pool):
            kernel = _weights(block).reshape(block.synapse.weight.shape[2:4])
            if not np.all(kernel == kernel.flat[0]):
                raise UserError(f"layer {name}: a pooling kernel with unequal weights has no NIR pooling node")
            size = _pair(block.synapse.kernel_size)
            nodes[f"{name}_sum"] = nir.SumPool2d(kernel_size=size, stride=_pair(block.synapse.stride),
                                                 padding=np.zeros(2, dtype=int))
            nodes[f"{name}_scale"] = nir.Scale(scale=np.full(out_shape, float(kernel.flat[0])))
            chain += [f"{name}_sum", f"{name}_scale"]
        else:
            raise UserError(f"layer {name}: {type(block).__name__} blocks have no NIR export")
        nodes[name] = neuron_node(name, block.neuron.device_params, float(block.neuron.w_scale), out_shape, dt_s)
        chain.append(name)
        shape = out_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    chain.append("output")
    edges = list(zip(chain[:-1], chain[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"source": "neurodeploy", "dt_ms": float(dt_ms),
                                                            "arch": network.arch.notation()})


def _describe(name: str, node: nir.NIRNode) -> ExportedNode:
    kind = type(node).__name__
    shape = tuple(int(s) for s in np.asarray(node.output_type.get("output", ()), dtype=object).reshape(-1)
                  if s is not None)
    if isinstance(node, nir.CubaLIF):
        detail = (f"tau_syn {float(node.tau_syn.flat[0]) * 1e3:.4g} ms, tau_mem {float(node.tau_mem.flat[0]) * 1e3:.4g}"
                  f" ms, v_th {float(node.v_threshold.flat[0]):g}")
    elif isinstance(node, nir.IF):
        detail = f"R 1, v_th {float(node.v_threshold.flat[0]):g}"
    elif hasattr(node, "weight"):
        detail = f"weights in [{node.weight.min():g}, {node.weight.max():g}]"
    else:
        detail = ""
    return ExportedNode(name, kind, shape, detail)


def export_nir_run(run_dir: Path, out: Path | None = None) -> NirExport:
    """Write the NIR graph of the SNN in ``run_dir`` (default ``run_dir/model.nir``) and read it back."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if config.family not in SPIKING_FAMILIES:
        raise UserError(f"{run_dir}: a {config.family} run has no spiking neurons to export to NIR; only "
                        "`--model snn` runs (and an rsnn's classifier) can")
    target = Path(out) if out else run_dir / NIR_FILE
    folders.check_output_file_owned(target, "--out")
    atomic.check_writable_dir(target.parent)
    _, _, network = load_trained_network(run_dir)
    graph = network_to_nir(chip_network(config, network), float(config.dt_ms))
    with atomic.atomic_path(target) as tmp:
        nir.write(tmp, graph)
        loaded = nir.read(tmp)
        if set(loaded.nodes) != set(graph.nodes) or len(loaded.edges) != len(graph.edges):
            raise UserError(f"{target}: nir.read gives back {sorted(loaded.nodes)}, written {sorted(graph.nodes)}")
    return NirExport(target, float(config.dt_ms), tuple(_describe(name, graph.nodes[name])
                                                         for name in graph.nodes))


def print_nir_export(result: NirExport, console) -> None:
    table = Table(title=f"NIR export: {result.path} (dt {result.dt_ms:g} ms)")
    for column in ("node", "type", "shape", "parameters"):
        table.add_column(column)
    for node in result.nodes:
        table.add_row(node.name, node.type, "x".join(str(s) for s in node.shape), node.detail)
    console.print(table)
    console.print(f"wrote {result.path} (read back with nir.read)")
