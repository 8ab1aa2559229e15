"""The ``neurodeploy`` command line: a thin layer over the public Python API (:mod:`neurodeploy.api`,
docs/api.md), which it calls with its consoles so that commands print what they always printed.

Every :class:`~neurodeploy.errors.UserError` becomes exit code 2 and one line on stderr (no traceback
unless ``--debug``).
"""

from __future__ import annotations

import errno
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

import neurodeploy as nd
from neurodeploy import signals

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer uses click itself
    from click import exceptions as click_exceptions

_display_type_rich = typer.core.TyperOption.display_type_rich


def _flag_shows_no_type(self, ctx):
    """A flag (--resume, --help) takes no value: typer's help would show it a ``<bool>`` type; show none."""
    return None if self.is_flag else _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_shows_no_type


def resume_command(argv: list[str], out: Path) -> str:
    """The exact command that continues an interrupted one: its own arguments, plus ``--resume`` and ``--out``
    where it did not have them."""
    args = list(argv)
    if "--resume" not in args:
        args.append("--resume")
    if not any(arg == "--out" or arg.startswith("--out=") for arg in args):
        args += ["--out", str(out)]
    return shlex.join(["neurodeploy", *args])


console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)
OUTPUT = nd.Output(console, err_console)  # API calls print what the commands always printed
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
        except nd.UserError as exc:
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
        except OSError as exc:  # a name the OS refuses that slipped past safe_files.check_path_name
            if exc.errno != errno.ENAMETOOLONG or (ctx.obj or {}).get("debug"):
                raise
            _print_error(f"{str(exc.filename)[:80]}...: file name too long; choose a shorter path")
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



@app.callback()
def _root(ctx: typer.Context,
          debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False):
    ctx.obj = {"debug": debug}


DEVICE_HELP = ("cpu, cuda, cuda:N, or auto (the GPU when torch can use one); cuda without a usable GPU is an error "
               "(docs/gpu.md)")

@app.command()
def train(
    dataset: Annotated[str, typer.Argument(help="nmnist or dvsgesture (events); mnist (static images)")],
    model: Annotated[str, typer.Option("--model", help="snn | rnn | lstm | rsnn (ConvLSTM host + spiking chip) | ann "
                                                       "(ReLU, no bias; mnist for `convert`, events with --frames) | "
                                                       "tcnn (3D temporal CNN, Deng Table 7)")]
    = "snn",
    arch: Annotated[Optional[str], typer.Option(help="model file (mlp, cnn, models/*.yaml) or 'Input-512FC-10' "
                                                     "(default: the dataset's, mlp)")] = None,
    loss: Annotated[str, typer.Option(help="rate (eq. 10/15) or last (eq. 11, rnn/lstm)")] = "rate",
    preset: Annotated[Optional[str], typer.Option(
        help="fast: 8 epochs at lr 1e-3 (the demo's; minutes on 2 cores) | paper: 100 epochs at lr 1e-4 (Table IV); "
             "--epochs / --lr override it (default fast)")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="epochs (default: the preset's; a resumed run keeps "
                                                       "its own)")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="batch size (paper: 50 N-MNIST, 36 DVS Gesture)")] = None,
    micro_batch: Annotated[Optional[int], typer.Option(
        help="samples per forward/backward pass; gradients accumulate over the batch (less memory, same "
             "gradients; default: the model file's, else the whole batch)")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate (default: the preset's; paper: "
                                                    "1e-4)")] = None,
    dt: Annotated[Optional[float], typer.Option(help="frame width dt in ms")] = None,
    steps: Annotated[Optional[int], typer.Option(help="time steps T")] = None,
    limit: Annotated[Optional[int], typer.Option(help="use at most N training samples (class-balanced)")] = None,
    test_limit: Annotated[Optional[int], typer.Option(help="use at most N test samples")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="folder holding the real dataset")] = None,
    no_synthetic: Annotated[bool, typer.Option("--no-synthetic", help="fail instead of using synthetic data")] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "cpu",
    out: Annotated[Optional[Path], typer.Option(help="run directory (default runs/<dataset>-<model>-<arch>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out from its checkpoint")] = False,
    no_leak: Annotated[bool, typer.Option("--no-leak", help="snn: no leakage (voltage decay 0, k = 1)")] = False,
    no_reset: Annotated[bool, typer.Option("--no-reset", help="snn: no reset after a spike (float only)")] = False,
    recurrent: Annotated[bool, typer.Option("--recurrent", help="snn: trainable recurrence in hidden dense "
                                                                "layers (netx dense_rec)")] = False,
    leak_tau: Annotated[Optional[float], typer.Option(help="snn: adaptive leakage k = exp(-dt/tau), tau in ms")] = None,
    aggregation: Annotated[Optional[str], typer.Option(
        help="rsnn: front-end steps -> classifier input: last | sum | mean | stack (default mean)")] = None,
    frames: Annotated[Optional[str], typer.Option(
        help="ann on event datasets: binary (T binary frames unfolded, stride-2 convs; Deng Model-4) | "
             "intensity (normalised counts; Model-5); docs/frames.md")] = None,
):
    """Train an SNN (lava-dl SLAYER CUBA), an RNN/LSTM baseline or an RSNN (docs/rsnn.md)."""
    run_dir = out or nd.default_run_dir(dataset, model, arch)
    try:
        result = nd.train(dataset, model, arch=arch, loss=loss, preset=preset, epochs=epochs, batch_size=batch_size,
                          micro_batch=micro_batch, lr=lr, dt=dt, steps=steps, limit=limit, test_limit=test_limit,
                          data_dir=data_dir, allow_synthetic=not no_synthetic, seed=seed, device=device, out=run_dir,
                          resume=resume, leak=not no_leak, reset=not no_reset, recurrent=recurrent, leak_tau=leak_tau,
                          aggregation=aggregation, frames=frames, output=OUTPUT)
    except KeyboardInterrupt as interrupt:
        what = signals.describe(interrupt)
        if _resumable(run_dir):
            err_console.print(f"{what}: {run_dir} keeps the checkpoint of the last finished epoch; continue with: "
                              f"{resume_command(sys.argv[1:], run_dir)}", highlight=False, soft_wrap=True)
        else:
            err_console.print(f"{what} before the first epoch finished; nothing to resume, start again",
                              highlight=False)
        raise typer.Exit(signals.exit_code(interrupt)) from None
    console.print(f"run directory: {result.path}")


