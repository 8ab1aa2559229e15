import csv
import json

import pytest

from neurodeploy.errors import UserError
from neurodeploy.reports.compare import (
    ComparisonRow,
    comparison_markdown,
    energy_cell,
    load_comparison_rows,
    print_comparison,
    write_comparison,
)


def report(family="snn", backend="loihi2", mode="emulated", energy_j=1.5e-6, kind="estimated", **overrides):
    """A run report with the SPEC 5.3 keys, as ``run_report.json`` holds it."""
    data = {
        "schema_version": 1,
        "tool": {"name": "neurodeploy", "version": "0.1.0"},
        "model": {"family": family, "arch": "Input-512FC-10", "params": 1_188_864},
        "data": {"dataset": "nmnist", "source": "synthetic", "split": "test", "samples": 100, "dt_ms": 10,
                 "steps": 15},
        "backend": {"name": backend, "mode": mode, "hw_config": "loihi2", "device": "cpu"},
        "accuracy": 0.9712,
        "per_sample": {"synops": 123_456.0 if family == "snn" else 0.0, "neuron_updates": 7830,
                       "spikes": 800, "macs": 0.0 if family == "snn" else 21_765_120.0, "adds": 0, "muls": 0,
                       "energy_j": energy_j, "latency_s": 2.5e-3},
        "energy": {"kind": kind, "profile": "loihi1" if kind == "estimated" else None},
        "memory_bits": {"weights": 38_000_000, "state": 45_000, "spikes": 696, "total": 38_045_696},
        "layers": [],
    }
    for dotted, value in overrides.items():
        *path, key = dotted.split("__")
        target = data
        for part in path:
            target = target[part]
        target[key] = value
    return data


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.fixture
def runs(tmp_path):
    snn = tmp_path / "snn_run"
    write(snn / "reports" / "emulator" / "run_report.json", report(backend="emulator"))
    write(snn / "reports" / "lava" / "run_report.json", report(backend="lava", mode="simulated"))
    lstm = tmp_path / "lstm_run"
    write(lstm / "run_report.json", report(family="lstm", backend="torch", mode="float", energy_j=4e-4,
                                           kind="measured", backend__device="cuda:0"))
    rnn_file = write(tmp_path / "elsewhere" / "rnn.json",
                     report(family="rnn", backend="torch", mode="float", energy_j=None))
    return tmp_path, [snn, lstm, rnn_file]


def test_rows_from_run_dirs_and_files(runs):
    _, paths = runs
    rows = load_comparison_rows(paths)
    assert [(r.run, r.family, r.backend, r.mode) for r in rows] == [
        ("snn_run/reports/emulator", "snn", "emulator", "emulated"),
        ("snn_run/reports/lava", "snn", "lava", "simulated"),
        ("lstm_run", "lstm", "torch", "float"),
        ("elsewhere", "rnn", "torch", "float"),
    ]
    snn, _, lstm, rnn = rows
    assert snn.ops == ((123_456.0, "synops"),) and lstm.ops == ((21_765_120.0, "MACs"),)
    assert (lstm.energy_j_per_sample, lstm.energy_kind) == (4e-4, "measured")
    assert lstm.device == "cuda:0" and snn.params == 1_188_864 and snn.memory_bits == 38_045_696
    assert (rnn.energy_j_per_sample, rnn.energy_kind) == (None, None)
    assert snn.accuracy == 0.9712 and snn.data_source == "synthetic"
    # an old emulated report's latency_s was the host's wall time: kept, never shown as a latency
    assert snn.latency_s_per_sample is None and snn.host_wall_s_per_sample == 2.5e-3
    assert (lstm.latency_s_per_sample, lstm.latency_kind) == (2.5e-3, "measured")
    assert snn.accuracy_low < 0.9712 < snn.accuracy_high and snn.samples == 100


def test_same_report_twice_is_one_row(runs):
    _, paths = runs
    assert len(load_comparison_rows([paths[1], paths[1] / "run_report.json"])) == 1


def test_energy_always_carries_its_kind(runs):
    rows = load_comparison_rows(runs[1])
    assert energy_cell(rows[0]) == "1.5 µJ (estimated, loihi1)"
    assert energy_cell(rows[2]) == "400 µJ (measured)"
    assert energy_cell(rows[3]) == "—"
    markdown = comparison_markdown(rows)
    assert "| 3 | lstm_run | lstm | float | loihi2 | synthetic | 100 | 1,188,864 | 97.1% [92-99] |" in markdown
    assert "| 3 | 2.18e+07 MACs | — | — | 400 µJ | meas. | 2.5 ms meas |" in markdown
    assert "| 1 | 123,456 synops | — | — | 1.5 µJ | est. loihi1 | — |" in markdown


