"""The ``neurodeploy`` command line: a thin layer over library functions that tests call too.

Every :class:`~neurodeploy.errors.UserError` becomes exit code 2 and one line on stderr (no traceback
unless ``--debug``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from neurodeploy import atomic, options, signals
from neurodeploy.backends.registry import CHIP_BACKENDS
from neurodeploy.data.datasets import dataset_kind, resolve_dataset
from neurodeploy.data.info import dataset_info, plot_contrast
from neurodeploy.deploy.export import export_run, print_export_table
from neurodeploy.deploy.lint import lint_architecture, lint_for_training, print_lint
from neurodeploy.deploy.nir_export import export_nir_run, print_nir_export
from neurodeploy.deploy.nir_import import import_nir, print_import_table
from neurodeploy.deploy.run_folder import CHECKPOINT
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import FAMILIES as COST_FAMILIES
from neurodeploy.metrics.cost import print_cost_table, static_cost
from neurodeploy.metrics.hardware import list_profiles, load_profile, print_profile
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.rsnn import DEFAULT_AGGREGATION
from neurodeploy.models.training import FAMILIES, TrainConfig, input_shape_of
from neurodeploy.pipeline import bench as workloads
from neurodeploy.pipeline.demo import run_demo
from neurodeploy.pipeline.nir_run import is_imported_run, run_imported
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import check_train_out
from neurodeploy.pipeline.train import train as run_training
from neurodeploy.reports.compare import load_comparison_rows, print_comparison, write_comparison
from neurodeploy.safe_files import check_regular_file

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer uses click itself
    from click import exceptions as click_exceptions
from neurodeploy.study.results import plan_lines, write_results
from neurodeploy.study.runner import RunOptions, prepare_study_dir, run_study
from neurodeploy.study.spec import load_study

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)
_HELP_ON_NO_ARGS = getattr(click_exceptions, "NoArgsIsHelpError", ())


def _print_error(text: str) -> None:
    message = escape(" ".join(text.split("\n")))  # one line, and no rich markup from file contents
    err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)


class _UserErrorsExit2(typer.core.TyperGroup):
    """Turns UserError, a usage error (an unknown or non-numeric option) and Ctrl-C into a one-line message
    and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            _print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except click_exceptions.UsageError as exc:
            if isinstance(exc, _HELP_ON_NO_ARGS) or (ctx.obj or {}).get("debug"):
                raise
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            _print_error(f"{exc.format_message().rstrip('.')}; see `{command} --help`")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as interrupt:  # Ctrl-C, and SIGTERM / SIGHUP (neurodeploy.signals)
            err_console.print(signals.describe(interrupt), highlight=False)
            raise typer.Exit(signals.exit_code(interrupt)) from None


