"""The public Python API (neurodeploy.api, docs/api.md): every public name, a bad-input case per function
(UserError, never SystemExit), the records' JSON, HTML and figures, and quiet-by-default output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import neurodeploy as nd

STUDY = Path(__file__).resolve().parents[1] / "studies" / "table9.yaml"


@pytest.fixture(scope="module")
def snn_run(tmp_path_factory, tiny_nmnist):
    """A 2312-32-10 SNN trained for 1 epoch through the API and exported to netx."""
    run = nd.train("nmnist", "snn", arch="Input-32FC-10", epochs=1, limit=40, test_limit=20, dt=10, steps=8,
                   batch_size=20, lr=3e-3, seed=1, data_dir=tiny_nmnist, allow_synthetic=False,
                   out=tmp_path_factory.mktemp("api") / "snn")
    run.export()
    return run


@pytest.fixture(scope="module")
def emulator_report(snn_run):
    return snn_run.run("emulator", samples=10)


@pytest.fixture(scope="module")
def rnn_report(trained_rnn_run):
    return nd.open_run(trained_rnn_run).run("torch", samples=10)


def _raises_user_error(call):
    with pytest.raises(nd.UserError) as caught:
        call()
    assert "\n" not in str(caught.value)
    return caught.value


# ---------------------------------------------------------------- the package

def test_import_is_light_and_every_api_name_resolves():
    script = ("import sys, neurodeploy as nd; light = 'torch' not in sys.modules; "
              "names = [getattr(nd, n) for n in nd.API]; "
              "print(light, any(m == 'lava' or m.startswith('lava.') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]  # no torch at `import neurodeploy`, no Lava for the API
    assert set(nd.API) <= set(dir(nd)) and set(nd.API) <= set(nd.__all__)
    with pytest.raises(AttributeError):
        nd.not_a_name  # noqa: B018


def test_every_public_function_has_a_bad_input_case_here():
    """Like NIR's node enumeration: a public function added without a case in BAD_INPUTS fails here."""
    functions = {name for name in nd.API if callable(getattr(nd, name)) and not isinstance(getattr(nd, name), type)}
    assert functions == set(BAD_INPUTS)


BAD_INPUTS = {
    "train": lambda tmp: nd.train("nmnist", model="transformer", out=tmp / "x"),
    "open_run": lambda tmp: nd.open_run(tmp / "missing"),
    "run": lambda tmp: nd.run(tmp, backend="gpu"),
    "export": lambda tmp: nd.export(tmp, format="onnx"),
    "compare": lambda tmp: nd.compare([tmp]),
    "cost": lambda tmp: nd.cost("mlp", family="transformer"),
    "lint": lambda tmp: nd.lint("mlp", input="34x34"),
    "study": lambda tmp: nd.study(tmp / "missing.yaml"),
    "import_nir": lambda tmp: nd.import_nir(tmp / "missing.nir", tmp / "out"),
    "bench": lambda tmp: nd.bench("gpu"),
    "generate_data": lambda tmp: nd.generate_data("cifar", tmp / "data"),
    "dataset_info": lambda tmp: nd.dataset_info("nmnist", dt=-1, out=tmp),
    "hardware_profiles": None,  # takes no input
    "hardware_profile": lambda tmp: nd.hardware_profile("no-such-chip"),
    "demo": lambda tmp: nd.demo(tmp / "a-file"),
    "default_run_dir": None,  # formats a path from any strings
    "backend_choices": None,  # takes no input
    "parse_input_size": lambda tmp: nd.parse_input_size("34x34"),
    "convert": lambda tmp: nd.convert(tmp / "missing"),
}


