"""The answer of a run in a few labelled lines, shared by the terminal and ``run_report.md``: accuracy with its
interval, energy per sample as dynamic + static = total with what it leaves out, latency with its kind, and the
other estimate beside the one the tables use where they differ by more than 25 % (docs/report_schema.md).

Rendered from the report's JSON dict; nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OTHER_ESTIMATE_GAP = 0.25  # show the other estimate when the two differ by more than this


def si(value: float | None, unit: str) -> str:
    """``value`` with an SI prefix and 3 significant digits; "-" for None."""
    if value is None:
        return "-"
    for factor, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def accuracy_line(report: Mapping[str, Any]) -> str:
    data, backend = report["data"], report["backend"]
    where = f"{data['samples']:,} {data['source']} {data['dataset']} {data['split']} samples, {backend['mode']}"
    if report.get("accuracy") is None:
        return f"accuracy: - (no labels; {where})"
    interval = report.get("accuracy_interval")
    bounds = (f" [{100 * interval['low']:.1f}-{100 * interval['high']:.1f} %, 95 % Wilson interval]"
              if interval else "")
    return f"accuracy: {100 * report['accuracy']:.1f} %{bounds} on {where}"


def energy_line(report: Mapping[str, Any]) -> str:
    """Total per sample = dynamic + static, with its kind, where static comes from and what the total leaves out."""
    energy, split = report["energy"], report.get("energy_split")
    total = report["per_sample"].get("energy_j")
    if total is None:
        notes = "; ".join(energy.get("notes") or ()) or "no hardware profile"
        return f"energy per sample: not estimated ({notes})"
    profile = f", profile {energy['profile']}" if energy.get("profile") else ""
    line = f"energy per sample: {si(total, 'J')} {energy['kind']}{profile}"
    if split:
        static = split.get("static_j")
        line += (f" = {si(split['dynamic_j'], 'J')} dynamic + "
                 + (f"{si(static, 'J')} static ({split['static_source']})" if static is not None
                    else f"no static ({split['static_source'] or 'not counted'})"))
        leaves = split.get("leaves_out") or energy.get("uncounted") or ()
    else:
        leaves = energy.get("uncounted") or ()
    return line + (f"; leaves out: {', '.join(leaves)}" if leaves else "")


def latency_line(report: Mapping[str, Any]) -> str:
    """Latency per sample with its kind, device and basis; a simulator's host time labelled as throughput."""
    latency, host = report.get("latency"), report.get("host_wall")
    if latency is None or latency.get("kind") == "host_wall":
        old = report["per_sample"].get("latency_s")
        return "latency: - (no latency record)" if old is None else f"host wall time per sample: {si(old, 's')}"
    if latency.get("per_sample_s") is None:
        line = f"latency per sample: - ({latency['kind']}: {'; '.join(latency.get('notes') or ()) or 'not given'})"
    elif latency["kind"] == "chip_estimate":
        calibration = ", Loihi 1 calibration" if "Loihi 1" in latency.get("source", "") else ""
        line = (f"latency per sample: {si(latency['per_sample_s'], 's')}, chip estimate ({latency.get('device')}"
                f"{calibration}; mean of {latency['samples']} samples)")
    else:
        batch = latency.get("batch_size") or 1
        basis = f"batch-amortised: a batch's time / {batch}" if batch > 1 else "per sample"
        line = (f"latency per sample: {si(latency['per_sample_s'], 's')}, measured on {latency.get('device')} "
                f"({basis}; {latency['samples']} samples)")
    if host and host.get("per_sample_s") is not None:
        line += f"; host wall time {si(host['per_sample_s'], 's')} per sample (simulator throughput, not a latency)"
    return line


def other_estimate_lines(report: Mapping[str, Any]) -> list[str]:
    """Where a report holds two figures for one quantity: which the tables use, and the other beside it when
    they differ by more than 25 % (dynamic energy, cores), and how synops and NeuroBench's ACs are counted."""
    lines = []
    chip, split = report.get("chip_model") or {}, report.get("energy_split") or {}
    sanafe = (chip.get("dynamic_energy_j") or {}).get("total")
    used = split.get("dynamic_j")
    if sanafe and used and abs(sanafe - used) > OTHER_ESTIMATE_GAP * used:
        lines.append(f"dynamic energy: the tables use {si(used, 'J')} ({split.get('dynamic_source')}); SANA-FE's own "
                     f"per-event costs give {si(sanafe, 'J')} ({sanafe / used - 1:+.0%})")
    resources = report.get("resources") or {}
    if chip.get("cores") is not None and resources.get("total_cores") not in (None, chip["cores"]):
        lines.append(f"cores: {resources['total_cores']} (resource map of profile {resources.get('profile')}, used in "
                     f"the tables); the chip model placed the network on {chip['cores']}")
    acs = ((report.get("neurobench") or {}).get("synaptic_operations") or {}).get("effective_acs")
    synops = report["per_sample"].get("synops")
    if acs and synops and abs(acs - synops) > 0.01 * synops:
        lines.append(f"synops {synops:,.0f} per sample = input spikes x fan-out over every stored synapse; "
                     f"NeuroBench's effective ACs {acs:,.0f} count only non-zero weights")
    return lines


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The run's answer: accuracy, energy, latency and, where two figures exist, which one is used."""
    return [accuracy_line(report), energy_line(report), latency_line(report), *other_estimate_lines(report)]
