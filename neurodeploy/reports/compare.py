"""``neurodeploy compare``: several runs side by side (docs/report_schema.md), from their ``run_report.json`` files.

One row per report: samples, data source, mode, hardware profile, accuracy with its 95 % Wilson interval,
parameters, memory, operations per sample (synops for the SNN, MACs for the RNN/LSTM), energy per sample as
dynamic + static = total with its kind (``measured`` by NVML on a GPU or on hardware, ``estimated`` from op
counts x a hardware profile) and what it leaves out, latency per sample with its kind (``chip_estimate``
or ``measured``; a simulator's host wall time is never shown as a latency). One warning line when the rows
used different sample sets, data sources or dt/T. Written as Markdown and CSV with an accuracy-vs-energy
plot (95 % intervals as error bars; runs left out are listed under it with the reason). Every value comes
from the reports, validated by :func:`neurodeploy.reports.schema.load_run_report`; nothing is recomputed here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from rich import box
from rich.table import Table

from neurodeploy import atomic, folders
from neurodeploy.deploy.run_folder import CONFIG
from neurodeploy.errors import UserError
from neurodeploy.metrics.run_metrics import Comparability, wilson_interval
from neurodeploy.reports.like_for_like import (
    ALT_ESTIMATE_GAP,
    ComparisonWarning,
    energy_device,
    energy_source,
    latency_source,
    like_for_like_warnings,
)
from neurodeploy.reports.plots import plot_accuracy_vs_energy
from neurodeploy.reports.schema import load_run_report

REPORT_NAME = "run_report.json"
MARKDOWN_NAME = "comparison.md"
CSV_NAME = "comparison.csv"
PLOT_NAME = "accuracy_vs_energy.png"
STUDY_RECORD = "study.json"  # marks a folder made by `neurodeploy study` (neurodeploy.study.runner)


@dataclass(frozen=True)
class ComparisonRow:
    """One run report reduced to the comparison columns (the run_report.json key of each field in comments)."""

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
    latency_s_per_sample: float | None  # latency.per_sample_s (chip_estimate or measured; never host wall)
    samples: int = 0  # data.samples
    sample_set: str = ""  # data.sample_set (digest of the samples), or dataset/split/samples when absent
    dt_ms: float = 0.0  # data.dt_ms
    steps: int = 0  # data.steps
    hw_profile: str | None = None  # backend.hw_config
    accuracy_low: float | None = None  # accuracy_interval.low (95 % Wilson)
    accuracy_high: float | None = None  # accuracy_interval.high
    latency_kind: str | None = None  # latency.kind: chip_estimate | measured (None: no chip/device latency)
    host_wall_s_per_sample: float | None = None  # host_wall.per_sample_s: simulator throughput only
    energy_dynamic_j: float | None = None  # energy_split.dynamic_j
    energy_static_j: float | None = None  # energy_split.static_j
    leaves_out: str = ""  # energy_split.leaves_out or energy.uncounted, joined with "; "
    latency_device: str = ""  # latency.device
    latency_batch: int | None = None  # latency.batch_size: > 1 = a batch's time / its size
    latency_samples: int = 0  # latency.samples: samples the latency is a mean over
    latency_from: str = ""  # where the latency comes from and its kind, in words
    energy_device: str = ""  # Loihi / GPU / CPU / CMOS model: whose figures price the energy
    energy_from: str = ""  # where the energy comes from, in words
    float_priced: bool = False  # a float model's op counts priced on a hardware profile (not run on it)
    energy_alt_dynamic_j: float | None = None  # chip_model.dynamic_energy_j.total, when > 25 % from the one used
    energy_alt_source: str = ""  # what that other estimate is

    @property
    def ops(self) -> tuple[tuple[float, str], ...]:
        """The family's own work measures: synops for the SNN, MACs for the RNN/LSTM (and the rest), both for
        the RSNN (host MACs, chip synops)."""
        if self.family == "rsnn":
            return (self.macs_per_sample, "MACs"), (self.synops_per_sample, "synops")
        return ((self.synops_per_sample, "synops"),) if self.family == "snn" else ((self.macs_per_sample, "MACs"),)

    def to_dict(self) -> dict:
        return asdict(self)


def find_reports(path: Path, suggest_backend: Callable[[str | None], str] | None = None) -> list[Path]:
    """``path`` itself if it is a file; else ``run_report.json`` in it and one or two folders down, and in
    a study folder every report under ``cells/``. ``suggest_backend(family)`` names the backend the error
    for a run without reports suggests (the backend registry's; reports/ does not import backends)."""
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
        backend = suggest_backend(_family_of(path)) if suggest_backend else "B"
        raise UserError(f"{path}: no {REPORT_NAME} here or in its subfolders; run "
                        f"`neurodeploy run {path} --backend {backend}` first")
    return found


def _family_of(run_dir: Path) -> str | None:
    try:
        family = json.loads((run_dir / CONFIG).read_text()).get("family")
    except (OSError, ValueError, AttributeError):
        return None
    return family if isinstance(family, str) else None


def load_comparison_rows(paths: list[Path], *,
                         suggest_backend: Callable[[str | None], str] | None = None) -> list[ComparisonRow]:
    """One row per report found under ``paths`` (run directories or report files), in the order given."""
    rows: list[ComparisonRow] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        for report in find_reports(given, suggest_backend):
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
    samples = report.data.samples
    low = high = None
    if report.accuracy_interval is not None:
        low, high = report.accuracy_interval.low, report.accuracy_interval.high
    elif report.accuracy is not None and samples:
        low, high = wilson_interval(round(report.accuracy * samples), samples)
    latency, latency_kind, host_wall = _latency(report)
    split = report.energy_split
    leaves = split.leaves_out if split is not None else report.energy.uncounted
    energy_kind = report.energy.kind if energy_j is not None else None
    record = report.latency if report.latency is not None and report.latency.kind == latency_kind else None
    latency_device = record.device if record is not None else (report.backend.device if latency_kind else "")
    batch = record.batch_size if record is not None else None
    static_counted = split is not None and split.static_j is not None
    alt_j, alt_source = _other_estimate(report)
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
        latency_s_per_sample=latency,
        samples=samples,
        sample_set=report.data.sample_set or f"{report.data.dataset}/{report.data.split}/{samples}",
        dt_ms=report.data.dt_ms,
        steps=report.data.steps,
        hw_profile=report.backend.hw_config,
        accuracy_low=low,
        accuracy_high=high,
        latency_kind=latency_kind,
        host_wall_s_per_sample=host_wall,
        energy_dynamic_j=None if split is None else split.dynamic_j,
        energy_static_j=None if split is None else split.static_j,
        leaves_out="; ".join(leaves),
        latency_device=latency_device,
        latency_batch=batch,
        latency_samples=record.samples if record is not None else samples,
        latency_from=latency_source(kind=latency_kind, source=record.source if record else "",
                                    device=latency_device, samples=record.samples if record else samples,
                                    batch_size=batch),
        energy_device=energy_device(kind=energy_kind, profile=report.energy.profile, device=report.backend.device),
        energy_from=energy_source(kind=energy_kind, profile=report.energy.profile, mode=report.backend.mode,
                                  device=report.backend.device, static_counted=static_counted),
        float_priced=report.backend.mode == "float" and energy_kind == "estimated",
        energy_alt_dynamic_j=alt_j,
        energy_alt_source=alt_source,
    )


