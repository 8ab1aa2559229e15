"""A study's results: ``study.csv`` (one row per cell x test point), ``study.md`` laid out like the paper's
tables (mean +- std over seeds, the paper's number beside ours where the study file gives one) and plots.

Everything is drawn from the rows the cells wrote (:class:`~neurodeploy.study.cell.StudyRow`, read from
their run reports); nothing is recomputed. Accuracies are fractions in the CSV and percentages in the tables.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from neurodeploy import atomic
from neurodeploy.study import paper as paper_rules
from neurodeploy.study import plots
from neurodeploy.study.cell import StudyRow
from neurodeploy.study.runner import StudyOutcome
from neurodeploy.study.spec import SPIKING, StudySpec

CSV_NAME = "study.csv"
MARKDOWN_NAME = "study.md"
PLOT_FILES = {"accuracy_vs_dt": "accuracy_vs_dt.png", "generalisation_drop": "generalisation_drop.png",
              "accuracy_vs_energy": "accuracy_vs_energy.png"}
NOT_GIVEN = "not given"
LEARNING_CURVE = "learning_curve.png"


@dataclass(frozen=True)
class Summary:
    """Accuracy of one (model, train dt, test dt) over its seeds."""

    mean: float
    std: float
    seeds: int
    mode: str

    def cell(self, paper: float | None, with_paper: bool) -> str:
        text = f"{self.mean:.2%} ± {self.std:.2%}" if self.seeds > 1 else f"{self.mean:.2%}"
        if with_paper:
            text += f" (paper {paper:.2%})" if paper is not None else f" (paper: {NOT_GIVEN})"
        return text


def summarise(rows: list[StudyRow]) -> dict[tuple[str, float, float], Summary]:
    """(model, train dt, test dt) -> mean and sample std of the accuracy over seeds."""
    groups: dict[tuple[str, float, float], list[StudyRow]] = defaultdict(list)
    for row in rows:
        if row.report.accuracy is not None:
            groups[(row.model, row.train_dt_ms, row.test_dt_ms)].append(row)
    return {key: Summary(statistics.fmean(a := [r.report.accuracy for r in group]),
                         statistics.stdev(a) if len(a) > 1 else 0.0, len(a), group[0].report.mode)
            for key, group in groups.items()}


def accuracy_lookup(rows: list[StudyRow]):
    """``(model, train dt, test dt) -> Estimate`` (mean and 95% interval, :mod:`neurodeploy.study.paper`)."""
    groups: dict[tuple[str, float, float], list[tuple[float, int]]] = defaultdict(list)
    for row in rows:
        if row.report.accuracy is not None:
            groups[(row.model, float(row.train_dt_ms), float(row.test_dt_ms))].append(
                (row.report.accuracy, int(row.test_samples)))

    def lookup(model: str, dt_ms: float, test_dt_ms: float):
        return paper_rules.accuracy_estimate(groups.get((model, float(dt_ms), float(test_dt_ms)), []))
    return lookup


def verdict_lines(spec: StudySpec, rows: list[StudyRow]) -> list[str]:
    """One line per rule of the study file's ``paper:`` block: holds / does not hold / inconclusive."""
    if not spec.rules:
        return []
    found = paper_rules.verdicts(spec.rules, spec.paper, accuracy_lookup(rows))
    counts = {outcome: sum(v.outcome == outcome for v in found) for outcome in
              (paper_rules.HOLDS, paper_rules.FAILS, paper_rules.INCONCLUSIVE, paper_rules.NOT_MEASURED)}
    lines = ["## The paper's findings: verdicts", "",
             "Each finding of the paper as a rule, checked on our numbers. Interval: 95%, Wilson score on the test "
             "samples pooled over seeds, widened to the Student t interval over seeds when there are two or more "
             "(docs/study.md, \"Verdicts\"). holds: the intervals are apart in the paper's direction; does not hold: "
             "apart the other way; inconclusive: they overlap.", "",
             "Summary: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n) + ".", "",
             *(verdict.line() for verdict in found), ""]
    if spec.paper_note:
        lines += [f"Note on the paper: {spec.paper_note}", ""]
    return lines


def study_csv(rows: list[StudyRow]) -> str:
    buffer = io.StringIO()
    names = list(rows[0].to_dict()) if rows else ["cell"]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.to_dict().items()})
    return buffer.getvalue()


def _line(cells) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return [_line(header), _line(["---"] * len(header)), *(_line(row) for row in body)]