app = typer.Typer(cls=_UserErrorsExit2, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, export and run spiking networks for Loihi 2; compare them with RNN/LSTM baselines.")
data_app = typer.Typer(cls=_UserErrorsExit2, no_args_is_help=True, help="Datasets: generate, inspect.")
hw_app = typer.Typer(cls=_UserErrorsExit2, no_args_is_help=True, help="Hardware profiles in hw_configs/.")
app.add_typer(data_app, name="data")
app.add_typer(hw_app, name="hw")

BACKENDS = (*CHIP_BACKENDS, "torch")
MAX_INPUT_SIDE = 4096  # event cameras today: up to 1280x720
MAX_INPUT_CHANNELS = 64


@app.callback()
def _root(ctx: typer.Context,
          debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False):
    ctx.obj = {"debug": debug}


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise UserError(f"unknown {option} '{value}'; choose one of {', '.join(allowed)}")
    return value


@app.command()
def train(
    dataset: Annotated[str, typer.Argument(help="nmnist or dvsgesture")],
    model: Annotated[str, typer.Option("--model", help="snn | rnn | lstm | rsnn (ConvLSTM host + spiking chip)")]
    = "snn",
    arch: Annotated[str, typer.Option(help="model file (mlp, cnn, models/*.yaml) or 'Input-512FC-10'")] = "mlp",
    loss: Annotated[str, typer.Option(help="rate (eq. 10/15) or last (eq. 11, rnn/lstm)")] = "rate",
    epochs: Annotated[int, typer.Option(help="epochs (paper: up to 100)")] = 100,
    batch_size: Annotated[Optional[int], typer.Option(help="batch size (paper: 50 N-MNIST, 36 DVS Gesture)")] = None,
    micro_batch: Annotated[Optional[int], typer.Option(
        help="samples per forward/backward pass; gradients accumulate over the batch (less memory, same "
             "gradients; default: the model file's, else the whole batch)")] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 1e-4)")] = 1e-4,
    dt: Annotated[Optional[float], typer.Option(help="frame width dt in ms")] = None,
    steps: Annotated[Optional[int], typer.Option(help="time steps T")] = None,
    limit: Annotated[Optional[int], typer.Option(help="use at most N training samples (class-balanced)")] = None,
    test_limit: Annotated[Optional[int], typer.Option(help="use at most N test samples")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="folder holding the real dataset")] = None,
    no_synthetic: Annotated[bool, typer.Option("--no-synthetic", help="fail instead of using synthetic data")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    out: Annotated[Optional[Path], typer.Option(help="run directory (default runs/<dataset>-<model>-<arch>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out from its checkpoint")] = False,
    no_leak: Annotated[bool, typer.Option("--no-leak", help="snn: no leakage (voltage decay 0, k = 1)")] = False,
    no_reset: Annotated[bool, typer.Option("--no-reset", help="snn: no reset after a spike (float only)")] = False,
    recurrent: Annotated[bool, typer.Option("--recurrent", help="snn: trainable recurrence in hidden dense "
                                                                "layers (netx dense_rec)")] = False,
    leak_tau: Annotated[Optional[float], typer.Option(help="snn: adaptive leakage k = exp(-dt/tau), tau in ms")] = None,
    aggregation: Annotated[Optional[str], typer.Option(
        help="rsnn: front-end steps -> classifier input: last | sum | mean | stack (default mean)")] = None,
):
    """Train an SNN (lava-dl SLAYER CUBA), an RNN/LSTM baseline or an RSNN (docs/rsnn.md)."""
    dataset_kind(dataset)  # an unknown dataset is named as such, before the architecture is looked up in it
    config = TrainConfig(dataset=dataset, family=_choice(model, FAMILIES, "--model"), arch=arch,
                         loss=loss, epochs=epochs, batch_size=batch_size, micro_batch=micro_batch, lr=lr, dt_ms=dt,
                         steps=steps, limit=limit,
                         test_limit=test_limit, data_dir=str(data_dir) if data_dir else None,
                         allow_synthetic=not no_synthetic, seed=seed, device=device, leak=not no_leak,
                         reset=not no_reset, recurrent=recurrent, leak_tau_ms=leak_tau,
                         aggregation=aggregation)
    config.validate()
    run_dir = out or Path("runs") / f"{dataset}-{model}-{Path(arch).stem}"
    check_train_out(run_dir)
    if config.family == "snn":
        lint_for_training(config, console=err_console)
    try:
        result = run_training(config, run_dir, resume=resume, console=err_console)
    except KeyboardInterrupt as interrupt:
        what = signals.describe(interrupt)
        if (Path(run_dir) / CHECKPOINT).exists():
            err_console.print(f"{what}: {run_dir} keeps the checkpoint of the last finished epoch; continue "
                              f"with the same command plus --resume --out {run_dir}", highlight=False, soft_wrap=True)
        else:
            err_console.print(f"{what} before the first epoch finished; nothing to resume, start again",
                              highlight=False)
        raise typer.Exit(signals.exit_code(interrupt)) from None
    console.print(f"run directory: {result.run_dir}")


