"""``neurodeploy compare``: several runs side by side (SPEC 5.3), from their ``run_report.json`` files.

One row per report: accuracy, parameters, memory, operations per sample (synops for the SNN, MACs for the
RNN/LSTM), energy per sample with its kind (``measured`` by NVML on a GPU or on hardware, ``estimated`` from
op counts x a hardware profile), latency per sample and the execution mode. Written as Markdown and CSV
with an accuracy-vs-energy plot. Every value comes from the reports, validated by
:func:`neurodeploy.reports.schema.load_run_report`; nothing is recomputed here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from rich.table import Table

from neurodeploy import atomic
from neurodeploy.errors import UserError
from neurodeploy.reports.plots import plot_accuracy_vs_energy
from neurodeploy.reports.schema import load_run_report

REPORT_NAME = "run_report.json"
MARKDOWN_NAME = "comparison.md"
CSV_NAME = "comparison.csv"
PLOT_NAME = "accuracy_vs_energy.png"
STUDY_RECORD = "study.json"  # marks a folder made by `neurodeploy study` (neurodeploy.study.runner)


@dataclass(frozen=True)
class ComparisonRow:
    """One run report reduced to the comparison columns (the SPEC 5.3 key of each field in comments)."""

    run: str
    report: str
    family: str  # model.family
    arch: str  # model.arch
    dataset: str  # data.dataset
    data_source: str  # data.source: real | synthetic
    backend: str  # backend.name
    mode: str  # backend.mode: hardware | simulated | emulated | float
    device: str  # backend.device
    accuracy: float | None  # fraction in [0, 1]
    params: int  # model.params
    memory_bits: int  # memory_bits.total
    synops_per_sample: float  # per_sample.synops
    macs_per_sample: float  # per_sample.macs
    energy_j_per_sample: float | None  # per_sample.energy_j
    energy_kind: str | None  # energy.kind (None when there is no energy figure)
    energy_profile: str | None  # energy.profile
    latency_s_per_sample: float | None  # per_sample.latency_s

    @property
    def ops(self) -> tuple[float, str]:
        """The family's own work measure: synops for the SNN, MACs for the RNN/LSTM (and the rest)."""
        return (self.synops_per_sample, "synops") if self.family == "snn" else (self.macs_per_sample, "MACs")

    def to_dict(self) -> dict:
        return asdict(self)


