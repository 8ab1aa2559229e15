"""``neurodeploy run`` on a run folder made by ``neurodeploy import``: the deployed fixed-point network on a
chip backend against the float NIR reference (:func:`neurodeploy.models.nir_reference.simulate_nir`) on the
same samples, with the usual per-layer spike / synop / energy report and its parity (fidelity) section.

Time alignment: the NIR reference has no synaptic delay, while each chip layer delivers its input one step
later (Lava's synapses send the previous step's accumulation). Layer k (k = 1, 2, ...) of the chip at step
t + k is therefore compared with its NIR node at step t: the reference spikes are delayed by k steps and
cut at T, exactly as the chip's own are. This is the convention of SLAYER's ``delay_shift`` that the parity
of trained runs uses; the float accuracy is that of the delayed reference.

On ``--backend torch`` the float reference alone is reported (mode ``float``), on the same timeline.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy import devices, run_lock
from neurodeploy.backends import registry
from neurodeploy.backends.registry import default_profile
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import NetxNetwork
from neurodeploy.deploy.nir_read import read_graph
from neurodeploy.deploy.nir_record import GRAPH_FILE, IMPORT_RECORD, NET_FILE, NirImport, load_import
from neurodeploy.errors import UserError
from neurodeploy.metrics.activity import count_over_time
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.metrics.parity import accuracy_of, compare_spikes
from neurodeploy.metrics.run_metrics import sample_set_digest
from neurodeploy.models.nir_reference import simulate_nir
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.layer_reports import SNNLayerRecord, build_snn_layer_reports
from neurodeploy.pipeline.request import RunRequest, load_test_frames
from neurodeploy.pipeline.run import flatten_for_chip, load_spike_input, run_chip, synaptic_layers
from neurodeploy.pipeline.snn_report import parity_record
from neurodeploy.reports.render import publish_report
from neurodeploy.reports.schema import (
    BackendInfo,
    DataInfo,
    MemoryBits,
    ModelInfo,
    RunReport,
    ToolInfo,
    collect_provenance,
)

PAPER_BITS = 32  # companion paper eq. 8: 32-bit weights and states, 1-bit spikes


@dataclass(frozen=True)
class ImportedInputs:
    """The samples an imported run is evaluated on: frames (N, *features, T), labels or None, provenance."""

    frames: np.ndarray
    labels: np.ndarray | None
    dataset: str
    source: str
    split: str


def load_inputs(request: RunRequest, record: NirImport, num_inputs: int) -> ImportedInputs:
    """``--input X.npy`` spikes (no labels), else the test split of the dataset the graph's input fits."""
    if request.input_npy is not None:
        spikes = load_spike_input(request.input_npy, num_inputs)
        if request.samples is not None:
            spikes = spikes[:request.samples]
        return ImportedInputs(spikes, None, Path(request.input_npy).name, "file", "file")
    if record.dataset is None:
        raise UserError(f"{request.target}: the graph's input {record.input_shape} fits no dataset neurodeploy "
                        "reads; pass --input X.npy with (N, neurons, T) spikes")
    config = TrainConfig(dataset=record.dataset, family="snn", dt_ms=record.dt_ms, steps=record.steps,
                         data_dir=str(request.data_dir) if request.data_dir else None)
    source, frames, labels = load_test_frames(request, config, default_limit=None)
    return ImportedInputs(frames, labels, record.dataset, source.source, "test")


def delay_by(spikes: np.ndarray, steps: int) -> np.ndarray:
    """(N, n, T) spikes delayed by ``steps`` (zeros first, the last ``steps`` dropped)."""
    out = np.zeros_like(spikes)
    if steps < spikes.shape[2]:
        out[:, :, steps:] = spikes[:, :, :spikes.shape[2] - steps]
    return out


