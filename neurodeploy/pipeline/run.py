"""``neurodeploy run``: execute a trained or exported network on a backend and write its report.

Backends (SPEC 4): ``lava`` (Lava CPU simulator, fixed_pt, mode ``simulated``), ``loihi2`` (a Loihi 2 board
when Intel's lava-loihi finds one, mode ``hardware``; otherwise the bit-exact emulator with a banner, mode
``emulated``), ``emulator`` (neurodeploy's vectorised fixed-point emulator, mode ``emulated``) and ``torch``
(the trained float model, mode ``float``).

For chip backends the same samples also run through the trained float (SLAYER) model, and the report's
``parity`` block compares the two: accuracies, per-layer spike counts and the first (layer, step) where the
spike trains differ. SLAYER blocks delay their output by one step per layer (``delay_shift``) exactly as
Lava's synapses do (REFERENCE §5.3), so spike trains are compared index for index.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy.errors import UserError

CHIP_BACKENDS = ("lava", "loihi2", "emulator")
DEFAULT_PROFILE = {"lava": "loihi2", "loihi2": "loihi2", "emulator": "loihi2", "torch": "cmos45nm"}
LAVA_DEFAULT_SAMPLES = 500


@dataclass
class RunRequest:
    """What ``neurodeploy run`` was asked to do."""

    target: Path
    backend: str = "lava"
    samples: int | None = None
    out: Path | None = None
    hw: str | None = None
    device: str = "cpu"
    require_hardware: bool = False
    input_npy: Path | None = None
    save_output: Path | None = None
    data_dir: Path | None = None
    allow_synthetic: bool = True

    def validate(self) -> None:
        if self.samples is not None and self.samples < 1:
            raise UserError(f"--samples must be at least 1 (got {self.samples})")
        if not Path(self.target).exists():
            raise UserError(f"{self.target}: no such run directory or .net file; pass a run made by `train`")
        if self.input_npy is not None and self.backend == "torch":
            raise UserError("--input feeds a .net file on lava, loihi2 or emulator; not on --backend torch")
        if self.save_output is not None and self.input_npy is None and Path(self.target).suffix == ".net":
            raise UserError("--save-output on a .net file needs --input X.npy (neurons x T spikes)")
        # bad options fail here, before minutes of simulation and before any report file is written
        if self.hw:
            from neurodeploy.hardware import load_profile

            load_profile(self.hw)
        from neurodeploy.atomic import check_writable_dir

        if self.out is not None:
            check_writable_dir(self.out, "--out")
        elif Path(self.target).is_dir():
            check_writable_dir(Path(self.target) / "reports", "--out")
        if self.save_output is not None:
            check_writable_dir(Path(self.save_output).parent, "--save-output")


@dataclass
class ChipExecution:
    """A SpikeRun plus how it was produced."""

    spike_run: object
    mode: str
    backend_label: str
    banner: str | None = None


def execute(request: RunRequest, *, console, err_console):
    """Run ``request`` and write/print its report; returns the report dict (or the output array for --input)."""
    request.validate()
    target = Path(request.target)
    if target.is_file():
        if target.suffix != ".net" and request.input_npy is None:
            raise UserError(f"{target}: expected a run directory or a netx .net file")
        if request.input_npy is None:
            raise UserError(f"{target}: running a bare .net file needs --input X.npy (neurons x T spikes); "
                            "or pass the run directory to evaluate on its dataset")
        return run_external_input(request, console=console, err_console=err_console)
    from neurodeploy.training import load_run_config

    config = load_run_config(target)
    if config.family != "snn":
        if request.backend != "torch":
            raise UserError(f"{target}: a {config.family} run executes on --backend torch only (CPU/GPU); "
                            "chip backends run spiking networks")
        from neurodeploy.baseline_run import run_baseline

        return run_baseline(request, config, console=console, err_console=err_console)
    return run_snn(request, config, console=console, err_console=err_console)


def load_spike_input(path: Path, num_inputs: int) -> np.ndarray:
    """--input file: (neurons, T) or (N, neurons, T) spikes -> (N, neurons, T) uint8."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read as .npy ({exc}); save with numpy.save") from exc
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1] != num_inputs:
        raise UserError(f"{path}: spike input must be (neurons={num_inputs}, T) or (N, {num_inputs}, T); got "
                        f"{array.shape}")
    if array.size and (array.min() < 0 or array.max() > 1 or not np.array_equal(array, array.astype(np.uint8))):
        raise UserError(f"{path}: spike input must hold only 0/1 values")
    return array.astype(np.uint8)


