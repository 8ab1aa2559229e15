"""Deng Table 7's temporal CNN (docs/frames.md): 3x3x3 convolutions and 2x2x2 average pooling over
(T, H, W), its shapes and parameter count by hand and against cost, and one tiny run on torch."""

import json

import pytest
import torch

import neurodeploy as nd
from neurodeploy.errors import OptionError, UserError
from neurodeploy.metrics.cost import static_cost
from neurodeploy.models.arch import parse_architecture, resolve_arch
from neurodeploy.models.tcnn import TemporalCnn, tcnn_shapes

NMNIST = (2, 34, 34)


def test_table7_temporal_cnn_shapes_and_parameters():
    """InputL-64C3-128C3-AP2-128C3-AP2-256FC-10 on N-MNIST (2 x 34 x 34) at T = 15, counted by hand:
    3x3x3 weights in_C x out_C x 27, 'same' padding, 2x2x2 pooling floor(n / 2) per axis, one bias per unit."""
    arch = resolve_arch("nmnist_cnn", "nmnist").arch
    assert arch.notation() == "Input-64C3-128C3-AP2-128C3-AP2-256FC-10"
    shapes = [out for _, out in tcnn_shapes(arch, NMNIST, 15)]
    assert shapes == [(64, 15, 34, 34), (128, 15, 34, 34), (128, 7, 17, 17), (128, 7, 17, 17), (128, 3, 8, 8),
                      (256,), (10,)]
    weights = 2 * 64 * 27 + 64 * 128 * 27 + 128 * 128 * 27 + 128 * 3 * 8 * 8 * 256 + 256 * 10
    biases = 64 + 128 + 128 + 256 + 10
    assert weights == 6_961_024
    network = TemporalCnn(arch, NMNIST, 15)
    assert sum(p.numel() for p in network.parameters()) == weights + biases
    assert [m.kernel_size for m in network.modules() if isinstance(m, torch.nn.Conv3d)] == [(3, 3, 3)] * 3
    assert [m.kernel_size for m in network.modules() if isinstance(m, torch.nn.AvgPool3d)] == [2, 2]
    cost = static_cost(arch, NMNIST, "tcnn", steps=15)
    assert cost.weights == weights and cost.params == weights + biases
    assert [layer.out_shape for layer in cost.layers] == shapes
    assert cost.layers[0].macs_per_step == 2 * 27 * 64 * 15 * 34 * 34  # padded taps included, once per sample


def test_forward_shapes_follow_tcnn_shapes():
    arch = parse_architecture("Input-4C3-AP2-8C3-AP2-10")
    network = TemporalCnn(arch, NMNIST, 8)
    x = torch.rand(3, *NMNIST, 8)
    assert network(x).shape == (3, 10, 1)
    maps = x.permute(0, 1, 4, 2, 3)
    for layer, (_, out) in zip(network.layers, network.shapes):
        maps = layer(maps.reshape(3, -1) if isinstance(layer, torch.nn.Linear) else maps)
        assert tuple(maps.shape[1:]) == out


def test_too_few_steps_and_frames_refused():
    arch = resolve_arch("nmnist_cnn", "nmnist").arch
    with pytest.raises(UserError, match="more time steps"):
        tcnn_shapes(arch, NMNIST, 3)
    with pytest.raises(OptionError):
        static_cost(arch, NMNIST, "tcnn", steps=15, frames="binary")
    with pytest.raises(OptionError):
        nd.train("nmnist", "tcnn", frames="binary", epochs=1)


def test_tiny_tcnn_trains_and_runs_on_torch(tmp_path, tiny_nmnist):
    run = nd.train("nmnist", "tcnn", arch="Input-4C3-AP2-10", epochs=1, steps=4, dt=10, limit=20, test_limit=10,
                   data_dir=tiny_nmnist, allow_synthetic=False, out=tmp_path / "tcnn")
    assert json.loads((run.path / "config.json").read_text())["family"] == "tcnn"
    report = run.run("torch", data_dir=tiny_nmnist).to_dict()
    cost = static_cost(parse_architecture("Input-4C3-AP2-10"), NMNIST, "tcnn", steps=4)
    assert report["model"] == {**report["model"], "family": "tcnn", "params": cost.params}
    assert sum(layer["macs"] for layer in report["layers"]) == cost.macs_per_step
    assert report["latency"]["per_step_s"] is None and report["energy"]["kind"] == "estimated"
