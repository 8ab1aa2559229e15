"""Run report records, builders, JSON / Markdown / terminal rendering."""

import json
from dataclasses import replace

import numpy as np
import pytest
from rich.console import Console

from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import layer_fan_out, static_cost
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.models.arch import parse_architecture
from neurodeploy.pipeline.layer_reports import SNNLayerRecord, build_snn_layer_reports, build_static_layer_reports
from neurodeploy.reports import render
from neurodeploy.reports.render import print_layer_table, render_markdown, write_run_report
from neurodeploy.reports.schema import (
    SCHEMA_VERSION,
    BackendInfo,
    DataInfo,
    HybridSplit,
    LayerReport,
    MemoryBits,
    ModelInfo,
    Parity,
    RunReport,
    ToolInfo,
    _Record,
    collect_provenance,
    load_run_report,
)

SPEC_KEYS = {
    "tool": {"name", "version"},
    "model": {"family", "arch", "params"},
    "data": {"dataset", "source", "split", "samples", "dt_ms", "steps"},
    "backend": {"name", "mode", "hw_config", "device"},
    "per_sample": {"synops", "neuron_updates", "spikes", "macs", "adds", "muls", "energy_j", "latency_s"},
    "energy": {"kind", "profile"},
    "memory_bits": {"weights", "state", "spikes", "total"},
}
LAYER_KEYS = {"name", "type", "shape", "neurons", "params", "spikes", "spike_rate", "synops",
              "neuron_updates", "macs", "energy_j", "cores"}


def _records():
    """Input-4FC-2 on 3 inputs, 2 samples, T = 10."""
    arch = parse_architecture("Input-4FC-2")
    fc0 = SNNLayerRecord("fc0", "dense", (4,), 12, layer_fan_out(arch.layers[0], (1, 1, 3)),
                         input_spikes=np.array([[2, 0, 1], [0, 0, 1]]),
                         output_spikes=np.array([[1, 1, 0, 2], [0, 0, 0, 0]]), fan_in=3)
    fc1 = SNNLayerRecord("fc1", "dense", (2,), 8, layer_fan_out(arch.layers[1], (4,)),
                         input_spikes=fc0.output_spikes, output_spikes=np.array([[3, 0], [1, 0]]), fan_in=4)
    return [fc0, fc1]


def _report(**changes):
    profile = load_profile("loihi1")
    build = build_snn_layer_reports(_records(), steps=10, profile=profile)
    cost = static_cost(parse_architecture("Input-4FC-2"), (1, 1, 3), "snn", profile=profile)
    report = RunReport(
        tool=ToolInfo(), model=ModelInfo("snn", "Input-4FC-2", cost.params),
        data=DataInfo("nmnist", "synthetic", "test", 2, 1.0, 10),
        backend=BackendInfo("emulator", "emulated", "loihi1", "cpu"), accuracy=0.5,
        per_sample=build.per_sample(latency_s=0.001), energy=build.energy_info(),
        memory_bits=MemoryBits.of(cost.memory_bits, {"weight": 32, "state": 32, "spike": 1}),
        layers=build.layers, memory_bits_chip=MemoryBits.of(cost.memory_bits_chip),
        parity=Parity(0.55, 0.5, {"fc0": 1.0, "fc1": 0.5}, {"layer": "fc1", "timestep": 3}, identical=False),
        resources=build.resources.to_dict(), provenance=collect_provenance(("numpy",)),
    )
    return replace(report, **changes) if changes else report


def test_snn_builder_by_hand():
    build = build_snn_layer_reports(_records(), steps=10, profile=load_profile("loihi1"))
    fc0, fc1 = build.layers
    assert fc0.synops == pytest.approx(((2 + 1) * 4 + 1 * 4) / 2)  # 8 synops per sample
    assert fc1.synops == pytest.approx((4 * 2 + 0) / 2)  # 4
    assert fc0.spikes == pytest.approx(2.0) and fc1.spikes == pytest.approx(2.0)
    assert fc0.neuron_updates == 40 and fc1.neuron_updates == 20
    assert fc0.spike_rate == pytest.approx(2 / 40) and fc1.spike_rate == pytest.approx(2 / 20)
    pj = 1e-12  # Loihi 1: 23.6 pJ/synop, 81 pJ/update (split unknown: all active), 1.7 pJ/spike
    assert fc0.energy_j == pytest.approx((8 * 23.6 + 40 * 81 + 2 * 1.7) * pj)
    assert fc1.energy_by_op_j["synops"] == pytest.approx(4 * 23.6 * pj)
    assert fc0.cores == fc1.cores == 1
    totals = build.per_sample(latency_s=0.25)
    assert totals.synops == pytest.approx(12) and totals.neuron_updates == 60 and totals.latency_s == 0.25
    assert totals.energy_j == pytest.approx(fc0.energy_j + fc1.energy_j)  # no static: no chip wall time
    assert build.energy.uncounted == ("static",)