def _other_estimate(report) -> tuple[float | None, str]:
    """SANA-FE's dynamic energy when it differs from the op-count estimate the tables use by more than 25 %."""
    chip = report.chip_model or {}
    sanafe = (chip.get("dynamic_energy_j") or {}).get("total")
    used = report.energy_split.dynamic_j if report.energy_split is not None else None
    if not sanafe or not used or abs(sanafe - used) <= ALT_ESTIMATE_GAP * used:
        return None, ""
    return float(sanafe), (f"SANA-FE's dynamic energy (its own per-event costs, mean of {chip.get('samples', '?')} "
                           "samples); the tables use op counts x the profile")


def _latency(report) -> tuple[float | None, str | None, float | None]:
    """(latency, its kind, host wall time) of a report; reports without a ``latency`` record: a float run's
    per-sample time was measured on its device, a chip backend's was the host's wall time."""
    if report.latency is not None:
        host = report.host_wall.per_sample_s if report.host_wall is not None else None
        if report.latency.kind == "host_wall":
            return None, None, report.latency.per_sample_s
        return report.latency.per_sample_s, report.latency.kind, host
    if report.backend.mode == "float":
        return report.per_sample.latency_s, "measured", None
    return None, None, report.per_sample.latency_s


def comparability(rows: list[ComparisonRow]) -> Comparability:
    """The distinct sample sets, data sources and dt/T of the rows (more than one of any: a warning)."""
    def distinct(values):
        return list(dict.fromkeys(values))

    return Comparability(distinct(row.sample_set for row in rows), distinct(row.data_source for row in rows),
                         distinct(f"dt {row.dt_ms:g} ms x {row.steps}" for row in rows))


# ---- rendering: every output is drawn from the rows, and the rows only from the reports -----------------

