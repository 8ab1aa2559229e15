"""Frame-based ANNs on event data (Deng Models 4 / 5, docs/frames.md): the torch encoders against the numpy
ones, the stride-2 convolutions' shapes against cost, parameter counts against cost's #W, one tiny trained
run of each frame kind through ``run --backend torch``, and the refusals (exit 2)."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import neurodeploy as nd
from neurodeploy.cli import app
from neurodeploy.data.frames import binary_frames, frame_input_shape, intensity_frames
from neurodeploy.errors import OptionError
from neurodeploy.metrics.cost import static_cost
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.frame_ann import FrameAnnNetwork, encode_frames

runner = CliRunner()
NMNIST = (2, 34, 34)


def _params(network) -> int:
    return sum(p.numel() for p in network.parameters())


@pytest.mark.parametrize("kind", ["binary", "intensity"])
def test_torch_encoder_equals_the_numpy_encoder(kind):
    rng = np.random.default_rng(0)
    frames = (rng.random((3, 2, 5, 4, 6)) < 0.2).astype(np.uint8) * rng.integers(1, 4, (3, 2, 5, 4, 6), dtype=np.uint8)
    frames[1] = 0  # a sample without events stays 0
    ours = encode_frames(torch.from_numpy(frames), kind).numpy()
    reference = binary_frames(frames) if kind == "binary" else intensity_frames(frames)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("kind, steps", [("binary", 100), ("intensity", 100), ("binary", 15)])
def test_mlp_parameters_equal_costs_weights(kind, steps):
    """The bias-free ANN's parameters are cost's #W (cost's ann params add a bias per unit, which it has not);
    binary T = 100 is Deng Table 6's Model-4 MLP, 118,641,664; intensity Model-5's 1,451,008."""
    arch = resolve_arch("nmnist_mlp2", "nmnist").arch
    cost = static_cost(arch, NMNIST, "ann", frames=kind, steps=steps)
    with torch.device("meta"):  # no 474 MB of weights for a count
        network = FrameAnnNetwork(arch, NMNIST, kind, steps)
    assert _params(network) == cost.weights
    assert cost.params == cost.weights + sum(layer.neurons for layer in cost.layers)
    if steps == 100:
        assert cost.weights == {"binary": 118_641_664, "intensity": 1_451_008}[kind]


def test_model4_cnn_stride2_shapes_and_parameters_match_cost():
    """Model-4's CNN: every convolution stride 2 with floor(n / 2) outputs per side (docs/cost.md), layer by
    layer as cost computes it, and #W 7,302,208 (Deng Table 6: 7.3022e6) at T = 100."""
    arch = resolve_arch("nmnist_cnn", "nmnist").arch
    assert _params(FrameAnnNetwork(arch, NMNIST, "binary", 100)) == \
        static_cost(arch, NMNIST, "ann", frames="binary", steps=100).weights == 7_302_208
    steps = 32  # the least T whose image survives five halvings (3 stride-2 convs, 2 AP2)
    network = FrameAnnNetwork(arch, NMNIST, "binary", steps)
    cost = static_cost(arch, NMNIST, "ann", frames="binary", steps=steps)
    outputs = network.ann.activations(torch.zeros(1, *frame_input_shape("binary", NMNIST, steps)))
    assert [tuple(o.shape[1:]) for o in outputs] == [layer.out_shape for layer in cost.layers]
    assert network(torch.zeros(2, *NMNIST, steps)).shape == (2, 10, 1)


@pytest.fixture(scope="module")
def frame_runs(tmp_path_factory, tiny_nmnist):
    folder = tmp_path_factory.mktemp("frames")
    runs = {}
    for kind in ("binary", "intensity"):
        runs[kind] = nd.train("nmnist", "ann", frames=kind, arch="Input-16FC-10", epochs=1, steps=4, dt=10,
                              limit=20, test_limit=10, data_dir=tiny_nmnist, allow_synthetic=False,
                              out=folder / kind)
    return runs


@pytest.mark.parametrize("kind", ["binary", "intensity"])
def test_trained_frame_ann_runs_on_torch(frame_runs, tiny_nmnist, kind):
    run = frame_runs[kind]
    config = json.loads((run.path / "config.json").read_text())
    assert config["frames"] == kind and config["family"] == "ann"
    state = torch.load(run.path / "checkpoint.pt", weights_only=False)["model"]
    cost = static_cost(resolve_arch("Input-16FC-10", "nmnist").arch, NMNIST, "ann", frames=kind, steps=4)
    assert sum(v.numel() for v in state.values()) == cost.weights  # trained model = cost's #W (no biases)
    report = run.run("torch", data_dir=tiny_nmnist).to_dict()
    assert report["backend"]["name"] == "torch" and report["model"]["family"] == "ann"
    assert report["model"]["params"] == cost.weights
    assert report["energy"]["kind"] == "estimated"
    layers = report["layers"]
    assert sum(layer["macs"] for layer in layers) == sum(layer.macs_per_step for layer in cost.layers)  # once, not x T
    assert sum(layer["params"] for layer in layers) == cost.weights and sum(layer["adds"] for layer in layers) == 0
    assert 0 <= report["accuracy"] <= 1 and report["data"]["samples"] == 40


@pytest.mark.parametrize("args, message", [
    (["train", "nmnist", "--model", "snn", "--frames", "binary"], "use it with --model ann"),
    (["train", "mnist", "--model", "ann", "--frames", "binary"], "holds static images"),
    (["train", "nmnist", "--model", "ann", "--frames", "gray"], "unknown --frames"),
    (["train", "nmnist", "--model", "ann"], "--frames binary"),
])
def test_bad_frames_options_exit_2(tmp_path, args, message):
    result = runner.invoke(app, [*args, "--epochs", "1", "--limit", "10", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_frames_refused_in_config():
    with pytest.raises(OptionError):
        nd.train("nmnist", "rnn", frames="intensity", epochs=1)