def test_snn_builder_active_updates_and_static_energy():
    records = [replace(r, active_neuron_updates=np.array([10, 0])) for r in _records()[:1]]
    build = build_snn_layer_reports(records, steps=10, profile=load_profile("loihi1"), wall_time_s=0.01)
    pj = 1e-12
    assert build.layers[0].energy_by_op_j["neuron_updates"] == pytest.approx((5 * 81 + 35 * 52) * pj)
    assert build.energy.joules["static"] == pytest.approx(0.104 * 0.01)


def test_snn_record_validation():
    fc0 = _records()[0]
    with pytest.raises(ValueError, match="output neurons"):
        replace(fc0, shape=(5,))
    with pytest.raises(ValueError, match="fan_out"):
        replace(fc0, fan_out=np.ones(4))


def test_static_builder_for_recurrent_runs():
    cost = static_cost(parse_architecture("Input-8FC-2"), (1, 1, 4), "rnn")
    build = build_static_layer_reports(cost, steps=5, profile=load_profile("cmos45nm"))
    fc0 = build.layers[0]
    assert fc0.macs == 5 * (4 * 8 + 8 * 8) and fc0.adds == 5 * 8
    assert fc0.energy_j == pytest.approx(5 * (96 * 4.6 + 8 * 0.9) * 1e-12)
    with pytest.raises(ValueError, match="spikes"):
        build_static_layer_reports(static_cost(parse_architecture("Input-2"), (1, 1, 1), "snn"), steps=1)


def test_json_has_the_spec_keys_and_round_trips():
    report = _report()
    data = json.loads(json.dumps(report.to_dict()))
    for section, keys in SPEC_KEYS.items():
        assert keys <= set(data[section]), section
    assert "accuracy" in data and data["schema_version"] == SCHEMA_VERSION
    assert all(LAYER_KEYS <= set(layer) for layer in data["layers"])
    assert {"memory_bits_chip", "parity", "resources", "provenance"} <= set(data)
    assert set(data["provenance"]) == {"versions", "python", "timestamp"}
    again = RunReport.from_dict(data)
    assert again == report
    assert again.to_dict() == data


@pytest.mark.parametrize("path, value, message", [
    (("backend", "mode"), "fast", "mode"),
    (("energy", "kind"), "guessed", "kind"),
    (("data", "source"), "internet", "source"),
    (("model", "family"), "gru", "family"),
    (("accuracy",), 1.5, "accuracy"),
    (("schema_version",), SCHEMA_VERSION + 1, "upgrade neurodeploy"),
    (("memory_bits", "total"), 1, "total"),
])
def test_invalid_reports_are_user_errors(path, value, message):
    data = _report().to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(UserError, match=message):
        RunReport.from_dict(data)


def test_every_record_class_round_trips():
    """Like NIR's node test: every record type in report.py survives to_dict -> JSON -> from_dict."""
    hybrid = HybridSplit("cpu", "estimated", 1e-5, "MACs x cmos45nm", 2e6, 1e-3, 300.0, 2600.0, 1e-7, 5e-6,
                         1024, 1024, 86.0, "count encoding")
    report = replace(_report(), hybrid=hybrid)
    instances = {type(part): part for part in (report.tool, report.model, report.data, report.backend,
                                                report.per_sample, report.energy, report.memory_bits,
                                                report.parity, report.provenance, report.layers[0], report.hybrid)}
    assert set(instances) == set(_Record.__subclasses__())
    for cls, instance in instances.items():
        assert cls.from_dict(json.loads(json.dumps(instance.to_dict()))) == instance
    assert RunReport.from_dict(json.loads(json.dumps(report.to_dict()))).hybrid == hybrid
    assert hybrid.total_j == pytest.approx(1e-5 + 1e-7 + 5e-6)
    with pytest.raises(UserError, match="front_end_energy_kind"):
        HybridSplit.from_dict({**hybrid.to_dict(), "front_end_energy_kind": "guessed"})


def test_missing_and_unknown_keys():
    data = _report().to_dict()
    del data["per_sample"]
    with pytest.raises(UserError, match="missing keys"):
        RunReport.from_dict(data)
    data = _report().to_dict()
    data["layers"][0]["colour"] = "red"
    with pytest.raises(UserError, match=r"layers\[0\]: unknown keys"):
        RunReport.from_dict(data)


