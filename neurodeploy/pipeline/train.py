"""``neurodeploy train``: train a network into a run folder, or resume one (``resume=True`` continues from
the checkpoint and ends with the same weights and metrics as an uninterrupted run)."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import torch
from rich.console import Console

from neurodeploy import atomic, folders, run_lock
from neurodeploy.deploy.run_folder import (
    CHECKPOINT,
    check_same_run,
    load_checkpoint,
    load_run_config,
    load_weights,
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
    SPIKING_FAMILIES,
    EpochMetrics,
    SplitFrames,
    TrainConfig,
    TrainResult,
    apply_model_defaults,
    build_network,
    check_family_arch,
    evaluate,
    input_shape_of,
    loss_function,
    peak_rss_bytes,
    resolve_data,
    run_epoch,
    wake_silent_layers,
)


def check_train_out(run_dir: Path) -> None:
    """UserError unless ``run_dir`` is new, empty or a training run neurodeploy made (never a user's folder or
    an imported NIR run: one folder, one identity). ``train`` checks it itself; callers that print before
    training (lint) check it first."""
    folders.check_output_dir(run_dir, (folders.TRAIN_RUN,))


def train(config: TrainConfig, run_dir: Path, *, resume: bool = False, console=None) -> TrainResult:
    """Train ``config`` into ``run_dir``; prints a progress bar per epoch and one line per epoch.

    ``run_dir`` is locked (:mod:`neurodeploy.run_lock`) from the start when it exists, else as soon as it
    is created, so a second command on it fails instead of mixing its files in.
    """
    check_train_out(run_dir)
    with contextlib.ExitStack() as stack:
        stack.enter_context(run_lock.hold(run_dir))
        return _train(config, Path(run_dir), resume, console or Console(stderr=True), stack)


def _train(config: TrainConfig, run_dir: Path, resume: bool, console, stack: contextlib.ExitStack) -> TrainResult:
    locked = run_dir.is_dir()
    start_epoch, metrics, state = 0, [], None
    if resume:
        previous = load_run_config(run_dir)
        state = load_checkpoint(run_dir)
        check_same_run(previous, config, run_dir)
        previous.epochs = config.epochs  # a resumed run may be extended
        config = previous
        start_epoch = int(state["epoch"]) + 1
        metrics = [EpochMetrics(**m) for m in state["metrics"]]
    elif (run_dir / CHECKPOINT).exists():
        raise UserError(f"{run_dir}: already holds a trained run; use --resume to continue or another --out")
    model = resolve_arch(config.arch, config.dataset)
    apply_model_defaults(config, model)
    config.validate()
    resolve_data(config)
    shape = input_shape_of(config.resolved["sensor_size"])
    if model.arch.num_classes != config.resolved["num_classes"]:
        raise UserError(f"{model.name}: output layer has {model.arch.num_classes} classes but {config.dataset} "
                        f"has {config.resolved['num_classes']}; pick an --arch for this dataset")
    model.arch.shapes(shape)  # fails early with a clear message if the input is too small for the arch
    check_family_arch(config, model.arch, shape)
    atomic.check_writable_dir(run_dir)
    # read every sample before creating the run directory: a damaged dataset leaves no half-made run behind
    train_split = SplitFrames(config, "train", config.limit)
    test_split = SplitFrames(config, "test", config.test_limit)
    if not locked:
        make_run_dir(run_dir)
        stack.enter_context(run_lock.hold(run_dir))
        if not resume and (run_dir / CHECKPOINT).exists():  # another command trained here in the meantime
            raise UserError(f"{run_dir}: already holds a trained run; use --resume to continue or another --out")
    prepare_run_dir(run_dir)

    torch.manual_seed(config.seed)
    network = build_network(config, model, shape).to(config.device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    if state is not None:
        load_weights(network, state, run_dir)
        optimizer.load_state_dict(state["optimizer"])
    elif config.family in SPIKING_FAMILIES:
        wake_silent_layers(network, config, train_split, console)
    config.resolved.setdefault("run_id", uuid.uuid4().hex)  # a resumed run keeps its id
    write_config(run_dir, config, model)

    criterion = loss_function(config)
    num_classes = model.arch.num_classes
    console.print(f"[bold]train[/bold] {config.family} {model.arch.notation()} on {config.dataset} "
                  f"({config.resolved['data_source']}): {len(train_split)} train / {len(test_split)} test samples, "
                  f"dt={config.dt_ms} ms, T={config.steps}, batch {config.batch_size}, lr {config.lr}")
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        loss, train_accuracy = run_epoch(network, optimizer, criterion, train_split, config, epoch, num_classes,
                                         run_dir=run_dir, console=console)
        test_accuracy = evaluate(network, test_split, config.micro_batch, config.device)
        record = EpochMetrics(epoch + 1, loss, train_accuracy, test_accuracy,
                              round(time.perf_counter() - started, 3), peak_rss_bytes())
        metrics.append(record)
        save_checkpoint(run_dir, {
            "epoch": epoch, "model": network.state_dict(), "optimizer": optimizer.state_dict(),
            "metrics": [m.to_dict() for m in metrics], "schema_version": SCHEMA_VERSION,
        })
        write_metrics(run_dir, metrics)
        console.print(f"epoch {record.epoch:3d}  loss {record.loss:.4f}  train {record.train_accuracy:6.2%}  "
                      f"test {record.test_accuracy:6.2%}  {record.seconds:.1f} s  "
                      f"peak {record.peak_rss_bytes / 2**30:.2f} GiB")
    atomic.write_json(run_dir / folders.TRAINING_DONE, {"run_id": config.resolved["run_id"], "epochs": config.epochs,
                                                       "epochs_run": len(metrics)})
    return TrainResult(run_dir, metrics)
