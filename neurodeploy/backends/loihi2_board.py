"""The Loihi 2 board path of ``run --backend loihi2``, built the way lava-dl's netx hardware examples build it.

On a board, host (Python) processes and the chip exchange spikes only through adapters of Intel's
lava-loihi extension: lava-dl's ``tests/.../netx/test_hdf5_nx.py`` and its netx tutorials put an
``embedded_io.spike.PyToN3ConvAdapter`` (conv input) or ``PyToNxAdapter`` (dense input) between the host's
``io.source.RingBuffer`` and the network's input, and an ``NxToPyAdapter`` between each read layer and
a host ``io.sink.RingBuffer``, run under ``Loihi2HwCfg`` and read the sinks after the run.

The graph is built in two steps so that a machine without lava-loihi (or without Lava) can check it:

1. :func:`plan_board_graph` returns a :class:`BoardGraph`: typed processes (the Lava class each one will
   be, its side: host / chip / adapter, and its port shapes) and the edges between ports, run nothing.
   :func:`check_board_graph` lists what is wrong with a plan (an edge from host to chip without an adapter,
   an adapter of the wrong direction or kind, a shape that differs along an edge).
2. :func:`build_board_graph` instantiates a checked plan with Lava's classes (it needs lava-loihi for
   the adapters) and :func:`run_board` runs it, one sample per run.

This path has NOT been run on a board (none was available): :data:`NOT_RUN_ON_A_BOARD` goes into the banner
of every board run until someone does. ``BOARD_READOUT_OFFSET`` (the step the adapters add) comes from
lava-dl's tinynet test, which compares ``output[..., 2:]`` with its reference's ``[..., 1:]``; confirm it
on a board with ``run --backend loihi2`` against ``--backend lava`` (the report's parity block).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodeploy import lava_compat
from neurodeploy.backends import lava_sim
from neurodeploy.backends.emulator import validate_inputs
from neurodeploy.backends.spike_run import SpikeRun
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import NetxNetwork
from neurodeploy.errors import UserError

NOT_RUN_ON_A_BOARD = ("loihi2 board path: built as lava-dl's netx hardware examples build it (adapters between "
                      "host and chip) but NOT RUN ON A BOARD yet; treat its numbers as unverified")
BOARD_READOUT_OFFSET = 1  # steps the input adapter adds before the network sees a spike (unverified)

HOST, CHIP, ADAPTER = "host", "chip", "adapter"
SOURCE = "lava.proc.io.source.RingBuffer"
SINK = "lava.proc.io.sink.RingBuffer"
NETWORK = "lava.lib.dl.netx.hdf5.Network"
CONV_INPUT_ADAPTER = "lava.proc.embedded_io.spike.PyToN3ConvAdapter"
DENSE_INPUT_ADAPTER = "lava.proc.embedded_io.spike.PyToNxAdapter"
OUTPUT_ADAPTER = "lava.proc.embedded_io.spike.NxToPyAdapter"
TO_CHIP = (CONV_INPUT_ADAPTER, DENSE_INPUT_ADAPTER)
RUN_CONFIG = "lava.magma.core.run_configs.Loihi2HwCfg"


@dataclass(frozen=True)
class PlannedProcess:
    """One Lava process of the graph: its class (dotted path), side, ports (name -> Lava shape) and the
    keyword arguments it is built with (besides ``data`` for the source, given at build time)."""

    name: str
    cls: str
    side: str
    ports: dict[str, tuple[int, ...]]
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """``source.port -> target.port`` carrying spikes of ``shape`` (Lava's (x, y, z) or (n,) order)."""

    source: str
    source_port: str
    target: str
    target_port: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class BoardGraph:
    """The process graph of one board run of ``steps`` steps, reading ``layer_positions``."""

    processes: tuple[PlannedProcess, ...]
    edges: tuple[Edge, ...]
    steps: int
    layer_positions: tuple[int, ...]
    run_config: str = RUN_CONFIG

    def process(self, name: str) -> PlannedProcess:
        return next(p for p in self.processes if p.name == name)


def lava_shape(slayer_shape: tuple[int, ...]) -> tuple[int, ...]:
    """A slayer (C, H, W) or (n,) shape -> the port shape netx gives Lava: (W, H, C) or (n,)."""
    return tuple(reversed(slayer_shape))


def plan_board_graph(net: NetxNetwork, steps: int, layer_positions: tuple[int, ...] | None = None) -> BoardGraph:
    """The board graph for ``net`` (read with :func:`~neurodeploy.deploy.netx_read.load_netx`) and samples of
    ``steps`` steps: source -> input adapter -> network, and per read layer network -> output adapter ->
    sink. ``layer_positions``: the layers read back (default all)."""
    for layer in net.layers:
        if layer.kind == "input":
            raise UserError(f"{net.path}: layer {layer.index} (input) has a neuron, which netx drives only through "
                            "its bias, so spike inputs cannot reach the network; export it with a plain input layer")
    positions = tuple(range(len(net.layers))) if layer_positions is None else tuple(layer_positions)
    run_steps = steps + BOARD_READOUT_OFFSET
    in_shape = lava_shape(net.layers[0].in_shape)
    outs = {p: lava_shape(net.layers[p].out_shape) for p in positions}
    network = PlannedProcess("network", NETWORK, CHIP, {"inp": in_shape, **{f"layers[{p}].out": s
                                                                            for p, s in outs.items()}},
                             {"net_config": str(net.path)})
    adapter = CONV_INPUT_ADAPTER if len(in_shape) == 3 else DENSE_INPUT_ADAPTER
    processes = [PlannedProcess("source", SOURCE, HOST, {"s_out": in_shape}),
                 PlannedProcess("input_adapter", adapter, ADAPTER, {"inp": in_shape, "out": in_shape},
                                {"shape": in_shape}),
                 network]
    edges = [Edge("source", "s_out", "input_adapter", "inp", in_shape),
             Edge("input_adapter", "out", "network", "inp", in_shape)]
    for position, shape in outs.items():
        processes += [PlannedProcess(f"adapter{position}", OUTPUT_ADAPTER, ADAPTER, {"inp": shape, "out": shape},
                                     {"shape": shape}),
                      PlannedProcess(f"sink{position}", SINK, HOST, {"a_in": shape},
                                     {"shape": shape, "buffer": run_steps})]
        edges += [Edge("network", f"layers[{position}].out", f"adapter{position}", "inp", shape),
                  Edge(f"adapter{position}", "out", f"sink{position}", "a_in", shape)]
    return BoardGraph(tuple(processes), tuple(edges), run_steps, positions)


def check_board_graph(graph: BoardGraph) -> list[str]:
    """What is wrong with ``graph`` (empty when nothing): every host<->chip edge goes through an adapter of
    the right direction, kind and shape; every edge's shape is that of both ports."""
    problems = []
    by_name = {p.name: p for p in graph.processes}
    for edge in graph.edges:
        source, target = by_name.get(edge.source), by_name.get(edge.target)
        if source is None or target is None:
            problems.append(f"{edge.source} -> {edge.target}: no such process")
            continue
        for process, port in ((source, edge.source_port), (target, edge.target_port)):
            if process.ports.get(port) != edge.shape:
                problems.append(f"{process.name}.{port}: shape {process.ports.get(port)} on an edge of {edge.shape}")
        if {source.side, target.side} == {HOST, CHIP}:
            problems.append(f"{source.name} -> {target.name}: host and chip connected without an adapter")
        if source.side == HOST and target.side == ADAPTER and target.cls not in TO_CHIP:
            problems.append(f"{target.name}: host spikes enter the chip through {target.cls}, not a Py-to-Nx adapter")
        if source.side == ADAPTER and target.side == HOST and source.cls != OUTPUT_ADAPTER:
            problems.append(f"{source.name}: chip spikes reach the host through {source.cls}, not {OUTPUT_ADAPTER}")
    for process in graph.processes:
        if process.side != ADAPTER:
            continue
        ins = [e for e in graph.edges if e.target == process.name]
        outs = [e for e in graph.edges if e.source == process.name]
        if len(ins) != 1 or len(outs) != 1:
            problems.append(f"{process.name}: an adapter needs one edge in and one out, has {len(ins)} and {len(outs)}")
            continue
        if process.kwargs.get("shape") != ins[0].shape:
            problems.append(f"{process.name}: built with shape {process.kwargs.get('shape')}, carries {ins[0].shape}")
        sides = (by_name[ins[0].source].side, by_name[outs[0].target].side) if ins[0].source in by_name and \
            outs[0].target in by_name else None
        if process.cls in TO_CHIP and sides != (HOST, CHIP) or process.cls == OUTPUT_ADAPTER and sides != (CHIP, HOST):
            problems.append(f"{process.name}: {process.cls.rsplit('.', 1)[-1]} between {sides}")
        want = CONV_INPUT_ADAPTER if len(process.kwargs.get("shape", ())) == 3 else DENSE_INPUT_ADAPTER
        if process.cls in TO_CHIP and process.cls != want:
            problems.append(f"{process.name}: a {len(process.kwargs.get('shape', ()))}-d input needs {want}")
    return problems


def _lava_class(dotted: str):
    module, name = dotted.rsplit(".", 1)
    try:
        return getattr(lava_compat.lava_module(module), name)
    except (ModuleNotFoundError, UserError) as exc:
        if module.startswith("lava.proc.embedded_io"):
            raise UserError(f"the Loihi 2 board path needs Intel's lava-loihi extension ({dotted} is missing); "
                            "run on --backend lava or emulator instead") from exc
        raise


def build_board_graph(graph: BoardGraph, data: np.ndarray) -> dict[str, object]:
    """Instantiate a checked ``graph`` with Lava's classes and connect it; ``data`` (x, y, z, steps) or
    (n, steps) is the source's spikes. Returns the processes by name (``network`` runs the graph)."""
    problems = check_board_graph(graph)
    if problems:
        raise UserError(f"Loihi 2 board graph: {problems[0]}")
    built: dict[str, object] = {}
    for process in graph.processes:
        cls = _lava_class(process.cls)
        kwargs = {"data": data} if process.name == "source" else dict(process.kwargs)
        if process.cls == NETWORK:
            try:
                built[process.name] = cls(**kwargs)
            except Exception as exc:  # netx raises anything from KeyError to RuntimeError
                raise lava_sim.netx_load_error(kwargs["net_config"], exc) from exc
        else:
            built[process.name] = cls(**kwargs)
    for edge in graph.edges:
        _port(built[edge.source], edge.source_port).connect(_port(built[edge.target], edge.target_port))
    return built


def _port(process, port: str):
    if port.startswith("layers["):  # "layers[3].out"
        position = int(port[len("layers["):port.index("]")])
        return process.layers[position].out
    return getattr(process, port)


def run_board(net_path: str | Path, inputs: np.ndarray, *,
              progress: Callable[[int, int], None] | None = None) -> SpikeRun:
    """``inputs`` (N, n_in, T) through the netx file on a Loihi 2 board, one fresh graph per sample; every
    layer read back through its adapter. Needs lava-loihi and a board (not run on one yet)."""
    net = load_netx(net_path)
    inputs = validate_inputs(net, inputs)
    n_samples, _, steps = inputs.shape
    graph = plan_board_graph(net, steps)
    lava = lava_sim._Lava.load()
    run_config = _lava_class(graph.run_config)
    outputs = [np.empty((n_samples, net.layers[p].neurons, steps), dtype=np.uint8) for p in graph.layer_positions]
    started = time.perf_counter()
    for sample in range(n_samples):
        padded = np.concatenate([inputs[sample], np.zeros((net.num_inputs, BOARD_READOUT_OFFSET), np.uint8)], axis=1)
        data = lava_sim._to_lava_layout(padded.astype(np.int32), net.layers[0].in_shape)
        built = build_board_graph(graph, data)
        network = built["network"]
        try:
            network.run(condition=lava.run_conditions.RunSteps(num_steps=graph.steps), run_cfg=run_config())
            for output, position in zip(outputs, graph.layer_positions):
                spikes = lava_sim._from_lava_layout(np.asarray(built[f"sink{position}"].data.get()))
                output[sample] = spikes[:, BOARD_READOUT_OFFSET:].astype(np.uint8)
        except BaseException:
            lava_sim._abort_runtime(network)
            raise
        network.stop()
        if progress is not None:
            progress(sample + 1, n_samples)
    return SpikeRun(inputs=inputs, layer_spikes=outputs, steps=steps, backend="loihi2",
                    wall_s=time.perf_counter() - started, layer_indices=graph.layer_positions,
                    metadata={"board_path": NOT_RUN_ON_A_BOARD, "lava": lava_compat.versions()})
