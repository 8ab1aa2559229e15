"""One cell of a study: an ordinary run folder, trained and evaluated with the library functions the CLI uses.

``STUDY/cells/<cell>/`` is made by :func:`neurodeploy.pipeline.train.train`; an SNN is exported
(:func:`neurodeploy.deploy.export.export_run`) and run on the study's chip backend (the bit-exact ``emulator`` by
default), an RNN/LSTM, or an SNN without reset (which the chip cannot run), on ``torch`` in float
(:func:`neurodeploy.pipeline.run.execute`). Each test-time variant is its own run folder
``STUDY/cells/<cell>/test/dt<dt>-T<T>/``: the cell's config with the other dt and T, and the same weights,
so ``neurodeploy run`` re-runs any number of a study on its own. ``cell.json`` (written last, atomically)
marks a finished cell; a cell interrupted during training resumes from its last epoch (deterministic, see
:mod:`neurodeploy.pipeline.train`), so a resumed study ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from neurodeploy import atomic, folders
from neurodeploy.backends import registry
from neurodeploy.data.datasets import dataset_kind
from neurodeploy.deploy.export import export_run
from neurodeploy.deploy.run_folder import CHECKPOINT, CONFIG, load_checkpoint
from neurodeploy.errors import UserError
from neurodeploy.models.training import EpochMetrics, TrainConfig, TrainResult, lif_mapping
from neurodeploy.pipeline.ann import train_ann
from neurodeploy.pipeline.convert import CONVERSION_FILE, convert
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train
from neurodeploy.reports.compare import REPORT_NAME, ComparisonRow, read_row
from neurodeploy.study.spec import SPIKING, Cell, StudySpec, TestPoint

CELLS_DIR = "cells"
CELL_RESULT = "cell.json"
ANN_SUFFIX = "-ann"  # a converted cell's ANN: cells/<cell>-ann/ beside the converted SNN cells/<cell>/


@dataclass(frozen=True)
class StudyRow:
    """One evaluation of one cell: the cell's settings, where it was evaluated, and the report's columns."""

    cell: str
    model: str
    loss: str
    variant: str
    float_only: bool
    seed: int
    train_dt_ms: float
    train_steps: int
    test_dt_ms: float
    test_steps: int
    own_point: bool  # evaluated at the (dt, T) it was trained at
    epochs: int
    train_limit: int | None  # training samples per cell (None: the whole split)
    test_samples: int  # samples of this evaluation (run report data.samples)
    report: ComparisonRow  # every column of `neurodeploy compare`, read from the run report
    train_samples: int | None = None  # training samples the cell saw (limit applied)
    stop_reason: str | None = None  # "fixed epochs" | "plateau" | "max epochs" (a converged scale)
    cell_seconds: float | None = None  # host wall time of the cell: training and every evaluation

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "report"}
        return {**data, **{f"report_{k}" if k in data else k: v for k, v in self.report.to_dict().items()}}

    @classmethod
    def from_dict(cls, raw: dict) -> "StudyRow":
        own = {f.name for f in fields(cls)} - {"report"}
        report = {}
        for f in fields(ComparisonRow):  # a column added since the cell was written takes its default
            key = f"report_{f.name}" if f.name in own else f.name
            report[f.name] = raw[key] if key in raw or f.default is MISSING else raw.get(key, f.default)
        optional = {f.name for f in fields(cls) if f.default is None}  # absent in cells of older studies
        return cls(**{name: raw.get(name) if name in optional else raw[name] for name in own},
                   report=ComparisonRow(**report))


def cell_dir(study_dir: Path, cell: Cell) -> Path:
    return Path(study_dir) / CELLS_DIR / cell.cell_id


def read_cell_rows(study_dir: Path, cell: Cell) -> list[StudyRow] | None:
    """The rows of a finished cell, or None when it has not finished."""
    path = cell_dir(study_dir, cell) / CELL_RESULT
    if not path.is_file():
        return None
    try:
        return [StudyRow.from_dict(row) for row in json.loads(path.read_text())["rows"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: damaged cell result ({exc}); delete it and rerun with --resume") from exc


def run_cell(spec: StudySpec, cell: Cell, study_dir: Path, data_dir: str, console, *,
             device: str = "cpu") -> list[StudyRow]:
    """Train ``cell`` on ``device`` (resuming a partly trained one) and evaluate it at each of its test points."""
    done = read_cell_rows(study_dir, cell)
    if done is not None:
        return done
    run_dir = cell_dir(study_dir, cell)
    started = time.perf_counter()
    result, stop = train_cell(spec, cell, run_dir, data_dir, console, device)
    rows = []
    for point in cell.tests:
        target = run_dir if point == cell.tests[0] else derive_test_run(run_dir, point)
        report, samples = evaluate_run(target, spec, cell, console)
        rows.append((point, report, samples))
    seconds = round(time.perf_counter() - started, 1)
    available = len(dataset_kind(spec.dataset).index(Path(data_dir), "train"))
    train_samples = min(available, spec.scale.limit) if spec.scale.limit else available
    rows = [StudyRow(
        cell=cell.cell_id, model=cell.model.name, loss=cell.model.loss, variant=cell.model.variant,
        float_only=cell.model.float_only, seed=cell.seed, train_dt_ms=cell.dt_ms, train_steps=cell.steps,
        test_dt_ms=point.dt_ms, test_steps=point.steps, own_point=point == cell.tests[0],
        epochs=len(result.metrics), train_limit=spec.scale.limit, test_samples=samples,
        report=_relative(report, Path(study_dir)), train_samples=train_samples, stop_reason=stop,
        cell_seconds=seconds) for point, report, samples in rows]
    atomic.write_json(run_dir / CELL_RESULT, {"rows": [row.to_dict() for row in rows]})
    return rows


def train_cell(spec: StudySpec, cell: Cell, run_dir: Path, data_dir: str, console, device: str = "cpu"):
    """Train the cell (resuming a partly trained one): ``scale.epochs`` epochs, or for a converged scale epoch
    by epoch until :meth:`Scale.converged` or the ``epochs`` cap. Returns the result and why it stopped.

    A ``converted`` cell trains its ANN in ``cells/<cell>-ann/`` and then converts it into ``run_dir``
    (Deng Model-2, :func:`neurodeploy.pipeline.convert.convert`), the run folder that is evaluated."""
    train_dir = ann_dir(run_dir) if cell.model.family == "converted" else run_dir
    result, stop = _train_until_done(spec, cell, train_dir, data_dir, console, device)
    if cell.model.family == "converted":
        _convert_cell(spec, cell, train_dir, run_dir, console)
    return result, stop


def ann_dir(run_dir: Path) -> Path:
    """A converted cell's ANN run folder, beside the cell's own (the converted SNN)."""
    return Path(run_dir).with_name(Path(run_dir).name + ANN_SUFFIX)


def _train_until_done(spec: StudySpec, cell: Cell, run_dir: Path, data_dir: str, console, device: str):
    scale = spec.scale
    if not scale.until_converged:
        return _train_to(spec, cell, run_dir, data_dir, scale.epochs, console, device), "fixed epochs"
    target = min(scale.epochs, max(2, scale.min_epochs or 2))
    while True:
        result = _train_to(spec, cell, run_dir, data_dir, target, console, device)
        accuracies = [m.test_accuracy for m in result.metrics]
        if scale.converged(accuracies):
            return result, "plateau"
        if len(accuracies) >= scale.epochs:
            return result, "max epochs"
        target = len(accuracies) + 1


def _train_to(spec: StudySpec, cell: Cell, run_dir: Path, data_dir: str, epochs: int, console, device: str):
    model = cell.model
    config = TrainConfig(dataset=spec.dataset, family=model.train_family, arch=model.arch or spec.arch,
                         loss=model.loss,
                         epochs=epochs, batch_size=spec.scale.batch_size, lr=spec.scale.lr,
                         dt_ms=cell.dt_ms, steps=cell.steps, limit=spec.scale.limit,
                         test_limit=spec.scale.test_limit, data_dir=data_dir, allow_synthetic=False, seed=cell.seed,
                         leak=model.leak, reset=model.reset, recurrent=model.recurrent,
                         leak_tau_ms=model.leak_tau_ms, frames=model.frames,
                         aggregation=model.aggregation, device=device)
    config.validate()
    if config.family == "ann" and config.frames is None:
        return _train_static_ann(config, run_dir, console)
    return train(config, run_dir, resume=(run_dir / CHECKPOINT).exists(), console=console)


def _train_static_ann(config: TrainConfig, run_dir: Path, console) -> TrainResult:
    """The ANN on static images (:func:`neurodeploy.pipeline.ann.train_ann`), which cannot resume: a finished run
    of ``config.epochs`` epochs is kept, anything else trained again from the start (seconds; the seeded
    initialisation and data order make the first epochs of a longer run those of a shorter one)."""
    if (run_dir / folders.TRAINING_DONE).is_file():
        metrics = [EpochMetrics(**m) for m in load_checkpoint(run_dir)["metrics"]]
        if len(metrics) == config.epochs:
            return TrainResult(run_dir, metrics)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    return train_ann(config, run_dir, console=console)


def _convert_cell(spec: StudySpec, cell: Cell, ann_run: Path, run_dir: Path, console) -> None:
    """The trained ANN ``ann_run`` converted into the SNN run ``run_dir`` at the cell's window T, with its
    accuracy-vs-window curve on the scale's test samples; a conversion cut short is made again."""
    if (run_dir / CONVERSION_FILE).is_file():
        return
    if run_dir.exists():
        shutil.rmtree(run_dir)
    result = convert(ann_run, run_dir, steps=cell.steps, norm=cell.model.norm, curve_samples=spec.scale.test_limit)
    console.print(f"converted {ann_run} -> {run_dir} at T={cell.steps} (vThMant per layer "
                  f"{result.record['v_th_mant']})", highlight=False)


