"""What the Python API returns (docs/api.md): a run's report, a comparison of runs, a study's outcome.

Each is read back from the files the run wrote (``to_dict()`` equals ``run_report.json``) and renders itself
in a notebook (``_repr_html_``, ``_repr_markdown_``) and as matplotlib figures (``plot_*``), through the
renderers of :mod:`neurodeploy.reports`; none recomputes a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.backends import registry
from neurodeploy.errors import RunFolderError, UserError
from neurodeploy.metrics.run_metrics import Latency
from neurodeploy.reports import plots
from neurodeploy.reports.compare import (
    REPORT_NAME,
    ComparisonRow,
    comparison_markdown,
    comparison_warnings,
    load_comparison_rows,
    plot_rows,
)
from neurodeploy.reports.html import comparison_html, report_html
from neurodeploy.reports.render import _raster_title, render_markdown
from neurodeploy.reports.schema import EnergyInfo, LayerReport, Parity, PerSample, RunReport, load_run_report
from neurodeploy.safe_files import open_regular
from neurodeploy.study.runner import StudyOutcome

RASTER_FILE = "raster.npz"


@dataclass(frozen=True)
class Report:
    """One ``run_report.json`` (docs/report_schema.md) as typed fields.

    ``accuracy`` is a fraction in [0, 1] (None without labels); ``layers`` holds one
    :class:`~neurodeploy.reports.schema.LayerReport` per layer with the JSON report's names (figures per
    sample); ``energy`` says its kind (estimated / measured), profile and split by op kind; ``latency`` its
    kind (chip_estimate / measured), None for a simulator; ``parity`` compares the chip run with the trained
    float model (None on torch); ``mode`` is hardware / simulated / emulated / float; ``data_source`` real /
    synthetic / file. ``record`` is the whole validated report, ``path`` the JSON file it was read from.
    """

    path: Path
    accuracy: float | None
    layers: tuple[LayerReport, ...]
    energy: EnergyInfo
    latency: Latency | None
    parity: Parity | None
    mode: str
    data_source: str
    backend: str
    samples: int
    per_sample: PerSample
    record: RunReport = field(repr=False)

    @classmethod
    def load(cls, path: Path | str) -> Report:
        """Read ``run_report.json``, or the one in a report folder; UserError when it is missing or invalid."""
        path = Path(path)
        if path.is_dir():
            path = path / REPORT_NAME
        if not path.is_file():
            raise RunFolderError(f"{path}: no run report here; run the network first (Run.run or `neurodeploy run`)")
        return cls.of(load_run_report(path), path)

    @classmethod
    def of(cls, record: RunReport, path: Path) -> Report:
        return cls(path=Path(path), accuracy=record.accuracy, layers=record.layers, energy=record.energy,
                   latency=record.latency, parity=record.parity, mode=record.backend.mode,
                   data_source=record.data.source, backend=record.backend.name, samples=record.data.samples,
                   per_sample=record.per_sample, record=record)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON data, equal to the ``run_report.json`` it was read from."""
        return self.record.to_dict()

    def layer_rows(self) -> list[dict[str, Any]]:
        """One dict per layer (the JSON report's ``layers``), e.g. for ``pandas.DataFrame``."""
        return [layer.to_dict() for layer in self.layers]

    def __repr__(self) -> str:
        accuracy = "-" if self.accuracy is None else f"{self.accuracy:.2%}"
        energy = "-" if self.per_sample.energy_j is None else f"{self.per_sample.energy_j:.3g} J {self.energy.kind}"
        return (f"<Report {self.record.model.family} {self.record.model.arch} on {self.backend} ({self.mode}): "
                f"accuracy {accuracy} on {self.samples} {self.data_source} samples, energy/sample {energy}, "
                f"{len(self.layers)} layers; {self.path}>")

    def _repr_html_(self) -> str:
        return report_html(self.to_dict())

    def _repr_markdown_(self) -> str:
        return render_markdown(self.to_dict())

    def plot_spike_rates(self):
        """Bar chart of each layer's spike rate (spikes / neuron / step): a matplotlib Figure."""
        return plots.spike_rate_figure(self.to_dict())

    def plot_energy(self):
        """Energy per sample by layer and op kind, and the network's total by op kind: a matplotlib Figure."""
        data = self.to_dict()
        if not any(layer.get("energy_by_op_j") for layer in data["layers"]):
            raise UserError(f"{self.path}: no energy per layer (no hardware profile priced this run)")
        return plots.energy_breakdown_figure(data)

    def plot_raster(self):
        """Spikes of the report's first sample, input and every layer, over time (ms): a matplotlib Figure."""
        path = self.path.parent / RASTER_FILE
        if not path.is_file():
            raise UserError(f"{path}: this run saved no raster (only spiking runs on a dataset do)")
        with open_regular(path, "raster") as handle, np.load(handle, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = {key: arrays.pop(key) for key in ("sample_index", "label", "prediction", "time_ms") if key in arrays}
        data = self.to_dict()
        title = (f"{_raster_title(data)}\nsample {int(meta['sample_index'])}: label {int(meta['label'])}, "
                 f"prediction {int(meta['prediction'])}")
        return plots.raster_figure(arrays, title=title, dt_ms=float(data["data"]["dt_ms"]))


@dataclass(frozen=True)
class Comparison:
    """Several run reports side by side: one :class:`~neurodeploy.reports.compare.ComparisonRow` per report
    (accuracy with its 95 % interval, operations, energy with its kind, latency with its kind), one line in
    ``warnings`` per difference that breaks like for like, and the files written (if any)."""

    rows: tuple[ComparisonRow, ...]
    paths: tuple[Path, ...] = ()

    @classmethod
    def of(cls, targets: Sequence[Path], paths: Sequence[Path] = ()) -> Comparison:
        return cls(tuple(load_comparison_rows(list(targets), suggest_backend=registry.suggested)), tuple(paths))

    @property
    def warnings(self) -> list[str]:
        return [warning.line() for warning in comparison_warnings(list(self.rows))]

    def to_dict(self) -> dict[str, Any]:
        """``{"rows": [...], "warnings": [...]}``; the rows hold the fields of ``comparison.csv``."""
        return {"rows": [row.to_dict() for row in self.rows], "warnings": self.warnings}

    def _repr_html_(self) -> str:
        return comparison_html(self.rows)

    def _repr_markdown_(self) -> str:
        return comparison_markdown(list(self.rows), plot_rows(list(self.rows))[1])

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.rows)} reports: {', '.join(row.run for row in self.rows)}>"

    def plot_accuracy_vs_energy(self):
        """Accuracy (95 % interval) vs energy per sample, one marker per run: a matplotlib Figure."""
        points, left_out = plot_rows(list(self.rows))
        return plots.accuracy_vs_energy_figure(points, left_out)


@dataclass(frozen=True)
class StudyResult:
    """A study's folder, its plan (the lines ``--dry-run`` prints), its number of cells and, unless it was a
    dry run, the outcome (finished rows, failed and unfinished cells, wall time) and the files written
    (study.csv, study.md, plots)."""

    name: str
    out: Path
    plan: tuple[str, ...]
    cells: int
    outcome: StudyOutcome | None = None
    paths: tuple[Path, ...] = ()

    @property
    def finished(self) -> int:
        """Cells that finished (0 for a dry run)."""
        if self.outcome is None:
            return 0
        return self.cells - len(self.outcome.failed) - len(self.outcome.unfinished)

    @property
    def complete(self) -> bool:
        return self.outcome is not None and self.outcome.complete

    def rows(self) -> list[dict[str, Any]]:
        """Every finished cell's rows as dicts (the columns of study.csv)."""
        return [] if self.outcome is None else [row.to_dict() for row in self.outcome.rows]

    def _repr_markdown_(self) -> str:
        study_md = self.out / "study.md"
        if self.outcome is None or not study_md.is_file():
            return "\n".join(["```", *self.plan, "```"])
        return study_md.read_text()
