"""``neurodeploy run``: execute a trained or exported network on a backend and write its report.

Backends (:mod:`neurodeploy.backends.registry`):
``lava`` (Lava CPU simulator, fixed_pt, mode ``simulated``), ``loihi2`` (a Loihi 2 board
when Intel's lava-loihi finds one, mode ``hardware``; otherwise the bit-exact emulator with a banner, mode
``emulated``), ``emulator`` (neurodeploy's vectorised fixed-point emulator, mode ``emulated``) and ``torch``
(the trained float model, mode ``float``).

For chip backends the same samples also run through the trained float (SLAYER) model, and the report's
``parity`` block compares the two: accuracies, per-layer spike counts and the first (layer, step) where the
spike trains differ. SLAYER blocks delay their output by one step per layer (``delay_shift``) exactly as
Lava's synapses do (docs/fixed_point.md), so spike trains are compared index for index.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from neurodeploy import atomic, run_lock
from neurodeploy.backends.registry import CHIP_BACKENDS, ChipExecution, chip_backend, default_profile
from neurodeploy.backends.torch_float import float_layer_spikes
from neurodeploy.deploy.export import MODEL_FILE, check_export_is_current
from neurodeploy.deploy.netx import load_netx
from neurodeploy.deploy.run_folder import load_run_config, load_trained_network
from neurodeploy.errors import UserError
from neurodeploy.metrics.activity import LayerActivity
from neurodeploy.metrics.cost import layer_names
from neurodeploy.metrics.parity import compare_spikes
from neurodeploy.metrics.run_metrics import sample_set_digest
from neurodeploy.models.snn import downsample_events
from neurodeploy.pipeline.baseline import run_baseline
from neurodeploy.pipeline.request import RunRequest, load_test_frames
from neurodeploy.reports.render import print_layer_table, print_summary, write_run_report
from neurodeploy.reports.snn import build_snn_report
from neurodeploy.safe_files import load_npy

LAVA_DEFAULT_SAMPLES = 500


def execute(request: RunRequest, *, console, err_console):
    """Run ``request`` and write/print its report; returns the report dict (or the output array for --input)."""
    request.validate()
    target = Path(request.target)
    if not target.is_dir():  # a .net file (or a special file, which load_netx refuses)
        if target.suffix != ".net" and request.input_npy is None:
            raise UserError(f"{target}: expected a run directory or a netx .net file")
        if request.input_npy is None:
            raise UserError(f"{target}: running a bare .net file needs --input X.npy (neurons x T spikes); "
                            "or pass the run directory to evaluate on its dataset")
        return run_external_input(request, console=console, err_console=err_console)
    with run_lock.hold(target, "run folder"):
        if request.input_npy is not None or request.save_output is not None:
            return run_folder_input(request, console=console, err_console=err_console)
        return _execute_run_dir(request, target, console=console, err_console=err_console)


def _execute_run_dir(request: RunRequest, target: Path, *, console, err_console):
    config = load_run_config(target)
    if config.family != "snn":
        if request.backend != "torch":
            raise UserError(f"{target}: a {config.family} run executes on --backend torch only (CPU/GPU); "
                            "chip backends run spiking networks")
        return run_baseline(request, config, console=console, err_console=err_console)
    return run_snn(request, config, console=console, err_console=err_console)


def run_folder_input(request: RunRequest, *, console, err_console) -> np.ndarray:
    """``run RUN --input X.npy [--save-output Y.npy]``: feed X to the run's exported ``model.net``."""
    run_dir = Path(request.target)
    if request.input_npy is None:
        raise UserError(f"--save-output on {run_dir} needs --input X.npy (neurons x T spikes) to run; without "
                        "--input the run is evaluated on its dataset and writes reports only")
    net_path = run_dir / MODEL_FILE
    if not net_path.is_file():
        raise UserError(f"{net_path}: --input runs the run's exported model, which does not exist; run "
                        f"`neurodeploy export {run_dir}` first")
    check_export_is_current(net_path, run_dir)
    return run_external_input(dataclasses.replace(request, target=net_path), console=console,
                              err_console=err_console)


def load_spike_input(path: Path, num_inputs: int) -> np.ndarray:
    """--input file: (neurons, T) or (N, neurons, T) spikes -> (N, neurons, T) uint8."""
    array = load_npy(path, "--input", "save a (neurons, T) 0/1 array with numpy.save")
    if array.dtype.kind not in "biuf":
        raise UserError(f"{path}: --input holds {array.dtype} values, not numbers; save a (neurons, T) 0/1 array "
                        "with numpy.save")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1] != num_inputs:
        raise UserError(f"{path}: spike input must be (neurons={num_inputs}, T) or (N, {num_inputs}, T); got "
                        f"{array.shape}")
    if array.size and (array.min() < 0 or array.max() > 1 or not np.array_equal(array, array.astype(np.uint8))):
        raise UserError(f"{path}: spike input must hold only 0/1 values")
    return array.astype(np.uint8)


def run_chip(net_path: Path, inputs: np.ndarray, backend: str, *, require_hardware: bool = False,
             console=None, count_layers: bool = False) -> ChipExecution:
    """Run ``inputs`` (N, n_in, T) through the netx file on a chip backend (progress shown on ``console``).

    ``count_layers``: on Lava, count the hidden layers' spikes inside Lava and read back only the output
    layer's trains (``SpikeRun.counted``); the emulator records everything either way."""
    chip = chip_backend(backend)
    with stage_progress(console if chip.shows_progress else None, backend) as progress:
        return chip.run(net_path, inputs, require_hardware=require_hardware, progress=progress,
                        count_layers=count_layers)


