"""The demo's parts and what training prints: presets, ETA, closing summary, small test sets (issue 24)."""

from pathlib import Path

import pytest
from rich.console import Console

from neurodeploy.deploy.run_folder import load_run_config
from neurodeploy.models.training import TRAIN_PRESETS, TrainConfig
from neurodeploy.pipeline import demo
from neurodeploy.pipeline.train import preset_settings, small_test_set_warning, train, training_summary


def test_demo_trains_baselines_on_the_snns_data_beside_its_folder():
    assert demo.sibling(Path("runs/demo-snn"), "lstm") == Path("runs/demo-lstm")
    assert demo.sibling(Path("x/mine"), "compare") == Path("x/mine-compare")
    assert set(demo.DEMO_BASELINES) == {"lstm", "rnn"}
    for family, settings in demo.DEMO_BASELINES.items():
        same = {key: value for key, value in settings.items() if key not in ("family", "epochs")}
        assert same == {key: value for key, value in demo.DEMO_TRAINING.items() if key not in ("family", "epochs")}
        assert settings["family"] == family
    assert (demo.DEMO_TRAINING["epochs"], demo.DEMO_TRAINING["lr"]) == tuple(TRAIN_PRESETS["fast"].values())


def test_presets_and_a_resumed_run_keeps_its_epochs(trained_snn_run):
    assert preset_settings("fast", None, None) == (8, 1e-3)
    assert preset_settings("paper", None, None) == (100, 1e-4)
    assert preset_settings("paper", 3, 5e-3) == (3, 5e-3)  # explicit options win
    assert preset_settings("fast", None, None, trained_snn_run)[0] == load_run_config(trained_snn_run).epochs


def test_small_test_sets_are_warned_about():
    warning = small_test_set_warning(22)
    assert "only 22 test samples" in warning and "points" in warning
    assert small_test_set_warning(300) is None


def test_training_prints_an_eta_and_a_closing_summary(tiny_nmnist, tmp_path):
    config = TrainConfig(dataset="nmnist", family="snn", arch="Input-32FC-10", epochs=2, lr=3e-3, steps=8, dt_ms=10,
                         batch_size=16, limit=60, test_limit=20, data_dir=str(tiny_nmnist), allow_synthetic=False,
                         seed=5)
    console = Console(record=True, width=300)
    result = train(config, tmp_path / "run", console=console)
    text = console.export_text()
    assert "only 20 test samples" in text
    assert "epoch   1/2" in text and "ETA " in text
    best = max(result.metrics, key=lambda m: m.test_accuracy)
    assert (f"training done: final test accuracy {result.metrics[-1].test_accuracy:.2%} (epoch 2), best "
            f"{best.test_accuracy:.2%} (epoch {best.epoch}), on 20 test samples") in text
    assert f"{tmp_path / 'run' / 'checkpoint.pt'} holds the weights after the last epoch (2)" in text


def test_training_summary_names_a_best_epoch_that_is_not_kept():
    from neurodeploy.models.training import EpochMetrics

    metrics = [EpochMetrics(1, 1.0, 0.5, 0.8, 1.0, 0), EpochMetrics(2, 0.9, 0.6, 0.7, 1.0, 0)]
    lines = training_summary(metrics, 75.0, Path("r"), 300)
    assert "final test accuracy 70.00% (epoch 2), best 80.00% (epoch 1)" in lines[0]
    assert "wall time 1 min 15 s" in lines[0]
    assert "best test epoch (1) is not kept separately" in lines[1]


@pytest.mark.slow
def test_the_demo_runs_end_to_end_and_prints_the_comparison(tiny_nmnist, tmp_path, monkeypatch):
    """The demo's chain on tiny data: SNN -> export -> Lava and emulator; LSTM and RNN; compare's table and plot."""
    small = dict(dataset="nmnist", arch="Input-32FC-10", lr=3e-3, seed=0, steps=8, dt_ms=10, batch_size=16,
                 limit=60, data_dir=str(tiny_nmnist), allow_synthetic=False)
    monkeypatch.setattr(demo, "DEMO_TRAINING", dict(small, family="snn", epochs=1))
    monkeypatch.setattr(demo, "DEMO_BASELINES", {f: dict(small, family=f, epochs=1) for f in ("lstm", "rnn")})
    monkeypatch.setattr(demo, "DEMO_RUN_SAMPLES", 4)
    console = Console(record=True, width=160)
    paths = demo.run_demo(tmp_path / "demo-snn", fresh=False, console=console, err_console=console)
    text = console.export_text()
    assert [p.name for p in paths] == ["comparison.md", "comparison.csv", "accuracy_vs_energy.png"]
    assert paths[0].parent == tmp_path / "demo-compare"
    for needle in ("where each figure comes from", "E total", "chip model SANA-FE", "measured",
                   "warning (latency_kinds)", "demo-lstm", "demo-rnn", "reports/lava", "reports/emulator"):
        assert needle in text, needle
