"""``neurodeploy run``: execute a trained or exported network on a backend and write its report.

The backends, their modes and the run families each executes are the table in
:mod:`neurodeploy.backends.registry`; this module asks it.

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

from neurodeploy import atomic, devices, run_lock
from neurodeploy.backends import registry
from neurodeploy.backends.host_front_end import run_front_end
from neurodeploy.backends.registry import ChipExecution, chip_backend, default_profile
from neurodeploy.backends.torch_float import float_layer_spikes
from neurodeploy.deploy.export import MODEL_FILE, check_export_is_current
from neurodeploy.deploy.front_end import boundary_of, load_front_end
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.run_folder import load_run_config, load_trained_network
from neurodeploy.errors import UserError
from neurodeploy.metrics.activity import LayerActivity
from neurodeploy.metrics.cost import layer_names
from neurodeploy.metrics.parity import compare_spikes
from neurodeploy.metrics.run_metrics import sample_set_digest
from neurodeploy.models.snn import downsample_events
from neurodeploy.pipeline.baseline import host_profile, run_baseline
from neurodeploy.pipeline.request import RunRequest, load_test_frames
from neurodeploy.pipeline.rsnn_report import build_rsnn_report
from neurodeploy.pipeline.snn_report import build_snn_report
from neurodeploy.reports.render import publish_report
from neurodeploy.safe_files import load_npy


def execute(request: RunRequest, *, console, err_console):
    """Run ``request`` and write/print its report; returns the report dict (or the output array for --input)."""
    request.validate()
    target = Path(request.target)
    if not target.is_dir() or request.input_npy is not None or request.save_output is not None:
        request.device = devices.cpu_only(request.device, f"--backend {request.backend} on a spike input")
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
        config = load_run_config(target)
        if config.family == "ann" and config.frames is None and registry.backend(request.backend).is_chip:
            raise UserError(f"{target}: an ANN run (static images) does not run on a chip; convert it to an SNN "
                            f"first: neurodeploy convert {target}, then run the new folder (or --backend torch: "
                            "the ANN in float)")
        if config.family not in registry.backend(request.backend).families:  # refused before --out is made
            allowed = registry.names(family=config.family)
            raise UserError(f"{target}: a {config.family} run executes on --backend {' or '.join(allowed)} only; "
                            f"{request.backend} runs {', '.join(registry.backend(request.backend).families)} runs")
        with run_lock.hold_output(request.report_dir()):  # two runs of different targets, one --out
            return _execute_run_dir(request, config, console=console, err_console=err_console)


def _execute_run_dir(request: RunRequest, config, *, console, err_console):
    if config.family == "rsnn":
        request.device = devices.resolve_device(request.device)  # the front end's device
        return run_rsnn(request, config, console=console, err_console=err_console)
    if config.family != "snn":
        request.device = devices.resolve_device(request.device)
        return run_baseline(request, config, console=console, err_console=err_console)
    # the SNN's float reference is bit-exact CPU code (neurodeploy.backends.torch_float), the chip backends CPU
    # simulators: a GPU request is refused, not ignored
    request.device = devices.cpu_only(request.device, f"an SNN run on --backend {request.backend}")
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
    with stage_progress(console, backend) as progress:
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


def exported_net(request: RunRequest, run_dir: Path):
    """(path, loaded netx model) of the run's export for a chip backend, checked current; (path, None) on torch."""
    net_path = run_dir / MODEL_FILE
    if not registry.backend(request.backend).is_chip:
        return net_path, None
    if not net_path.exists():
        raise UserError(f"{net_path}: not exported yet; run `neurodeploy export {run_dir}` first")
    net = load_netx(net_path)
    check_export_is_current(net_path, run_dir)
    return net_path, net


@dataclasses.dataclass(frozen=True)
class SpikingRun:
    """The spiking part of a run: per on-chip layer its spikes (or counts), parity with the trained float model
    (None on torch), wall time, mode and the input spikes (N, n_in, T) in SLAYER's (c, h, w) order."""

    layers: list
    parity: object
    wall_s: float
    mode: str
    input_spikes: np.ndarray