@pytest.mark.parametrize("name", sorted(n for n, call in BAD_INPUTS.items() if call is not None))
def test_bad_input_raises_user_error_not_system_exit(name, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    error = _raises_user_error(lambda: BAD_INPUTS[name](tmp_path))
    assert isinstance(error, nd.UserError) and not isinstance(error, SystemExit)


def test_option_errors_are_value_errors_and_name_the_choices():
    error = _raises_user_error(lambda: nd.cost("mlp", family="transformer"))
    assert isinstance(error, nd.OptionError) and isinstance(error, ValueError)
    assert "snn" in str(error) and "transformer" in str(error)


# ---------------------------------------------------------------- train, open, export, run

def test_train_returns_the_run_with_its_history(snn_run):
    assert isinstance(snn_run, nd.Run)
    assert (snn_run.family, snn_run.dataset, snn_run.arch) == ("snn", "nmnist", "Input-32FC-10")
    history = snn_run.history()
    assert len(history) == 1 and 0.0 <= history[0]["test_accuracy"] <= 1.0
    assert snn_run.resumable
    reopened = nd.open_run(snn_run.path)
    assert reopened.path == snn_run.path and reopened.family == "snn"


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    error = _raises_user_error(lambda: nd.open_run(tmp_path))
    assert isinstance(error, nd.RunFolderError) and "config.json" in str(error)


def test_export_writes_netx_and_nir_and_refuses_an_unknown_format(snn_run, tmp_path):
    assert (snn_run.path / "model.net").is_file()
    nir_path = snn_run.export("nir", out=tmp_path / "model.nir")
    assert nir_path == tmp_path / "model.nir" and nir_path.stat().st_size > 0
    assert isinstance(_raises_user_error(lambda: snn_run.export("onnx")), nd.OptionError)
    _raises_user_error(lambda: nd.export(tmp_path))  # not a run folder


def test_report_fields_equal_the_json_the_run_wrote(emulator_report):
    report = emulator_report
    written = json.loads(report.path.read_text())
    assert report.path.parent.name == "emulator"
    assert report.to_dict() == written
    assert report.accuracy == written["accuracy"]
    assert [layer.name for layer in report.layers] == [layer["name"] for layer in written["layers"]]
    assert report.layer_rows() == written["layers"]
    assert report.layers[0].spikes == written["layers"][0]["spikes"]
    assert (report.mode, report.data_source, report.backend) == ("emulated", "synthetic", "emulator")
    assert report.energy.kind == "estimated" and report.energy.total_j == written["energy"]["total_j"]
    assert report.parity is not None and report.parity.chip_accuracy == written["parity"]["chip_accuracy"]
    assert report.samples == 10
    assert nd.Report.load(report.path.parent).to_dict() == written


def test_report_renders_the_layer_table_in_html_and_markdown(emulator_report):
    html = emulator_report._repr_html_()
    assert html.startswith("<div>") and "<table>" in html
    for layer in emulator_report.layers:
        assert f"<td>{layer.name}</td>" in html
    assert "emulated" in html and "synthetic" in html and "estimated" in html
    assert "spike rate (spikes/neuron/step)" in html
    markdown = emulator_report._repr_markdown_()
    assert markdown.startswith("# Run report") and "## Layers" in markdown
    assert "emulated" in repr(emulator_report)


def test_report_plots_are_matplotlib_figures(emulator_report):
    from matplotlib.figure import Figure

    for figure in (emulator_report.plot_spike_rates(), emulator_report.plot_energy(),
                   emulator_report.plot_raster()):
        assert isinstance(figure, Figure) and figure.axes
    assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()


def test_run_refuses_a_bad_backend_and_a_non_folder(snn_run, tmp_path):
    assert isinstance(_raises_user_error(lambda: snn_run.run("gpu")), nd.OptionError)
    file = tmp_path / "x.net"
    file.write_text("")
    assert "--input" in str(_raises_user_error(lambda: nd.run(file)))
    _raises_user_error(lambda: snn_run.run("emulator", samples=0))


def test_report_of_a_backend_that_never_ran(snn_run):
    assert isinstance(_raises_user_error(lambda: snn_run.report("loihi2")), nd.RunFolderError)


def test_run_feeds_spikes_to_a_net_file(snn_run, tmp_path):
    inputs = (np.random.default_rng(0).random((2312, 6)) < 0.05).astype(np.uint8)
    np.save(tmp_path / "in.npy", inputs)
    out = nd.run(snn_run.path / "model.net", "emulator", input=tmp_path / "in.npy", save_output=tmp_path / "o.npy")
    assert isinstance(out, np.ndarray) and out.shape == (1, 10, 6)
    assert np.array_equal(np.load(tmp_path / "o.npy"), out[0])
    _raises_user_error(lambda: nd.run(snn_run.path / "model.net", "torch", input=tmp_path / "in.npy"))
    _raises_user_error(lambda: snn_run.run("emulator", input=tmp_path / "in.npy"))


# ---------------------------------------------------------------- compare, cost, lint, import, study

def test_compare_reports_and_runs(emulator_report, rnn_report, trained_rnn_run, tmp_path):
    from matplotlib.figure import Figure

    comparison = nd.compare([emulator_report, nd.open_run(trained_rnn_run)], out=tmp_path)
    assert isinstance(comparison, nd.Comparison)
    assert [row.family for row in comparison.rows] == ["snn", "rnn"]
    assert comparison.rows[0].accuracy == emulator_report.accuracy
    assert {p.name for p in comparison.paths} >= {"comparison.md", "comparison.csv"}
    assert comparison.to_dict()["rows"][1]["mode"] == "float"
    html = comparison._repr_html_()
    assert "<table>" in html and "rnn" in html
    assert comparison._repr_markdown_().startswith("# neurodeploy comparison")
    assert isinstance(comparison.plot_accuracy_vs_energy(), Figure)
    assert isinstance(_raises_user_error(lambda: nd.compare([42])), nd.OptionError)
    _raises_user_error(lambda: nd.compare([]))


def test_cost_and_lint_return_records_quietly(capsys):
    report = nd.cost("Input-64FC-10", family="lstm")
    assert report.family == "lstm" and report.to_dict()["layers"]
    assert nd.lint("Input-64FC-10").ok
    assert capsys.readouterr() == ("", "")


def test_output_prints_what_the_cli_prints():
    buffer = io.StringIO()
    nd.cost("Input-64FC-10", output=nd.Output(Console(file=buffer, width=200), Console(file=io.StringIO())))
    assert "FC" in buffer.getvalue() and "params" in buffer.getvalue().lower()


def test_import_nir_makes_a_run_that_runs(snn_run, tmp_path):
    graph = snn_run.export("nir", out=tmp_path / "g.nir")
    imported = nd.import_nir(graph, tmp_path / "imported", dt=10, input="34x34x2", steps=8)
    assert imported.imported and imported.arch == "nir:g.nir"
    assert nd.open_run(imported.path).imported
    _raises_user_error(lambda: nd.import_nir(graph, tmp_path / "imported2", steps=0))


def test_study_dry_run_plans_without_running(tmp_path):
    result = nd.study(STUDY, dry_run=True, out=tmp_path / "study")
    assert isinstance(result, nd.StudyResult) and result.plan and result.outcome is None
    assert not result.complete and result.rows() == []
    assert result._repr_markdown_().startswith("```")
    assert not (tmp_path / "study").exists()
    _raises_user_error(lambda: nd.study(STUDY, cpus_per_trial=0, out=tmp_path / "s2"))


# ---------------------------------------------------------------- data, hardware, helpers

def test_data_generation_and_info(tmp_path, tiny_nmnist):
    info = nd.dataset_info("nmnist", data_dir=tiny_nmnist, allow_synthetic=False, limit=5, out=tmp_path)
    assert info["samples_used"] == 5 if "samples_used" in info else info
    assert (tmp_path / "nmnist_info.json").is_file()
    _raises_user_error(lambda: nd.generate_data("dvsgesture", tmp_path / "d", source="sklearn-digits"))


def test_hardware_profiles():
    names = nd.hardware_profiles()
    assert "loihi2" in names
    profile = nd.hardware_profile("loihi2")
    assert profile.has("neurons_per_core")


def test_helpers():
    assert nd.default_run_dir("nmnist", "snn", "models/cnn.yaml") == Path("runs/nmnist-snn-cnn")
    assert nd.parse_input_size("34x34x2") == (2, 34, 34) == nd.parse_input_size((34, 34, 2))
    assert isinstance(_raises_user_error(lambda: nd.parse_input_size("0x1x1")), nd.OptionError)
    assert isinstance(nd.LayerReport, type)
