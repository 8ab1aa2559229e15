"""Why Table XII reverses on the synthetic data: one SNN (and one RNN) trained at dt 3 ms, tested at 3, 2 and
1 ms (T x dt = 45 ms) with one thing changed per row. Measured numbers for docs/study.md.

    PYTHONPATH=. python scripts/table12_causes.py --out runs/t12-causes --epochs 3 --limit 500
    PYTHONPATH=. python scripts/table12_causes.py --out runs/t12-causes-conv --no-emulator \
        --snn-run runs/study-table12/cells/snn-dt3-T15-s0 --rnn-run runs/study-table12/cells/rnn-dt3-T15-s0

Rows (float = PyTorch, the trained weights; nothing is retrained between rows):
- ``binary``: the study's input (binary frames, eq. 12-13) and leak k = 0.3 per step;
- ``count``: frames hold event counts per bin instead of 0/1;
- ``leak per ms``: k = exp(-dt / 2.49 ms) (0.3 at 3 ms, 0.67 at 1 ms), binary input;
- ``input x3/dt``: each 1 ms or 2 ms step sees the OR of the last 3 ms of events (the training dt's density
  per step), k = 0.3 per step;
- ``emulated``: the exported network on the bit-exact fixed-point emulator (quantised weights, threshold).
Per-layer rates are spikes per neuron per step on the test split, binary input, k = 0.3.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from neurodeploy.data.events import events_to_frames
from neurodeploy.data.nmnist import index_nmnist, read_nmnist_file
from neurodeploy.deploy.export import export_run
from neurodeploy.deploy.run_folder import CHECKPOINT, load_checkpoint
from neurodeploy.models import losses
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.recurrent import build_recurrent_network
from neurodeploy.models.snn import LIFMapping, build_spiking_network
from neurodeploy.models.training import TrainConfig, resolve_data
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train
from neurodeploy.reports.compare import REPORT_NAME, read_row
from neurodeploy.study.cell import derive_test_run
from neurodeploy.study.spec import TestPoint

TRAIN_DT, WINDOW, TAU = 3.0, 45.0, 2.4918


def frames(items, dt, steps, mode):
    """(N, 2, 34, 34, T) float frames of ``items``: binary, count, or binary OR over the last 3 ms."""
    out = []
    for path, _ in items:
        events = read_nmnist_file(path)
        if mode == "binary":
            f = events_to_frames(events, (34, 34, 2), dt, steps).astype(np.float32)
        elif mode == "count":
            f = np.zeros((2, 34, 34, steps), np.float32)
            step = events["t"] // int(round(dt * 1000))
            keep = step < steps
            np.add.at(f, (events["p"][keep].astype(int), events["y"][keep].astype(int),
                          events["x"][keep].astype(int), step[keep]), 1)
        else:  # density: each step ORs the events of [t + dt - 3 ms, t + dt)
            fine = events_to_frames(events, (34, 34, 2), dt, steps).astype(np.float32)
            width = int(round(TRAIN_DT / dt))
            f = np.zeros_like(fine)
            for shift in range(width):
                f[..., shift:] = np.maximum(f[..., shift:], fine[..., : steps - shift])
        out.append(f)
    return torch.from_numpy(np.stack(out))


def event_statistics(items) -> dict:
    """Events per sample and in the 45 ms window; per active (pixel, polarity) in the window: events and their
    time span (how many bins of 1 ms and of 3 ms one edge crossing fills)."""
    per_sample, in_window, per_pixel, span = [], [], [], []
    for path, _ in items:
        events = read_nmnist_file(path)
        per_sample.append(len(events))
        window = events[events["t"] < WINDOW * 1000]
        in_window.append(len(window))
        key = (window["x"].astype(np.int64) * 64 + window["y"]) * 2 + window["p"]
        order = np.argsort(key, kind="stable")
        keys, starts, counts = np.unique(key[order], return_index=True, return_counts=True)
        times = window["t"][order]
        per_pixel.extend(counts.tolist())
        span.extend(((times[starts + counts - 1] - times[starts]) / 1000).tolist())
    return {"samples": len(items), "events_per_sample": float(np.mean(per_sample)),
            "events_in_window": float(np.mean(in_window)), "events_per_active_pixel": float(np.mean(per_pixel)),
            "active_pixel_span_ms": float(np.mean(span))}


def accuracy(net, x, y, record=False):
    net.eval()
    if record:
        net.record = True
    with torch.no_grad():
        correct, rates = 0, None
        for start in range(0, len(x), 50):
            out = net(x[start:start + 50])
            correct += int((losses.predict(out) == y[start:start + 50]).sum())
            if record:
                batch = [float(s.mean()) * len(s) for s in net.layer_spikes]
                rates = batch if rates is None else [a + b for a, b in zip(rates, batch)]
    net.record = False
    return correct / len(x), ([r / len(x) for r in rates] if rates else None)


def snn_at(run_dir, config, k):
    model = resolve_arch(config.arch, config.dataset)
    mapping = LIFMapping(leak=k)
    net = build_spiking_network(model.arch, (2, 34, 34), mapping)
    net.load_state_dict(load_checkpoint(run_dir)["model"])
    net.apply_leak()
    return net


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data-dir", help="an N-MNIST copy (default: the synthetic stand-in)")
    parser.add_argument("--no-emulator", action="store_true")
    parser.add_argument("--snn-run", help="use this trained SNN run folder (e.g. a study cell) instead of training")
    parser.add_argument("--rnn-run", help="use this trained RNN run folder instead of training")
    args = parser.parse_args()
    out = Path(args.out)
    console = Console(stderr=True)
    torch.set_num_threads(1)
    results = {"epochs": args.epochs, "train_limit": args.limit, "rows": []}
    test_items = None
    runs = {}
    for family in ("snn", "rnn"):
        config = TrainConfig(family=family, arch="mlp", epochs=args.epochs, batch_size=25, lr=args.lr,
                             dt_ms=TRAIN_DT, steps=15, limit=args.limit, test_limit=args.test_limit, seed=0,
                             data_dir=args.data_dir)
        given = getattr(args, f"{family}_run")
        if given:
            runs[family] = (Path(given), TrainConfig.from_dict(json.loads((Path(given) / "config.json").read_text())))
            continue
        run_dir = out / family
        started = time.perf_counter()
        done = int(load_checkpoint(run_dir)["epoch"]) + 1 if (run_dir / CHECKPOINT).exists() else 0
        if done < args.epochs:
            train(config, run_dir, resume=done > 0, console=console)
        results[f"{family}_train_s"] = round(time.perf_counter() - started, 1)
        runs[family] = (run_dir, config)
    out.mkdir(parents=True, exist_ok=True)
    resolve_data(runs["snn"][1])
    source = runs["snn"][1].resolved["source_obj"]
    test_items = index_nmnist(source.root, "test")
    rng = np.random.default_rng(0)
    if args.test_limit and args.test_limit < len(test_items):
        test_items = [test_items[i] for i in sorted(rng.choice(len(test_items), args.test_limit, replace=False))]
    y = torch.tensor([label for _, label in test_items])
    results["data"] = event_statistics(test_items)
    print(json.dumps(results["data"]), flush=True)
    rnn_dir, rnn_config = runs["rnn"]
    rnn = build_recurrent_network("rnn", resolve_arch("mlp", "nmnist").arch, (2, 34, 34))
    rnn.load_state_dict(load_checkpoint(rnn_dir)["model"])
    snn_dir, snn_config = runs["snn"]
    for dt in (3.0, 2.0, 1.0):
        steps = round(WINDOW / dt)
        binary = frames(test_items, dt, steps, "binary")
        row = {"dt_ms": dt, "steps": steps, "inputs_per_step": float(binary.sum() / len(binary) / steps)}
        row["snn_binary"], row["snn_layer_rates"] = accuracy(snn_at(snn_dir, snn_config, 0.3), binary, y, True)
        row["snn_count"], _ = accuracy(snn_at(snn_dir, snn_config, 0.3), frames(test_items, dt, steps, "count"), y)
        row["snn_leak_per_ms"], row["snn_leak_per_ms_rates"] = accuracy(
            snn_at(snn_dir, snn_config, math.exp(-dt / TAU)), binary, y, True)
        dense = frames(test_items, dt, steps, "density")
        row["inputs_per_step_density"] = float(dense.sum() / len(dense) / steps)
        row["snn_density_x3"], row["snn_density_rates"] = accuracy(snn_at(snn_dir, snn_config, 0.3), dense, y, True)
        row["rnn_binary"], _ = accuracy(rnn, binary, y)
        if not args.no_emulator:
            target = snn_dir if dt == TRAIN_DT else derive_test_run(snn_dir, TestPoint(dt, steps))
            export_run(target)
            for backend in ("torch", "emulator"):
                report = execute(RunRequest(target=target, backend=backend, samples=None, allow_synthetic=True),
                                 console=console, err_console=console)
                row[f"snn_run_{backend}"] = read_row(target / "reports" / backend / REPORT_NAME).accuracy
                row[f"snn_run_{backend}_samples"] = int(report["data"]["samples"])
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    (out / "causes.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