MISSING = "—"
LEGEND = ("Energy per sample = dynamic + static (E total); `measured` = energy counter of the device over the "
          "timed run (NVML: the whole GPU board; static = its power before the run x run time); `estimated` = "
          "operation counts x the named hardware profile (static = static power x chip time, where counted). "
          "Latency: `chip` = chip time per sample estimated by the chip model (SANA-FE), `meas` = wall time of one "
          "sample measured on the device, `amort` = measured time of a batch / its size (not one sample's own "
          "time); a "
          "simulator's host time is not a latency and is not shown. Mode: hardware, simulated (Lava CPU), "
          "emulated (bit-accurate), float (PyTorch). Ops: synops for the SNN, MACs for the RNN/LSTM, host MACs + "
          "chip synops for the RSNN. acc: accuracy [95 % Wilson interval]; n: samples; E kind: est. = "
          "estimated, meas. = measured, with the profile. The third table says which device or model each "
          "figure comes from.")
# three tables with short headers, so that none cuts a number at 80 columns
RUN_COLUMNS = ("#", "run", "family", "mode", "hw", "data", "n", "params", "acc [95% CI]")
COST_COLUMNS = ("#", "ops/sample", "E dyn", "E static", "E total", "E kind", "latency")
SOURCE_COLUMNS = ("#", "energy from (device / profile)", "latency from (device / kind)")
COLUMNS = RUN_COLUMNS + COST_COLUMNS[1:]
KIND_ABBREVIATIONS = {"estimated": "est.", "measured": "meas."}


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


def accuracy_cell(row: ComparisonRow) -> str:
    if row.accuracy is None:
        return MISSING
    if row.accuracy_low is None:
        return f"{row.accuracy:.1%}"
    return f"{100 * row.accuracy:.1f}% [{100 * row.accuracy_low:.0f}-{100 * row.accuracy_high:.0f}]"


def latency_cell(row: ComparisonRow) -> str:
    """Latency per sample with its kind: ``chip`` (the chip model's estimate, per sample), ``meas`` (measured, per
    sample) or ``amort`` (measured, a batch's time / its size)."""
    if row.latency_s_per_sample is None:
        return MISSING
    if row.latency_kind == "chip_estimate":
        return f"{_si(row.latency_s_per_sample, 's')} chip"
    return f"{_si(row.latency_s_per_sample, 's')} {'amort' if (row.latency_batch or 1) > 1 else 'meas'}"


def run_cells(row: ComparisonRow, number: int) -> list[str]:
    """The row (``number``, from 1) as the strings of ``RUN_COLUMNS``."""
    return [str(number), row.run, row.family, row.mode, row.hw_profile or MISSING, row.data_source,
            f"{row.samples:,}", f"{row.params:,}", accuracy_cell(row)]


def cost_cells(row: ComparisonRow, number: int) -> list[str]:
    """The row (``number``, from 1) as the strings of ``COST_COLUMNS``."""
    ops_text = " + ".join(f"{ops:,.0f} {unit}" if ops < 1e6 else f"{ops:.3g} {unit}" for ops, unit in row.ops)
    total = row.energy_j_per_sample
    kind = MISSING
    if row.energy_kind is not None:
        kind = f"{KIND_ABBREVIATIONS[row.energy_kind]} {row.energy_profile or ''}".strip()
    return [str(number), ops_text, _si(row.energy_dynamic_j, "J"), _si(row.energy_static_j, "J"),
            _si(total, "J"), kind, latency_cell(row)]


def source_cells(row: ComparisonRow, number: int) -> list[str]:
    """The row (``number``, from 1) as the strings of ``SOURCE_COLUMNS``: the device or model behind each figure,
    and the other energy estimate beside the one used when they differ by more than 25 %."""
    energy = row.energy_from or MISSING
    if row.energy_alt_dynamic_j is not None and row.energy_dynamic_j:
        gap = row.energy_alt_dynamic_j / row.energy_dynamic_j - 1
        energy += f"; SANA-FE dynamic {_si(row.energy_alt_dynamic_j, 'J')} ({gap:+.0%} vs E dyn)"
    return [str(number), energy, row.latency_from or MISSING]


def comparison_warnings(rows: list[ComparisonRow]) -> list[ComparisonWarning]:
    """Every difference between the rows that breaks like for like (:mod:`neurodeploy.reports.like_for_like`)."""
    return like_for_like_warnings(rows)


def display_cells(row: ComparisonRow, number: int = 1) -> list[str]:
    """The row as the strings of ``COLUMNS`` (both tables side by side)."""
    return run_cells(row, number) + cost_cells(row, number)[1:]


