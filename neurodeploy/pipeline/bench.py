"""``neurodeploy bench`` workloads: emulator-versus-Lava throughput on one netx network (dense or conv, with
the random networks and inputs they use) and a whole test set through ``run --backend emulator``."""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from neurodeploy.backends.emulator import run_emulator
from neurodeploy.backends.lava_sim import run_lava, warm_up_lava
from neurodeploy.data.synthetic_nmnist import generate_synthetic_nmnist
from neurodeploy.deploy.export import export_run
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer
from neurodeploy.deploy.netx_write import write_netx, write_slayer_netx
from neurodeploy.models.arch import parse_architecture
from neurodeploy.models.snn import build_spiking_network
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train

# slayer's export range: weights quantized to 2/64 steps and clamped to [-256/64, 254/64], times 64
SLAYER_WEIGHT_MIN, SLAYER_WEIGHT_MAX = -256, 254


def write_random_dense_netx(
    path: str | Path,
    sizes: tuple[int, ...] = (2312, 512, 10),
    *,
    seed: int = 0,
    i_decay: int = 4096,
    v_decay: int = 2867,
    v_th_mant: tuple[int, int] = (19, 80),
    weight_std: float = 40.0,
) -> Path:
    """A feed-forward CUBA dense network with slayer-like integers, written as netx HDF5.

    Weights are even integers in [-256, 254] (normal with ``weight_std``, rounded to even, clipped); each
    layer's threshold mantissa is drawn from ``v_th_mant`` (inclusive); ``i_decay=4096`` makes the current
    follow the input, ``v_decay=2867`` is slayer's voltage decay 0.7 in 12-bit units.
    """
    rng = np.random.default_rng(seed)
    layers = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        weight = 2 * np.rint(rng.normal(0, weight_std / 2, size=(n_out, n_in)))
        weight = np.clip(weight, SLAYER_WEIGHT_MIN, SLAYER_WEIGHT_MAX).astype(np.int64)
        neuron = CubaParams(i_decay, v_decay, int(rng.integers(v_th_mant[0], v_th_mant[1] + 1)))
        layers.append(NetxLayer(index=index, kind="dense", in_shape=(n_in,), out_shape=(n_out,),
                                weight=weight, neuron=neuron))
    return write_netx(path, layers, input_shape=(sizes[0],))


def random_spikes(n_inputs: int, steps: int, samples: int, density: float, seed: int = 0) -> np.ndarray:
    """Bernoulli(density) input spikes, uint8 (samples, n_inputs, steps)."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, n_inputs, steps)) < density).astype(np.uint8)


def matmul_gflops(size: int = 1024, repeats: int = 3) -> float:
    """This machine's float32 GEMM rate with numpy (best of ``repeats``), in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def benchmark_backends(
    net_path: str | Path,
    steps: int = 15,
    samples: int = 10,
    density: float = 0.03,
    seed: int = 0,
    *,
    emulator_samples: int = 1000,
    engine: str = "auto",
    record_layers: bool = False,
) -> dict[str, Any]:
    """Time the emulator and Lava on the same random inputs in this process; check they agree.

    Lava runs ``samples`` samples in one batched run (import excluded, build/compile/start included);
    the emulator runs ``max(samples, emulator_samples)`` samples whose first ``samples`` are Lava's, after
    a warm-up that compiles its kernels. ``bit_exact`` compares every recorded layer of those samples;
    ``layer_mismatches`` counts the differing (sample, neuron, step) entries per layer, beside the spikes
    Lava recorded per layer (``lava_layer_spikes``: a silent layer would agree trivially).
    ``dense_matmul_gflops`` is numpy's float32 GEMM rate here, and ``emulator_dense_equivalent_gflops`` the
    rate the emulator would need as dense float32 GEMM (2 x synapses x steps x samples / time): above the
    former means it beats the dense-matmul floor.
    """
    net = load_netx(net_path)
    total = max(samples, emulator_samples)
    inputs = random_spikes(net.num_inputs, steps, total, density, seed)

    run_emulator(net, inputs[:1, :, : min(steps, 2)], engine=engine)  # compile kernels
    emulated = run_emulator(net, inputs, engine=engine)
    warm_up_lava()
    simulated = run_lava(net_path, inputs[:samples], record_layers=record_layers)

    recorded = list(zip(simulated.layer_indices, simulated.layer_spikes))
    mismatches = {net.layers[p].name: int(np.count_nonzero(emulated.layer_spikes[p][:samples] != spikes))
                  for p, spikes in recorded}
    lava_rate = samples / simulated.wall_s
    emulator_rate = total / emulated.wall_s
    synapse_flops = 2 * sum(layer.synapses for layer in net.layers) * steps * total
    return {
        "net": str(net_path),
        "steps": steps,
        "samples": samples,
        "emulator_samples": total,
        "density": density,
        "seed": seed,
        "lava_samples_per_s": lava_rate,
        "lava_run_samples_per_s": samples / simulated.metadata["run_s"],
        "emulator_samples_per_s": emulator_rate,
        "ratio": emulator_rate / lava_rate,
        "bit_exact": not any(mismatches.values()),
        "layer_mismatches": mismatches,
        "lava_layer_spikes": {net.layers[p].name: int(spikes.sum(dtype=np.int64)) for p, spikes in recorded},
        "emulator_engine": emulated.metadata["engine"],
        "lava_batching": simulated.metadata["batching"],
        "dense_matmul_gflops": matmul_gflops(),
        "emulator_dense_equivalent_gflops": synapse_flops / emulated.wall_s / 1e9,
    }


