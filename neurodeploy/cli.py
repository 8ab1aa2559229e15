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

from neurodeploy import atomic
from neurodeploy.backends.registry import CHIP_BACKENDS
from neurodeploy.data.datasets import dataset_kind, resolve_dataset
from neurodeploy.data.info import dataset_info, plot_contrast
from neurodeploy.deploy.export import export_run, print_export_table
from neurodeploy.deploy.lint import lint_architecture, lint_for_training, print_lint
from neurodeploy.deploy.run_folder import CHECKPOINT
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import print_cost_table, static_cost
from neurodeploy.metrics.hardware import list_profiles, load_profile, print_profile
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.bench import run_benchmark
from neurodeploy.pipeline.demo import run_demo
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train as run_training
from neurodeploy.reports.compare import load_comparison_rows, print_comparison, write_comparison

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


class _UserErrorsExit2(typer.core.TyperGroup):
    """Turns UserError (and Ctrl-C) into a one-line message and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            message = escape(" ".join(str(exc).split("\n")))  # one line, and no rich markup from file contents
            err_console.print(f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(cls=_UserErrorsExit2, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, export and run spiking networks for Loihi 2; compare them with RNN/LSTM baselines.")
data_app = typer.Typer(cls=_UserErrorsExit2, no_args_is_help=True, help="Datasets: generate, inspect.")
hw_app = typer.Typer(cls=_UserErrorsExit2, no_args_is_help=True, help="Hardware profiles in hw_configs/.")
app.add_typer(data_app, name="data")
app.add_typer(hw_app, name="hw")

BACKENDS = (*CHIP_BACKENDS, "torch")


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
    model: Annotated[str, typer.Option("--model", help="snn | rnn | lstm")] = "snn",
    arch: Annotated[str, typer.Option(help="model file (mlp, cnn, models/*.yaml) or 'Input-512FC-10'")] = "mlp",
    loss: Annotated[str, typer.Option(help="rate (eq. 10/15) or last (eq. 11, rnn/lstm)")] = "rate",
    epochs: Annotated[int, typer.Option(help="epochs (paper: up to 100)")] = 100,
    batch_size: Annotated[Optional[int], typer.Option(help="batch size (paper: 50 N-MNIST, 36 DVS Gesture)")] = None,
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
):
    """Train an SNN (lava-dl SLAYER CUBA) or an RNN/LSTM baseline."""
    config = TrainConfig(dataset=dataset, family=_choice(model, ("snn", "rnn", "lstm"), "--model"), arch=arch,
                         loss=loss, epochs=epochs, batch_size=batch_size, lr=lr, dt_ms=dt, steps=steps, limit=limit,
                         test_limit=test_limit, data_dir=str(data_dir) if data_dir else None,
                         allow_synthetic=not no_synthetic, seed=seed, device=device)
    config.validate()
    run_dir = out or Path("runs") / f"{dataset}-{model}-{Path(arch).stem}"
    if config.family == "snn":
        lint_for_training(config, console=err_console)
    try:
        result = run_training(config, run_dir, resume=resume, console=err_console)
    except KeyboardInterrupt:
        if (Path(run_dir) / CHECKPOINT).exists():
            err_console.print(f"interrupted: {run_dir} keeps the checkpoint of the last finished epoch; continue "
                              f"with the same command plus --resume --out {run_dir}", highlight=False, soft_wrap=True)
        else:
            err_console.print("interrupted before the first epoch finished; nothing to resume, start again",
                              highlight=False)
        raise typer.Exit(130) from None
    console.print(f"run directory: {result.run_dir}")


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="a run directory made by `train --model snn`")],
           out: Annotated[Optional[Path], typer.Option(help="output file (default RUN/model.net)")] = None):
    """Export an SNN run to lava-dl netx HDF5, reload it with netx and check it."""
    result = export_run(run_dir, out)
    print_export_table(result, console)
    console.print(f"wrote {result.path} (verified with lava.lib.dl.netx.hdf5.Network)")


@app.command()
def run(
    target: Annotated[Path, typer.Argument(help="run directory, or a netx .net file")],
    backend: Annotated[str, typer.Option(help="lava | loihi2 | emulator | torch")] = "lava",
    samples: Annotated[Optional[int], typer.Option(help="number of test samples")] = None,
    out: Annotated[Optional[Path], typer.Option(help="report folder (default RUN/reports/<backend>)")] = None,
    hw: Annotated[str, typer.Option(help="hardware profile name or YAML file")] = "",
    device: Annotated[str, typer.Option(help="torch backend: cpu or cuda")] = "cpu",
    require_hardware: Annotated[bool, typer.Option("--require-hardware",
                                                   help="loihi2: fail unless a board answers")] = False,
    input_npy: Annotated[Optional[Path], typer.Option("--input",
                                                      help="spike tensor (neurons x T) .npy to feed a .net")] = None,
    save_output: Annotated[Optional[Path], typer.Option(help="save the output spikes (neurons x T) as .npy")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="real dataset folder (overrides the run's)")] = None,
    no_synthetic: Annotated[bool, typer.Option("--no-synthetic", help="fail instead of using synthetic data")] = False,
):
    """Run a trained/exported network on a backend and write the per-layer report."""
    request = RunRequest(target=target, backend=_choice(backend, BACKENDS, "--backend"), samples=samples, out=out,
                         hw=hw or None, device=device, require_hardware=require_hardware, input_npy=input_npy,
                         save_output=save_output, data_dir=data_dir, allow_synthetic=not no_synthetic)
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


@app.command()
def cost(arch: Annotated[str, typer.Argument(help="model file name or architecture string")],
         input: Annotated[str, typer.Option("--input", help="input size HxWxC")] = "34x34x2",
         family: Annotated[str, typer.Option(help="snn | rnn | lstm | ann")] = "snn",
         dataset: Annotated[str, typer.Option(help="dataset whose model files to search")] = "nmnist",
         as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Static parameter, memory and per-step operation counts (SPEC 5.1)."""
    report = static_cost(resolve_arch(arch, dataset).arch, parse_input_size(input),
                         _choice(family, ("snn", "rnn", "lstm", "ann"), "--family"))
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
    return (channels, height, width)