@app.command()
def study(
    study_file: Annotated[Path, typer.Argument(help="study file, e.g. studies/table12.yaml")],
    address: Annotated[Optional[str], typer.Option(help="Ray cluster: auto or ray://HOST:10001 (default: start "
                                                        "Ray inside this process)")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per cell (also its torch threads)")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per cell (fractions share a GPU)")] = 0.0,
    num_cpus: Annotated[Optional[int], typer.Option(help="embedded Ray: CPUs it may use (default: all)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the cells and the work, run nothing")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue the study in --out; only unfinished cells "
                                                          "run")] = False,
    out: Annotated[Optional[Path], typer.Option(help="study folder (default runs/study-<name>)")] = None,
):
    """Run a comparison grid (the paper's tables) on Ray Tune; write study.csv, study.md and plots."""
    spec = load_study(study_file)
    if dry_run:
        for line in plan_lines(spec):
            console.print(line, highlight=False, soft_wrap=True)
        return
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise UserError(f"--cpus-per-trial must be positive and --gpus-per-trial not negative (got {cpus_per_trial}, "
                        f"{gpus_per_trial})")
    if num_cpus is not None and (num_cpus < 1 or address):
        raise UserError("--num-cpus is for the embedded Ray (no --address) and must be at least 1")
    out = out or Path("runs") / f"study-{spec.name}"
    prepare_study_dir(spec, out, resume)
    outcome = run_study(spec, out, RunOptions(address=address, cpus_per_trial=cpus_per_trial,
                                              gpus_per_trial=gpus_per_trial, resume=resume, num_cpus=num_cpus))
    for path in write_results(spec, outcome, out):
        console.print(f"wrote {path}")
    cells = len(spec.cells())
    console.print(f"study {spec.name}: {cells - len(outcome.failed) - len(outcome.unfinished)}/{cells} cells "
                  f"finished in {outcome.wall_s:.0f} s", highlight=False)
    for failure in outcome.failed:
        err_console.print(f"failed cell {failure.cell}: {failure.error}", highlight=False, soft_wrap=True)
    if outcome.unfinished:
        err_console.print(f"interrupted: {len(outcome.unfinished)} cell(s) unfinished; continue with `neurodeploy "
                          f"study {study_file} --resume --out {out}`", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    if outcome.failed:
        raise typer.Exit(1)


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="a run directory made by `train --model snn`")],
           out: Annotated[Optional[Path], typer.Option(help="output file (default RUN/model.net or RUN/model.nir)")]
           = None,
           accept_quantization_loss: Annotated[bool, typer.Option(
               "--accept-quantization-loss",
               help="export even if a layer loses >1% of its weights to clipping or >50% to rounding to zero")]
           = False,
           fmt: Annotated[str, typer.Option("--format", help="netx (Lava, Loihi 2) or nir (any NIR tool)")]
           = "netx"):
    """Export an SNN run to lava-dl netx HDF5 (reloaded with netx and checked) or to a NIR graph."""
    if _choice(fmt, ("netx", "nir"), "--format") == "nir":
        nir_result = export_nir_run(run_dir, out)
        print_nir_export(nir_result, console)
        return
    result = export_run(run_dir, out, accept_quantization_loss=accept_quantization_loss)
    print_export_table(result, console)
    console.print(f"wrote {result.path} (verified with lava.lib.dl.netx.hdf5.Network)")


@app.command("import")
def import_graph(
    graph: Annotated[Path, typer.Argument(help="a NIR graph (.nir) written by snnTorch, Sinabs, Norse, ...")],
    out: Annotated[Path, typer.Option(help="run folder to create (model.net, model.nir, nir_import.json)")],
    dt: Annotated[Optional[float], typer.Option(help="time step dt in ms that maps time constants to decays "
                                                     "(default 1)")] = None,
    input: Annotated[Optional[str], typer.Option("--input", help="input size HxWxC when the graph's Input is "
                                                                 "flat (e.g. 34x34x2 for N-MNIST)")] = None,
    steps: Annotated[Optional[int], typer.Option(help="time steps T per sample for `run` (default 300 ms / dt)")]
    = None,
):
    """Deploy a NIR graph from any framework: netx for Lava / emulator / Loihi 2, with the graph as float
    reference; `run OUT` then reports the fixed-point network's fidelity to it."""
    record = import_nir(graph, out, dt_ms=dt, input_shape=parse_input_size(input) if input else None, steps=steps)
    print_import_table(record, out, console)
    console.print(f"wrote {out} (model.net, model.nir, nir_import.json); run it with "
                  f"`neurodeploy run {out} --backend emulator`")