def run_chip(net_path: Path, inputs: np.ndarray, backend: str, *, require_hardware: bool = False,
             console=None) -> ChipExecution:
    """Run ``inputs`` (N, n_in, T) through the netx file on a chip backend (Lava shows progress on ``console``)."""
    from neurodeploy.backends import lava_sim
    from neurodeploy.netx_model import load_netx

    if backend == "lava":
        with lava_progress(console) as progress:
            return ChipExecution(lava_sim.run_lava(net_path, inputs, progress=progress), "simulated", "lava")
    if backend == "loihi2" and lava_sim.loihi2_hardware_available():
        return ChipExecution(lava_sim.run_lava(net_path, inputs, hardware=True), "hardware", "loihi2")
    if backend == "loihi2" and require_hardware:
        raise UserError("--require-hardware: no Loihi 2 board found (Intel's lava-loihi extension is not installed "
                        "or no board answers); drop --require-hardware to run the bit-exact emulation")
    from neurodeploy.backends.emulator import run_emulator

    banner = None
    if backend == "loihi2":
        banner = ("no Loihi 2 hardware found: running the bit-exact fixed-point EMULATION (mode: emulated); "
                  "numbers are not measured on a chip")
    return ChipExecution(run_emulator(load_netx(net_path), inputs), "emulated", backend, banner)


@contextlib.contextmanager
def lava_progress(console, every_s: float = 30.0):
    """A ``progress(done, total)`` callback for :func:`lava_sim.run_lava`: a bar on a terminal, otherwise a
    line at most every ``every_s`` seconds (long Lava runs, e.g. a minute per DVS Gesture CNN sample)."""
    if console is None:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("lava"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"), TimeElapsedColumn())
    started = last = time.perf_counter()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("lava", total=None)

        def report(done: int, total: int) -> None:
            nonlocal last
            bar.update(task, completed=done, total=total)
            now = time.perf_counter()
            if not console.is_terminal and done < total and now - last >= every_s:
                console.print(f"lava: {done}/{total} samples after {now - started:.0f} s")
                last = now

        yield report


def run_external_input(request: RunRequest, *, console, err_console) -> np.ndarray:
    """``run FILE.net --input X.npy [--save-output Y.npy]``: what a RingBuffer sink on the output records."""
    from neurodeploy.netx_model import load_netx

    net = load_netx(request.target)
    inputs = load_spike_input(request.input_npy, net.num_inputs)
    execution = run_chip(Path(request.target), inputs, request.backend, require_hardware=request.require_hardware,
                         console=err_console)
    if execution.banner:
        err_console.print(f"[bold yellow]{execution.banner}[/bold yellow]")
    output = execution.spike_run.output
    if request.save_output is not None:
        from neurodeploy import atomic

        with atomic.atomic_path(request.save_output) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, output[0] if output.shape[0] == 1 else output)
        console.print(f"wrote {request.save_output}")
    counts = ", ".join(f"L{i}: {int(s.sum())}" for i, s in enumerate(execution.spike_run.layer_spikes))
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


def synaptic_layer_spikes(net, spike_run) -> list[np.ndarray]:
    """The recorded spikes of the layers behind a synapse (an ``input`` layer carries the input itself)."""
    return [spikes for index, spikes in zip(spike_run.layer_indices, spike_run.layer_spikes)
            if net.layers[index].kind != "input"]