def find_reports(path: Path) -> list[Path]:
    """``path`` itself if it is a file; else ``run_report.json`` in it and one or two folders down, and in
    a study folder every report under ``cells/``."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{path}: no such run directory or report file")
    found = [path / REPORT_NAME] if (path / REPORT_NAME).is_file() else []
    for pattern in (f"*/{REPORT_NAME}", f"*/*/{REPORT_NAME}"):  # e.g. reports/<backend>/run_report.json
        found.extend(sorted(p for p in path.glob(pattern) if p.is_file()))
    if (path / STUDY_RECORD).is_file():  # a study folder: every cell's and test variant's report
        found.extend(sorted(p for p in path.glob(f"cells/**/{REPORT_NAME}") if p.is_file()))
    if not found:
        raise UserError(f"{path}: no {REPORT_NAME} here or in its subfolders; "
                        f"run `neurodeploy run {path}` first")
    return found


def load_comparison_rows(paths: list[Path]) -> list[ComparisonRow]:
    """One row per report found under ``paths`` (run directories or report files), in the order given."""
    rows: list[ComparisonRow] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        for report in find_reports(given):
            if report.resolve() not in seen:
                seen.add(report.resolve())
                rows.append(read_row(report, _run_label(given, report)))
    if not rows:
        raise UserError("nothing to compare; give at least one run directory or run_report.json")
    return rows


def _run_label(given: Path, report: Path) -> str:
    if given.is_file():
        return report.resolve().parent.name
    inner = report.parent.relative_to(given)
    base = given.resolve().name
    return base if inner == Path(".") else f"{base}/{inner.as_posix()}"


def read_row(path: Path, run: str | None = None) -> ComparisonRow:
    """One validated report as a row; a bad or missing report raises UserError naming the file."""
    report = load_run_report(Path(path))
    energy_j = report.per_sample.energy_j
    return ComparisonRow(
        run=run or Path(path).resolve().parent.name,
        report=str(path),
        family=report.model.family,
        arch=report.model.arch,
        dataset=report.data.dataset,
        data_source=report.data.source,
        backend=report.backend.name,
        mode=report.backend.mode,
        device=report.backend.device,
        accuracy=report.accuracy,
        params=report.model.params,
        memory_bits=report.memory_bits.total,
        synops_per_sample=report.per_sample.synops,
        macs_per_sample=report.per_sample.macs,
        energy_j_per_sample=energy_j,
        energy_kind=report.energy.kind if energy_j is not None else None,
        energy_profile=report.energy.profile if energy_j is not None else None,
        latency_s_per_sample=report.per_sample.latency_s,
    )


# ---- rendering: every output is drawn from the rows, and the rows only from the reports -----------------

MISSING = "—"
LEGEND = ("Energy per sample: `measured` = energy counter of the device over the timed run (NVML: the "
          "whole GPU board); `estimated` = operation counts x the named hardware profile. Mode: hardware, "
          "simulated (Lava CPU), emulated (bit-accurate), float (PyTorch). Ops: synops for the SNN, MACs for "
          "the RNN/LSTM.")
COLUMNS = ("run", "family", "arch", "data", "backend", "mode", "device", "accuracy", "params", "memory",
           "ops / sample", "energy / sample", "latency / sample")


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return MISSING
    for factor, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _memory(bits: int) -> str:
    size = bits / 8
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} GiB"


def energy_cell(row: ComparisonRow) -> str:
    """Energy per sample with its kind (and the profile of an estimate), never a bare number."""
    if row.energy_j_per_sample is None:
        return MISSING
    source = f"{row.energy_kind}, {row.energy_profile}" if row.energy_profile else row.energy_kind
    return f"{_si(row.energy_j_per_sample, 'J')} ({source})"


def display_cells(row: ComparisonRow) -> list[str]:
    """The row as the strings of ``COLUMNS``."""
    ops, unit = row.ops
    accuracy = MISSING if row.accuracy is None else f"{row.accuracy:.2%}"
    return [row.run, row.family, row.arch, f"{row.dataset} ({row.data_source})", row.backend, row.mode,
            row.device, accuracy, f"{row.params:,}", _memory(row.memory_bits),
            f"{ops:,.0f} {unit}" if ops < 1e6 else f"{ops:.3g} {unit}", energy_cell(row),
            _si(row.latency_s_per_sample, "s")]


def comparison_markdown(rows: list[ComparisonRow]) -> str:
    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = ["# neurodeploy comparison", "",
             LEGEND, "",
             line(COLUMNS), line(["---"] * len(COLUMNS))]
    lines += [line(display_cells(row)) for row in rows]
    return "\n".join(lines) + "\n"


def comparison_csv(rows: list[ComparisonRow]) -> str:
    """All fields raw (both synops and MACs; ``energy_kind`` next to ``energy_j_per_sample``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(ComparisonRow)], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.to_dict().items()})
    return buffer.getvalue()


def print_comparison(rows: list[ComparisonRow], console) -> None:
    """The table on a rich console."""
    table = Table(title="neurodeploy compare")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*display_cells(row))
    console.print(table)


def plot_rows(rows: list[ComparisonRow]) -> list[dict]:
    """The rows with both an accuracy and an energy, in the form ``plots.plot_accuracy_vs_energy`` takes."""
    return [{"label": f"{row.run.split('/')[0]}: {row.family}/{row.backend}", "accuracy": row.accuracy,
             "energy_j": row.energy_j_per_sample, "energy_kind": row.energy_kind, "mode": row.mode}
            for row in rows if row.accuracy is not None and row.energy_j_per_sample]


def write_comparison(rows: list[ComparisonRow], out_dir: Path) -> list[Path]:
    """Write ``comparison.md``, ``comparison.csv`` and, when a run has accuracy and energy,
    ``accuracy_vs_energy.png`` into ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    written = [atomic.write_text(out_dir / MARKDOWN_NAME, comparison_markdown(rows)),
               atomic.write_text(out_dir / CSV_NAME, comparison_csv(rows))]
    points = plot_rows(rows)
    if points:
        written.append(Path(plot_accuracy_vs_energy(points, out_dir / PLOT_NAME)))
    return written
