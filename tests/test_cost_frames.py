"""`cost --frames`: the companion paper's frame-based ANNs (Models 4 / 5) through the CLI and the Python API."""

import json

import pytest
from typer.testing import CliRunner

import neurodeploy as nd
from neurodeploy.cli import app

runner = CliRunner()


@pytest.mark.parametrize(("frames", "weights", "input_shape"), [
    ("binary", 118_641_664, [1, 100, 2312]),  # Deng Table 6 Model-4: 2312 x 100 x 512 + 512 x 512 + 512 x 10
    ("intensity", 1_451_008, [2, 34, 34]),  # Model-5: 2312 x 512 + 512 x 512 + 512 x 10
])
def test_cli_cost_frames_json(frames, weights, input_shape):
    result = runner.invoke(app, ["cost", "nmnist_mlp2", "--family", "ann", "--frames", frames, "--steps", "100",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["weights"], data["input_shape"], data["frames"]) == (weights, input_shape, frames)
    assert data["activations"] == 1_034


def test_cli_cost_frames_table_says_per_sample():
    result = runner.invoke(app, ["cost", "nmnist_cnn", "--family", "ann", "--frames", "binary", "--steps", "32"])
    assert result.exit_code == 0, result.output
    assert "binary frames" in result.output and "ops per sample" in result.output


@pytest.mark.parametrize("args", [
    ["--family", "ann", "--frames", "rgb"],
    ["--family", "snn", "--frames", "binary"],
    ["--family", "lstm", "--frames", "intensity"],
    ["--family", "ann", "--frames", "binary", "--steps", "0"],
])
def test_cli_cost_bad_frames_is_one_line_exit_2(args):
    result = runner.invoke(app, ["cost", "nmnist_mlp2", *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_api_cost_frames_and_option_errors():
    assert nd.cost("nmnist_mlp2", family="ann", frames="binary", steps=100).weights == 118_641_664
    assert nd.cost("nmnist_mlp2", family="ann", frames="intensity").weights == 1_451_008
    assert nd.cost("nmnist_mlp2", family="ann").frames is None
    with pytest.raises(nd.OptionError, match="--frames"):
        nd.cost("nmnist_mlp2", family="ann", frames="rgb")
    with pytest.raises(nd.OptionError, match="--family ann"):
        nd.cost("nmnist_mlp2", family="rnn", frames="binary")