def run_benchmark(
    net: str | Path | None = None,
    *,
    samples: int = 20,
    steps: list[int] | tuple[int, ...] = (15, 300),
    density: float = 0.03,
    seed: int = 0,
    emulator_samples: int = 1000,
) -> dict[str, Any]:
    """:func:`benchmark_backends` for each T in ``steps`` (the ``neurodeploy bench`` command).

    Without ``net``, a random 2312-512-10 network (:func:`write_random_dense_netx`, seed ``seed``) is
    written to a temporary folder and used.
    """
    with tempfile.TemporaryDirectory(prefix="neurodeploy-bench-") as folder:
        if net is None:
            net = write_random_dense_netx(Path(folder) / "random-2312-512-10.net", seed=seed)
            net_label = "random 2312-512-10 (slayer-range weights)"
        else:
            net_label = str(net)
        results = [
            benchmark_backends(net, steps=t, samples=samples, density=density, seed=seed,
                               emulator_samples=emulator_samples)
            for t in steps
        ]
    for result in results:
        result["net"] = net_label
    return {"net": net_label, "results": results}


WORKLOADS = ("backends", "testset", "conv", "pilotnet")  # pilotnet: pipeline/pilotnet.py
DVS_CNN = "Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11"
CALIBRATION_SAMPLES = 8