def _leaves_out_lines(rows: list[ComparisonRow]) -> list[str]:
    return [f"- {number} {row.run}: energy leaves out {row.leaves_out or 'nothing listed'}"
            for number, row in enumerate(rows, 1)]


def comparison_markdown(rows: list[ComparisonRow], left_out: list[str] | None = None) -> str:
    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells).rstrip() + " |"

    lines = ["# neurodeploy comparison", "", LEGEND, ""]
    warnings = comparison_warnings(rows)
    if warnings:
        lines += [f"- **{warning.line()}**" for warning in warnings] + [""]
    for columns, cells in ((RUN_COLUMNS, run_cells), (COST_COLUMNS, cost_cells), (SOURCE_COLUMNS, source_cells)):
        lines += [line(columns), line(["---"] * len(columns))]
        lines += [line(cells(row, number)) for number, row in enumerate(rows, 1)] + [""]
    lines += ["What each energy figure leaves out:", ""] + _leaves_out_lines(rows)
    if left_out:
        lines += ["", f"Left out of {PLOT_NAME}:", ""] + [f"- {item}" for item in left_out]
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
    """Three tables on a rich console (run and accuracy; cost; where each figure comes from), one warning line per
    difference that breaks like for like, and what each energy leaves out."""
    for title, columns, cells in (("runs", RUN_COLUMNS, run_cells), ("cost per sample", COST_COLUMNS, cost_cells),
                                  ("where each figure comes from", SOURCE_COLUMNS, source_cells)):
        table = Table(title=f"neurodeploy compare: {title}", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in columns:
            table.add_column(column, no_wrap=column != "run" and columns is not SOURCE_COLUMNS or column == "#",
                             overflow="fold")
        for number, row in enumerate(rows, 1):
            table.add_row(*cells(row, number))
        console.print(table)
    for warning in comparison_warnings(rows):
        console.print(f"[bold yellow]{warning.line()}[/bold yellow]", highlight=False)
    for text in _leaves_out_lines(rows):
        console.print(text, highlight=False)


def point_kind(row: ComparisonRow) -> str:
    """How a plotted energy was obtained: ``measured`` (a device's meter), ``chip estimate`` (a chip run's counts
    priced on a chip profile) or ``float priced`` (a float model's op counts priced on a hardware profile)."""
    if row.energy_kind == "measured":
        return "measured"
    return "float priced" if row.float_priced else "chip estimate"


def plot_rows(rows: list[ComparisonRow]) -> tuple[list[dict], list[str]]:
    """The rows with both an accuracy and an energy, in the form ``plots.plot_accuracy_vs_energy`` takes, and one
    line per row left out, with the reason. Labels are unique: run, family/backend and hardware profile (a
    number is added where two rows would still read the same)."""
    points, left_out = [], []
    for number, row in enumerate(rows, 1):
        if row.accuracy is None:
            left_out.append(f"{row.run}: no accuracy")
        elif not row.energy_j_per_sample:
            left_out.append(f"{row.run}: no energy figure"
                            + (f" (not priced: {row.leaves_out})" if row.leaves_out else ""))
        else:
            label = f"{row.run}: {row.family}/{row.backend} @ {row.energy_profile or row.hw_profile or row.device}"
            points.append({"label": label, "accuracy": row.accuracy,
                           "accuracy_low": row.accuracy_low, "accuracy_high": row.accuracy_high,
                           "energy_j": row.energy_j_per_sample, "energy_kind": row.energy_kind, "mode": row.mode,
                           "point_kind": point_kind(row), "number": number})
    seen: dict[str, int] = {}
    for point in points:
        seen[point["label"]] = seen.get(point["label"], 0) + 1
    counters: dict[str, int] = {}
    for point in points:
        if seen[point["label"]] > 1:
            counters[point["label"]] = counters.get(point["label"], 0) + 1
            point["label"] += f" #{counters[point['label']]}"
    return points, left_out


def write_comparison(rows: list[ComparisonRow], out_dir: Path) -> list[Path]:
    """Write ``comparison.md``, ``comparison.csv`` and, when a run has accuracy and energy,
    ``accuracy_vs_energy.png`` into ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    folders.check_output_dir(out_dir, (folders.COMPARISON,))  # never over a folder compare did not make
    points, left_out = plot_rows(rows)
    written = [atomic.write_text(out_dir / MARKDOWN_NAME, comparison_markdown(rows, left_out)),
               atomic.write_text(out_dir / CSV_NAME, comparison_csv(rows))]
    if points:
        written.append(Path(plot_accuracy_vs_energy(points, out_dir / PLOT_NAME, left_out=left_out)))
    return written
