"""``neurodeploy train DATASET --model ann``: the conversion-ready ANN (:mod:`neurodeploy.models.ann`) trained on
static images (MNIST, :mod:`neurodeploy.data.mnist`) into a run folder that ``convert`` turns into an SNN.

The ANN sees the images themselves (intensities in [0, 1]), not their spike code; it is trained with
cross-entropy and Adam (Deng et al. 2020: Adam, batch 50) in an order fixed by (seed, epoch). The run folder
has the files of any training run (``config.json``, ``checkpoint.pt``, ``metrics.jsonl``, ``training_done.json``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from neurodeploy import atomic, devices, folders, run_lock
from neurodeploy.data import mnist
from neurodeploy.data.datasets import balanced_subset, dataset_kind
from neurodeploy.deploy.run_folder import (
    CHECKPOINT,
    make_run_dir,
    prepare_run_dir,
    save_checkpoint,
    write_config,
    write_metrics,
)
from neurodeploy.errors import UserError
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.training import (
    SCHEMA_VERSION,
    EpochMetrics,
    TrainConfig,
    TrainResult,
    apply_model_defaults,
    build_network,
    input_shape_of,
    peak_rss_bytes,
    resolve_data,
)
from neurodeploy.pipeline.train import check_train_out, training_summary


def static_images(config: TrainConfig, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) of the run's dataset (a class-balanced, seeded
    subset with ``limit``); UserError for a dataset of events."""
    if dataset_kind(config.dataset).read_frames is None:
        raise UserError(f"--model ann trains on static images (mnist); {config.dataset} holds events: add --frames "
                        "binary or --frames intensity for a frame-based ANN (Deng Models 4 / 5, docs/frames.md)")
    source = config.resolved.get("source_obj") or resolve_data(config)
    images, labels = mnist.load_split(source.root, split)
    keep = balanced_subset(labels, limit, config.seed)
    x = torch.from_numpy(images[keep].astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels[keep])


def accuracy(network: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    network.eval()
    with torch.no_grad():
        correct = sum(int((network(x[i:i + batch])[..., 0].argmax(1) == y[i:i + batch]).sum())
                      for i in range(0, len(x), batch))
    return correct / max(1, len(x))


def train_ann(config: TrainConfig, run_dir: Path, *, resume: bool = False, console=None) -> TrainResult:
    """Train ``config`` (family ``ann``) into ``run_dir``; one line per epoch on ``console``."""
    if resume:
        raise UserError("--resume is for snn/rnn/lstm/rsnn runs; an ANN trains in seconds, train it again")
    if dataset_kind(config.dataset).read_frames is None:
        raise UserError(f"--model ann trains on static images (mnist); {config.dataset} holds events: add --frames "
                        "binary or --frames intensity for a frame-based ANN (Deng Models 4 / 5, docs/frames.md)")
    console = console or Console(stderr=True)
    run_dir = Path(run_dir)
    check_train_out(run_dir)
    with contextlib.ExitStack() as stack:
        if run_dir.is_dir():
            stack.enter_context(run_lock.hold(run_dir))
        if (run_dir / CHECKPOINT).exists():
            raise UserError(f"{run_dir}: already holds a trained run; use another --out")
        model = resolve_arch(config.arch, config.dataset)
        apply_model_defaults(config, model)
        config.validate()
        resolve_data(config)
        shape = input_shape_of(config.resolved["sensor_size"])
        if model.arch.num_classes != config.resolved["num_classes"]:
            raise UserError(f"{model.name}: output layer has {model.arch.num_classes} classes but {config.dataset} "
                            f"has {config.resolved['num_classes']}; pick an --arch for this dataset")
        torch.manual_seed(config.seed)
        network = build_network(config, model, shape).to(config.device)
        train_x, train_y = static_images(config, "train", config.limit)
        test_x, test_y = static_images(config, "test", config.test_limit)
        atomic.check_writable_dir(run_dir)
        if not run_dir.is_dir():
            make_run_dir(run_dir)
            stack.enter_context(run_lock.hold(run_dir))
        prepare_run_dir(run_dir)
        config.resolved["run_id"] = uuid.uuid4().hex
        config.resolved["ran_on"] = devices.describe(config.device)
        write_config(run_dir, config, model)
        console.print(f"[bold]train[/bold] ann {model.arch.notation()} (ReLU, no bias) on {config.dataset} "
                      f"({config.resolved['data_source']}, static images): {len(train_x)} train / {len(test_x)} test, "
                      f"batch {config.batch_size}, lr {config.lr}", highlight=False)
        metrics = _epochs(network, config, (train_x, train_y), (test_x, test_y), run_dir, console)
        atomic.write_json(run_dir / folders.TRAINING_DONE, {"run_id": config.resolved["run_id"],
                                                           "epochs": config.epochs, "epochs_run": len(metrics)})
        for line in training_summary(metrics, sum(m.seconds for m in metrics), run_dir, len(test_x)):
            console.print(line, highlight=False)
        return TrainResult(run_dir, metrics)


def _epochs(network, config: TrainConfig, train, test, run_dir: Path, console) -> list[EpochMetrics]:
    device = config.device
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    criterion = torch.nn.CrossEntropyLoss()
    (train_x, train_y), (test_x, test_y) = train, test
    metrics: list[EpochMetrics] = []
    for epoch in range(config.epochs):
        started = time.perf_counter()
        network.train()
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
        total, correct = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            x, y = train_x[index].to(device), train_y[index].to(device)
            optimizer.zero_grad()
            scores = network(x)[..., 0]
            loss = criterion(scores, y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
            correct += int((scores.argmax(1) == y).sum())
        network.cpu()
        record = EpochMetrics(epoch + 1, total / len(train_x), correct / len(train_x),
                              accuracy(network, test_x, test_y), round(time.perf_counter() - started, 3),
                              peak_rss_bytes())
        network.to(device)
        metrics.append(record)
        save_checkpoint(run_dir, {"epoch": epoch, "model": {k: v.cpu() for k, v in network.state_dict().items()},
                                  "metrics": [m.to_dict() for m in metrics], "schema_version": SCHEMA_VERSION})
        write_metrics(run_dir, metrics)
        console.print(f"epoch {record.epoch:3d}/{config.epochs}  loss {record.loss:.4f}  train "
                      f"{record.train_accuracy:6.2%}  test {record.test_accuracy:6.2%}  {record.seconds:.1f} s",
                      highlight=False)
    return metrics