def accuracy_table(spec: StudySpec, summary: dict) -> list[str]:
    """Tables VI-IX, XI: one row per model, one column per training dt (tested at its own dt and T)."""
    with_paper = bool(spec.paper)
    own_t = "; a model's own T in its variant" if any(m.steps for m in spec.models) else ""
    header = ["model", "variant", "mode", *(f"dt {dt:g} ms (T={spec.steps_at(dt)}{own_t})" for dt in spec.dt_ms)]
    body = []
    for model in spec.models:
        found = [summary.get((model.name, dt, dt)) for dt in spec.dt_ms]
        mode = next((s.mode for s in found if s), "—")
        body.append([model.name, model.variant, mode, *(
            s.cell(spec.paper_number(model.name, dt, dt), with_paper) if s else "—"
            for s, dt in zip(found, spec.dt_ms))])
    return _table(header, body)


def generalisation_table(spec: StudySpec, summary: dict) -> list[str]:
    """Table XII: per training dt, one column per test dt (T x dt fixed) and the drop from the training dt
    to the smallest test dt (percentage points)."""
    lines = []
    with_paper = bool(spec.paper)
    for dt in spec.dt_ms:
        tests = [dt, *sorted((t for t in spec.test_dt_ms if t != dt), reverse=True)]
        header = ["model", "variant", "mode", *(f"test dt {t:g} ms (T={spec.steps_at(t)})" for t in tests),
                  f"drop {dt:g} -> {tests[-1]:g} ms"]
        body = []
        for model in spec.models:
            found = [summary.get((model.name, dt, t)) for t in tests]
            mode = next((s.mode for s in found if s), "—")
            drop = f"{(found[0].mean - found[-1].mean) * 100:.2f} pp" if found[0] and found[-1] else "—"
            body.append([model.name, model.variant, mode, *(
                s.cell(spec.paper_number(model.name, dt, t), with_paper) if s else "—"
                for s, t in zip(found, tests)), drop])
        lines += [f"Trained at dt {dt:g} ms (T={spec.steps_at(dt)}):", "", *_table(header, body), ""]
    return lines


def scale_lines(spec: StudySpec, outcome: StudyOutcome) -> list[str]:
    """How much training the finished cells got and what they cost (host wall time)."""
    own = {r.cell: r for r in outcome.rows if r.own_point}
    if not own:
        return []
    scale = spec.scale
    rule = (f"trained until converged: at least {scale.min_epochs or 2} and at most {scale.epochs} epochs, stopped "
            f"when the best test accuracy of the last {scale.plateau_window or 0.2:.0%} of the epochs was less than "
            f"{scale.plateau_pp:g} pp above the best before them" if scale.until_converged
            else f"{scale.epochs} epoch(s) per cell")
    epochs = sorted(r.epochs for r in own.values())
    stops = defaultdict(int)
    for row in own.values():
        stops[row.stop_reason or "fixed epochs"] += 1
    trained = sorted({r.train_samples for r in own.values() if r.train_samples is not None})
    seconds = [r.cell_seconds for r in own.values() if r.cell_seconds]
    lines = [f"Scale `{spec.scale_name}`: {rule}. Training samples per cell: "
             f"{', '.join(map(str, trained)) or spec.scale.limit or 'all'}. Epochs trained: {epochs[0]}"
             + (f"-{epochs[-1]} (median {statistics.median(epochs):g})" if epochs[-1] != epochs[0] else "")
             + "; stopped by " + ", ".join(f"{reason} ({n})" for reason, n in sorted(stops.items())) + "."]
    if seconds:
        per_hour = 3600 * len(seconds) / sum(seconds)
        lines[-1] += (f" Host wall time per cell (training and every evaluation): {statistics.fmean(seconds):.0f} s "
                      f"mean, {sum(seconds):.0f} s over {len(seconds)} cells, i.e. {per_hour:.1f} "
                      "cells per hour per worker (measured on a shared machine: an upper bound on the cost).")
    return [*lines, ""]


