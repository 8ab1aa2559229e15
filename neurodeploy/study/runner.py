"""Run a study's cells on Ray Tune: embedded (Ray starts inside this process) or on a running cluster.

Ray Tune schedules the grid (``tune.Tuner`` over a ``grid_search`` of cells), retries a failing cell per
``tune.FailureConfig(max_failures)`` and keeps the experiment state under ``STUDY/ray/``; ``--resume``
restores it with ``Tuner.restore(resume_unfinished=True, resume_errored=True)``, so only unfinished cells run
again (a finished cell also leaves ``cell.json``, which a re-run returns at once). The numbers come from the
cells' run folders, never from Tune's result objects, so an interrupted and resumed study writes the same
tables as an uninterrupted one. On a cluster (``--address``) every node must see the study folder at the
same path (a shared file system) and have neurodeploy installed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from neurodeploy import atomic, folders, watchdog
from neurodeploy.data.datasets import resolve_dataset
from neurodeploy.errors import UserError
from neurodeploy.reports.compare import STUDY_RECORD
from neurodeploy.safe_files import load_json
from neurodeploy.study.cell import StudyRow, read_cell_rows, run_cell
from neurodeploy.study.spec import Cell, StudySpec, parse_study

RAY_DIR = "ray"
EXPERIMENT = "study"
STUDY_JSON = STUDY_RECORD
LOGS_DIR = "logs"
EMBEDDED_OBJECT_STORE_BYTES = 256 * 2**20  # cells pass only small dicts through Ray


@dataclass(frozen=True)
class RunOptions:
    """How to run: ``address`` None starts Ray inside the process (``num_cpus`` None: all cores)."""

    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    resume: bool = False
    num_cpus: int | None = None


@dataclass(frozen=True)
class CellFailure:
    cell: str
    error: str


@dataclass
class StudyOutcome:
    """Every finished cell's rows (grid order), the cells that failed after Ray's retries, and those that
    did not finish (an interrupted study)."""

    rows: list[StudyRow]
    failed: list[CellFailure] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.failed and not self.unfinished


def prepare_study_dir(spec: StudySpec, out: Path, resume: bool) -> None:
    """Create ``out`` (or check it for --resume) and record the study file in it."""
    out = Path(out)
    record = out / STUDY_JSON
    if resume:
        if not record.is_file():
            raise UserError(f"{out}: no study to resume here (no {STUDY_JSON}); run without --resume first")
        saved = load_json(record, "study record", "start a new study with another --out")
        if saved.get("study") != spec.raw:
            raise UserError(f"{spec.path}: differs from the study that {out} was started with; resume with the "
                            f"same file, or start a new study with another --out")
        return
    if record.exists():
        raise UserError(f"{out}: already holds a study; add --resume to continue it, or pass another --out")
    atomic.check_writable_dir(out)
    folders.check_output_dir(out, (folders.STUDY,))
    atomic.write_json(record, {"study": spec.raw, "path": spec.path})


def resolve_data_dir(spec: StudySpec) -> str:
    """The dataset every cell reads: the study's ``data_dir``, or the synthetic stand-in generated once here
    (seed 0), so parallel cells never generate it concurrently and all seeds see the same data."""
    source = resolve_dataset(spec.dataset, Path(spec.data_dir) if spec.data_dir else None, allow_synthetic=True,
                             seed=0)
    return str(Path(source.root).resolve())


def cell_trainable(config: dict) -> None:
    """Ray Tune trainable: one cell, logged to ``STUDY/logs/<cell>.log``; reports the cell's own accuracy."""
    from ray import tune  # optional heavy dependency (the `study` extra), imported only to run a study

    torch.set_num_threads(max(1, int(config["threads"])))
    spec = parse_study(config["study"], config["study_path"])
    cell = Cell.from_dict(config["cell"])
    study_dir = Path(config["out"])
    log = study_dir / LOGS_DIR / f"{cell.cell_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        console = Console(file=handle, width=120, force_terminal=False)
        rows = run_cell(spec, cell, study_dir, config["data_dir"], console, device=config.get("device", "cpu"))
    tune.report({"accuracy": rows[0].report.accuracy or 0.0})