def test_write_comparison(runs, tmp_path):
    rows = load_comparison_rows(runs[1])
    paths = write_comparison(rows, tmp_path / "out")
    assert [p.name for p in paths] == ["comparison.md", "comparison.csv", "accuracy_vs_energy.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(paths[1], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4
    header = list(table[0])
    assert header.index("energy_kind") == header.index("energy_j_per_sample") + 1
    assert (table[2]["energy_j_per_sample"], table[2]["energy_kind"]) == ("0.0004", "measured")
    assert (table[3]["energy_j_per_sample"], table[3]["energy_kind"]) == ("", "")
    assert header == list(ComparisonRow.__dataclass_fields__)
    assert (table[0]["synops_per_sample"], table[0]["macs_per_sample"]) == ("123456.0", "0.0")


def test_no_plot_without_energy(runs, tmp_path):
    rows = load_comparison_rows([runs[1][2]])
    assert [p.name for p in write_comparison(rows, tmp_path / "out")] == ["comparison.md", "comparison.csv"]


def test_rich_table(runs):
    from rich.console import Console

    console = Console(record=True, width=300)
    print_comparison(load_comparison_rows(runs[1]), console)
    assert "meas." in console.export_text()


@pytest.mark.parametrize("content,message", [
    ("{not json", "cannot read"),
    ([1, 2], "JSON object"),
    (report(family=None), "family"),
    ({"schema_version": 1, "model": {"family": "snn"}}, "missing keys"),
    (report(backend__mode="measured-ish"), "mode"),
    (report(kind=None), "kind"),
    (report(kind="guessed"), "kind"),
    (report(kind="measured"), "measured"),  # an emulated run cannot have measured energy
    (report(accuracy=97.1), "accuracy"),
    (report(per_sample__latency_s="fast"), "latency_s"),
    (report(model__params=True), "params"),
])
def test_bad_reports_name_the_file(tmp_path, content, message):
    path = write(tmp_path / "run" / "run_report.json", content)
    with pytest.raises(UserError, match=message) as error:
        load_comparison_rows([path.parent])
    assert str(path) in str(error.value)


def test_missing_paths(tmp_path):
    with pytest.raises(UserError, match="no such run"):
        load_comparison_rows([tmp_path / "absent"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no run_report.json"):
        load_comparison_rows([tmp_path / "empty"])
    with pytest.raises(UserError, match="nothing to compare"):
        load_comparison_rows([])


def _like_for_like(tmp_path, **overrides):
    full = report(backend="emulator", **overrides)
    full["latency"] = {"kind": "chip_estimate", "per_sample_s": 1.2e-5, "per_step_s": 8e-7, "source": "SANA-FE",
                       "samples": 16, "device": "Loihi (SANA-FE model)", "notes": []}
    full["host_wall"] = {"kind": "host_wall", "per_sample_s": 0.8, "source": "host", "samples": 100}
    full["energy_split"] = {"kind": "estimated", "dynamic_j": 1.0e-6, "static_j": 0.5e-6, "total_j": 1.5e-6,
                            "dynamic_source": "op counts x loihi2", "static_source": "static power x chip time",
                            "leaves_out": ["barrier synchronisation"]}
    full["accuracy_interval"] = {"correct": 97, "samples": 100, "low": 0.915, "high": 0.99}
    return write(tmp_path / "chip" / "run_report.json", full)


def test_rows_show_kinds_intervals_and_energy_split(runs, tmp_path):
    rows = load_comparison_rows([_like_for_like(tmp_path), runs[1][1]])
    chip = rows[0]
    assert (chip.latency_s_per_sample, chip.latency_kind, chip.host_wall_s_per_sample) == (1.2e-5, "chip_estimate",
                                                                                           0.8)
    assert (chip.energy_dynamic_j, chip.energy_static_j, chip.accuracy_low) == (1.0e-6, 0.5e-6, 0.915)
    markdown = comparison_markdown(rows)
    assert "| 1 | 123,456 synops | 1 µJ | 500 nJ | 1.5 µJ | est. loihi1 | 12 µs chip |" in markdown
    assert "800 ms" not in markdown  # the host's wall time is never a latency
    assert "- 1 chip: energy leaves out barrier synchronisation" in markdown
    for key in ("sample_sets", "data_sources", "timing"):  # same sample set, source and dt/T
        assert f"warning ({key})" not in markdown
    assert "warning (energy_kinds)" in markdown  # an estimate beside a measured energy


def test_one_warning_line_when_rows_differ(tmp_path):
    a = write(tmp_path / "a" / "run_report.json", report(data__sample_set="aaaa"))
    b = write(tmp_path / "b" / "run_report.json", report(data__sample_set="bbbb", data__source="real",
                                                         data__dt_ms=5))
    markdown = comparison_markdown(load_comparison_rows([a, b]))
    warnings = [line for line in markdown.splitlines() if "warning" in line]
    assert len(warnings) == 3  # one line per difference, each in words
    assert ["sample sets" in warnings[0], "data sources" in warnings[1], "dt/T" in warnings[2]] == [True] * 3


def test_points_left_out_of_the_plot_are_listed_with_the_reason(runs, tmp_path):
    rows = load_comparison_rows(runs[1])
    paths = write_comparison(rows, tmp_path / "out")
    markdown = paths[0].read_text()
    assert "Left out of accuracy_vs_energy.png:" in markdown
    assert "- elsewhere: no energy figure" in markdown


@pytest.mark.parametrize("width", [80, 120])
def test_tables_fit_the_terminal_without_cutting_numbers(runs, tmp_path, width):
    from rich.console import Console

    rows = load_comparison_rows([_like_for_like(tmp_path), *runs[1]])
    console = Console(record=True, width=width)
    print_comparison(rows, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    for cell in ("1,188,864", "123,456 synops", "2.18e+07 MACs", "97.1% [92-99]", "12 µs chip", "1.5 µJ",
                 "500 nJ", "est. loihi1"):
        assert cell in text, cell