@contextlib.contextmanager
def _cache_in(folder: Path):
    """Point neurodeploy's cache (frames, synthetic data) at ``folder`` for the duration of a benchmark."""
    previous = os.environ.get("NEURODEPLOY_CACHE")
    os.environ["NEURODEPLOY_CACHE"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("NEURODEPLOY_CACHE", None)
        else:
            os.environ["NEURODEPLOY_CACHE"] = previous


def run_testset_benchmark(samples: int = 10_000, *, data_dir: Path | None = None, train_samples: int = 100,
                          seed: int = 0) -> dict[str, Any]:
    """``bench --workload testset``: a whole N-MNIST-format test set through ``run --backend emulator``.

    Without ``data_dir`` a synthetic N-MNIST-format set with ``samples`` test samples is generated (not
    timed). An MLP SNN (``mlp``, T=15) is trained for one epoch on ``train_samples`` samples and exported
    (not timed); then the run itself -- events to frames, the float SLAYER model, the Loihi 2 emulation,
    parity and the report with its plots -- is timed twice in this process: first with an empty frame cache
    (decoding every event file), then with the binned frames cached. Wall and CPU seconds of both; process
    start-up and imports are not included (``time neurodeploy run ...`` shows them).
    """
    quiet = Console(file=io.StringIO())
    with tempfile.TemporaryDirectory(prefix="neurodeploy-bench-") as folder, _cache_in(Path(folder) / "cache"):
        root = Path(data_dir) if data_dir is not None else generate_synthetic_nmnist(
            Path(folder) / "nmnist", train_per_class=max(1, math.ceil(train_samples / 10)),
            test_per_class=math.ceil(samples / 10), seed=seed)
        run_dir = Path(folder) / "run"
        train(TrainConfig(dataset="nmnist", family="snn", arch="mlp", epochs=1, lr=1e-3, limit=train_samples,
                          test_limit=min(samples, 100), data_dir=str(root), seed=seed), run_dir, console=quiet)
        export_run(run_dir)
        request = RunRequest(target=run_dir, backend="emulator", samples=samples, data_dir=root,
                             out=Path(folder) / "reports")
        timings = []
        for _ in ("first", "cached"):
            wall, cpu = time.perf_counter(), time.process_time()
            report = execute(request, console=quiet, err_console=quiet)
            timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    parity = report["parity"]
    return {
        "workload": "testset",
        "data": f"{report['data']['source']} {report['data']['dataset']}",
        "samples": report["data"]["samples"],
        "steps": report["data"]["steps"],
        "backend": "emulator (Loihi 2 fixed-point emulation) + float SLAYER parity + report",
        "first_run_s": timings[0][0],
        "first_run_cpu_s": timings[0][1],
        "cached_run_s": timings[1][0],
        "cached_run_cpu_s": timings[1][1],
        "accuracy": report["accuracy"],
        "float_accuracy": parity["float_accuracy"],
        "spike_trains_identical": parity["identical"],
        "excludes": "process start-up, imports, data generation, training and export",
    }


def write_random_conv_netx(path: str | Path, arch: str = DVS_CNN, input_shape: tuple[int, int, int] = (2, 128, 128),
                           *, density: float = 0.03, steps: int = 60, seed: int = 0) -> Path:
    """An untrained SLAYER SNN of ``arch`` (PyTorch-default init, silent layers woken on random inputs whose
    chip-side density is ``density``; :meth:`SpikingNetwork.wake_silent_layers`) exported as netx."""
    torch.manual_seed(seed)
    network = build_spiking_network(parse_architecture(arch), input_shape)
    pooled = (network.input_pool or 1) ** 2  # events are max-pooled k x k before the chip
    raw_density = 1 - (1 - density) ** (1 / pooled)
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(CALIBRATION_SAMPLES, *input_shape, steps, generator=generator) < raw_density).float()
    network.wake_silent_layers(x)
    write_slayer_netx(network, Path(path))
    return Path(path)


def run_conv_benchmark(arch: str = DVS_CNN, input_shape: tuple[int, int, int] = (2, 128, 128), *,
                       samples: int = 1, steps: int = 60, density: float = 0.03, emulator_samples: int = 10,
                       seed: int = 0) -> dict[str, Any]:
    """``bench --workload conv``: Lava vs emulator on a convolutional SNN (default the DVS Gesture CNN,
    untrained, :func:`write_random_conv_netx`), every layer recorded and compared (:func:`benchmark_backends`)."""
    with tempfile.TemporaryDirectory(prefix="neurodeploy-bench-") as folder:
        net = write_random_conv_netx(Path(folder) / "conv.net", arch, input_shape, density=density, steps=steps,
                                     seed=seed)
        result = benchmark_backends(net, steps=steps, samples=samples, density=density, seed=seed,
                                    emulator_samples=emulator_samples, record_layers=True)
    result.update(workload="conv", net=f"{arch} on {'x'.join(map(str, input_shape))} (untrained, woken init)")
    return result