def _resumable(run_dir: Path) -> bool:
    try:
        return nd.open_run(run_dir).resumable
    except nd.UserError:  # interrupted before the run folder was written
        return False

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
    result = nd.study(study_file, address=address, resume=resume, out=out, cpus_per_trial=cpus_per_trial,
                      gpus_per_trial=gpus_per_trial, num_cpus=num_cpus, dry_run=dry_run, output=OUTPUT)
    if dry_run:
        return
    outcome = result.outcome
    console.print(f"study {result.name}: {result.finished}/{result.cells} cells finished in {outcome.wall_s:.0f} s",
                  highlight=False)
    for failure in outcome.failed:
        err_console.print(f"failed cell {failure.cell}: {failure.error}", highlight=False, soft_wrap=True)
    if outcome.unfinished:
        err_console.print(f"interrupted: {len(outcome.unfinished)} cell(s) unfinished; continue with: "
                          f"{resume_command(sys.argv[1:], result.out)}", highlight=False, soft_wrap=True)
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
    nd.export(run_dir, fmt, out=out, accept_quantization_loss=accept_quantization_loss, output=OUTPUT)

@app.command()
def convert(run_dir: Annotated[Path, typer.Argument(help="an ANN run made by `train mnist --model ann`")],
            out: Annotated[Optional[Path], typer.Option(help="the SNN run folder to create (default RUN-snn)")] = None,
            steps: Annotated[Optional[int], typer.Option(help="window T of the SNN's runs (default 500, Deng et al. "
                                                              "Table 2 on MNIST)")] = None,
            norm: Annotated[str, typer.Option(help="weight normalisation: max (Diehl et al. 2015) or p99.9")] = "max",
            norm_limit: Annotated[Optional[int], typer.Option(help="training images for the normalisation "
                                                                   "(default all)")] = None,
            samples: Annotated[Optional[int], typer.Option(help="test images of the accuracy-vs-window curve "
                                                                "(default all)")] = None):
    """ANN -> SNN conversion (IF neurons, data-based normalisation, Bernoulli input; docs/conversion.md):
    an SNN run folder exported to netx, with its accuracy-vs-window curve; then `run OUT --backend emulator`."""
    nd.convert(run_dir, out=out, steps=steps, norm=norm, norm_limit=norm_limit, samples=samples, output=OUTPUT)

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
    nd.import_nir(graph, out, dt=dt, input=input, steps=steps, output=OUTPUT)

