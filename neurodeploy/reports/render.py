"""Render a run report dict (the JSON, never the records again): Markdown, the rich terminal table and
summary line, and the PNG plots; :func:`write_run_report` writes them all next to ``run_report.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from neurodeploy.atomic import write_json, write_text
from neurodeploy.reports import plots
from neurodeploy.reports.schema import RunReport
from neurodeploy.reports.summary import summary_lines


def _fmt(value: Any) -> str:
    """Readable number: thousands separators for integers, 4 significant digits otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or 1e3 <= abs(value) < 1e15:
            return f"{value:,.0f}"
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e3 else f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


LAYER_COLUMNS = (
    ("name", "layer"), ("type", "type"), ("shape", "shape"), ("neurons", "neurons"), ("params", "params"),
    ("spikes", "spikes / sample"), ("spike_rate", "spike rate (spikes/neuron/step)"),
    ("synops", "synops / sample"), ("neuron_updates", "neuron updates / sample"), ("macs", "MACs / sample"),
    ("energy_j", "dynamic energy / sample (J)"), ("cores", "cores"),
)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _memory_lines(title: str, memory: Mapping[str, Any] | None) -> list[str]:
    if memory is None:
        return [f"**{title}**: not computed", ""]
    widths = ", ".join(f"{k} {v} bit" for k, v in (memory.get("bit_widths") or {}).items())
    lines = [f"**{title}**" + (f" ({widths})" if widths else "")]
    rows = [(key, memory[key], memory[key] / 8 / 1024) for key in ("weights", "state", "spikes", "total")]
    return lines + [""] + _table(("part", "bits", "KiB"), rows)


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f} %"


def _energy_lines(energy: Mapping[str, Any]) -> list[str]:
    summary = (f"Kind: **{energy['kind']}**; profile: {energy['profile'] or '-'}; "
               f"total per sample: {_fmt(energy.get('total_j'))} J")
    lines = ["## Energy", "", summary, ""]
    if energy.get("by_op_j"):
        lines += _table(("op kind", "J / sample"), list(energy["by_op_j"].items()))
    if energy.get("coefficients"):
        lines += _table(("coefficient", "value", "unit", "source", "note"),
                        [(key, c["value"], c["unit"], c["source"], c.get("note", ""))
                         for key, c in energy["coefficients"].items()])
    if energy.get("uncounted"):
        lines += [f"Not counted (no coefficient in the profile): {', '.join(energy['uncounted'])}", ""]
    return lines + [f"- {note}" for note in energy.get("notes") or []] + [""]


def hybrid_summary(hybrid: Mapping[str, Any]) -> list[str]:
    """An RSNN's split in three lines: front end (host), chip, boundary (docs/rsnn.md)."""
    chip_j = None if hybrid["chip_dynamic_j"] is None else hybrid["chip_dynamic_j"] + (hybrid["chip_static_j"] or 0.0)
    return [f"front end on {hybrid['front_end_device']}: {_fmt(hybrid['front_end_macs'])} MACs, "
            f"{_fmt(hybrid['front_end_energy_j'])} J {hybrid['front_end_energy_kind']} per sample",
            f"chip: {_fmt(hybrid['chip_synops'])} synops, {_fmt(hybrid['chip_neuron_updates'])} neuron updates, "
            f"{_fmt(chip_j)} J estimated per sample (static {_fmt(hybrid['chip_static_j'])} J)",
            f"boundary: {_fmt(hybrid['boundary_values'])} values ({_fmt(hybrid['boundary_bytes'])} bytes) -> "
            f"{_fmt(hybrid['boundary_spikes'])} spikes per sample"]


def _hybrid_lines(hybrid: Mapping[str, Any] | None) -> list[str]:
    if not hybrid:
        return []
    return (["## Host / chip split", ""] + [f"- {line}" for line in hybrid_summary(hybrid)]
            + [f"- front-end energy: {hybrid['front_end_energy_source']}", f"- {hybrid['boundary_encoding']}", ""])


