"""compare's like-for-like warnings (one pair of rows per difference), its device column and the plot labels."""

import dataclasses

import pytest
from rich.console import Console

from neurodeploy.reports.compare import (
    ComparisonRow,
    comparison_markdown,
    comparison_warnings,
    plot_rows,
    print_comparison,
    source_cells,
)
from neurodeploy.reports.like_for_like import energy_device, energy_source, latency_source
from neurodeploy.reports.plots import POINT_MARKERS

CHIP_DEVICE = "Loihi (SANA-FE model)"
CPU = "Intel(R) Xeon(R) CPU @ 2.20GHz (2 threads)"


def chip_row(**changes) -> ComparisonRow:
    """An emulated SNN row priced on loihi2 with static energy and a SANA-FE latency per sample."""
    row = ComparisonRow(
        run="snn", report="snn/run_report.json", family="snn", arch="Input-512FC-10", dataset="nmnist",
        data_source="synthetic", backend="emulator", mode="emulated", device="cpu", accuracy=0.9, params=100,
        memory_bits=1000, synops_per_sample=1e5, macs_per_sample=0.0, energy_j_per_sample=1.6e-4,
        energy_kind="estimated", energy_profile="loihi2", latency_s_per_sample=5e-4, samples=300,
        sample_set="abc", dt_ms=10.0, steps=15, hw_profile="loihi2", accuracy_low=0.86, accuracy_high=0.93,
        latency_kind="chip_estimate", energy_dynamic_j=2e-5, energy_static_j=1.4e-4, latency_device=CHIP_DEVICE,
        latency_samples=16, energy_device="Loihi",
        energy_from=energy_source(kind="estimated", profile="loihi2", mode="emulated", device="cpu",
                                  static_counted=True),
        latency_from=latency_source(kind="chip_estimate", source="SANA-FE ... measured Loihi 1",
                                    device=CHIP_DEVICE, samples=16, batch_size=None))
    return dataclasses.replace(row, **changes)


def keys(*rows) -> list[str]:
    return [warning.key for warning in comparison_warnings(list(rows))]


def test_like_rows_raise_no_warning():
    assert keys(chip_row(), chip_row(run="again")) == []


# one pair of rows per difference: the second row differs from the first in that one respect only
@pytest.mark.parametrize("key,changes", [
    ("sample_sets", {"sample_set": "other"}),
    ("data_sources", {"data_source": "real"}),
    ("timing", {"dt_ms": 5.0}),
    ("static_energy", {"energy_static_j": None}),
    ("energy_kinds", {"energy_kind": "measured", "energy_device": "Loihi"}),
    ("latency_basis", {"latency_batch": 64}),
])
def test_each_difference_warns_once(key, changes):
    assert keys(chip_row(), chip_row(**changes)) == [key]


def test_latency_kinds_and_devices_differ():
    cpu = chip_row(latency_kind="measured", latency_device=CPU, energy_device="CPU")
    assert keys(chip_row(), cpu) == ["latency_kinds", "latency_devices"]


def test_energy_and_latency_from_different_devices_in_one_row():
    """An H100 profile's energy beside a latency measured on a 2-thread CPU (issue 24's LSTM row)."""
    lstm = chip_row(family="lstm", energy_profile="gpu_h100", energy_device="GPU", latency_kind="measured",
                    latency_device=CPU, latency_batch=64, energy_static_j=None, float_priced=True, mode="float")
    found = {w.key: w for w in comparison_warnings([lstm])}
    assert set(found) == {"row_devices", "float_priced"}
    assert "row 1: energy GPU, latency CPU" in found["row_devices"].text
    assert found["row_devices"].rows == (1,)


def test_snn_vs_lstm_warns_for_static_latency_kind_basis_and_devices():
    lstm = chip_row(run="lstm", family="lstm", mode="float", energy_profile="gpu_h100", energy_device="GPU",
                    latency_kind="measured", latency_device=CPU, latency_batch=64, energy_static_j=None,
                    float_priced=True, accuracy=0.97, accuracy_low=0.94, accuracy_high=0.99)
    assert keys(chip_row(), lstm) == ["static_energy", "latency_kinds", "latency_basis", "latency_devices",
                                      "row_devices", "float_priced"]