@app.command()
def run(
    target: Annotated[Path, typer.Argument(help="run directory (trained or imported), or a netx .net file")],
    backend: Annotated[str, typer.Option(help="lava | loihi2 | emulator | torch")] = "lava",
    samples: Annotated[Optional[int], typer.Option(help="number of test samples")] = None,
    out: Annotated[Optional[Path], typer.Option(help="report folder (default RUN/reports/<backend>)")] = None,
    hw: Annotated[str, typer.Option(help="hardware profile name or YAML file")] = "",
    device: Annotated[str, typer.Option(help="torch backend: cpu or cuda")] = "cpu",
    require_hardware: Annotated[bool, typer.Option("--require-hardware",
                                                   help="loihi2: fail unless a board answers")] = False,
    input_npy: Annotated[Optional[Path], typer.Option("--input", help="spike tensor (neurons x T or N x neurons x "
                                                                      "T) .npy to feed a .net or an imported run")]
    = None,
    save_output: Annotated[Optional[Path], typer.Option(help="save the output spikes (neurons x T) as .npy")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="real dataset folder (overrides the run's)")] = None,
    no_synthetic: Annotated[bool, typer.Option("--no-synthetic", help="fail instead of using synthetic data")] = False,
    score_on_synthetic: Annotated[bool, typer.Option(
        "--score-on-synthetic", help="allow scoring a run trained on real data on synthetic data")] = False,
    count_only: Annotated[bool, typer.Option(
        "--count-only", help="lava: count hidden layers' spikes inside Lava (faster on big test sets); the "
                             "report then has no SANA-FE chip estimate or active neuron updates")] = False,
):
    """Run a trained/exported network on a backend and write the per-layer report."""
    request = RunRequest(target=target, backend=_choice(backend, BACKENDS, "--backend"), samples=samples, out=out,
                         hw=hw or None, device=device, require_hardware=require_hardware, input_npy=input_npy,
                         save_output=save_output, data_dir=data_dir, allow_synthetic=not no_synthetic,
                         score_on_synthetic=score_on_synthetic, count_only=count_only)
    if is_imported_run(target):
        run_imported(request, console=console, err_console=err_console)
    else:
        execute(request, console=console, err_console=err_console)


