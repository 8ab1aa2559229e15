"""``neurodeploy run RUN --backend torch`` for RNN/LSTM, ANN and temporal-CNN runs: accuracy, latency,
throughput and energy. An ANN on static images (MNIST) reads the images themselves, as in training.

Energy is ``measured`` only when the run is on a CUDA GPU whose NVML energy counter works
(:mod:`neurodeploy.metrics.gpu_energy`); otherwise it is ``estimated`` as MACs/adds/muls per step x steps x the
per-op energies of a hardware profile (default ``cmos45nm``: fp32 MAC 4.6 pJ, add 0.9 pJ). Torch-only: this
module never imports Lava.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from neurodeploy import devices
from neurodeploy.deploy.run_folder import load_trained_network
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import static_cost
from neurodeploy.metrics.gpu_energy import measure_inference
from neurodeploy.metrics.hardware import list_profiles, load_profile
from neurodeploy.metrics.run_metrics import (
    AccuracyInterval,
    EnergySplit,
    Latency,
    NeuroBenchMetrics,
    connection_sparsity,
    sample_set_digest,
)
from neurodeploy.models.losses import predict
from neurodeploy.models.training import input_shape_of, resolve_data
from neurodeploy.pipeline.ann import static_images
from neurodeploy.pipeline.layer_reports import build_static_layer_reports
from neurodeploy.pipeline.request import load_test_frames
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

WARMUP_BATCHES = 2


def _energy_split(energy, measurement, profile) -> EnergySplit:
    """Measured: NVML board energy = idle (power before the run x time) + the rest (dynamic).
    Estimated: op counts x the profile, no static part (the profile has none for a baseline)."""
    if energy.kind == "measured":
        idle = measurement.idle_energy_j_per_sample
        total = measurement.energy_j_per_sample
        return EnergySplit("measured", total if idle is None else total - idle, idle,
                           "NVML board energy over the run, minus idle" if idle is not None else
                           "NVML board energy over the run (idle not separable: no power reading)",
                           "board power sampled before the run x run time" if idle is not None else "not split",
                           ())
    static = profile.si("static")
    return EnergySplit("estimated", energy.total_j, None, f"op counts x {profile.name} coefficients",
                       "not counted: no static power in the profile" if static is None else "not applied",
                       tuple(energy.uncounted))


def _neurobench(network, build, cost, steps: int) -> NeuroBenchMetrics:
    """NeuroBench's metrics of a float baseline: analog inputs, so every operation is a MAC.

    effective MACs = the layers' MACs (dense products, zero weights included: a float model multiplies
    them); dense = the same; activation sparsity is not recorded for float baselines (None).
    """
    weights = [p.detach().cpu().numpy() for name, p in network.named_parameters() if "weight" in name]
    footprint = sum(t.numel() * t.element_size() for t in [*network.parameters(), *network.buffers()])
    macs = float(sum(layer.macs for layer in build.layers))
    return NeuroBenchMetrics(activation_sparsity=None, connection_sparsity=connection_sparsity(weights),
                             effective_macs=macs, effective_acs=0.0, dense=macs, footprint_bytes=int(footprint))


def _accuracy(network, frames: np.ndarray, labels: np.ndarray, device: str, batch_size: int = 64) -> float:
    correct = 0
    network.eval()
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            x = torch.from_numpy(frames[start:start + batch_size]).to(device=device, dtype=torch.float32)
            correct += int((predict(network(x)).cpu().numpy() == labels[start:start + batch_size]).sum())
    return correct / max(1, len(labels))


def host_profile(device: str) -> str:
    """The profile that prices float work on the host ``device`` (a GPU's, else 45 nm CMOS per-op energies)."""
    return "gpu_h100" if device.startswith("cuda") else "cmos45nm"


# what an RNN / LSTM estimate never prices, whatever the profile (cost's own notes)
BASELINE_LEAVES_OUT = ("nonlinearities (tanh, sigmoid)", "memory accesses", "static / idle power")
OP_COEFFICIENTS = {"macs": "mac", "adds": "add", "muls": "mul"}


def check_profile_prices(profile, layers, family: str) -> None:
    """No silent zero: the profile must price every op kind the family's layers perform, else exit 2
    naming the profiles that do."""
    used = [kind for kind, key in OP_COEFFICIENTS.items() if any(getattr(layer, kind) for layer in layers)]
    missing = [kind for kind in used if not profile.has(OP_COEFFICIENTS[kind])]
    if missing:
        fits = [name for name in list_profiles()
                if all(load_profile(name).has(OP_COEFFICIENTS[kind]) for kind in used)]
        raise UserError(f"--hw {profile.name}: the profile has no energy for {', '.join(missing)}, which a "
                        f"{family} performs; use --hw {' or --hw '.join(fits)}")


def bias_free(cost):
    """``cost`` of the bias-free ReLU ANN (:mod:`neurodeploy.models.ann`): cost's ann layers count a bias per
    unit (params) and its add (adds); this ANN has neither. Pooling's adds stay."""
    layers = tuple(layer if layer.kind in ("avgpool", "maxpool") else
                   dataclasses.replace(layer, params=layer.weights, adds_per_step=0) for layer in cost.layers)
    return dataclasses.replace(cost, layers=layers)


def _test_inputs(request, config):
    """(source, inputs, labels) of the test split: binned frames, or the images of an ANN on static images."""
    if config.family != "ann" or config.frames is not None:
        return load_test_frames(request, config, None)
    if request.data_dir is not None:
        config.data_dir = str(request.data_dir)
    config.allow_synthetic = request.allow_synthetic
    config.resolved.pop("source_obj", None)
    source = resolve_data(config)
    images, labels = static_images(config, "test", request.samples)
    return source, images.numpy(), labels.numpy()


def run_baseline(request, config, *, console, err_console) -> dict:
    """Evaluate a trained rnn / lstm / frame-ANN run on its test split with torch (CPU or CUDA); write the report."""
    request.device = devices.resolve_device(request.device)
    run_dir = Path(request.target)
    _, model, network = load_trained_network(run_dir)
    source, frames, labels = _test_inputs(request, config)
    network = network.to(request.device)
    accuracy = _accuracy(network, frames, labels, request.device)
    batches = [torch.from_numpy(frames[i:i + 64]).float() for i in range(0, len(frames), 64)]
    measurement = measure_inference(network, batches, request.device, warmup_batches=WARMUP_BATCHES)

    profile = load_profile(request.hw or host_profile(request.device))
    shape = input_shape_of(config.resolved["sensor_size"])
    # a frame ANN (Deng Models 4 / 5) runs once per sample on frames of all T steps: its ops are per sample
    frames = getattr(config, "frames", None)
    op_steps = 1 if config.family in ("ann", "tcnn") else int(config.steps)
    cost = static_cost(model.arch, shape, config.family, frames=frames, steps=int(config.steps))
    if config.family == "ann":
        cost = bias_free(cost)
    try:
        chip_cost = static_cost(model.arch, shape, config.family, profile=profile, frames=frames,
                                steps=int(config.steps))
        chip_memory = MemoryBits.of(chip_cost.memory_bits_chip) if chip_cost.memory_bits_chip else None
    except UserError:
        chip_memory = None  # profile without bit widths
    build = build_static_layer_reports(cost, op_steps, profile)
    check_profile_prices(profile, build.layers, config.family)
    energy = build.energy_info(measured_j=measurement.energy_j_per_sample
                               if measurement.energy_kind == "measured" else None)
    if energy.kind == "estimated":
        leaves_out = (("nonlinearities (ReLU)", *BASELINE_LEAVES_OUT[1:]) if config.family in ("ann", "tcnn")
                      else BASELINE_LEAVES_OUT)
        energy = dataclasses.replace(energy, uncounted=(*energy.uncounted, *leaves_out))
    per_sample = build.per_sample(measurement.latency_s_per_sample)
    if energy.kind == "measured":
        per_sample = type(per_sample)(**{**per_sample.to_dict(), "energy_j": energy.total_j})
    correct = int(round(accuracy * len(labels)))
    report = RunReport(
        tool=ToolInfo(),
        model=ModelInfo(family=config.family, arch=model.arch.notation(),
                        params=int(cost.params),
                        synapses=int(cost.weights)),
        data=DataInfo(dataset=config.dataset, source=source.source, synthetic_source=source.synthetic_source,
                      split="test", samples=int(len(labels)), dt_ms=float(config.dt_ms), steps=int(config.steps),
                      sample_set=sample_set_digest(frames, labels)),
        backend=BackendInfo(name="torch", mode="float", hw_config=profile.name, device=measurement.device_name),
        accuracy=accuracy,
        per_sample=per_sample,
        energy=energy,
        memory_bits=MemoryBits.of(cost.memory_bits, {"value": cost.bits}),
        memory_bits_chip=chip_memory,
        layers=tuple(build.layers),
        provenance=collect_provenance(),
        latency=Latency("measured", measurement.latency_s_per_sample,
                        f"wall time on {measurement.device_name}, synchronised, after {WARMUP_BATCHES} warm-up "
                        f"batches, batch size {measurement.batch_size}", measurement.samples,
                        per_step_s=None if op_steps == 1 else measurement.latency_s_per_sample / int(config.steps),
                        device=measurement.device_name, batch_size=measurement.batch_size),
        energy_split=_energy_split(energy, measurement, profile),
        accuracy_interval=AccuracyInterval.of(correct, int(len(labels))),
        neurobench=_neurobench(network, build, cost, op_steps).to_dict(),
        ran_on={"model": devices.describe(request.device)},
    )
    out_dir = request.report_dir()
    throughput = (f"  throughput {measurement.samples_per_s:.1f} samples/s on {measurement.device_name}"
                  + (f"; energy: {measurement.energy_note}" if measurement.energy_note else ""))
    return publish_report(report, out_dir, console, lines=[throughput])
