"""PNG plots of run reports, rendered from the report's JSON dict (never recomputed).

Each ``*_figure`` function returns a matplotlib ``Figure`` made without pyplot (no backend is chosen or
changed, so a notebook shows it inline); each ``plot_*`` function saves one as a PNG. matplotlib is imported
inside the functions, so the package imports without it.
Every axis names its unit and every title says the energy kind (estimated / measured) and the mode.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.atomic import atomic_path
from neurodeploy.errors import UserError

MAX_RASTER_ROWS = 1024  # rows drawn per layer; larger layers group k neurons per row
OP_COLORS = {"synops": "#1f77b4", "neuron_updates": "#ff7f0e", "spike_routing": "#2ca02c", "macs": "#d62728",
             "adds": "#9467bd", "muls": "#8c564b", "static": "#7f7f7f"}


def _pyplot():
    # plotting only when a plot is written: matplotlib is slow to import and needs a headless backend
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UserError("plots need matplotlib; install it with `pip install 'matplotlib>=3.5'`") from exc
    return plt


def new_figure(**kwargs):
    """A matplotlib ``Figure`` outside pyplot's figure list (never shown twice, freed when dropped)."""
    # plotting only when a figure is made: matplotlib is slow to import
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise UserError("plots need matplotlib; install it with `pip install 'matplotlib>=3.5'`") from exc
    return Figure(**kwargs)


def _subplots(*grid: int, **kwargs):
    """``plt.subplots`` without pyplot: (figure, axes)."""
    figure_keys = ("figsize", "layout")
    fig = new_figure(**{k: kwargs.pop(k) for k in figure_keys if k in kwargs})
    return fig, fig.subplots(*grid, **kwargs)


def _save(fig, path: Path | str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # a figure made with pyplot stays in its list until closed
        pyplot.close(fig)
    return path


def _energy_unit(max_joules: float) -> tuple[float, str]:
    """Scale and unit label that keep linear-axis tick labels short (J, mJ, uJ, nJ, pJ)."""
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "\u00b5J"), (1e-9, "nJ")):
        if max_joules >= scale:
            return scale, unit
    return 1e-12, "pJ"


def _subtitle(report: Mapping[str, Any]) -> str:
    return (f"{report['model']['family']} {report['model']['arch']} | mode {report['backend']['mode']} | "
            f"energy {report['energy']['kind']} | data {report['data']['source']}")


def plot_spike_rates(report: Mapping[str, Any], path: Path | str) -> Path:
    """Save :func:`spike_rate_figure` as a PNG."""
    return _save(spike_rate_figure(report), path)


def spike_rate_figure(report: Mapping[str, Any]):
    """Bar chart of each layer's spike rate (spikes / neuron / step)."""
    layers = report["layers"]
    names = [layer["name"] for layer in layers]
    rates = [layer["spike_rate"] for layer in layers]
    fig, ax = _subplots(figsize=(max(5.0, 0.8 * len(names) + 2), 3.8))
    bars = ax.bar(names, rates, color="#1f77b4")
    ax.bar_label(bars, labels=[f"{r:.3g}" for r in rates], fontsize=8, padding=2)
    ax.set_ylabel("spike rate (spikes / neuron / step)")
    ax.set_xlabel("layer")
    ax.set_ylim(0, max(rates + [1e-3]) * 1.2)
    ax.set_title(f"Per-layer spike rate, mean over samples\n{_subtitle(report)}", fontsize=10)
    ax.tick_params(axis="x", rotation=30 if len(names) > 6 else 0)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_energy_breakdown(report: Mapping[str, Any], path: Path | str) -> Path:
    """Save :func:`energy_breakdown_figure` as a PNG."""
    return _save(energy_breakdown_figure(report), path)


