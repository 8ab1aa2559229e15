"""The ``bench --workload pilotnet`` table: our chip estimates per frame beside Intel's measured figures."""

from __future__ import annotations

from typing import Any

from rich.table import Table

ROWS = (
    ("frames/s", "frames_per_s", 1.0, "{:.1f}"),
    ("time per frame (ms)", "time_per_frame_s", 1e3, "{:.3f}"),
    ("dynamic energy per frame (mJ)", "dynamic_energy_j", 1e3, "{:.3f}"),
    ("static power (W)", "static_power_w", 1.0, "{:.3f}"),
    ("static energy per frame (mJ)", "static_energy_j", 1e3, "{:.3f}"),
    ("total energy per frame (mJ)", "total_energy_j", 1e3, "{:.3f}"),
)


def _cell(value, scale: float, fmt: str) -> str:
    return "-" if value is None else fmt.format(value * scale)


def _ratio(estimate: dict[str, Any], intel: dict[str, Any], key: str) -> str:
    if estimate.get(key) is None or not intel.get(key):
        return "-"
    return f"{estimate[key] / intel[key]:.2f}x"


def print_pilotnet(result: dict[str, Any], console) -> None:
    """One row per figure: Intel (measured, with its spread), SANA-FE, op-count and analytic-time estimates with
    ratios."""
    intel = dict(result["intel"])
    intel["static_energy_j"] = intel["static_power_w"] * intel["time_per_frame_s"]
    spread = intel["spread"]
    sana, ops, analytic = (result["estimates"][key] for key in ("sana_fe", "op_count", "analytic"))
    table = Table(title="PilotNet LIF per frame: Loihi 2 measured (Intel) vs our estimates")
    for column in ("figure", "Intel (measured)", "spread", "SANA-FE (est.)", "ratio", "op count (est.)", "ratio",
                   "analytic time (est.)", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for label, key, scale, fmt in ROWS:
        span = spread.get(key)
        span_text = "-" if span is None else f"{fmt.format(span[0] * scale)}-{fmt.format(span[1] * scale)}"
        table.add_row(label, _cell(intel.get(key), scale, fmt), span_text, _cell(sana.get(key), scale, fmt),
                      _ratio(sana, intel, key), _cell(ops.get(key), scale, fmt), _ratio(ops, intel, key),
                      _cell(analytic.get(key), scale, fmt), _ratio(analytic, intel, key))
    console.print(table)
    console.print(f"Intel: {intel['source']}")
    console.print(f"SANA-FE: {sana['source']}")
    console.print(f"op count: {ops['source']}")
    console.print(f"analytic time: {analytic['source']}")
    console.print(f"static power: {result['static_power']}; pacing: {result['pacing']['rule']}")
    console.print(f"targets (SANA-FE): {result['estimates']['sana_fe']['targets']}")
    console.print(f"network: {result['network']}; one frame = {result['frame']['steps']} steps, 1 image")
