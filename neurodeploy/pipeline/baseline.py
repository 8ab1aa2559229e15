"""``neurodeploy run RUN --backend torch`` for RNN/LSTM runs: accuracy, latency, throughput and energy.

Energy is ``measured`` only when the run is on a CUDA GPU whose NVML energy counter works
(:mod:`neurodeploy.metrics.gpu_energy`); otherwise it is ``estimated`` as MACs/adds/muls per step x steps x the
per-op energies of a hardware profile (default ``cmos45nm``: fp32 MAC 4.6 pJ, add 0.9 pJ). Torch-only: this
module never imports Lava.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neurodeploy.deploy.run_folder import load_trained_network
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import static_cost
from neurodeploy.metrics.gpu_energy import measure_inference
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.models.losses import predict
from neurodeploy.models.training import input_shape_of
from neurodeploy.pipeline.request import load_test_frames
from neurodeploy.reports.build import build_static_layer_reports
from neurodeploy.reports.render import print_layer_table, print_summary, write_run_report
from neurodeploy.reports.schema import (
    BackendInfo,
    DataInfo,
    MemoryBits,
    ModelInfo,
    RunReport,
    ToolInfo,
    collect_provenance,
)


def _accuracy(network, frames: np.ndarray, labels: np.ndarray, device: str, batch_size: int = 64) -> float:
    correct = 0
    network.eval()
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            x = torch.from_numpy(frames[start:start + batch_size]).to(device=device, dtype=torch.float32)
            correct += int((predict(network(x)).cpu().numpy() == labels[start:start + batch_size]).sum())
    return correct / max(1, len(labels))


def _default_profile(device: str) -> str:
    return "gpu_h100" if device.startswith("cuda") else "cmos45nm"


def run_baseline(request, config, *, console, err_console) -> dict:
    """Evaluate a trained rnn/lstm run on its test split with torch (CPU or CUDA) and write the report."""
    if request.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {request.device} asked for, but torch sees no CUDA device; use --device cpu")
    run_dir = Path(request.target)
    _, model, network = load_trained_network(run_dir)
    source, frames, labels = load_test_frames(request, config, None)
    network = network.to(request.device)
    accuracy = _accuracy(network, frames, labels, request.device)
    batches = [torch.from_numpy(frames[i:i + 64]).float() for i in range(0, len(frames), 64)]
    measurement = measure_inference(network, batches, request.device)

    profile = load_profile(request.hw or _default_profile(request.device))
    shape = input_shape_of(config.resolved["sensor_size"])
    cost = static_cost(model.arch, shape, config.family)
    try:
        chip_cost = static_cost(model.arch, shape, config.family, profile=profile)
        chip_memory = MemoryBits.of(chip_cost.memory_bits_chip) if chip_cost.memory_bits_chip else None
    except UserError:
        chip_memory = None  # profile without bit widths
    build = build_static_layer_reports(cost, int(config.steps), profile)
    energy = build.energy_info(measured_j=measurement.energy_j_per_sample
                               if measurement.energy_kind == "measured" else None)
    per_sample = build.per_sample(measurement.latency_s_per_sample)
    if energy.kind == "measured":
        per_sample = type(per_sample)(**{**per_sample.to_dict(), "energy_j": energy.total_j})
    report = RunReport(
        tool=ToolInfo(),
        model=ModelInfo(family=config.family, arch=model.arch.notation(), params=int(cost.params)),
        data=DataInfo(dataset=config.dataset, source=source.source, synthetic_source=source.synthetic_source,
                      split="test", samples=int(len(labels)),
                      dt_ms=float(config.dt_ms), steps=int(config.steps)),
        backend=BackendInfo(name="torch", mode="float", hw_config=profile.name, device=measurement.device_name),
        accuracy=accuracy,
        per_sample=per_sample,
        energy=energy,
        memory_bits=MemoryBits.of(cost.memory_bits, {"value": cost.bits}),
        memory_bits_chip=chip_memory,
        layers=tuple(build.layers),
        provenance=collect_provenance(),
    )
    out_dir = Path(request.out) if request.out else run_dir / "reports" / "torch"
    paths = write_run_report(report, out_dir)
    data = report.to_dict()
    print_layer_table(data, console)
    print_summary(data, console)
    console.print(f"latency {measurement.latency_s_per_sample * 1e3:.3f} ms/sample, "
                  f"{measurement.samples_per_s:.1f} samples/s on {measurement.device_name}; energy "
                  f"{energy.kind}" + (f" ({measurement.energy_note})" if measurement.energy_note else ""))
    for path in paths:
        console.print(f"wrote {path}")
    return data
