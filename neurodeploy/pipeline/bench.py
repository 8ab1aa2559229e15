"""Emulator-versus-Lava throughput on one netx network, plus the random networks and inputs it uses."""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.backends.emulator import run_emulator
from neurodeploy.backends.lava_sim import run_lava, warm_up_lava
from neurodeploy.deploy.netx import CubaParams, NetxLayer, load_netx, write_netx

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
    a warm-up that compiles its kernels. ``bit_exact`` compares every recorded layer of those samples.
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

    first = emulated.layer_spikes
    positions = simulated.layer_indices
    same = all(np.array_equal(first[p][:samples], spikes) for p, spikes in zip(positions, simulated.layer_spikes))
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
        "bit_exact": bool(same),
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
