"""The backend table (neurodeploy/backends/registry.py): a backend added in one place is usable everywhere a
backend is named: request validation, run dispatch, the CLI and studies (docs/architecture.md)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from neurodeploy.backends import registry
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.backends.registry import Backend, ChipExecution
from neurodeploy.cli import app
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.errors import UserError
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute


@dataclass(frozen=True)
class ToyRunner:
    """A chip backend that is the emulator with every output spike inverted: a result no other backend gives."""

    latency_kind: str = "toy wall time"

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        spike_run = run_emulator(load_netx(net_path), inputs)
        spike_run.layer_spikes[-1][...] = 1 - spike_run.layer_spikes[-1]
        return ChipExecution(spike_run, "emulated", "toy", banner="toy backend")


TOY = Backend(name="toy", mode="emulated", runner=ToyRunner(), options=frozenset({"net_input"}),
              summary="the emulator, outputs inverted (a test)")


def quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture
def net_and_input(netx_factory, tmp_path):
    net = netx_factory.write("two", [netx_factory.dense(0, 6, 5), netx_factory.dense(1, 5, 3)])
    spikes = netx_factory.spikes(6, 12, samples=2)
    np.save(tmp_path / "x.npy", spikes)
    return net, tmp_path / "x.npy", spikes


def test_the_table_holds_each_backends_mode_families_and_options():
    assert registry.names() == ("lava", "loihi2", "emulator", "torch")
    assert [registry.backend(n).mode for n in registry.names()] == ["simulated", "hardware", "emulated", "float"]
    assert registry.names(family="rnn") == ("torch",)
    assert registry.names(option="count_only") == ("lava",)
    assert registry.names(chip=True) == ("lava", "loihi2", "emulator")
    assert registry.names(in_studies=True) == ("lava", "emulator", "torch")
    with pytest.raises(UserError, match="unknown --backend 'gpu'; choose one of lava, loihi2, emulator, torch"):
        registry.backend("gpu")
    with pytest.raises(ValueError, match="mode"):
        Backend(name="x", mode="quantum", summary="")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Backend(name="lava", mode="simulated", summary=""))


def test_a_registered_toy_backend_is_validated_dispatched_and_offered(net_and_input, tmp_path):
    net, x_path, spikes = net_and_input
    request = RunRequest(target=net, backend="toy", input_npy=x_path)
    with pytest.raises(UserError, match="unknown --backend 'toy'"):
        request.validate()
    with registry.registered(TOY):
        request.validate()  # known now; honours --input
        with pytest.raises(UserError, match="--count-only .* needs --backend lava, not toy"):
            RunRequest(target=net, backend="toy", input_npy=x_path, count_only=True).validate()
        output = execute(request, console=quiet(), err_console=quiet())
        expected = run_emulator(load_netx(net), spikes).output
        assert np.array_equal(output, 1 - expected)  # the toy runner ran, not the emulator
        assert "toy" in registry.choices() and "toy" in registry.names(chip=True)
        result = CliRunner().invoke(app, ["run", str(net), "--backend", "toy", "--input", str(x_path),
                                          "--save-output", str(tmp_path / "y.npy")])
        assert result.exit_code == 0, result.output
        assert np.array_equal(np.load(tmp_path / "y.npy"), 1 - expected)
    assert "toy" not in registry.names()
    gone = CliRunner().invoke(app, ["run", str(net), "--backend", "toy", "--input", str(x_path)])
    assert gone.exit_code == 2 and "unknown --backend 'toy'" in gone.output


def test_a_float_backend_refuses_a_net_input_and_a_chip_backend_an_rnn_run(net_and_input):
    net, x_path, _ = net_and_input
    with pytest.raises(UserError, match="--input feeds a .net file on lava, loihi2, emulator; not on --backend torch"):
        RunRequest(target=net, backend="torch", input_npy=x_path).validate()
    with pytest.raises(UserError, match="runs the trained float model"):
        registry.chip_backend("torch")