def _relative(row: ComparisonRow, study_dir: Path) -> ComparisonRow:
    """The row with its report path relative to the study folder (a study folder can be moved)."""
    report = Path(row.report).resolve().relative_to(study_dir.resolve()).as_posix()
    return ComparisonRow(**{**asdict(row), "report": report, "run": str(Path(report).parent.parent.parent)})


def derive_test_run(run_dir: Path, point: TestPoint) -> Path:
    """``run_dir/test/<point>``: a run folder with the cell's weights and config at another dt and T.

    The SNN's neuron mapping is recomputed for the new dt (it changes only for adaptive leakage, whose
    decay follows k = exp(-dt/tau)); the checkpoint is a hard link (a copy where links are not possible).
    """
    target = Path(run_dir) / "test" / point.label
    target.mkdir(parents=True, exist_ok=True)
    data = json.loads((Path(run_dir) / CONFIG).read_text())
    data["resolved"]["trained_at"] = {"run": "../..", "dt_ms": data["dt_ms"], "steps": data["steps"]}
    data.update(dt_ms=point.dt_ms, steps=point.steps)
    if data["family"] in SPIKING:
        data["resolved"]["lif_mapping"] = lif_mapping(TrainConfig.from_dict(data)).to_dict()
    atomic.write_json(target / CONFIG, data)
    checkpoint = target / CHECKPOINT
    if checkpoint.exists():
        checkpoint.unlink()
    try:
        os.link(Path(run_dir) / CHECKPOINT, checkpoint)
    except OSError:
        shutil.copyfile(Path(run_dir) / CHECKPOINT, checkpoint)
    return target


def evaluate_run(target: Path, spec: StudySpec, cell: Cell, console) -> tuple[ComparisonRow, int]:
    """Export + chip-backend run for a deployable SNN, torch (float) for the rest; the report as a row, and
    its number of test samples."""
    backend = registry.names(family=cell.model.run_family, chip=False)[0]  # the float backend
    if cell.model.family in SPIKING and not cell.model.float_only and registry.backend(spec.snn_backend).is_chip:
        export_run(target)
        backend = spec.snn_backend
    request = RunRequest(target=target, backend=backend, samples=spec.scale.test_limit, allow_synthetic=False)
    report = execute(request, console=console, err_console=console)
    return read_row(target / "reports" / backend / REPORT_NAME), int(report["data"]["samples"])
