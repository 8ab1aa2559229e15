"""Run reports whose numbers mean the same thing in every row (issue: comparisons a reviewer would accept)."""

import json

import pytest
from rich.console import Console

from neurodeploy.deploy.netx import load_netx
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import static_cost
from neurodeploy.models.arch import parse_architecture
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute

QUIET = Console(file=open("/dev/null", "w"))


def _run(run_dir, backend, out, **kwargs):
    return execute(RunRequest(target=run_dir, backend=backend, samples=6, out=out, **kwargs), console=QUIET,
                   err_console=QUIET)


@pytest.fixture(scope="module")
def snn_reports(trained_snn_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return {backend: _run(trained_snn_run, backend, out / backend) for backend in ("emulator", "torch")}


def test_params_are_trainable_weights_and_biases_in_every_report_and_in_cost(snn_reports, trained_snn_run):
    expected = static_cost(parse_architecture("Input-64FC-10"), (2, 34, 34), "snn").params
    assert expected == 2312 * 64 + 64 * 10
    for report in snn_reports.values():
        assert report["model"]["params"] == expected
        assert sum(layer["params"] for layer in report["layers"]) == expected
    # synapses, a separate figure: on the chip those with a non-zero exported weight (docs/report_schema.md),
    # in the float run every connection (float weights are not zero)
    net = load_netx(trained_snn_run / "model.net")
    nonzero = sum(int((layer.weight != 0).sum()) for layer in net.layers if layer.kind != "input")
    assert snn_reports["emulator"]["model"]["synapses"] == nonzero < 2312 * 64 + 64 * 10
    assert sum(layer["synapses"] for layer in snn_reports["emulator"]["layers"]) == nonzero
    assert snn_reports["torch"]["model"]["synapses"] == 2312 * 64 + 64 * 10


def test_chip_run_latency_is_a_chip_estimate_and_host_wall_is_kept_apart(snn_reports):
    report = snn_reports["emulator"]
    latency, host = report["latency"], report["host_wall"]
    assert latency["kind"] == "chip_estimate" and "SANA-FE" in latency["source"]
    assert 0 < latency["per_sample_s"] < 1e-2 and latency["samples"] == 6
    assert host["kind"] == "host_wall" and host["per_sample_s"] > 0
    assert report["per_sample"]["latency_s"] == latency["per_sample_s"]
    chip = report["chip_model"]
    assert "Loihi 1" in " ".join(chip["notes"])  # loihi2 profile: calibration named
    assert len(chip["latency_per_step_s"]) == report["data"]["steps"]
    assert {layer["name"] for layer in chip["layers"]} and all(
        0 <= layer["neuron_count_agreement"] <= 1 for layer in chip["layers"])
    assert torch_latency_kind(snn_reports) == "measured"


def torch_latency_kind(reports):
    return reports["torch"]["latency"]["kind"]


def test_chip_energy_is_dynamic_plus_static_with_sources_and_counted_updates(snn_reports):
    report = snn_reports["emulator"]
    split = report["energy_split"]
    assert split["static_j"] > 0 and split["dynamic_j"] > 0
    assert split["total_j"] == pytest.approx(split["dynamic_j"] + split["static_j"])
    assert split["total_j"] == pytest.approx(report["per_sample"]["energy_j"])
    assert "chip time" in split["static_source"] and "loihi2" in split["dynamic_source"]
    assert split["static_j"] == pytest.approx(0.232078 * report["latency"]["per_sample_s"])
    notes = " ".join(report["energy"]["notes"])
    assert "upper bound" not in notes and "lower bound" not in notes  # active updates and hops are counted
    assert report["neurobench"]["synaptic_operations"]["effective_acs"] > 0
    assert 0 <= report["neurobench"]["activation_sparsity"] <= 1
    firing = report["firing"]
    assert set(firing) == {layer["name"] for layer in report["layers"]}
    output = firing[report["layers"][-1]["name"]]
    assert len(output["firing_rates"]) == 10 and 0 <= output["dead_fraction"] <= 1
    interval = report["accuracy_interval"]
    assert interval["samples"] == 6 and interval["low"] <= report["accuracy"] <= interval["high"]


def test_float_snn_and_rnn_say_what_they_leave_out(snn_reports, trained_rnn_run, tmp_path):
    torch_split = snn_reports["torch"]["energy_split"]
    assert {"neuron_updates", "spike_routing"} <= set(torch_split["leaves_out"])  # cmos45nm has neither
    rnn = _run(trained_rnn_run, "torch", tmp_path / "rnn")
    assert "nonlinearities (tanh, sigmoid)" in rnn["energy"]["uncounted"]
    assert rnn["latency"]["kind"] == "measured" and "warm-up" in rnn["latency"]["source"]
    assert rnn["data"]["sample_set"] and rnn["model"]["params"] == static_cost(
        parse_architecture("Input-16FC-10"), (2, 34, 34), "rnn").params


def test_no_silent_zero_for_a_profile_without_the_family_op_kinds(trained_rnn_run, tmp_path):
    with pytest.raises(UserError, match="--hw loihi2: the profile has no energy for macs.*--hw cmos45nm"):
        _run(trained_rnn_run, "torch", tmp_path / "rnn", hw="loihi2")
    assert not (tmp_path / "rnn" / "run_report.json").exists()


def test_reports_round_trip(snn_reports, tmp_path):
    from neurodeploy.reports.schema import RunReport

    for report in snn_reports.values():
        assert RunReport.from_dict(json.loads(json.dumps(report))).to_dict() == report


def test_input_on_a_run_folder_uses_its_model_net(trained_snn_run, trained_rnn_run, tmp_path):
    import numpy as np


    net = load_netx(trained_snn_run / "model.net")
    spikes = (np.random.default_rng(0).random((net.num_inputs, 6)) < 0.2).astype(np.uint8)
    np.save(tmp_path / "x.npy", spikes)
    saved = tmp_path / "y.npy"
    output = execute(RunRequest(target=trained_snn_run, backend="emulator", input_npy=tmp_path / "x.npy",
                                save_output=saved), console=QUIET, err_console=QUIET)
    assert np.load(saved).shape == (10, 6) and np.array_equal(np.load(saved), output[0])
    with pytest.raises(UserError, match="model.net: --input runs the run's exported model.*neurodeploy export"):
        execute(RunRequest(target=trained_rnn_run, backend="emulator", input_npy=tmp_path / "x.npy"),
                console=QUIET, err_console=QUIET)
    with pytest.raises(UserError, match="--save-output on .* needs --input"):
        execute(RunRequest(target=trained_snn_run, backend="emulator", save_output=saved), console=QUIET,
                err_console=QUIET)


def test_a_run_trained_on_real_data_is_not_scored_on_synthetic_data(trained_rnn_run, tmp_path):
    import shutil

    run = tmp_path / "real_run"
    shutil.copytree(trained_rnn_run, run)
    config = json.loads((run / "config.json").read_text())
    config["resolved"]["data_source"] = "real"  # as if trained on the real N-MNIST
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="trained on real nmnist.*--score-on-synthetic"):
        _run(run, "torch", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _run(run, "torch", tmp_path / "out", score_on_synthetic=True)["data"]["source"] == "synthetic"


def test_terminal_and_markdown_summary_carry_the_labels(snn_reports, trained_rnn_run, tmp_path):
    """After `run`: accuracy with its interval, total energy = dynamic + static, latency with its kind and the
    report path, on the terminal and with the same labels in run_report.md."""
    from neurodeploy.reports.render import print_summary, render_markdown

    rnn = _run(trained_rnn_run, "torch", tmp_path / "rnn")
    for name, report in (*snn_reports.items(), ("rnn", rnn)):
        console = Console(record=True, width=200)
        print_summary(report, console)
        text = console.export_text()
        assert "accuracy:" in text and "95 % Wilson interval" in text, name
        assert "energy per sample:" in text and " dynamic + " in text, name
        assert "latency per sample:" in text, name
        markdown = render_markdown(report)
        for line in text.splitlines()[1:4]:
            assert line.strip() in markdown, (name, line)  # the same labels in the Markdown
        assert "| latency (s) |" not in markdown and "not counted: \n" not in markdown
        assert not report["energy_split"]["static_source"].rstrip().endswith(":")  # a reason, never empty
    chip = snn_reports["emulator"]
    assert "chip estimate" in latency_text(chip) and "static (static power" in energy_text(chip)
    assert "measured on" in latency_text(rnn) and "batch-amortised" in latency_text(rnn)
    assert "no static (not counted: " in energy_text(snn_reports["torch"])
    assert "Chip bit widths" not in render_markdown(rnn) and "Chip bit widths" in render_markdown(chip)


def latency_text(report):
    from neurodeploy.reports.summary import latency_line

    return latency_line(report)


def energy_text(report):
    from neurodeploy.reports.summary import energy_line

    return energy_line(report)


def test_docs_on_static_energy_match_a_real_report(snn_reports):
    """docs/energy.md says where static energy comes from; a real emulated report must do what it says."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "energy.md"
    text = docs.read_text()
    bullet = text[text.index("- **static**"):].split("\n- ", 1)[0].split("\n\n", 1)[0]
    chip = snn_reports["emulator"]["energy_split"]
    # an emulated run adds static power x the chip time SANA-FE estimates
    assert chip["static_j"] > 0 and "SANA-FE" in chip["static_source"]
    assert "estimated by SANA-FE" in " ".join(bullet.split()), bullet
    assert "only added when a wall time measured on the chip" not in text  # the old, contradicted claim
    # without a static power in the profile (the float run on cmos45nm) static is not counted, with the reason
    float_split = snn_reports["torch"]["energy_split"]
    assert float_split["static_j"] is None and float_split["static_source"].startswith("not counted: ")
    assert len(float_split["static_source"]) > len("not counted: ") + 3
    assert "not counted" in bullet