def _float_layer_spikes(network, frames: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Per-layer spikes (N, n, T) of the trained SLAYER network, neurons in (c, h, w) order."""
    import torch

    network.eval()
    network.record = True
    collected: list[list[np.ndarray]] = []
    try:
        with torch.no_grad():
            for start in range(0, len(frames), batch_size):
                network(torch.from_numpy(frames[start:start + batch_size]).float())
                for index, spikes in enumerate(network.layer_spikes):
                    if len(collected) <= index:
                        collected.append([])
                    collected[index].append(spikes.numpy().astype(np.uint8))
    finally:
        network.record = False
    return [np.concatenate(chunks) for chunks in collected]


@dataclass(frozen=True)
class SpikeParity:
    """Float (SLAYER) model vs chip backend on the same samples.

    ``layer_count_agreement``: per layer, the fraction of (sample, neuron) pairs whose spike counts over the
    run are equal; ``first_divergence``: the first layer (in network order) whose spike trains differ, and
    the first step at which they do, or None when every spike of every layer is equal.
    """

    float_accuracy: float
    chip_accuracy: float
    layer_count_agreement: list[float]
    identical: bool
    first_divergence: dict | None


def compare_spikes(float_layers: list[np.ndarray], chip_layers: list[np.ndarray], labels: np.ndarray,
                   names: list[str] | None = None) -> SpikeParity:
    """Accuracies, per-layer spike-count agreement, and the first (layer, step) where spike trains differ."""
    first = None
    agreement = []
    for index, (ours, chip) in enumerate(zip(float_layers, chip_layers)):
        if ours.shape != chip.shape:
            raise UserError(f"layer {index}: float model gives {ours.shape} spikes but the chip {chip.shape}; "
                            "the .net does not match the trained run")
        agreement.append(float((ours.sum(axis=2) == chip.sum(axis=2)).mean()))
        differs = ours != chip
        if first is None and differs.any():
            name = names[index] if names else f"L{index}"
            first = {"layer": name, "timestep": int(np.nonzero(differs.any(axis=(0, 1)))[0][0])}
    return SpikeParity(
        float_accuracy=accuracy_of(float_layers[-1], labels),
        chip_accuracy=accuracy_of(chip_layers[-1], labels),
        layer_count_agreement=agreement,
        identical=first is None,
        first_divergence=first,
    )


def accuracy_of(output_spikes: np.ndarray, labels: np.ndarray) -> float:
    """Eq. 7: argmax of the output spike count (ties to the lowest index, as torch.argmax)."""
    predictions = output_spikes.sum(axis=2).argmax(axis=1)
    return float((predictions == labels).mean())


def load_test_frames(request: RunRequest, config, default_limit: int | None):
    from neurodeploy.data.datasets import load_frames_array
    from neurodeploy.training import resolve_data

    if request.data_dir is not None:
        config.data_dir = str(request.data_dir)
    config.allow_synthetic = request.allow_synthetic
    source = resolve_data(config)
    if list(source.sensor_size) != list(config.resolved.get("sensor_size", source.sensor_size)):
        raise UserError(f"{source.root}: sensor size {source.sensor_size} differs from the run's "
                        f"{config.resolved['sensor_size']}; point --data-dir at the dataset the run was trained on")
    limit = request.samples or default_limit
    frames, labels = load_frames_array(source, "test", config.dt_ms, config.steps, limit, config.seed)
    return source, np.asarray(frames), np.asarray(labels)


def run_snn(request: RunRequest, config, *, console, err_console) -> dict:
    """SNN run directory on a chip backend or on torch (float)."""
    from neurodeploy.export import MODEL_FILE
    from neurodeploy.snn_report import build_snn_report, layer_names
    from neurodeploy.training import load_trained_network

    run_dir = Path(request.target)
    _, model, network = load_trained_network(run_dir)
    net_path = run_dir / MODEL_FILE
    chip = request.backend in CHIP_BACKENDS
    if chip and not net_path.exists():
        raise UserError(f"{net_path}: not exported yet; run `neurodeploy export {run_dir}` first")
    default_limit = LAVA_DEFAULT_SAMPLES if request.backend == "lava" else None
    source, frames, labels = load_test_frames(request, config, default_limit)
    from neurodeploy.netx_model import load_netx

    net = load_netx(net_path) if chip else None
    started = time.perf_counter()
    float_layers = _float_layer_spikes(network, frames)
    float_seconds = time.perf_counter() - started
    from neurodeploy.snn import downsample_events

    chip_frames = downsample_events(frames, network.input_pool)
    if chip:
        inputs = flatten_for_chip(chip_frames)
        execution = run_chip(net_path, inputs, request.backend, require_hardware=request.require_hardware,
                             console=err_console)
        if execution.banner:
            err_console.print(f"[bold yellow]{execution.banner}[/bold yellow]")
        layers = synaptic_layer_spikes(net, execution.spike_run)
        parity = compare_spikes(float_layers, layers, labels, layer_names(network))
        wall_s, mode, input_spikes = execution.spike_run.wall_s, execution.mode, inputs
    else:
        layers, parity, wall_s, mode = float_layers, None, float_seconds, "float"
        input_spikes = flatten_for_chip(chip_frames)

    report = build_snn_report(
        request=request, config=config, model=model, network=network, net=net, source=source,
        input_spikes=input_spikes, layer_spikes=layers, labels=labels, mode=mode, wall_s=wall_s, parity=parity,
        profile_name=request.hw or DEFAULT_PROFILE[request.backend],
    )
    out_dir = Path(request.out) if request.out else run_dir / "reports" / request.backend
    from neurodeploy.report import print_layer_table, write_run_report

    raster = {"input": input_spikes[0], **{name: spikes[0] for name, spikes in zip(layer_names(network), layers)}}
    paths = write_run_report(report, out_dir, raster=raster)
    report_dict = report.to_dict()
    print_layer_table(report_dict, console)
    print_summary(report_dict, console)
    for path in paths:
        console.print(f"wrote {path}")
    return report_dict


def print_summary(report: dict, console) -> None:
    backend = report["backend"]
    line = (f"{backend['name']} ({backend['mode']}): accuracy {report['accuracy']:.2%} on {report['data']['samples']} "
            f"{report['data']['source']} {report['data']['dataset']} test samples")
    parity = report.get("parity")
    if parity:
        line += (f"; float model {parity['float_accuracy']:.2%} on the same samples; spike trains "
                 + ("identical" if parity["identical"] else f"first differ at layer {parity['first_divergence']}"))
    console.print(line)