def energy_breakdown_figure(report: Mapping[str, Any]):
    """Energy per sample by layer and op kind (left) and network total by op kind (right).

    The left panel stacks op kinds when the layers' energies are within a factor 100 of each other; beyond
    that it switches to a log axis with the op kinds side by side (stacked bars on a log axis mislead).
    """
    layers = report["layers"]
    energy = report["energy"]
    kinds = [k for k in OP_COLORS if any(layer.get("energy_by_op_j", {}).get(k) for layer in layers)]
    names = [layer["name"] for layer in layers]
    by_kind = {k: np.array([layer.get("energy_by_op_j", {}).get(k, 0.0) for layer in layers]) for k in kinds}
    values = np.concatenate([v[v > 0] for v in by_kind.values()]) if kinds else np.zeros(0)
    log_layers = values.size > 0 and values.max() / values.min() > 100
    fig, (ax_layers, ax_ops) = _subplots(
        1, 2, figsize=(max(9.0, 0.9 * len(names) + 6), 4.6), layout="constrained",
        gridspec_kw={"width_ratios": [max(2, len(names)), 3]})
    x = np.arange(len(names))
    width = 0.8 / max(1, len(kinds))
    stacked = sum(by_kind.values()) if kinds else np.zeros(len(names))
    scale, unit = (1.0, "J") if log_layers else _energy_unit(float(np.max(stacked, initial=0.0)))
    bottom = np.zeros(len(names))
    for offset, kind in enumerate(kinds):
        label = kind.replace("_", " ")
        if log_layers:
            heights = np.where(by_kind[kind] > 0, by_kind[kind], np.nan)  # log axis: no zero-height bars
            ax_layers.bar(x - 0.4 + width * (offset + 0.5), heights, width, label=label,
                          color=OP_COLORS[kind])
        else:
            ax_layers.bar(x, by_kind[kind] / scale, 0.7, bottom=bottom, label=label, color=OP_COLORS[kind])
            bottom += by_kind[kind] / scale
    if log_layers:  # headroom above the tallest bar for the legend
        ax_layers.set_yscale("log")
        ax_layers.set_ylim(values.min() / 3, values.max() * 3000)
    elif kinds:
        ax_layers.set_ylim(0, bottom.max() * 1.45)
    ax_layers.set_xticks(x, names, rotation=30 if len(names) > 6 else 0)
    ax_layers.set_ylabel(f"energy per sample ({unit}, {energy['kind']}{', log scale' if log_layers else ''})")
    ax_layers.set_xlabel("layer")
    layout = "op kinds side by side" if log_layers else "stacked"
    ax_layers.set_title(f"by layer, dynamic only ({layout})", fontsize=9)
    if kinds:
        ax_layers.legend(fontsize=8, title="op kind", title_fontsize=8, loc="upper right", framealpha=1,
                         ncol=min(3, len(kinds)))
    ax_layers.grid(axis="y", alpha=0.3)
    totals = {k: v for k, v in (energy.get("by_op_j") or {}).items() if v}
    op_values = list(totals.values())
    log_ops = bool(op_values) and max(op_values) / min(op_values) > 100
    scale, unit = (1.0, "J") if log_ops or not op_values else _energy_unit(max(op_values))
    bars = ax_ops.bar([k.replace("_", "\n") for k in totals], [v / scale for v in op_values],
                      color=[OP_COLORS.get(k, "#333333") for k in totals])
    ax_ops.bar_label(bars, labels=[f"{v:.2e} J" for v in op_values], fontsize=8, padding=2)
    if log_ops:
        ax_ops.set_yscale("log")
    ax_ops.set_ylabel(f"energy per sample ({unit}, {energy['kind']}{', log scale' if log_ops else ''})")
    ax_ops.set_xlabel("op kind")
    ax_ops.set_title("network total by op kind", fontsize=9)
    ax_ops.margins(y=0.15)
    ax_ops.grid(axis="y", alpha=0.3)
    uncounted = energy.get("uncounted") or []
    total = energy.get("total_j")
    headline = f"Energy per sample: {'-' if total is None else f'{total:.3g}'} J"
    missing = f" (not counted: {', '.join(uncounted)})" if uncounted else ""
    fig.suptitle(f"{headline}, {energy['kind']} with profile {energy['profile']}{missing}\n"
                 f"{_subtitle(report)}", fontsize=10)
    return fig


RASTER_META = ("sample_index", "label", "prediction", "time_ms")