def study_markdown(spec: StudySpec, outcome: StudyOutcome) -> str:
    rows = outcome.rows
    summary = summarise(rows)
    own = [r for r in rows if r.own_point]
    sources = sorted({f"{r.report.data_source} {r.report.dataset}" for r in rows}) or ["—"]
    samples = sorted({r.test_samples for r in own})
    lines = [f"# {spec.title}", "",
             f"Study `{spec.name}` ({spec.path}), scale `{spec.scale_name}`: {spec.scale.epochs} epoch(s), lr "
             f"{spec.scale.lr:g}, training samples {spec.scale.limit or 'all'}, test samples "
             f"{spec.scale.test_limit or 'all'}; seeds {', '.join(map(str, spec.seeds))}; architecture "
             f"`{spec.arch}`; data: {', '.join(sources)}.", "",
             "Accuracy on the test split, mean ± sample std over seeds. Mode `emulated` = the exported network "
             "on neurodeploy's bit-exact fixed-point emulator (not hardware); `float` = PyTorch. "
             + (f"Beside each number: the paper's accuracy ({_paper_source(spec)}), measured on the real dataset "
                "with full training, so a synthetic, small-scale study is not expected to match it."
                if spec.paper else "The study file gives no paper numbers."), ""]
    if samples:
        lines += [f"Test samples per evaluation: {', '.join(map(str, samples))}.", ""]
    lines += scale_lines(spec, outcome)
    float_only = [m.name for m in spec.models if m.float_only]
    if float_only:
        lines += [f"Float only: {', '.join(float_only)} (an SNN without reset cannot run on the chip: Lava's "
                  "CUBA neuron always resets), so these rows are PyTorch float numbers.", ""]
    for table in spec.tables:
        if table == "accuracy":
            lines += ["## Accuracy per model and dt", "", *accuracy_table(spec, summary), ""]
        else:
            lines += ["## Generalisation to other dt (T x dt fixed)", "", *generalisation_table(spec, summary)]
    lines += verdict_lines(spec, rows)
    if outcome.failed:
        lines += ["## Failed cells", "", *(f"- `{f.cell}`: {f.error}" for f in outcome.failed), ""]
    if outcome.unfinished:
        lines += ["## Unfinished cells", "", *(f"- `{c}`" for c in outcome.unfinished), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_results(spec: StudySpec, outcome: StudyOutcome, out: Path) -> list[Path]:
    """Write study.csv, study.md and the study's plots into ``out``; returns the paths written."""
    out = Path(out)
    written = [atomic.write_text(out / CSV_NAME, study_csv(outcome.rows)),
               atomic.write_text(out / MARKDOWN_NAME, study_markdown(spec, outcome))]
    if outcome.rows:
        summary = summarise(outcome.rows)
        if spec.scale.until_converged:
            path = plots.plot_learning_curve(spec, outcome.rows, out, out / LEARNING_CURVE)
            if path is not None:
                written.append(path)
        for name in spec.plots:
            path = getattr(plots, f"plot_{name}")(spec, summary, outcome.rows, out / PLOT_FILES[name])
            if path is not None:
                written.append(path)
    return written


def _paper_source(spec: StudySpec) -> str:
    """The ``paper.source`` of the study file, else He et al. (the first studies' paper) and ``paper_source``."""
    block = spec.raw.get("paper")
    if isinstance(block, dict) and block.get("source"):
        return str(block["source"])
    return "He et al., Neural Networks 2020" + (f", {spec.paper_source}" if spec.paper_source else "")


def plan_lines(spec: StudySpec) -> list[str]:
    """``--dry-run``: the cells and an estimate of the work (trainings, evaluations, sample-steps)."""
    cells = spec.cells()
    lines = [f"study {spec.name}: {len(cells)} cells ({len(spec.models)} models x {len(spec.dt_ms)} dt x "
             f"{len(spec.seeds)} seeds), scale '{spec.scale_name}'", ""]
    for cell in cells:
        tests = ", ".join(point.label for point in cell.tests[1:]) or "-"
        backend = "torch (float)" if cell.model.family not in SPIKING or cell.model.float_only \
            else f"export + {spec.snn_backend}"
        lines.append(f"  {cell.cell_id}: {cell.model.name} [{cell.model.variant}] dt {cell.dt_ms:g} ms, "
                     f"T={cell.steps}, seed {cell.seed}; run on {backend}; also tested at {tests}")
    evaluations = sum(len(cell.tests) for cell in cells)
    limit, test_limit = spec.scale.limit, spec.scale.test_limit
    # an ANN on static images (a converted cell's too) sees one image per sample, not T steps
    train_steps = sum(1 if cell.model.train_family == "ann" and not cell.model.frames else cell.steps
                      for cell in cells) * spec.scale.epochs
    eval_steps = sum(point.steps for cell in cells for point in cell.tests)
    lines += ["", f"work: {len(cells)} trainings of {spec.scale.epochs} epoch(s), {evaluations} evaluations",
              "  training: " + (f"{train_steps * limit:,} sample-steps" if limit else
                                f"{train_steps:,} x (training split size) sample-steps"),
              "  evaluation: " + (f"{eval_steps * test_limit:,} sample-steps" if test_limit else
                                  f"{eval_steps:,} x (test split size) sample-steps")]
    return lines
