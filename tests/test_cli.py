"""One CliRunner test per command: exit codes and what is printed."""

import json

from typer.testing import CliRunner

from neurodeploy.cli import app

runner = CliRunner()


def test_cost_json_has_the_contract_keys():
    result = runner.invoke(app, ["cost", "nmnist_mlp", "--family", "lstm", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"weights", "params", "neurons", "memory_bits", "macs_per_step", "muls_per_step", "adds_per_step",
            "layers"} <= set(data)
    assert data["params"] == 5_792_778  # 4(2312*512 + 512*512 + 2*512) + 512*10 + 10


def test_lint_ok_and_bad():
    assert runner.invoke(app, ["lint", "dvsgesture_cnn", "--input", "128x128x2"]).exit_code == 0
    bad = runner.invoke(app, ["lint", "Input-8C3-MP2-10"])
    assert bad.exit_code == 2 and "max pooling" in bad.output


def test_hw_list_and_show():
    listed = runner.invoke(app, ["hw", "list"])
    assert listed.exit_code == 0 and {"loihi2", "loihi1", "cmos45nm"} <= set(listed.output.split())
    shown = runner.invoke(app, ["hw", "show", "loihi2"])
    assert shown.exit_code == 0 and "Davies" in shown.output
    assert runner.invoke(app, ["hw", "show", "tpu9"]).exit_code == 2


def test_unknown_backend_is_one_line_exit_2(trained_snn_run):
    result = runner.invoke(app, ["run", str(trained_snn_run), "--backend", "gpu"])
    assert result.exit_code == 2 and "unknown --backend 'gpu'" in result.output


def test_export_run_and_compare_through_the_cli(trained_snn_run, tmp_path):
    assert runner.invoke(app, ["export", str(trained_snn_run)]).exit_code == 0
    out = tmp_path / "emu"
    run = runner.invoke(app, ["run", str(trained_snn_run), "--backend", "emulator", "--samples", "6",
                              "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "emulated" in run.output and (out / "run_report.json").exists()
    compared = runner.invoke(app, ["compare", str(out), "--out", str(tmp_path / "cmp")])
    assert compared.exit_code == 0, compared.output
    assert (tmp_path / "cmp" / "comparison.csv").exists() or list((tmp_path / "cmp").glob("*.csv"))


def test_external_input_round_trip(trained_snn_run, tmp_path):
    import numpy as np

    spikes = (np.random.default_rng(1).random((2312, 10)) < 0.05).astype(np.uint8)
    np.save(tmp_path / "x.npy", spikes)
    result = runner.invoke(app, ["run", str(trained_snn_run / "model.net"), "--backend", "emulator", "--input",
                                 str(tmp_path / "x.npy"), "--save-output", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "y.npy").shape == (10, 10)


def test_cost_json_counts_activations_including_pooling_outputs():
    data = json.loads(runner.invoke(app, ["cost", "Input-MP2-4C3-AP2-16FC-10", "--family", "rnn", "--json"]).output)
    # pooling outputs 2x17x17 and 4x8x8 are activations, not neurons; neurons stays as it was
    assert data["activations"] == 578 + 1156 + 256 + 16 + 10
    assert data["neurons"] == 1156 + 16 + 10
    assert [layer["activations"] for layer in data["layers"]] == [578, 1156, 256, 16, 10]


def test_lint_and_cost_take_the_input_size_from_the_model_file_dataset():
    lint = runner.invoke(app, ["lint", "dvsgesture_cnn"], terminal_width=160)
    assert "116 cores" in lint.output and "fits one chip: True" in lint.output  # conv layers in spatial tiles
    cost = json.loads(runner.invoke(app, ["cost", "dvsgesture_cnn", "--json"]).output)
    assert cost["input_shape"] == [2, 128, 128]
    assert json.loads(runner.invoke(app, ["cost", "nmnist_mlp", "--json"]).output)["input_shape"] == [2, 34, 34]


def test_messages_name_the_real_problem_and_a_command_that_works(tmp_path):
    unknown = runner.invoke(app, ["train", "cifar10", "--epochs", "1"])
    assert unknown.exit_code == 2 and "cifar10: unknown dataset; choose one of dvsgesture, mnist, nmnist" in \
        unknown.output
    for family, backend in (("rnn", "torch"), ("snn", "emulator")):
        run = tmp_path / family
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"family": family}))
        result = runner.invoke(app, ["compare", str(run), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and f"--backend {backend}` first" in result.output


def test_help_texts_cite_nothing_outside_the_repo():
    import re

    for command in ([], ["train"], ["run"], ["compare"], ["cost"], ["lint"], ["bench"], ["data", "info"],
                    ["data", "generate"], ["hw", "show"], ["export"]):
        text = runner.invoke(app, [*command, "--help"], terminal_width=200).output
        assert not re.search(r"SPEC|REFERENCE|shared/", text), (command, text)


def test_resume_command_is_the_exact_command():
    from pathlib import Path

    from neurodeploy.cli import resume_command

    assert resume_command(["train", "nmnist", "--out", "runs/a b"], Path("runs/a b")) == \
        "neurodeploy train nmnist --out 'runs/a b' --resume"
    assert resume_command(["train", "nmnist"], Path("runs/nmnist-snn-mlp")) == \
        "neurodeploy train nmnist --resume --out runs/nmnist-snn-mlp"
    assert resume_command(["train", "nmnist", "--resume", "--out=x"], Path("x")).count("--resume") == 1


def test_flags_show_no_value_type_in_help():
    commands = [name for name in (c.name or c.callback.__name__ for c in app.registered_commands)]
    assert "train" in commands and "compare" in commands
    for name in commands:
        result = runner.invoke(app, [name, "--help"], terminal_width=120)
        assert result.exit_code == 0, (name, result.output)
        assert "<bool>" not in result.output, name
    shown = runner.invoke(app, ["train", "--help"], terminal_width=120).output
    assert "<int>" in shown and "--resume" in shown  # options that take a value still show its type