def save_raster(raster: Mapping[str, np.ndarray], path: Path | str, *, sample_index: int, label: int,
                prediction: int, dt_ms: float) -> Path:
    """Save ``{layer: (neurons, T) spikes}`` of one sample as a compressed ``.npz`` (atomic), with which
    sample it is (``sample_index``, ``label``, ``prediction``) and ``time_ms`` = (t + 1) x dt for each step
    (step t covers events up to its end)."""
    arrays = {name: np.asarray(spikes) for name, spikes in raster.items()}
    for name, spikes in arrays.items():
        if spikes.ndim != 2:
            raise ValueError(f"raster of {name} must be (neurons, T), got {spikes.shape}")
        if name in RASTER_META:
            raise ValueError(f"layer name {name!r} is reserved in raster.npz")
    steps = max(spikes.shape[1] for spikes in arrays.values())
    arrays.update(sample_index=np.int64(sample_index), label=np.int64(label), prediction=np.int64(prediction),
                  time_ms=(np.arange(steps) + 1) * float(dt_ms))
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def plot_raster(raster: Mapping[str, np.ndarray], path: Path | str, *, title: str = "Spike raster",
                dt_ms: float = 1.0) -> Path:
    """Save :func:`raster_figure` as a PNG."""
    return _save(raster_figure(raster, title=title, dt_ms=dt_ms), path)


def raster_figure(raster: Mapping[str, np.ndarray], *, title: str = "Spike raster", dt_ms: float = 1.0):
    """One panel per layer: a black cell at (time, neuron index) per spike, time in ms (step t spans
    [t dt, (t + 1) dt)). Layers with more than ``MAX_RASTER_ROWS`` neurons draw rows of k neurons shaded by
    the fraction of them that fired."""
    from matplotlib.ticker import MaxNLocator  # plotting: see new_figure

    names = list(raster)
    if not names:
        raise ValueError("empty raster")
    fig, axes = _subplots(len(names), 1, sharex=True, squeeze=False, layout="constrained",
                             figsize=(8.0, min(1.9 * len(names) + 1.2, 18.0)))
    steps = max(np.asarray(raster[n]).shape[1] for n in names)
    for ax, name in zip(axes[:, 0], names):
        spikes = np.asarray(raster[name]) != 0
        group = max(1, math.ceil(spikes.shape[0] / MAX_RASTER_ROWS))
        rows = math.ceil(spikes.shape[0] / group)
        padded = np.zeros((rows * group, spikes.shape[1]), np.float32)
        padded[: spikes.shape[0]] = spikes
        image = padded.reshape(rows, group, -1).mean(axis=1)  # fraction of the row's neurons that fired
        ax.imshow(image, aspect="auto", origin="lower", cmap="Greys", vmin=0,
                  vmax=max(float(image.max()), 1e-9), interpolation="nearest",
                  extent=(0.0, image.shape[1] * dt_ms, -0.5, rows * group - 0.5))
        ax.set_xlim(0.0, steps * dt_ms)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_ylabel(f"{name}\nneuron index", fontsize=8)
        grouped = (f", rows of {group} neurons, black = {image.max():.0%} of them fired" if group > 1 else "")
        ax.set_title(f"{name}: {int(spikes.sum()):,} spikes, {spikes.shape[0]:,} neurons{grouped}",
                     fontsize=8, loc="right")
    axes[-1, 0].set_xlabel(f"time (ms; one step = {dt_ms:g} ms)")
    fig.suptitle(title, fontsize=10)
    return fig


# marker per kind of energy figure: filled circle = measured, hollow diamond = a chip run's estimate,
# hollow square = a float model priced on a hardware profile (not a run on that device)
POINT_MARKERS = {"measured": ("o", True), "chip estimate": ("D", False), "float priced": ("s", False)}


def _point_kind(row: Mapping[str, Any]) -> str:
    if row.get("point_kind") in POINT_MARKERS:
        return row["point_kind"]
    return "measured" if row.get("energy_kind") == "measured" else "chip estimate"


def plot_accuracy_vs_energy(rows: Sequence[Mapping[str, Any]], path: Path | str,
                            left_out: Sequence[str] = ()) -> Path:
    """Save :func:`accuracy_vs_energy_figure` as a PNG."""
    return _save(accuracy_vs_energy_figure(rows, left_out), path)