def run_spiking(request: RunRequest, network, net_path: Path, net, frames: np.ndarray, labels: np.ndarray, *,
                err_console) -> SpikingRun:
    """``frames`` (N, C, H, W, T) through the trained SLAYER ``network`` and, on a chip backend, through the
    exported ``net`` on that backend, compared spike for spike."""
    started = time.perf_counter()
    with stage_progress(err_console, "float model") as progress:
        float_layers, _ = float_layer_spikes(network, frames, progress=progress)
    float_seconds = time.perf_counter() - started
    inputs = flatten_for_chip(downsample_events(frames, network.input_pool))
    if net is None:
        return SpikingRun(float_layers, None, float_seconds, "float", inputs)
    execution = run_chip(net_path, inputs, request.backend, require_hardware=request.require_hardware,
                         console=err_console, count_layers=request.count_only)
    if execution.banner:
        err_console.print(f"[bold yellow]{execution.banner}[/bold yellow]")
    layers = synaptic_layers(net, execution.spike_run)
    parity = compare_spikes(float_layers, layers, labels, layer_names(network))
    return SpikingRun(layers, parity, execution.spike_run.wall_s, execution.mode, inputs)


def run_snn(request: RunRequest, config, *, console, err_console) -> dict:
    """SNN run directory on a chip backend or on torch (float)."""
    run_dir = Path(request.target)
    _, model, network = load_trained_network(run_dir)
    net_path, net = exported_net(request, run_dir)
    with stage_progress(err_console, "events") as progress:
        source, frames, labels = load_test_frames(request, config, default_sample_limit(request), progress)
    spiking = run_spiking(request, network, net_path, net, frames, labels, err_console=err_console)
    report = spiking_report(request, config, model, network, net, source, spiking, frames, labels)
    return write_spiking_report(report, request, network, spiking, labels, console=console)


def run_rsnn(request: RunRequest, config, *, console, err_console) -> dict:
    """RSNN run directory: the front end on torch (``--device``), the classifier on the backend (chip backends
    run the exported ``front_end.pt`` and ``model.net``; torch the trained checkpoint)."""
    run_dir = Path(request.target)
    _, model, network = load_trained_network(run_dir)
    net_path, net = exported_net(request, run_dir)
    if net is not None:
        load_front_end(run_dir, network)
    with stage_progress(err_console, "events") as progress:
        source, frames, labels = load_test_frames(request, config, default_sample_limit(request), progress)
    front_run = run_front_end(network, frames, request.device)
    classifier = network.classifier
    spiking = run_spiking(request, classifier, net_path, net, front_run.spikes, labels, err_console=err_console)
    chip_report = spiking_report(request, config, model, classifier, net, source, spiking, frames, labels)
    report = build_rsnn_report(chip_report, network=network, config=config, front_run=front_run,
                               boundary=boundary_of(network), host_profile=host_profile(request.device))
    report = dataclasses.replace(report, ran_on={"front_end": devices.describe(request.device),
                                                 "classifier": devices.describe("cpu")})
    return write_spiking_report(report, request, classifier, spiking, labels, console=console)


def spiking_report(request: RunRequest, config, model, network, net, source, spiking: SpikingRun, frames,
                   labels):
    """The report of the spiking part (:func:`neurodeploy.pipeline.snn_report.build_snn_report`), priced with
    ``--hw`` or the backend's profile; ``frames`` are the run's test inputs (their digest names the sample set)."""
    return build_snn_report(
        request=request, config=config, model=model, network=network, net=net, source=source,
        input_spikes=spiking.input_spikes, layer_spikes=spiking.layers, labels=labels, mode=spiking.mode,
        wall_s=spiking.wall_s, parity=spiking.parity,
        profile_name=request.hw or default_profile(request.backend), sample_set=sample_set_digest(frames, labels),
    )


def default_sample_limit(request: RunRequest) -> int | None:
    """Test samples a run takes when ``--samples`` is not given: the backend's default (all but on Lava)."""
    return registry.backend(request.backend).default_samples


def write_spiking_report(report, request: RunRequest, network, spiking: SpikingRun, labels, *, console) -> dict:
    """Write the report with a raster of the first sample (input and every on-chip layer) and print it."""
    out_dir = request.report_dir()
    raster = {"input": spiking.input_spikes[0],
              **{name: first_sample(layer) for name, layer in zip(layer_names(network), spiking.layers)}}
    prediction = int(first_sample(spiking.layers[-1]).sum(axis=1).argmax())
    return publish_report(report, out_dir, console, raster=raster, raster_sample=(0, int(labels[0]), prediction))
