"""A study's plots (matplotlib, Agg), drawn from the per-seed summaries and rows of
:mod:`neurodeploy.study.results`: accuracy vs dt per model, the Table XII generalisation drop as grouped
bars, and accuracy vs energy per model. Each says the data source, the mode and, for energy, its kind."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from neurodeploy.reports.plots import _pyplot, _save


def _subtitle(rows) -> str:
    sources = sorted({f"{r.report.data_source} {r.report.dataset}" for r in rows})
    seeds = sorted({r.seed for r in rows})
    return f"{', '.join(sources)}; mean ± std over {len(seeds)} seed(s)"


def plot_accuracy_vs_dt(spec, summary, rows, path: Path) -> Path | None:
    """Accuracy (tested at the training dt) against dt, one line per model; None with a single dt."""
    if len(spec.dt_ms) < 2:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in spec.models:
        points = [(dt, summary[(model.name, dt, dt)]) for dt in spec.dt_ms if (model.name, dt, dt) in summary]
        if points:
            ax.errorbar([dt for dt, _ in points], [s.mean * 100 for _, s in points],
                        yerr=[s.std * 100 for _, s in points], marker="o", capsize=3,
                        label=f"{model.name} ({points[0][1].mode})")
    ax.set_xlabel("dt (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{spec.title}\n{_subtitle(rows)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_generalisation_drop(spec, summary, rows, path: Path) -> Path | None:
    """Grouped bars: per model, the accuracy at each test dt (the first training dt); None without test dts."""
    if not spec.test_dt_ms:
        return None
    plt = _pyplot()
    dt = spec.dt_ms[0]
    tests = [dt, *sorted((t for t in spec.test_dt_ms if t != dt), reverse=True)]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(spec.models)), 4.5))
    width = 0.8 / len(tests)
    for index, test in enumerate(tests):
        values = [summary.get((m.name, dt, test)) for m in spec.models]
        ax.bar([i + index * width for i in range(len(spec.models))], [v.mean * 100 if v else 0 for v in values],
               width, yerr=[v.std * 100 if v else 0 for v in values], capsize=2,
               label=f"test dt {test:g} ms (T={spec.steps_at(test)})")
    ax.set_xticks([i + width * (len(tests) - 1) / 2 for i in range(len(spec.models))])
    ax.set_xticklabels([m.name for m in spec.models], fontsize=8, rotation=15)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Trained at dt {dt:g} ms, tested at other dt (T x dt fixed)\n{_subtitle(rows)}", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_accuracy_vs_energy(spec, summary, rows, path: Path) -> Path | None:
    """Per model and training dt (own test point): mean accuracy vs mean energy per sample, log x."""
    groups = defaultdict(list)
    for row in rows:
        if row.own_point and row.report.accuracy is not None and row.report.energy_j_per_sample:
            groups[(row.model, row.train_dt_ms)].append(row)
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in spec.models:
        points = [(statistics.fmean(r.report.energy_j_per_sample for r in g),
                   statistics.fmean(r.report.accuracy for r in g) * 100, g[0])
                  for (name, _), g in sorted(groups.items()) if name == model.name]
        if points:
            kind = points[0][2].report.energy_kind
            ax.scatter([p[0] for p in points], [p[1] for p in points],
                       label=f"{model.name} ({points[0][2].report.mode}, energy {kind}, "
                             f"{points[0][2].report.energy_profile})")
    ax.set_xscale("log")
    ax.set_xlabel("energy per sample (J)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Accuracy vs energy per sample\n{_subtitle(rows)}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_learning_curve(spec, rows, study_dir: Path, path: Path) -> Path | None:
    """Test (and training) accuracy per epoch of the first finished cell of the grid, with the stopping
    window of a converged scale shaded; None when no cell has its metrics."""
    for row in rows:
        metrics = Path(study_dir) / "cells" / row.cell / "metrics.jsonl"
        if row.own_point and metrics.is_file():
            break
    else:
        return None
    epochs = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [100 * e["test_accuracy"] for e in epochs], marker="o", label="test accuracy")
    ax.plot(x, [100 * e["train_accuracy"] for e in epochs], linestyle="--",
            label="training accuracy (during the epoch)")
    window = spec.scale.plateau_window or 0.2
    span = max(2, math.ceil(window * len(x)))
    if spec.scale.until_converged and span < len(x):
        ax.axvspan(x[-span] - 0.5, x[-1] + 0.5, alpha=0.15,
                   label=f"last {window:.0%} of epochs: < {spec.scale.plateau_pp:g} pp gain -> stop")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Learning curve of {row.cell} ({row.stop_reason or 'fixed epochs'})\n{_subtitle(rows)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