def _progress_callback(total: int):
    """A Tune callback that prints one line per finished or failed cell: done / running / failed, ETA.

    It holds no console (Tune pickles its callbacks with the experiment) and reads the counts from Tune's
    trial list, so a restored study counts the cells finished before the interruption.
    """
    from ray import tune  # optional heavy dependency (the `study` extra)

    class CellProgress(tune.Callback):
        def __init__(self):
            self.started = None
            self.finished_here = 0

        def on_trial_start(self, iteration, trials, trial, **info):
            self.started = self.started or time.monotonic()

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.finished_here += 1
            self._line(trials, trial, "TERMINATED", f"done {_trial_name(trial)}")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._line(trials, trial, "ERROR", f"FAILED {_trial_name(trial)} (see logs/{_trial_name(trial)}.log)")

        def _line(self, trials, trial, outcome: str, event: str) -> None:
            # Tune calls back before it updates the trial's own status
            status = [outcome if t is trial else t.status for t in trials]
            done, failed = status.count("TERMINATED"), status.count("ERROR")
            running = status.count("RUNNING")
            eta = ""
            if self.finished_here and self.started is not None:
                per_cell = (time.monotonic() - self.started) / self.finished_here
                eta = f", ETA {per_cell * max(0, total - done - failed):.0f} s"
            print(f"study: {event}: {done}/{total} done, {running} running, {failed} failed{eta}",
                  file=sys.stderr, flush=True)

    return CellProgress()


def run_study(spec: StudySpec, out: Path, options: RunOptions) -> StudyOutcome:
    """Run (or resume) every cell of ``spec`` into ``out`` on Ray Tune; Ray is always shut down after."""
    import ray  # optional heavy dependency (the `study` extra), imported only to run a study
    from ray import tune

    out = Path(out).resolve()
    cells = spec.cells()
    data_dir = resolve_data_dir(spec)
    env = {name: os.environ[name] for name in ("NEURODEPLOY_CACHE",) if name in os.environ}
    init = {"address": options.address, "include_dashboard": False, "log_to_driver": False,
            "logging_level": logging.WARNING, "runtime_env": {"env_vars": env} if env else None}
    if options.address is None:
        init.update(num_cpus=options.num_cpus, object_store_memory=EMBEDDED_OBJECT_STORE_BYTES)
    started = time.perf_counter()
    # kill -9 of the study takes the embedded Ray's processes along (its agents outlive the driver otherwise)
    with watchdog.descendants_die_with_me():
        try:
            ray.init(**init)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"--address {options.address}: cannot connect to a Ray cluster ({exc}); start one with "
                            "`ray start --head` or drop --address to run here") from exc
        # SIGTERM stops the study the way Ctrl-C does (Ray Tune saves its state; --resume continues). Set after
        # ray.init, whose core installs its own SIGTERM handler that ends the process at once.
        previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
        try:
            trainable = tune.with_resources(cell_trainable, {"cpu": options.cpus_per_trial,
                                                             "gpu": options.gpus_per_trial})
            experiment = out / RAY_DIR / EXPERIMENT
            if options.resume and tune.Tuner.can_restore(str(experiment)):
                tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
            else:
                param_space = {
                    "cell": tune.grid_search([cell.to_dict() for cell in cells]),
                    "study": spec.raw, "study_path": spec.path, "out": str(out), "data_dir": data_dir,
                    "threads": max(1, int(options.cpus_per_trial)),
                    # Ray gives a cell with GPUs its own CUDA_VISIBLE_DEVICES; without, the cell trains on the CPU
                    "device": "cuda" if options.gpus_per_trial > 0 else "cpu",
                }
                tuner = tune.Tuner(
                    trainable, param_space=param_space,
                    tune_config=tune.TuneConfig(trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
                    run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(out / RAY_DIR), verbose=0,
                                               failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                                               callbacks=[_progress_callback(len(cells))]),
                )
            grid = tuner.fit()
            failed = [CellFailure(Cell.from_dict(result.config["cell"]).cell_id, _one_line(result.error))
                      for result in grid if result.error is not None and result.config]
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
            ray.shutdown()
        return collect_outcome(spec, out, failed, time.perf_counter() - started)


def _trial_name(trial) -> str:
    return Cell.from_dict(trial.config["cell"]).cell_id


def _one_line(error: BaseException) -> str:
    """The last line of a (remote) traceback: the exception and its message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]


def collect_outcome(spec: StudySpec, out: Path, failed: list[CellFailure], wall_s: float = 0.0) -> StudyOutcome:
    """The rows of every finished cell in grid order; cells neither finished nor failed are unfinished."""
    rows, unfinished = [], []
    failed_ids = {f.cell for f in failed}
    for cell in spec.cells():
        found = read_cell_rows(out, cell)
        if found is not None:
            rows.extend(found)
        elif cell.cell_id not in failed_ids:
            unfinished.append(cell.cell_id)
    return StudyOutcome(rows, [f for f in failed if f.cell not in {r.cell for r in rows}], unfinished, wall_s)
