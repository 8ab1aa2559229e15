"""``neurodeploy train``: train a network into a run folder, or resume one (``resume=True`` continues from
the checkpoint and ends with the same weights and metrics as an uninterrupted run)."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import torch
from rich.console import Console

from neurodeploy import atomic, devices, folders, run_lock
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
from neurodeploy.metrics.run_metrics import wilson_interval
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.training import (
    SCHEMA_VERSION,
    SPIKING_FAMILIES,
    TRAIN_PRESETS,
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
    config.resolved["ran_on"] = devices.describe(config.device)  # a resumed run: where it ran last
    write_config(run_dir, config, model)

    criterion = loss_function(config)
    num_classes = model.arch.num_classes
    frames = f" on {config.frames} frames (ReLU, no bias, cross-entropy)" if config.frames else (
        " (3D convolutions over T x H x W, cross-entropy)" if config.family == "tcnn" else "")
    console.print(f"[bold]train[/bold] {config.family} {model.arch.notation()}{frames} on {config.dataset} "
                  f"({config.resolved['data_source']}): {len(train_split)} train / {len(test_split)} test samples, "
                  f"dt={config.dt_ms} ms, T={config.steps}, batch {config.batch_size}, lr {config.lr}, on "
                  f"{devices.label(config.resolved['ran_on'])}")
    warning = small_test_set_warning(len(test_split))
    if warning:
        console.print(f"[yellow]{warning}[/yellow]", highlight=False)
    wall_start = time.perf_counter()
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
        done = epoch + 1 - start_epoch
        remaining = (time.perf_counter() - wall_start) / done * (config.epochs - epoch - 1)
        console.print(f"epoch {record.epoch:3d}/{config.epochs}  loss {record.loss:.4f}  "
                      f"train {record.train_accuracy:6.2%}  test {record.test_accuracy:6.2%}  {record.seconds:.1f} s  "
                      f"peak {record.peak_rss_bytes / 2**30:.2f} GiB  "
                      f"ETA {_duration(remaining) if remaining else 'done'}", highlight=False)
    atomic.write_json(run_dir / folders.TRAINING_DONE, {"run_id": config.resolved["run_id"], "epochs": config.epochs,
                                                       "epochs_run": len(metrics)})
    for line in training_summary(metrics, time.perf_counter() - wall_start, run_dir, len(test_split)):
        console.print(line, highlight=False)
    return TrainResult(run_dir, metrics)


def preset_settings(preset: str, epochs: int | None, lr: float | None,
                    resume_dir: Path | None = None) -> tuple[int, float]:
    """(epochs, lr) of ``train``: the given ones, else the preset's (:data:`TRAIN_PRESETS`); a resumed run keeps
    its own epochs unless ``epochs`` is given (a preset never shortens it)."""
    settings = TRAIN_PRESETS[preset]
    if epochs is None and resume_dir is not None and (Path(resume_dir) / CHECKPOINT).exists():
        with contextlib.suppress(UserError):
            epochs = load_run_config(resume_dir).epochs
    return (settings["epochs"] if epochs is None else epochs), (settings["lr"] if lr is None else lr)


SMALL_TEST_SET = 100  # below this a 95 % interval is wider than about +-10 points


def small_test_set_warning(samples: int) -> str | None:
    """A warning when the test set is too small to separate models (its 95 % interval at 50 % accuracy)."""
    if samples >= SMALL_TEST_SET or samples < 1:
        return None
    low, high = wilson_interval(samples // 2, samples)
    return (f"warning: only {samples} test samples: a 95 % interval spans {100 * (high - low):.0f} points, too wide to "
            f"separate models; use at least {SMALL_TEST_SET} (--test-limit, or more data)")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def training_summary(metrics: list[EpochMetrics], wall_s: float, run_dir: Path, test_samples: int) -> list[str]:
    """The closing lines: final and best test accuracy (with its epoch), which checkpoint is kept, wall time."""
    if not metrics:
        return [f"training: no epoch run; {run_dir / CHECKPOINT} unchanged"]
    final, best = metrics[-1], max(metrics, key=lambda m: m.test_accuracy)
    kept = (f"{run_dir / CHECKPOINT} holds the weights after the last epoch ({final.epoch}), which export and "
            "run use")
    if best.epoch != final.epoch:
        kept += f"; the best test epoch ({best.epoch}) is not kept separately"
    return [f"training done: final test accuracy {final.test_accuracy:.2%} (epoch {final.epoch}), best "
            f"{best.test_accuracy:.2%} (epoch {best.epoch}), on {test_samples} test samples; wall time "
            f"{_duration(wall_s)} (this session)", kept]
