"""Training: metrics, atomic checkpoints, resume equivalence, config validation."""

import json

import pytest
import torch

from neurodeploy.deploy.run_folder import CHECKPOINT, METRICS, load_checkpoint, load_run_config
from neurodeploy.errors import UserError
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.train import train


def _config(data_dir, **overrides):
    settings = dict(dataset="nmnist", family="snn", arch="Input-32FC-10", epochs=2, lr=3e-3, steps=8, dt_ms=10,
                    batch_size=16, limit=60, data_dir=str(data_dir), allow_synthetic=False, seed=5)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_snn_run_directory_holds_config_checkpoint_and_metrics(tiny_nmnist, tmp_path):
    result = train(_config(tiny_nmnist), tmp_path / "run")
    run = result.run_dir
    lines = [json.loads(line) for line in (run / METRICS).read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert all(0 <= m["test_accuracy"] <= 1 and m["loss"] > 0 for m in lines)
    config = load_run_config(run)
    assert config.resolved["data_source"] == "synthetic"
    assert config.resolved["lif_mapping"]["cuba"]["voltage_decay"] == pytest.approx(2867 / 4096)
    assert config.resolved["init"]["calibration_samples"] > 0  # the silent-layer check ran (and is recorded)
    assert isinstance(config.resolved["init"]["woken_layers"], list)
    assert load_checkpoint(run)["epoch"] == 1
    assert not list(run.glob(".*.tmp")), "no temporary files left behind"


def test_resume_gives_the_same_weights_and_metrics_as_an_uninterrupted_run(tiny_nmnist, tmp_path):
    full = train(_config(tiny_nmnist, epochs=3), tmp_path / "full")
    train(_config(tiny_nmnist, epochs=1), tmp_path / "split")
    resumed = train(_config(tiny_nmnist, epochs=3), tmp_path / "split", resume=True)
    assert [m.to_dict() | {"seconds": 0, "peak_rss_bytes": 0} for m in full.metrics] == \
        [m.to_dict() | {"seconds": 0, "peak_rss_bytes": 0} for m in resumed.metrics]
    a = load_checkpoint(tmp_path / "full")["model"]
    b = load_checkpoint(tmp_path / "split")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refuses_to_overwrite_a_trained_run(tiny_nmnist, tmp_path):
    train(_config(tiny_nmnist, epochs=1), tmp_path / "run")
    with pytest.raises(UserError, match="--resume"):
        train(_config(tiny_nmnist, epochs=1), tmp_path / "run")


@pytest.mark.parametrize("overrides, message", [
    (dict(family="gru"), "unknown --model"),
    (dict(loss="last"), "rate-coding"),
    (dict(epochs=0), "--epochs"),
    (dict(dt_ms=-1), "--dt"),
    (dict(arch="Input-32FC-11"), "classes"),
])
def test_bad_configs_are_user_errors(tiny_nmnist, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        train(_config(tiny_nmnist, **overrides), tmp_path / "run")


def test_missing_data_without_synthetic_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--data-dir"):
        train(_config(tmp_path / "nothing-here"), tmp_path / "run")
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_a_window_shorter_than_the_layer_delays_is_refused_before_training():
    """Each SLAYER block passes spikes on one step later, so a 2-layer SNN with T = 2 could never answer (the
    Table XI cell at dt 20 ms trained 6 epochs at exactly chance before this check)."""
    from neurodeploy.models.arch import parse_architecture
    from neurodeploy.models.training import check_family_arch

    arch = parse_architecture("Input-64FC-10")
    with pytest.raises(UserError, match="--steps 2: each of the 2 spiking layers .* at least 3 steps"):
        check_family_arch(TrainConfig(dataset="nmnist", family="snn", steps=2), arch, (2, 34, 34))
    check_family_arch(TrainConfig(dataset="nmnist", family="snn", steps=3), arch, (2, 34, 34))
    check_family_arch(TrainConfig(dataset="nmnist", family="rnn", steps=1), arch, (2, 34, 34))  # no delay


def test_the_output_of_a_two_layer_snn_first_spikes_at_step_two():
    """The delay the check above relies on, measured on the network itself."""
    from neurodeploy.models.arch import parse_architecture
    from neurodeploy.models.snn import LIFMapping, SpikingNetwork

    torch.manual_seed(0)
    network = SpikingNetwork(parse_architecture("Input-8FC-4"), (1, 2, 2), LIFMapping.for_run(dt_ms=1.0))
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.fill_(5.0)  # every neuron fires at its first chance
        out = network(torch.ones(1, 1, 2, 2, 5))
    assert out[..., :2].sum() == 0 and out[..., 2].sum() > 0