@app.command()
def lint(arch: Annotated[str, typer.Argument(help="model file name or architecture string")],
         input: Annotated[str, typer.Option("--input", help="input size HxWxC")] = "34x34x2",
         hw: Annotated[str, typer.Option(help="hardware profile")] = "loihi2",
         dataset: Annotated[str, typer.Option(help="dataset whose model files to search")] = "nmnist"):
    """Check that an SNN architecture maps onto netx/Lava and fits the chip, before training."""
    result = lint_architecture(resolve_arch(arch, dataset).arch, parse_input_size(input), hw)
    print_lint(result, console)
    if not result.ok:
        raise UserError(result.first_problem())


@app.command()
def bench(net: Annotated[Optional[Path], typer.Option(help="netx file (default: random 2312-512-10)")] = None,
          samples: Annotated[int, typer.Option(help="samples per measurement")] = 20,
          steps: Annotated[str, typer.Option(help="comma-separated T values")] = "15,300",
          density: Annotated[float, typer.Option(help="input spike probability per step")] = 0.03,
          as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Emulator vs Lava samples/s on the same inputs, with a bit-exactness check."""
    result = run_benchmark(net, samples=samples, steps=[int(s) for s in steps.split(",")], density=density)
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
    kind = dataset_kind(dataset)
    options = {k: v for k, v in (("train_per_class", train_per_class), ("test_per_class", test_per_class))
               if v is not None}
    if any(v < 1 for v in options.values()):
        raise UserError("--train-per-class and --test-per-class must be at least 1")
    if source is not None:
        if dataset != "nmnist":
            raise UserError(f"--source {source}: only the synthetic nmnist has a choice of source digits; "
                            "drop --source")
        options["source"] = source
    path = kind.generate(out, seed=seed, **options)
    console.print(f"wrote synthetic {dataset}-format data to {path}")


@data_app.command("info")
def data_info(dataset: Annotated[str, typer.Argument(help="nmnist or dvsgesture")],
              dt: Annotated[Optional[float], typer.Option(help="frame width dt in ms")] = None,
              steps: Annotated[Optional[int], typer.Option(help="time steps T")] = None,
              limit: Annotated[int, typer.Option(help="samples used for statistics")] = 200,
              data_dir: Annotated[Optional[Path], typer.Option(help="real dataset folder")] = None,
              no_synthetic: Annotated[bool, typer.Option("--no-synthetic")] = False,
              out: Annotated[Path, typer.Option(help="folder for the heat-map PNG")] = Path("runs/data-info")):
    """Sample counts, events per sample, frame density and temporal contrast (SPEC 2.4)."""
    source = resolve_dataset(dataset, data_dir, allow_synthetic=not no_synthetic)
    defaults = {"nmnist": (10.0, 15), "dvsgesture": (5.0, 60)}.get(dataset, (5.0, 15))
    info = dataset_info(source, dt_ms=dt or defaults[0], steps=steps or defaults[1], limit=limit)
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
    app(prog_name="neurodeploy")


if __name__ == "__main__":
    sys.exit(main())