@app.command()
def compare(targets: Annotated[list[Path], typer.Argument(help="run directories or run_report.json files")],
            out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/compare")):
    """One table (Markdown, CSV) and an accuracy-vs-energy plot over several runs."""
    rows = load_comparison_rows(list(targets))
    paths = write_comparison(rows, out)
    print_comparison(rows, console)
    for path in paths:
        console.print(f"wrote {path}")


INPUT_HELP = "input size HxWxC (default: the sensor of the model file's dataset, else of --dataset)"
DATASET_HELP = "dataset whose model files to search (default: nmnist)"


def resolve_arch_and_input(arch: str, input: str | None, dataset: str | None):
    """The architecture of ``arch`` and its input shape (C, H, W): ``--input`` when given, else the sensor of
    the dataset the model file is written for (its first), else of ``--dataset`` (default nmnist)."""
    model = resolve_arch(arch, dataset or "nmnist")
    if input is not None:
        return model.arch, parse_input_size(input)
    source = dataset or next(iter(model.datasets), "nmnist")
    return model.arch, input_shape_of(dataset_kind(source).sensor_size)


@app.command()
def cost(arch: Annotated[str, typer.Argument(help="model file name or architecture string")],
         input: Annotated[Optional[str], typer.Option("--input", help=INPUT_HELP)] = None,
         family: Annotated[str, typer.Option(help="snn | rnn | lstm | ann | rsnn")] = "snn",
         dataset: Annotated[Optional[str], typer.Option(help=DATASET_HELP)] = None,
         aggregation: Annotated[str, typer.Option(help="rsnn: last | sum | mean | stack")] = DEFAULT_AGGREGATION,
         steps: Annotated[int, typer.Option(help="rsnn: time steps T (the stack aggregation has C x T channels)")]
         = 1,
         as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Static parameter, memory and per-step operation counts (conventions: docs/cost.md, docs/rsnn.md)."""
    architecture, shape = resolve_arch_and_input(arch, input, dataset)
    options.check_binning(None, steps)
    report = static_cost(architecture, shape, _choice(family, COST_FAMILIES, "--family"),
                         aggregation=aggregation, steps=steps)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_cost_table(report, console)


def parse_input_size(text: str) -> tuple[int, int, int]:
    """'34x34x2' (H x W x C) -> (C, H, W)."""
    try:
        height, width, channels = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--input '{text}' is not HxWxC, e.g. 34x34x2") from None
    if min(height, width, channels) < 1:
        raise UserError(f"--input '{text}' has a zero size")
    if max(height, width) > MAX_INPUT_SIDE or channels > MAX_INPUT_CHANNELS:
        raise UserError(f"--input '{text}' is too large; sides up to {MAX_INPUT_SIDE}, channels up to "
                        f"{MAX_INPUT_CHANNELS}")
    return (channels, height, width)


@app.command()
def lint(arch: Annotated[str, typer.Argument(help="model file name or architecture string")],
         input: Annotated[Optional[str], typer.Option("--input", help=INPUT_HELP)] = None,
         hw: Annotated[str, typer.Option(help="hardware profile")] = "loihi2",
         dataset: Annotated[Optional[str], typer.Option(help=DATASET_HELP)] = None):
    """Check that an SNN architecture maps onto netx/Lava and fits the chip, before training."""
    architecture, shape = resolve_arch_and_input(arch, input, dataset)
    result = lint_architecture(architecture, shape, hw)
    print_lint(result, console)
    if not result.ok:
        raise UserError(result.first_problem())


@app.command()
def bench(workload: Annotated[str, typer.Option(
              help="backends: emulator vs Lava on a netx file; testset: a whole N-MNIST-format test set "
                   "through `run --backend emulator`; conv: emulator vs Lava on a conv SNN (the DVS Gesture CNN)"
          )] = "backends",
          net: Annotated[Optional[Path], typer.Option(help="backends: netx file (default: random 2312-512-10)")] = None,
          samples: Annotated[Optional[int], typer.Option(
              help="Lava samples per measurement (backends 20, conv 1); testset: test samples (10000)")] = None,
          steps: Annotated[Optional[str], typer.Option(
              help="comma-separated T values (backends 15,300; conv 60)")] = None,
          density: Annotated[float, typer.Option(help="input spike probability per step")] = 0.03,
          arch: Annotated[Optional[str], typer.Option(
              help="conv: architecture string (default: the DVS Gesture CNN)")] = None,
          input: Annotated[str, typer.Option("--input", help="conv: input size HxWxC")] = "128x128x2",
          emulator_samples: Annotated[Optional[int], typer.Option(
              help="emulator samples (backends 1000, conv 10)")] = None,
          data_dir: Annotated[Optional[Path], typer.Option(
              help="testset: an N-MNIST-format folder (default: generate a synthetic one)")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Throughput workloads: emulator vs Lava samples/s (bit-exactness checked), or a whole test set's time."""
    workload = _choice(workload, workloads.WORKLOADS, "--workload")
    options.check("--samples", samples)
    options.check("--samples", emulator_samples)
    options.check("--density", density)
    step_list = None
    if steps:
        try:
            step_list = [int(s) for s in steps.split(",")]
        except ValueError:
            raise UserError(f"--steps '{steps}' is not a comma-separated list of whole numbers, e.g. 15,300") from None
        for value in step_list:
            options.check_binning(None, value)
    if net is not None:
        check_regular_file(net, "--net")
    if workload == "testset":
        result = workloads.run_testset_benchmark(samples or 10_000, data_dir=data_dir)
    elif workload == "conv":
        result = workloads.run_conv_benchmark(arch or workloads.DVS_CNN, parse_input_size(input),
                                              samples=samples or 1, steps=(step_list or [60])[0], density=density,
                                              emulator_samples=emulator_samples or 10)
    else:
        result = workloads.run_benchmark(net, samples=samples or 20, steps=step_list or [15, 300], density=density,
                                         emulator_samples=emulator_samples or 1000)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        console.print_json(json.dumps(result))


@data_app.command("generate")
def data_generate(dataset: Annotated[str, typer.Argument(help="nmnist or dvsgesture")],
                  out: Annotated[Path, typer.Option(help="output folder")],
                  seed: Annotated[int, typer.Option(help="random seed")] = 0,
                  train_per_class: Annotated[Optional[int], typer.Option(help="training samples per class")] = None,
                  test_per_class: Annotated[Optional[int], typer.Option(help="test samples per class")] = None,
                  source: Annotated[Optional[str], typer.Option(
                      help="nmnist only: digits shown, mnist-digits (default) or sklearn-digits")] = None):
    """Write a synthetic dataset in the real on-disk format (it is labelled synthetic everywhere)."""
    options.check("--seed", seed)
    options.check("--train-per-class", train_per_class)
    options.check("--test-per-class", test_per_class)
    atomic.check_writable_dir(out)
    kind = dataset_kind(dataset)
    sizes = {k: v for k, v in (("train_per_class", train_per_class), ("test_per_class", test_per_class))
             if v is not None}
    if source is not None:
        if dataset != "nmnist":
            raise UserError(f"--source {source}: only the synthetic nmnist has a choice of source digits; "
                            "drop --source")
        sizes["source"] = source
    path = kind.generate(out, seed=seed, **sizes)
    console.print(f"wrote synthetic {dataset}-format data to {path}")


@data_app.command("info")
def data_info(dataset: Annotated[str, typer.Argument(help="nmnist or dvsgesture")],
              dt: Annotated[Optional[float], typer.Option(help="frame width dt in ms")] = None,
              steps: Annotated[Optional[int], typer.Option(help="time steps T")] = None,
              limit: Annotated[int, typer.Option(help="samples used for statistics")] = 200,
              data_dir: Annotated[Optional[Path], typer.Option(help="real dataset folder")] = None,
              no_synthetic: Annotated[bool, typer.Option("--no-synthetic")] = False,
              out: Annotated[Path, typer.Option(help="folder for the heat-map PNG")] = Path("runs/data-info")):
    """Sample counts, events per sample, frame density and temporal contrast (source paper eq. 16-17)."""
    options.check_binning(dt, steps)
    options.check("--limit", limit)
    atomic.check_writable_dir(out)
    source = resolve_dataset(dataset, data_dir, allow_synthetic=not no_synthetic)
    defaults = {"nmnist": (10.0, 15), "dvsgesture": (5.0, 60)}.get(dataset, (5.0, 15))
    info = dataset_info(source, dt_ms=defaults[0] if dt is None else dt, steps=defaults[1] if steps is None else steps,
                        limit=limit)
    data = info.to_dict()
    path = plot_contrast(info.contrast.matrix, Path(out) / f"{dataset}_temporal_contrast.png",
                         title=f"Temporal contrast, {source.source} {dataset}, dt {info.dt_ms} ms")
    atomic.write_json(Path(out) / f"{dataset}_info.json", data)
    console.print_json(json.dumps({k: v for k, v in data.items() if k != "contrast_matrix"}, default=str))
    console.print(f"wrote {path} and {Path(out) / f'{dataset}_info.json'}")


@hw_app.command("list")
def hw_list():
    """Known hardware profiles."""
    for name in list_profiles():
        console.print(name)


@hw_app.command("show")
def hw_show(name: Annotated[str, typer.Argument(help="profile name or YAML file")]):
    """Every coefficient of a profile with its source."""
    print_profile(load_profile(name), console)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="run directory")] = Path("runs/demo-snn"),
         fresh: Annotated[bool, typer.Option("--fresh", help="retrain even if the run exists")] = False):
    """train -> export -> run (lava) -> report on the embedded default (synthetic N-MNIST format)."""
    run_demo(out, fresh=fresh, console=console, err_console=err_console)


def main() -> None:
    """Entry point of the ``neurodeploy`` script."""
    signals.install()
    app(prog_name="neurodeploy")


if __name__ == "__main__":
    sys.exit(main())