def accuracy_vs_energy_figure(rows: Sequence[Mapping[str, Any]], left_out: Sequence[str] = ()):
    """``compare``: one labelled marker per run at (energy per sample, accuracy), log-x, with the accuracy's
    95 % interval as an error bar.

    Each row needs ``label``, ``accuracy`` (fraction), ``energy_j`` (per sample), ``energy_kind`` and
    ``mode``, optionally ``number`` (the row's number in compare's tables, drawn beside the marker and named in
    the legend), ``accuracy_low`` / ``accuracy_high`` and ``point_kind`` (``measured``, ``chip
    estimate``, ``float priced``: the marker shape, :data:`POINT_MARKERS`). ``left_out`` (runs not plotted, with
    the reason) is printed under the axes.
    """
    usable = [r for r in rows if r.get("energy_j") and r.get("accuracy") is not None]
    if not usable:
        raise UserError("no run has both an accuracy and an energy per sample; nothing to plot")
    fig, ax = _subplots(figsize=(8.0, 5.0))
    points: dict[tuple, list[Mapping[str, Any]]] = {}  # runs at the same point share one marker and label
    for row in usable:
        key = (f"{row['energy_j']:.3g}", round(100 * row["accuracy"], 2), _point_kind(row))
        points.setdefault(key, []).append(row)
    for index, group in enumerate(points.values()):
        color, row = f"C{index % 10}", group[0]
        marker, filled = POINT_MARKERS[_point_kind(row)]
        if row.get("accuracy_low") is not None:
            below = 100 * (row["accuracy"] - row["accuracy_low"])
            above = 100 * (row["accuracy_high"] - row["accuracy"])
            ax.errorbar(row["energy_j"], 100 * row["accuracy"], yerr=[[below], [above]], color=color,
                        capsize=3, linewidth=1, zorder=2)
        # the marker carries a number; the legend under the axes names it (labels never overlap there)
        label = "; ".join(f"{r['label']} ({r.get('mode', '?')})" for r in group)
        number = ",".join(str(r.get("number", index + 1)) for r in group)  # compare's row numbers
        ax.scatter(row["energy_j"], 100 * row["accuracy"], s=70, marker=marker,
                   facecolors=color if filled else "none", edgecolors=color, linewidths=1.8, zorder=3,
                   label=f"{number}: {label}, energy {_point_kind(row)}")
        ax.annotate(number, (row["energy_j"], 100 * row["accuracy"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8, color=color, fontweight="bold")
    ax.set_xscale("log")
    energies = [r["energy_j"] for r in usable]
    ax.set_xlim(min(energies) / 5, max(energies) * 20)
    lows = [100 * (r.get("accuracy_low") if r.get("accuracy_low") is not None else r["accuracy"]) for r in usable]
    highs = [100 * (r.get("accuracy_high") if r.get("accuracy_high") is not None else r["accuracy"])
             for r in usable]
    ax.set_ylim(max(0.0, min(lows) - 5), min(100.0, max(highs) + 5))
    if left_out:
        ax.text(0.0, 1.02, "not plotted: " + "; ".join(left_out), fontsize=7, va="bottom", wrap=True,
                transform=ax.transAxes)
    ax.set_xlabel("energy per sample, dynamic + static (J, log scale)")
    ax.set_ylabel("accuracy (%, bars: 95 % interval)")
    ax.grid(alpha=0.3, which="both")
    shapes = {"measured": "filled circle: measured energy (device meter)",
              "chip estimate": "hollow diamond: chip run, estimated from its counts",
              "float priced": "hollow square: float model priced on a profile (not run on it)"}
    used = "; ".join(shapes[kind] for kind in dict.fromkeys(_point_kind(r) for r in usable))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.14), frameon=False, title=used,
              title_fontsize=7, alignment="left")
    kinds = sorted({r.get("energy_kind", "?") for r in usable})
    ax.set_title(f"Accuracy (95 % interval) vs energy per sample (energy: {' and '.join(kinds)})", fontsize=10)
    return fig