def _resource_lines(resources: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Resources", ""]
    if not resources:
        return lines + ["Not mapped (no per-core limits in the profile).", ""]
    summary = (f"Profile {resources['profile']}: {resources['total_cores']} cores, "
               f"{resources['chips']} chip(s), {resources['boards']} board(s); "
               f"fits one chip: {_fmt(resources['fits_one_chip'])}; "
               f"fits one board: {_fmt(resources['fits_one_board'])}.")
    lines += [summary, ""]
    lines += _table(("layer", "cores", "by neurons", "by memory", "by fan-in", "limited by"),
                    [(r["name"], r["cores"], r["cores_by_neurons"], r["cores_by_memory"],
                      r["cores_by_fan_in"], r["limited_by"]) for r in resources["layers"]])
    if resources.get("assumptions"):
        lines += [f"Assumptions: {resources['assumptions']}", ""]
    return lines


def _accuracy_lines(report: Mapping[str, Any]) -> list[str]:
    accuracy = (f"Accuracy: {_percent(report['accuracy'])} ({report['backend']['mode']}, "
                f"{report['data']['source']} data)")
    lines = ["## Accuracy", "", accuracy, ""]
    parity = report.get("parity")
    if parity:
        first = parity["first_divergence"]
        where = "none (identical spikes)"
        if first:
            where = f"layer {first['layer']} at time step {first['timestep']}"
        summary = (f"Parity: float {_percent(parity['float_accuracy'])}, "
                   f"chip {_percent(parity['chip_accuracy'])}; first divergence: {where}")
        if parity.get("prediction_agreement") is not None:
            summary += f"; same predicted class on {_percent(parity['prediction_agreement'])} of the samples"
        lines += [summary, ""]
        lines += _table(("layer", "spike-count agreement"), list(parity["layer_spike_agreement"].items()))
    return lines


def _provenance_lines(report: Mapping[str, Any]) -> list[str]:
    tool = report["tool"]
    tool_line = f"tool: {tool['name']} {tool['version']} (schema {report['schema_version']})"
    lines = ["## Provenance", "", "```", tool_line]
    provenance = report.get("provenance")
    if provenance:
        lines += [f"python: {provenance['python']}", f"timestamp: {provenance['timestamp']}"]
        lines += [f"{name}: {version}" for name, version in provenance["versions"].items()]
    return lines + ["```", ""]


def _made_from(data: Mapping[str, Any]) -> str:
    return f" from {data['synthetic_source']}" if data.get("synthetic_source") else ""


def _latency_label(report: Mapping[str, Any]) -> str:
    """The totals row's label: the latency's kind, device, basis and sample count (never a bare ``latency (s)``)."""
    latency = report.get("latency")
    if not latency or latency.get("kind") == "host_wall":
        return "host wall time (s; simulator throughput, not a latency)"
    if latency["kind"] == "chip_estimate":
        return f"latency (s, chip estimate, {latency.get('device')}, per sample, mean of {latency['samples']})"
    batch = latency.get("batch_size") or 1
    basis = f"batch of {batch} / {batch}" if batch > 1 else "per sample"
    return f"latency (s, measured on {latency.get('device')}, {basis}, {latency['samples']} samples)"


def render_markdown(report: Mapping[str, Any]) -> str:
    """``run_report.md`` from the JSON dict: per-layer table first, then totals, accuracy / parity, energy
    (kind, coefficients and their sources), memory at paper and chip bit widths, resources, provenance."""
    model, data, backend, energy = report["model"], report["data"], report["backend"], report["energy"]
    banner = (f"Mode **{backend['mode']}** (backend {backend['name']}, device {backend['device']}, "
              f"hw config {backend['hw_config'] or '-'}); energy **{energy['kind']}**; "
              f"data **{data['source']}**{_made_from(data)} ({_fmt(data['samples'])} samples, dt {data['dt_ms']} ms, "
              f"{data['steps']} steps). "
              "All layer figures are averages per sample.")
    lines = [f"# Run report: {model['family']} {model['arch']} on {data['dataset']} ({data['split']})", "",
             banner, "", "## Layers", ""]
    lines += _table([title for _, title in LAYER_COLUMNS],
                    [[layer.get(key) for key, _ in LAYER_COLUMNS] for layer in report["layers"]])
    lines += ["## Summary", ""] + [f"- {line}" for line in summary_lines(report)] + [""]
    per = report["per_sample"]
    lines += ["## Totals per sample", ""]
    lines += _table(("quantity", "value"), [
        ("synops", per["synops"]), ("neuron updates", per["neuron_updates"]), ("spikes", per["spikes"]),
        ("MACs", per["macs"]), ("adds", per["adds"]), ("muls", per["muls"]),
        (f"energy (J, {energy['kind']}, dynamic + static)", per["energy_j"]),
        (_latency_label(report), per["latency_s"]),
        ("parameters", model["params"]),
    ])
    lines += _accuracy_lines(report)
    lines += _energy_lines(energy)
    lines += _hybrid_lines(report.get("hybrid"))
    lines += ["## Memory", ""]
    lines += _memory_lines("Paper bit widths (companion paper eq. 8)", report["memory_bits"])
    if backend["mode"] != "float":  # a float run on a CPU or GPU has no chip bit widths
        lines += _memory_lines("Chip bit widths", report.get("memory_bits_chip"))
    lines += _resource_lines(report.get("resources"))
    lines += _provenance_lines(report)
    return "\n".join(lines)


# The terminal table, split in two so that no number is cut at 80 columns: what each layer is, then its
# per-sample activity and cost (short headers, explained by TERMINAL_LEGEND).
TERMINAL_LAYER_TABLES = (
    ("layers", (("name", "layer"), ("type", "type"), ("shape", "shape"), ("neurons", "neurons"),
                ("params", "params"), ("cores", "cores"))),
    ("per sample", (("name", "layer"), ("spikes", "spikes"), ("spike_rate", "rate"), ("synops", "synops"),
                    ("neuron_updates", "updates"), ("macs", "MACs"), ("energy_j", "dyn. J"))),
)
TERMINAL_LEGEND = ("per sample: spikes, synaptic ops, neuron updates, MACs and dynamic energy (J; the total with "
                   "static energy is in the summary below); rate = spikes per neuron per step")


def print_layer_table(report: Mapping[str, Any], console=None) -> None:
    """The per-layer tables of a report dict in the terminal (rich): two narrow tables and a legend, so that
    every number shows whole at 80 columns and wider."""
    console = console or Console()
    backend, energy = report["backend"], report["energy"]
    console.print(f"{report['model']['family']} {report['model']['arch']} - mode {backend['mode']}, energy "
                  f"{energy['kind']}, data {report['data']['source']}", highlight=False)
    for title, columns in TERMINAL_LAYER_TABLES:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
        for key, header in columns:
            table.add_column(header, justify="left" if key in ("name", "type", "shape") else "right",
                             no_wrap=key not in ("name", "type"), overflow="fold")
        for layer in report["layers"]:
            table.add_row(*[_fmt(layer.get(key)) for key, _ in columns])
        console.print(table)
    console.print(TERMINAL_LEGEND, highlight=False)


def write_run_report(report: RunReport, out_dir: Path | str, *,
                     raster: Mapping[str, np.ndarray] | None = None,
                     raster_sample: tuple[int, int, int] | None = None) -> list[Path]:
    """Write ``run_report.json`` (atomic), ``run_report.md`` and the PNG plots; returns the paths written.

    ``raster`` maps layer name -> (neurons, T) spikes of one sample, ``raster_sample`` says which
    (index, label, prediction); it is saved as ``raster.npz`` and plotted as ``raster.png`` (time in ms).
    """
    out_dir = Path(out_dir)
    data = report.to_dict()
    paths = [write_json(out_dir / "run_report.json", data), write_text(out_dir / "run_report.md",
                                                                       render_markdown(data))]
    if any(layer["neurons"] and layer["neuron_updates"] for layer in data["layers"]):  # spiking layers only
        paths.append(plots.plot_spike_rates(data, out_dir / "spike_rate.png"))
    if any(layer.get("energy_by_op_j") for layer in data["layers"]):
        paths.append(plots.plot_energy_breakdown(data, out_dir / "energy_breakdown.png"))
    if raster:
        if raster_sample is None:
            raise ValueError("a raster needs the (index, label, prediction) of its sample")
        index, label, prediction = raster_sample
        dt_ms = float(data["data"]["dt_ms"])
        paths.append(plots.save_raster(raster, out_dir / "raster.npz", sample_index=index, label=label,
                                       prediction=prediction, dt_ms=dt_ms))
        title = f"{_raster_title(data)}\nsample {index}: label {label}, prediction {prediction}"
        paths.append(plots.plot_raster(raster, out_dir / "raster.png", title=title, dt_ms=dt_ms))
    return paths


def _raster_title(report: Mapping[str, Any]) -> str:
    return (f"Spike raster of one sample\n{report['model']['family']} {report['model']['arch']} | "
            f"mode {report['backend']['mode']} | data {report['data']['source']}")


def print_summary(report: dict, console) -> None:
    """The run's answer on the terminal: accuracy with its interval, energy per sample (dynamic + static = total),
    latency with its kind (:func:`neurodeploy.reports.summary.summary_lines`), parity with the float model."""
    backend = report["backend"]
    console.print(f"[bold]{backend['name']}[/bold] ({backend['mode']}, profile {backend['hw_config'] or '-'}):")
    for text in summary_lines(report):
        console.print(f"  {text}", highlight=False)
    parity = report.get("parity")
    if parity:
        console.print(f"  float model {parity['float_accuracy']:.2%} on the same samples; spike trains "
                      + ("identical" if parity["identical"] else f"first differ at layer {parity['first_divergence']}"),
                      highlight=False)
    for text in hybrid_summary(report["hybrid"]) if report.get("hybrid") else ():
        console.print(text, highlight=False)


def publish_report(report: RunReport, out_dir: Path | str, console, *, summary=print_summary,
                   lines: Sequence[str] = (), raster: Mapping[str, np.ndarray] | None = None,
                   raster_sample: tuple[int, int, int] | None = None) -> dict:
    """Write ``report`` (:func:`write_run_report`), print its layer table, ``summary(report_dict, console)``
    and ``lines``, then the files written; returns the report as a dict."""
    paths = write_run_report(report, out_dir, raster=raster, raster_sample=raster_sample)
    data = report.to_dict()
    print_layer_table(data, console)
    summary(data, console)
    for line in lines:
        console.print(line)
    for path in paths:
        console.print(f"wrote {path}")
    console.print(f"report: {Path(out_dir) / 'run_report.md'} (and run_report.json beside it)", highlight=False)
    return data
