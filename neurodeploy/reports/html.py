"""HTML for notebooks (the Python API's ``_repr_html_``, docs/api.md), rendered from a run report dict or
comparison rows like the Markdown and terminal tables, never recomputing a number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from neurodeploy.reports.compare import COLUMNS, ComparisonRow, comparison_warnings, display_cells
from neurodeploy.reports.render import LAYER_COLUMNS, _fmt, _percent


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(report: Mapping[str, Any]) -> str:
    """A run report as HTML: what ran (mode, energy kind, data source), accuracy and parity, the per-layer
    table (figures per sample) and the energy per sample by op kind."""
    model, data, backend, energy = report["model"], report["data"], report["backend"], report["energy"]
    title = f"Run report: {model['family']} {model['arch']} on {data['dataset']} ({data['split']})"
    banner = (f"mode <b>{escape(backend['mode'])}</b> (backend {escape(backend['name'])}), energy "
              f"<b>{escape(energy['kind'])}</b>, data <b>{escape(data['source'])}</b>; {_fmt(data['samples'])} "
              f"samples, dt {data['dt_ms']} ms, {data['steps']} steps; layer figures are per sample")
    accuracy = f"accuracy {_percent(report['accuracy'])}"
    parity = report.get("parity")
    if parity:
        accuracy += (f"; float model {_percent(parity['float_accuracy'])} on the same samples; spike trains "
                     + ("identical" if parity["identical"] else f"first differ at {parity['first_divergence']}"))
    layers = _table([header for _, header in LAYER_COLUMNS],
                    [[_fmt(layer.get(key)) for key, _ in LAYER_COLUMNS] for layer in report["layers"]])
    total = f"energy per sample: {_fmt(energy.get('total_j'))} J {energy['kind']} (profile {energy['profile'] or '-'})"
    by_op = _table(("op kind", "J / sample"), [(k, _fmt(v)) for k, v in (energy.get("by_op_j") or {}).items()])
    return (f"<div><h4>{escape(title)}</h4><p>{banner}</p><p>{escape(accuracy)}</p>{layers}"
            f"<p>{escape(total)}</p>{by_op if energy.get('by_op_j') else ''}</div>")


def comparison_html(rows: Sequence[ComparisonRow]) -> str:
    """Comparison rows as one HTML table (the terminal's run and cost tables side by side) and one line per
    difference that breaks like for like."""
    warnings = "".join(f"<p><b>{escape(warning.line())}</b></p>" for warning in comparison_warnings(list(rows)))
    table = _table(COLUMNS, [display_cells(row, number) for number, row in enumerate(rows, 1)])
    return f"<div>{warnings}{table}</div>"