def reference_layer_spikes(record: NirImport, graph, frames: np.ndarray) -> list[np.ndarray]:
    """The float NIR reference's spikes of every deployed layer, (N, n, T) uint8, on the chip's timeline."""
    names = [layer.name for layer in record.layers]
    trace = simulate_nir(graph, frames, record.dt_ms, record=names)
    samples, steps = frames.shape[0], frames.shape[-1]
    return [delay_by(trace.node_outputs[name].reshape(samples, -1, steps), depth)
            for depth, name in enumerate(names, start=1)]


def _records(net: NetxNetwork, record: NirImport, input_spikes: np.ndarray,
             layer_spikes: list[np.ndarray]) -> list[SNNLayerRecord]:
    rows = []
    previous = input_spikes
    layers = [layer for layer in net.layers if layer.kind != "input"]
    for layer, row, spikes in zip(layers, record.layers, layer_spikes):
        inputs, fan_out = previous.sum(axis=2), layer.fan_out()
        if layer.kind == "dense_rec":  # recurrent synapses are driven by the layer's own spikes
            inputs = np.concatenate([inputs, spikes.sum(axis=2)], axis=1)
            fan_out = np.concatenate([fan_out, layer.recurrent_fan_out()])
        rows.append(SNNLayerRecord(
            name=row.name, type=layer.kind, shape=tuple(layer.out_shape), params=layer.params, fan_out=fan_out,
            input_spikes=inputs, output_spikes=spikes.sum(axis=2),
            fan_in=layer.num_inputs if layer.kind != "conv" else None))
        previous = spikes
    return rows


def _memory(net: NetxNetwork, layer_spikes: list[np.ndarray], profile) -> tuple[MemoryBits, MemoryBits | None]:
    """Companion paper eq. 8, M = M_w + M_p + M_s, from the deployed layers (M_s: most spikes at one step)."""
    layers = [layer for layer in net.layers if layer.kind != "input"]
    params = sum(layer.params for layer in layers)
    neurons = sum(layer.neurons for layer in layers)
    in_flight = sum(spikes.sum(axis=1) for spikes in layer_spikes)
    max_spikes = int(in_flight.max()) if np.size(in_flight) else 0
    memory = MemoryBits.of({"weights": params * PAPER_BITS, "state": neurons * PAPER_BITS, "spikes": max_spikes},
                           {"weight": PAPER_BITS, "state": PAPER_BITS, "spike": 1})
    keys = ("weight", "state_u", "state_v", "spike")
    if any(profile.bit_width(key) is None for key in keys):
        return memory, None
    widths = {key: profile.bit_width(key) for key in keys}
    chip = MemoryBits.of({"weights": params * widths["weight"],
                          "state": neurons * (widths["state_u"] + widths["state_v"]),
                          "spikes": max_spikes * widths["spike"]}, widths)
    return memory, chip


def _arch_label(record: NirImport) -> str:
    layers = "-".join(f"{layer.kind}{math.prod(layer.shape)}" for layer in record.layers)
    return f"NIR {Path(record.source).name}: {layers}"


def is_imported_run(target: Path) -> bool:
    """True for a run folder made by ``neurodeploy import``."""
    return (Path(target) / IMPORT_RECORD).is_file()


def run_imported(request: RunRequest, *, console, err_console) -> dict:
    """Run an imported graph on ``request.backend`` and write the report with its fidelity (parity) section."""
    request.validate()
    request.device = devices.cpu_only(request.device, f"an imported graph on --backend {request.backend}")
    with run_lock.hold_output(request.report_dir()):  # two runs of different targets, one --out
        return _run_imported(request, console=console, err_console=err_console)