def test_small_test_set_and_overlapping_intervals():
    small = chip_row(samples=22, sample_set="abc")
    assert keys(small) == ["small_test_set"]
    lstm = chip_row(family="lstm", accuracy=0.91, accuracy_low=0.87, accuracy_high=0.94)
    assert keys(chip_row(), lstm) == ["intervals_overlap"]


def test_sources_name_the_device_profile_and_kind():
    assert energy_source(kind="estimated", profile="gpu_h100", mode="float", device="cpu", static_counted=False) \
        == "float model priced on the NVIDIA H100 SXM5 80 GB profile (TDP estimate; not run on that device)"
    assert energy_source(kind="estimated", profile="loihi2", mode="emulated", device="cpu", static_counted=True) \
        == "Intel Loihi 2 profile, op-count estimate + static power x chip time"
    assert energy_source(kind="measured", profile=None, mode="float", device="NVIDIA H200",
                         static_counted=True) == "NVIDIA H200, measured (NVML board energy)"
    assert latency_source(kind="measured", source="", device=CPU, samples=300, batch_size=64) \
        == f"CPU {CPU}, measured, batch-amortised (batch 64)"
    assert chip_row().latency_from == "chip model SANA-FE (Loihi 1 cal.), per sample, mean of 16"
    assert energy_device(kind="estimated", profile="cmos45nm", device="cpu") == "CMOS model"


def test_device_column_in_markdown_and_terminal():
    rows = [chip_row(), chip_row(run="lstm", family="lstm", mode="float", latency_kind="measured",
                                 latency_device=CPU, latency_batch=64, float_priced=True,
                                 energy_from="float model priced on the 45 nm CMOS profile",
                                 latency_from=f"CPU {CPU}, measured, batch-amortised (batch 64)")]
    markdown = comparison_markdown(rows)
    assert "| # | energy from (device / profile) | latency from (device / kind) |" in markdown
    assert "| 1 | Intel Loihi 2 profile, op-count estimate + static power x chip time | chip model SANA-FE" in markdown
    assert "| 5e+02 µs chip est. |" in markdown or "| 500 µs chip |" in markdown
    assert "500 µs amort" in markdown
    console = Console(record=True, width=100)
    print_comparison(rows, console)
    text = console.export_text()
    assert "where each figure comes from" in text and "warning (static_energy)" not in text
    assert "warning (latency_kinds)" in text and "warning (float_priced)" in text


def test_other_estimate_shown_beside_the_used_one():
    row = chip_row(energy_alt_dynamic_j=3.2e-5)
    assert "SANA-FE dynamic 32 µJ (+60% vs E dyn)" in source_cells(row, 1)[1]


def test_plot_labels_are_unique_and_markers_follow_the_kind():
    rows = [chip_row(), chip_row(),  # the same run twice: still two labels
            chip_row(run="lstm", family="lstm", backend="torch", mode="float", energy_profile="gpu_h100",
                     float_priced=True),
            chip_row(run="lstm", family="lstm", backend="torch", mode="float", energy_profile="cmos45nm",
                     float_priced=True),
            chip_row(run="gpu", family="lstm", backend="torch", mode="float", energy_kind="measured",
                     energy_profile=None, hw_profile="gpu_h100")]
    points, _ = plot_rows(rows)
    labels = [p["label"] for p in points]
    assert len(set(labels)) == len(labels)
    assert labels[2] == "lstm: lstm/torch @ gpu_h100" and labels[3] == "lstm: lstm/torch @ cmos45nm"
    assert [p["point_kind"] for p in points] == ["chip estimate"] * 2 + ["float priced"] * 2 + ["measured"]
    assert len({POINT_MARKERS[p["point_kind"]] for p in points}) == 3
    assert all(p["accuracy_low"] < p["accuracy"] < p["accuracy_high"] for p in points)  # error bars