@app.command()
def run(
    target: Annotated[Path, typer.Argument(help="run directory (trained or imported), or a netx .net file")],
    backend: Annotated[str, typer.Option(help=nd.backend_choices())] = "lava",
    samples: Annotated[Optional[int], typer.Option(help="number of test samples")] = None,
    out: Annotated[Optional[Path], typer.Option(help="report folder (default RUN/reports/<backend>)")] = None,
    hw: Annotated[str, typer.Option(help="hardware profile name or YAML file")] = "",
    device: Annotated[str, typer.Option(help=DEVICE_HELP + "; SNN runs and chip backends use the CPU")] = "cpu",
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
    nd.run(target, backend, samples=samples, out=out, hw=hw or None, device=device, require_hardware=require_hardware,
           input=input_npy, save_output=save_output, data_dir=data_dir, allow_synthetic=not no_synthetic,
           score_on_synthetic=score_on_synthetic, count_only=count_only, output=OUTPUT)

@app.command()
def compare(targets: Annotated[list[Path], typer.Argument(help="run directories or run_report.json files")],
            out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/compare")):
    """One table (Markdown, CSV) and an accuracy-vs-energy plot over several runs."""
    nd.compare(list(targets), out=out, output=OUTPUT)

INPUT_HELP = "input size HxWxC (default: the sensor of the model file's dataset, else of --dataset)"
DATASET_HELP = "dataset whose model files to search (default: nmnist)"


@app.command()
def cost(arch: Annotated[str, typer.Argument(help="model file name or architecture string")],
         input: Annotated[Optional[str], typer.Option("--input", help=INPUT_HELP)] = None,
         family: Annotated[str, typer.Option(help="snn | rnn | lstm | ann | rsnn")] = "snn",
         dataset: Annotated[Optional[str], typer.Option(help=DATASET_HELP)] = None,
         aggregation: Annotated[Optional[str], typer.Option(help="rsnn: last | sum | mean | stack (default mean)")]
         = None,
         steps: Annotated[int, typer.Option(help="rsnn: time steps T (the stack aggregation has C x T channels); "
                                                 "ann --frames binary: T binary frames")] = 1,
         frames: Annotated[Optional[str], typer.Option(
             help="ann on event data: binary (T frames unfolded, Deng Model-4) | intensity (normalised counts, "
                  "Model-5)")] = None,
         as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Static parameter, memory and per-step operation counts (conventions: docs/cost.md, docs/rsnn.md)."""
    report = nd.cost(arch, family=family, dataset=dataset, input=input, aggregation=aggregation, steps=steps,
                     frames=frames, output=None if as_json else OUTPUT)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))

@app.command()
def lint(arch: Annotated[str, typer.Argument(help="model file name or architecture string")],
         input: Annotated[Optional[str], typer.Option("--input", help=INPUT_HELP)] = None,
         hw: Annotated[str, typer.Option(help="hardware profile")] = "loihi2",
         dataset: Annotated[Optional[str], typer.Option(help=DATASET_HELP)] = None):
    """Check that an SNN architecture maps onto netx/Lava and fits the chip, before training."""
    result = nd.lint(arch, input=input, hw=hw, dataset=dataset, output=OUTPUT)
    if not result.ok:
        raise nd.UserError(result.first_problem())

@app.command()
def bench(workload: Annotated[str, typer.Option(
              help="backends: emulator vs Lava on a netx file; testset: a whole N-MNIST-format test set "
                   "through `run --backend emulator`; conv: emulator vs Lava on a conv SNN (the DVS Gesture CNN); "
                   "pilotnet: lava-dl's PilotNet LIF through the emulator and chip model beside Intel's measured "
                   "Loihi 2 figures (docs/chip_model.md)"
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
          frame_rate: Annotated[Optional[float], typer.Option(
              help="pilotnet: frames per second of a real-time stream; static energy = static power / frame rate "
                   "(default: frames back to back, static power x the chip time per frame)")] = None,
          layers: Annotated[Optional[int], typer.Option(
              help="pilotnet: keep the first N file layers (a quick, cropped run; not comparable with Intel)")] = None,
          crop_width: Annotated[Optional[int], typer.Option(
              help="pilotnet: only the input and conv layers on the image's first N columns (quick check)")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False):
    """Throughput workloads: emulator vs Lava samples/s (bit-exactness checked), or a whole test set's time;
    pilotnet: chip estimates per frame beside Intel's Loihi 2 measurements."""
    result = nd.bench(workload, net=net, samples=samples, steps=steps, density=density, arch=arch, input=input,
                      emulator_samples=emulator_samples, data_dir=data_dir, frame_rate=frame_rate, layers=layers,
                      crop_width=crop_width, output=None if as_json else OUTPUT)
    if workload == "pilotnet" and not as_json:  # its table was printed
        return
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
    path = nd.generate_data(dataset, out, seed=seed, train_per_class=train_per_class, test_per_class=test_per_class,
                            source=source)
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
    nd.dataset_info(dataset, dt=dt, steps=steps, limit=limit, data_dir=data_dir, allow_synthetic=not no_synthetic,
                    out=out, output=OUTPUT)

@hw_app.command("list")
def hw_list():
    """Known hardware profiles."""
    for name in nd.hardware_profiles():
        console.print(name)

@hw_app.command("show")
def hw_show(name: Annotated[str, typer.Argument(help="profile name or YAML file")]):
    """Every coefficient of a profile with its source."""
    nd.hardware_profile(name, output=OUTPUT)

@app.command()
def demo(out: Annotated[Path, typer.Option(help="the SNN's run directory")] = Path("runs/demo-snn"),
         fresh: Annotated[bool, typer.Option("--fresh", help="retrain even if the run exists")] = False):
    """The main job end to end on the embedded default (synthetic N-MNIST format): an SNN trained, exported, run
    on Lava and the emulator; an LSTM and an RNN trained on the same data; compare's table and plot. The
    baselines and the comparison go beside --out (runs/demo-lstm, runs/demo-rnn, runs/demo-compare)."""
    nd.demo(out, fresh=fresh, output=OUTPUT)

def main() -> None:
    """Entry point of the ``neurodeploy`` script."""
    signals.install()
    app(prog_name="neurodeploy")


if __name__ == "__main__":
    sys.exit(main())