def test_measured_energy_only_from_hardware_or_gpu():
    report = _report()
    measured = replace(report.energy, kind="measured")
    with pytest.raises(ValueError, match="estimated"):
        replace(report, energy=measured)
    assert replace(report, energy=measured, backend=replace(report.backend, mode="float"))


def test_parity_validation():
    with pytest.raises(ValueError, match="identical"):
        Parity(0.5, 0.5, {}, {"layer": "fc0", "timestep": 1}, identical=True)
    with pytest.raises(ValueError, match="layer' and 'timestep"):
        Parity(0.5, 0.5, {}, {"layer": "fc0"})


def test_layer_report_validation():
    layer = _report().layers[0]
    with pytest.raises(ValueError, match="spike_rate"):
        replace(layer, spike_rate=1.5)
    with pytest.raises(ValueError, match="synops"):
        replace(layer, synops=-1.0)
    with pytest.raises(ValueError, match="unique"):
        replace(_report(), layers=(layer, layer))
    assert LayerReport.from_dict(layer.to_dict()) == layer


def test_markdown_is_rendered_from_json_with_layer_table_first():
    data = _report().to_dict()
    text = render_markdown(data)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Layers", "## Summary"]
    assert headings.index("## Energy") < headings.index("## Memory") < headings.index("## Provenance")
    for needle in ("emulated", "estimated", "synthetic", "Davies", "Chip bit widths", "Paper bit widths",
                   "layer fc1 at time step 3", "spikes/neuron/step", "numpy"):
        assert needle in text, needle
    # numbers come from the dict: change one there and the Markdown follows
    data["layers"][0]["synops"] = 123456.0
    assert "123,456" in render_markdown(data)


def test_synthetic_source_is_reported_and_older_reports_still_load():
    made_from = _report(data=DataInfo("nmnist", "synthetic", "test", 2, 1.0, 10, synthetic_source="mnist-digits"))
    data = made_from.to_dict()
    assert data["data"]["synthetic_source"] == "mnist-digits"
    assert "data **synthetic** from mnist-digits" in render_markdown(data)
    older = _report().to_dict()
    del older["data"]["synthetic_source"]  # reports written before the field existed
    assert RunReport.from_dict(older).data.synthetic_source is None
    assert "data **synthetic** (" in render_markdown(older)


def test_write_run_report(tmp_path):
    raster = {"fc0": np.random.default_rng(0).random((4, 10)) < 0.2, "fc1": np.zeros((2, 10), bool)}
    paths = write_run_report(_report(), tmp_path / "run", raster=raster, raster_sample=(0, 1, 1))
    names = {p.name for p in paths}
    assert names == {"run_report.json", "run_report.md", "spike_rate.png", "energy_breakdown.png",
                     "raster.npz", "raster.png"}
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    loaded = load_run_report(tmp_path / "run")
    assert loaded.to_dict() == json.loads((tmp_path / "run" / "run_report.json").read_text())
    assert (tmp_path / "run" / "run_report.md").read_text() == render_markdown(loaded.to_dict())
    with np.load(tmp_path / "run" / "raster.npz") as saved:
        assert np.array_equal(saved["fc0"], raster["fc0"])


def test_load_run_report_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read run report"):
        load_run_report(tmp_path)
    (tmp_path / "run_report.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(UserError, match="run_report.json: .*upgrade"):
        load_run_report(tmp_path)


def test_print_layer_table():
    console = Console(record=True, width=250)
    print_layer_table(_report().to_dict(), console)
    out = console.export_text()
    assert "fc0" in out and "fc1" in out and "emulated" in out and "estimated" in out


@pytest.mark.parametrize("width", [80, 120])
def test_layer_table_fits_the_terminal_without_cutting_numbers(width):
    """The demo's magnitudes (a 2312-512-10 MLP: ~750k synops and ~1e-5 J per sample, 5.9 MB of params
    would be wider still) at 80 and 120 columns: every number appears whole, no line is wider."""
    data = _report().to_dict()
    data["model"]["arch"] = "Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11"
    big = {"name": "conv2_long_name", "type": "conv", "shape": [128, 32, 32], "neurons": 131072,
           "params": 73728, "spikes": 93812.5, "spike_rate": 0.011925, "synops": 86213456.0,
           "neuron_updates": 7864320.0, "macs": None, "energy_j": 2.0347e-3, "cores": 369}
    data["layers"] = [*data["layers"], {**data["layers"][0], **big}]
    console = Console(record=True, width=width)
    print_layer_table(data, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    for layer in data["layers"]:
        for key in ("neurons", "params", "spikes", "spike_rate", "synops", "neuron_updates", "energy_j", "cores"):
            assert render._fmt(layer[key]) in text, (key, layer[key])