@contextlib.contextmanager
def stage_progress(console, label: str, every_s: float = 30.0):
    """A ``progress(done, total)`` callback for one stage of a run (decoding events, the float model, the
    emulator, Lava): a bar on a terminal, otherwise a line at most every ``every_s`` seconds (long Lava
    runs, e.g. a minute per DVS Gesture CNN sample)."""
    if console is None:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("samples"), TimeElapsedColumn())
    started = last = time.perf_counter()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            nonlocal last
            bar.update(task, completed=done, total=total)
            now = time.perf_counter()
            if not console.is_terminal and done < total and now - last >= every_s:
                console.print(f"{label}: {done}/{total} samples after {now - started:.0f} s")
                last = now

        yield report


def run_external_input(request: RunRequest, *, console, err_console) -> np.ndarray:
    """``run FILE.net --input X.npy [--save-output Y.npy]``: what a RingBuffer sink on the output records."""
    net = load_netx(request.target)
    inputs = load_spike_input(request.input_npy, net.num_inputs)
    execution = run_chip(Path(request.target), inputs, request.backend, require_hardware=request.require_hardware,
                         console=err_console, count_layers=request.count_only)
    if execution.banner:
        err_console.print(f"[bold yellow]{execution.banner}[/bold yellow]")
    output = execution.spike_run.output
    if request.save_output is not None:
        with atomic.atomic_path(request.save_output) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, output[0] if output.shape[0] == 1 else output)
        console.print(f"wrote {request.save_output}")
    spike_run = execution.spike_run  # with --count-only the hidden layers are counted, not recorded
    counts = ", ".join(f"L{i}: {int(spike_run.activity(i).per_neuron.sum())}"
                       for i in sorted({*spike_run.layer_indices, *spike_run.counted}))
    console.print(f"{request.backend} ({execution.mode}): {inputs.shape[0]} sample(s), T={inputs.shape[2]}, "
                  f"spikes per layer {counts}")
    return output


def flatten_for_chip(frames: np.ndarray) -> np.ndarray:
    """(N, C, H, W, T) frames -> (N, C*H*W, T) in SLAYER's (c, h, w) order.

    The runners (``lava_sim``, ``emulator``) take and return neurons in that order for every layer and
    convert to netx's reversed (x, y, c) layout internally, so float and chip spikes compare index for index.
    """
    n, *_, steps = frames.shape
    return np.ascontiguousarray(frames.reshape(n, -1, steps))


def first_sample(layer: np.ndarray | LayerActivity) -> np.ndarray:
    """The first sample's spike trains (n, T) of a recorded or counted layer (for the raster)."""
    return layer.first if isinstance(layer, LayerActivity) else layer[0]


def synaptic_layers(net, spike_run) -> list[np.ndarray | LayerActivity]:
    """Per layer behind a synapse (an ``input`` layer carries the input itself): its spike trains when the
    backend recorded them, else the counts it kept (:class:`~neurodeploy.metrics.activity.LayerActivity`)."""
    return [spike_run.counted[index] if index in spike_run.counted
            else spike_run.layer_spikes[spike_run.layer_indices.index(index)]
            for index, layer in enumerate(net.layers) if layer.kind != "input"]


def run_snn(request: RunRequest, config, *, console, err_console) -> dict:
    """SNN run directory on a chip backend or on torch (float)."""
    run_dir = Path(request.target)
    _, model, network = load_trained_network(run_dir)
    net_path = run_dir / MODEL_FILE
    chip = request.backend in CHIP_BACKENDS
    if chip and not net_path.exists():
        raise UserError(f"{net_path}: not exported yet; run `neurodeploy export {run_dir}` first")
    default_limit = LAVA_DEFAULT_SAMPLES if request.backend == "lava" else None
    with stage_progress(err_console, "events") as progress:
        source, frames, labels = load_test_frames(request, config, default_limit, progress)
    net = load_netx(net_path) if chip else None
    if chip:
        check_export_is_current(net_path, run_dir)
    started = time.perf_counter()
    with stage_progress(err_console, "float model") as progress:
        float_layers, _ = float_layer_spikes(network, frames, progress=progress)
    float_seconds = time.perf_counter() - started
    chip_frames = downsample_events(frames, network.input_pool)
    if chip:
        inputs = flatten_for_chip(chip_frames)
        execution = run_chip(net_path, inputs, request.backend, require_hardware=request.require_hardware,
                             console=err_console, count_layers=request.count_only)
        if execution.banner:
            err_console.print(f"[bold yellow]{execution.banner}[/bold yellow]")
        layers = synaptic_layers(net, execution.spike_run)
        parity = compare_spikes(float_layers, layers, labels, layer_names(network))
        wall_s, mode, input_spikes = execution.spike_run.wall_s, execution.mode, inputs
    else:
        layers, parity, wall_s, mode = float_layers, None, float_seconds, "float"
        input_spikes = flatten_for_chip(chip_frames)

    report = build_snn_report(
        request=request, config=config, model=model, network=network, net=net, source=source,
        input_spikes=input_spikes, layer_spikes=layers, labels=labels, mode=mode, wall_s=wall_s, parity=parity,
        profile_name=request.hw or default_profile(request.backend), sample_set=sample_set_digest(frames, labels),
    )
    out_dir = Path(request.out) if request.out else run_dir / "reports" / request.backend
    raster = {"input": input_spikes[0],
              **{name: first_sample(layer) for name, layer in zip(layer_names(network), layers)}}
    prediction = int(first_sample(layers[-1]).sum(axis=1).argmax())
    paths = write_run_report(report, out_dir, raster=raster, raster_sample=(0, int(labels[0]), prediction))
    report_dict = report.to_dict()
    print_layer_table(report_dict, console)
    print_summary(report_dict, console)
    for path in paths:
        console.print(f"wrote {path}")
    return report_dict