def _run_imported(request: RunRequest, *, console, err_console) -> dict:
    run_dir = Path(request.target)
    record = load_import(run_dir)
    net = load_netx(run_dir / NET_FILE)
    graph = read_graph(run_dir / GRAPH_FILE)
    inputs = load_inputs(request, record, net.num_inputs)
    chip_input = flatten_for_chip(inputs.frames)
    started = time.perf_counter()
    reference = reference_layer_spikes(record, graph, inputs.frames)
    float_seconds = time.perf_counter() - started
    names = [layer.name for layer in record.layers]
    parity = None
    if registry.backend(request.backend).is_chip:
        execution = run_chip(run_dir / NET_FILE, chip_input, request.backend,
                             require_hardware=request.require_hardware, console=err_console)
        if execution.banner:
            err_console.print(f"[bold yellow]{execution.banner}[/bold yellow]")
        layers = synaptic_layers(net, execution.spike_run)
        parity = compare_spikes(reference, layers, inputs.labels, names)
        wall_s, mode = execution.spike_run.wall_s, execution.mode
    else:
        layers, wall_s, mode = reference, float_seconds, "float"
    profile = load_profile(request.hw or default_profile(request.backend))
    samples, _, steps = chip_input.shape
    build = build_snn_layer_reports(_records(net, record, chip_input, layers), steps, profile,
                                    wall_time_s=wall_s / samples if mode == "hardware" else None)
    memory, memory_chip = _memory(net, layers, profile)
    report = RunReport(
        tool=ToolInfo(),
        model=ModelInfo(family="snn", arch=_arch_label(record), params=int(sum(row.params for row in build.layers))),
        data=DataInfo(dataset=inputs.dataset, source=inputs.source, split=inputs.split, samples=int(samples),
                      dt_ms=float(record.dt_ms), steps=int(steps),
                      sample_set=sample_set_digest(inputs.frames, np.zeros(0) if inputs.labels is None
                                                   else inputs.labels)),
        backend=BackendInfo(name=request.backend, mode=mode, hw_config=profile.name, device="cpu"),
        accuracy=None if inputs.labels is None else accuracy_of(count_over_time(layers[-1]), inputs.labels),
        per_sample=build.per_sample(wall_s / samples),
        energy=build.energy_info(),
        memory_bits=memory,
        memory_bits_chip=memory_chip,
        layers=tuple(build.layers),
        parity=parity_record(parity, names),
        resources=None if build.resources is None else build.resources.to_dict(),
        provenance=collect_provenance(),
    )
    out_dir = request.report_dir()
    raster = {"input": chip_input[0], **{name: spikes[0] for name, spikes in zip(names, layers)}}
    label = -1 if inputs.labels is None else int(inputs.labels[0])  # -1: the --input file has no labels
    prediction = int(layers[-1][0].sum(axis=1).argmax())
    return publish_report(report, out_dir, console, summary=print_fidelity, raster=raster,
                          raster_sample=(0, label, prediction))


def _percent(value: float | None) -> str:
    return "n/a (no labels)" if value is None else f"{value:.2%}"


def print_fidelity(report: dict, console) -> None:
    """One line per layer: spike-count agreement with the float NIR reference; then accuracies."""
    backend, data = report["backend"], report["data"]
    head = (f"{backend['name']} ({backend['mode']}): {data['samples']} {data['source']} samples "
            f"({data['dataset']}), dt {data['dt_ms']:g} ms, T={data['steps']}; accuracy {_percent(report['accuracy'])}")
    console.print(head)
    parity = report.get("parity")
    if not parity:
        return
    for layer, agreement in parity["layer_spike_agreement"].items():
        console.print(f"  {layer}: spike counts equal to the float NIR reference for {agreement:.2%} of "
                      "(sample, neuron) pairs")
    first = parity["first_divergence"]
    where = "identical spikes" if first is None else f"first divergence at layer {first['layer']}, step " \
                                                     f"{first['timestep']}"
    console.print(f"  float NIR reference accuracy {_percent(parity['float_accuracy'])}, fixed point "
                  f"{_percent(parity['chip_accuracy'])}; same prediction on "
                  f"{_percent(parity['prediction_agreement'])} of samples; {where}")
