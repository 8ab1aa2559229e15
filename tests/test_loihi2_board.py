"""The Loihi 2 board graph (neurodeploy/backends/loihi2_board.py), checked on a CPU: every host<->chip edge
has an adapter of the right kind, direction and shape, and the planned port shapes are the ones Lava's netx
builds from the file. Running it needs a board (not available here)."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
from typer.testing import CliRunner

from neurodeploy import lava_compat
from neurodeploy.backends import loihi2_board as board
from neurodeploy.cli import app
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.errors import UserError


@pytest.fixture
def dense_net(netx_factory):
    return load_netx(netx_factory.write("dense", [netx_factory.dense(0, 8, 6), netx_factory.dense(1, 6, 3)]))


@pytest.fixture
def conv_net(netx_factory):
    conv = netx_factory.conv(0, (2, 6, 5), 3)
    return load_netx(netx_factory.write("conv", [conv, netx_factory.dense(1, int(np.prod(conv.out_shape)), 4,
                                                                          flatten=True)]))


def _sides(graph, edge):
    return graph.process(edge.source).side, graph.process(edge.target).side


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_every_host_chip_edge_goes_through_an_adapter_of_the_right_kind_and_shape(kind, dense_net, conv_net):
    net = dense_net if kind == "dense" else conv_net
    graph = board.plan_board_graph(net, steps=10)
    assert board.check_board_graph(graph) == []
    assert graph.steps == 10 + board.BOARD_READOUT_OFFSET and graph.run_config.endswith("Loihi2HwCfg")
    for edge in graph.edges:
        assert {"host", "chip"} != set(_sides(graph, edge)), edge
    adapters = [p for p in graph.processes if p.side == "adapter"]
    into_chip = [p for p in adapters if p.cls in board.TO_CHIP]
    assert len(into_chip) == 1 and len(adapters) == 1 + len(net.layers)  # one in, one per read layer
    expected_input = board.CONV_INPUT_ADAPTER if kind == "conv" else board.DENSE_INPUT_ADAPTER
    assert into_chip[0].cls == expected_input
    assert into_chip[0].kwargs["shape"] == tuple(reversed(net.layers[0].in_shape))
    for position, layer in enumerate(net.layers):
        adapter = graph.process(f"adapter{position}")
        assert adapter.cls == board.OUTPUT_ADAPTER and adapter.kwargs["shape"] == tuple(reversed(layer.out_shape))
        assert graph.process(f"sink{position}").side == "host"


def test_the_planned_shapes_are_those_lava_netx_builds(conv_net):
    """The network's ports in the plan match the real netx Network (built, not run, on the CPU)."""
    network = lava_compat.netx().hdf5.Network(net_config=str(conv_net.path))
    graph = board.plan_board_graph(conv_net, steps=4)
    ports = graph.process("network").ports
    assert ports["inp"] == tuple(network.inp.shape)
    for position, block in enumerate(network.layers):
        assert ports[f"layers[{position}].out"] == tuple(block.out.shape)


def test_the_check_catches_a_missing_adapter_a_wrong_kind_and_a_wrong_shape(dense_net, conv_net):
    graph = board.plan_board_graph(dense_net, steps=5)
    shape = graph.process("network").ports["inp"]
    direct = dataclasses.replace(graph, edges=(board.Edge("source", "s_out", "network", "inp", shape),
                                               *graph.edges[2:]))
    assert any("without an adapter" in p for p in board.check_board_graph(direct))
    swapped = dataclasses.replace(graph, processes=tuple(
        dataclasses.replace(p, cls=board.OUTPUT_ADAPTER) if p.name == "input_adapter" else p
        for p in graph.processes))
    assert any("not a Py-to-Nx adapter" in p for p in board.check_board_graph(swapped))
    conv_graph = board.plan_board_graph(conv_net, steps=5)
    dense_kind = dataclasses.replace(conv_graph, processes=tuple(
        dataclasses.replace(p, cls=board.DENSE_INPUT_ADAPTER) if p.name == "input_adapter" else p
        for p in conv_graph.processes))
    assert any("PyToN3ConvAdapter" in p for p in board.check_board_graph(dense_kind))
    resized = dataclasses.replace(graph, processes=tuple(
        dataclasses.replace(p, kwargs={**p.kwargs, "shape": (99,)}) if p.name == "adapter1" else p
        for p in graph.processes))
    assert any("adapter1: built with shape (99,)" in p for p in board.check_board_graph(resized))


@pytest.mark.skipif(importlib.util.find_spec("lava.proc.embedded_io") is not None, reason="lava-loihi installed")
def test_building_without_lava_loihi_is_one_clear_error(dense_net):
    graph = board.plan_board_graph(dense_net, steps=3)
    with pytest.raises(UserError, match="needs Intel's lava-loihi extension"):
        board.build_board_graph(graph, np.zeros((8, graph.steps), np.int32))


def test_require_hardware_is_exit_2_without_a_board(netx_factory, tmp_path):
    net = netx_factory.write("one", [netx_factory.dense(0, 4, 2)])
    np.save(tmp_path / "x.npy", netx_factory.spikes(4, 5, samples=1))
    result = CliRunner().invoke(app, ["run", str(net), "--backend", "loihi2", "--require-hardware",
                                      "--input", str(tmp_path / "x.npy")])
    assert result.exit_code == 2 and "--require-hardware: no Loihi 2 board found" in result.output
