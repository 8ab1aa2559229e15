"""Train, open, export and run: the run-folder half of the Python API (docs/api.md).

Every function raises :class:`~neurodeploy.errors.UserError` (never ``SystemExit``) and prints nothing
unless asked: ``progress=True`` shows progress (rich, also in a notebook), ``output=`` prints what the
``neurodeploy`` command prints (the CLI passes its consoles).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from neurodeploy import options
from neurodeploy.api.records import Comparison, Report
from neurodeploy.backends import registry
from neurodeploy.data.datasets import dataset_kind
from neurodeploy.deploy.export import export_run, print_export_table
from neurodeploy.deploy.lint import lint_for_training
from neurodeploy.deploy.nir_export import export_nir_run, print_nir_export
from neurodeploy.deploy.nir_record import load_import
from neurodeploy.deploy.run_folder import CHECKPOINT, CONFIG, METRICS, load_run_config
from neurodeploy.errors import OptionError, RunFolderError
from neurodeploy.models.training import DEFAULT_PRESET, FAMILIES, TRAIN_PRESETS, TrainConfig
from neurodeploy.pipeline.ann import train_ann
from neurodeploy.pipeline.convert import CONVERSION_FILE, CURVE_PLOT, DEFAULT_NORM, DEFAULT_STEPS, NORMS
from neurodeploy.pipeline.convert import convert as convert_run
from neurodeploy.pipeline.demo import DEMO_BASELINES, run_demo, sibling
from neurodeploy.pipeline.nir_run import is_imported_run, run_imported
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import check_train_out, preset_settings
from neurodeploy.pipeline.train import train as run_training
from neurodeploy.reports.compare import REPORT_NAME
from neurodeploy.safe_files import read_text

EXPORT_FORMATS = ("netx", "nir")


@dataclass(frozen=True)
class Output:
    """Where an API call prints: ``console`` gets results (tables, files written), ``err_console`` progress,
    banners and training lines. :meth:`quiet` (the default) prints nothing."""

    console: Console
    err_console: Console

    @classmethod
    def quiet(cls) -> Output:
        return cls(Console(quiet=True), Console(quiet=True))

    @classmethod
    def progress_only(cls) -> Output:
        """Progress and training lines on stderr (rich renders them in a notebook too), results quiet."""
        return cls(Console(quiet=True), Console(stderr=True))

    @classmethod
    def choose(cls, output: Output | None, progress: bool) -> Output:
        if output is not None:
            return output
        return cls.progress_only() if progress else cls.quiet()


def choice(value: str, allowed: Sequence[str], name: str) -> str:
    """``value`` if it is one of ``allowed``, else an :class:`OptionError` naming the option."""
    if value not in allowed:
        raise OptionError(f"unknown {name} '{value}'; choose one of {', '.join(allowed)}")
    return value


def default_run_dir(dataset: str, model: str, arch: str | None = None) -> Path:
    """Where ``train`` writes without ``out``: runs/<dataset>-<model>-<arch file stem> (arch None: the
    dataset's default)."""
    arch = arch or dataset_kind(dataset).defaults.arch
    return Path("runs") / f"{dataset}-{model}-{Path(arch).stem}"


class Run:
    """A run folder made by :func:`train` or :func:`import_nir`: its settings, training history and reports.

    ``family`` (snn / rnn / lstm / rsnn / ann), ``dataset`` and ``arch`` come from ``config.json`` (an imported
    graph has family ``snn`` and arch ``nir:<file>``)."""

    def __init__(self, path: Path | str):
        path = Path(path)
        if not path.is_dir():
            raise RunFolderError(f"{path}: no such run folder; pass a folder made by train() or import_nir()")
        self.path = path
        self.imported = is_imported_run(path)
        if self.imported:
            record = load_import(path)
            self.family, self.dataset, self.arch = "snn", record.dataset, f"nir:{Path(record.source).name}"
            return
        if not (path / CONFIG).is_file():
            raise RunFolderError(f"{path}: not a neurodeploy run folder (no {CONFIG}); pass a folder made by "
                                 "train() or import_nir()")
        config = load_run_config(path)
        self.family, self.dataset, self.arch = config.family, config.dataset, config.arch

    def __repr__(self) -> str:
        return f"<Run {self.family} {self.arch} on {self.dataset or 'imported graph'}: {self.path}>"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def resumable(self) -> bool:
        """True when the folder holds a checkpoint that ``train(..., resume=True)`` continues from."""
        return (self.path / CHECKPOINT).is_file()

    def history(self) -> list[dict[str, Any]]:
        """One dict per finished epoch (``metrics.jsonl``): loss, train and test accuracy, seconds, peak RSS."""
        path = self.path / METRICS
        if not path.is_file():
            return []
        return [json.loads(line) for line in read_text(path, "training metrics").splitlines() if line.strip()]

    def export(self, format: str = "netx", *, out: Path | str | None = None, accept_quantization_loss: bool = False,
               output: Output | None = None) -> Path:
        """Export this run; see :func:`export`."""
        return export(self.path, format, out=out, accept_quantization_loss=accept_quantization_loss, output=output)

    def run(self, backend: str = "emulator", *, samples: int | None = None, hw: str | None = None,
            device: str = "cpu", data_dir: Path | str | None = None, out: Path | str | None = None,
            progress: bool = False, output: Output | None = None, **options: Any) -> Report:
        """Run on ``backend`` (:func:`backend_choices`) and return its report; see :func:`run`."""
        if "input" in options or "save_output" in options:
            raise OptionError("Run.run evaluates the run on its dataset; feed spikes with neurodeploy.run(path, "
                              "input=...)")
        return run(self.path, backend, samples=samples, hw=hw, device=device, data_dir=data_dir, out=out,
                   progress=progress, output=output, **options)

    def report(self, backend: str = "emulator") -> Report:
        """The last report of ``backend`` in this run folder (``reports/<backend>/run_report.json``)."""
        return Report.load(self.path / "reports" / backend / REPORT_NAME)


def export(run_dir: Path | str | Run, format: str = "netx", *, out: Path | str | None = None,
           accept_quantization_loss: bool = False, output: Output | None = None) -> Path:
    """Export a trained SNN (or RSNN) run to lava-dl netx HDF5 (``model.net``, reloaded with netx and checked;
    refused when a layer loses over 1 % of its weights to clipping or 50 % to rounding, unless
    ``accept_quantization_loss``) or to a NIR graph (``model.nir``); returns the file written."""
    output = Output.choose(output, False)
    run_dir, out = Path(run_dir), None if out is None else Path(out)
    if choice(format, EXPORT_FORMATS, "--format") == "nir":
        nir_result = export_nir_run(run_dir, out)
        print_nir_export(nir_result, output.console)
        return nir_result.path
    result = export_run(run_dir, out, accept_quantization_loss=accept_quantization_loss)
    print_export_table(result, output.console)
    output.console.print(f"wrote {result.path} (verified with lava.lib.dl.netx.hdf5.Network)")
    return result.path


def backend_choices() -> str:
    """The registered backends' names, as the CLI's help lists them (neurodeploy.backends.registry)."""
    return registry.choices()


def open_run(path: Path | str) -> Run:
    """The run folder at ``path`` (made by :func:`train` or :func:`import_nir`); RunFolderError otherwise."""
    return Run(path)


def train(dataset: str, model: str = "snn", *, arch: str | None = None, preset: str | None = None,
          epochs: int | None = None,
          limit: int | None = None, dt: float | None = None, steps: int | None = None, seed: int = 0,
          device: str = "cpu", out: Path | str | None = None, data_dir: Path | str | None = None,
          loss: str = "rate", batch_size: int | None = None, micro_batch: int | None = None, lr: float | None = None,
          test_limit: int | None = None, allow_synthetic: bool = True, resume: bool = False, leak: bool = True,
          reset: bool = True, recurrent: bool = False, leak_tau: float | None = None,
          aggregation: str | None = None, frames: str | None = None, progress: bool = False,
          output: Output | None = None) -> Run:
    """Train ``model`` (snn | rnn | lstm | rsnn | ann) on ``dataset`` (a name in neurodeploy.data.datasets) into
    ``out`` and return the run. ``arch``: a model file (mlp, cnn, models/*.yaml) or a string such as
    'Input-512FC-10' (default: the dataset's); ``preset``: fast (8 epochs at lr 1e-3, the default) or paper
    (100 epochs at lr 1e-4), ``epochs`` and
    ``lr`` override it (a resumed run keeps its epochs); ``dt`` in ms; ``limit`` / ``test_limit`` cap the
    samples; with no real dataset in ``data_dir`` the synthetic N-MNIST-format set is used (labelled
    synthetic) unless ``allow_synthetic=False``. SNN variants:
    ``leak``, ``reset``, ``recurrent``, ``leak_tau`` (ms); RSNN: ``aggregation``; ANN on event data: ``frames``
    binary | intensity (Deng Models 4 / 5, docs/frames.md). Same settings and checks as
    ``neurodeploy train`` (docs/architecture.md)."""
    output = Output.choose(output, progress)
    # an unknown dataset is named as such, before the architecture is looked up in it
    arch = arch or dataset_kind(dataset).defaults.arch
    run_dir = Path(out) if out is not None else default_run_dir(dataset, model, arch)
    epochs, lr = preset_settings(choice(preset or DEFAULT_PRESET, tuple(TRAIN_PRESETS), "--preset"), epochs, lr,
                                 run_dir if resume else None)
    config = TrainConfig(dataset=dataset, family=choice(model, FAMILIES, "--model"), arch=arch, loss=loss,
                         epochs=epochs, batch_size=batch_size, micro_batch=micro_batch, lr=lr, dt_ms=dt, steps=steps,
                         limit=limit, test_limit=test_limit, data_dir=None if data_dir is None else str(data_dir),
                         allow_synthetic=allow_synthetic, seed=seed, device=device, leak=leak, reset=reset,
                         recurrent=recurrent, leak_tau_ms=leak_tau, aggregation=aggregation, frames=frames)
    config.validate()
    check_train_out(run_dir)
    if config.family == "ann" and config.frames is None:
        return Run(train_ann(config, run_dir, resume=resume, console=output.err_console).run_dir)
    if config.family == "snn":
        lint_for_training(config, console=output.err_console)
    result = run_training(config, run_dir, resume=resume, console=output.err_console)
    return Run(result.run_dir)


def convert(run_dir: Path | str | Run, *, out: Path | str | None = None, steps: int | None = None,
            norm: str = DEFAULT_NORM, norm_limit: int | None = None, samples: int | None = None,
            windows: Sequence[int] | None = None, progress: bool = False, output: Output | None = None) -> Run:
    """Convert an ANN run (``train(..., model="ann")``) into an SNN run of IF neurons (Deng et al. 2020 Model-2;
    docs/conversion.md) and return it: ``out`` (default <run>-snn) gets the SNN's config and weights,
    ``model.net`` (exported and checked like any SNN's), ``conversion.json`` and ``conversion_curve.png``, the
    test accuracy at each window in ``windows`` (default 5..1000 steps up to ``steps``) beside the ANN's on
    ``samples`` test images (default all). ``steps``: the window of later runs (default 500, Deng Table 2's
    for Model-2 on MNIST); ``norm``: ``max`` (Diehl et al. 2015) or ``p99.9``, over ``norm_limit`` training
    images (default all). ``run(result, "emulator")`` then runs it with the per-layer report."""
    output = Output.choose(output, progress)
    run_dir = Path(run_dir)
    open_run(run_dir)  # a missing or foreign folder is named as such
    out = Path(out) if out is not None else run_dir.with_name(f"{run_dir.name}-snn")
    steps = DEFAULT_STEPS if steps is None else steps
    options.check_binning(None, steps)
    for name, value in (("--limit", norm_limit), ("--samples", samples)):
        options.check(name, value)
    result = convert_run(run_dir, out, steps=steps, norm=choice(norm, NORMS, "--norm"), norm_limit=norm_limit,
                         curve_samples=samples, windows=None if windows is None else tuple(windows))
    curve = result.record["curve"]
    output.console.print(f"converted {run_dir} -> {out} ({result.record['method']}; vThMant per layer "
                         f"{result.record['v_th_mant']}); wrote {result.export.path}", highlight=False)
    source = curve["data_synthetic_source"] or curve["data_source"]
    output.console.print(f"test accuracy on {curve['samples']} {source} "
                         f"images: ANN {curve.get('ann_accuracy', float('nan')):.2%}; SNN " + ", ".join(
                             f"T={p['steps']} {p['accuracy']:.2%}" for p in curve["points"]), highlight=False)
    output.console.print(f"wrote {out / CONVERSION_FILE} and {out / CURVE_PLOT}", highlight=False)
    return Run(out)


def run(target: Path | str | Run, backend: str = "emulator", *, samples: int | None = None, hw: str | None = None,
        device: str = "cpu", data_dir: Path | str | None = None, out: Path | str | None = None,
        input: Path | str | None = None, save_output: Path | str | None = None, require_hardware: bool = False,
        allow_synthetic: bool = True, score_on_synthetic: bool = False, count_only: bool = False,
        progress: bool = False, output: Output | None = None) -> Report | np.ndarray:
    """Run a trained or imported run folder on ``backend`` and write its report (``out``, default
    RUN/reports/<backend>); returns the :class:`Report` read back from ``run_report.json``.

    Backends: ``lava`` (Lava's CPU simulator, mode simulated), ``loihi2`` (a board when lava-loihi finds
    one, else the emulator, mode emulated), ``emulator`` (bit-exact fixed-point emulator, mode emulated),
    ``torch`` (the trained float model; RNN/LSTM runs run here only). ``hw``: hardware profile pricing the
    energy (default: the backend's); ``samples``: test samples (default all; 500 on Lava); ``count_only``
    (lava): hidden layers counted inside Lava. ``input``: a .npy of (neurons, T) or (N, neurons, T) 0/1
    spikes fed to a netx ``.net`` file or a trained run's exported model, which returns the output layer's
    spikes (N, n_out, T) instead of a report (saved to ``save_output`` when given); an imported NIR run
    reports on ``input`` as on its dataset."""
    output = Output.choose(output, progress)
    paths = {key: None if value is None else Path(value)
             for key, value in (("out", out), ("data_dir", data_dir), ("input_npy", input),
                                ("save_output", save_output))}
    request = RunRequest(target=Path(target), backend=registry.backend(backend).name, samples=samples, hw=hw,
                         device=device, require_hardware=require_hardware, allow_synthetic=allow_synthetic,
                         score_on_synthetic=score_on_synthetic, count_only=count_only, **paths)
    if is_imported_run(request.target):
        run_imported(request, console=output.console, err_console=output.err_console)
    else:
        result = execute(request, console=output.console, err_console=output.err_console)
        if isinstance(result, np.ndarray):
            return result
    return Report.load(report_path(request))


def report_path(request: RunRequest) -> Path:
    """Where a run of ``request`` writes its report."""
    folder = Path(request.out) if request.out else Path(request.target) / "reports" / request.backend
    return folder / REPORT_NAME


def demo(out: Path | str = "runs/demo-snn", *, fresh: bool = False, progress: bool = False,
         output: Output | None = None) -> Comparison:
    """The README's first command on the embedded default (synthetic N-MNIST format when no real copy is
    present): an SNN trained (unless ``out`` holds it), exported, run on Lava and the emulator; an LSTM and an
    RNN trained beside ``out`` and run on torch; returns their comparison (written to <out>-compare)."""
    output = Output.choose(output, progress)
    out = Path(out)
    paths = run_demo(out, fresh=fresh, console=output.console, err_console=output.err_console)
    return Comparison.of([out, *(sibling(out, family) for family in DEMO_BASELINES)], paths)
