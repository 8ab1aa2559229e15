"""Training for every family (snn, rnn, lstm) under the paper's shared settings (SPEC 3.3, 3.5).

A run directory holds ``config.json`` (resolved settings and data provenance), ``checkpoint.pt`` (model,
optimizer, epoch and RNG state, rewritten atomically after every epoch) and ``metrics.jsonl`` (one line per
finished epoch). ``resume=True`` continues from the checkpoint; the data order of each epoch depends only on
(seed, epoch), so an interrupted and resumed run ends with the same weights and metrics as one that was not.
"""

from __future__ import annotations

import io
import json
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neurodeploy import atomic
from neurodeploy.arch import ModelFile, resolve_arch
from neurodeploy.errors import UserError

SCHEMA_VERSION = 1
FAMILIES = ("snn", "rnn", "lstm")
LOSSES = ("rate", "last")
CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Everything that determines a training run (paper Table IV defaults where a field is None)."""

    dataset: str = "nmnist"
    family: str = "snn"
    arch: str = "mlp"
    loss: str = "rate"
    epochs: int = 100
    batch_size: int | None = None
    lr: float = 1e-4
    dt_ms: float | None = None
    steps: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    data_dir: str | None = None
    allow_synthetic: bool = True
    seed: int = 0
    device: str = "cpu"
    surrogate_width: float | None = None
    schema_version: int = SCHEMA_VERSION
    resolved: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.family not in FAMILIES:
            raise UserError(f"unknown --model '{self.family}'; choose one of {', '.join(FAMILIES)}")
        if self.loss not in LOSSES:
            raise UserError(f"unknown --loss '{self.loss}'; choose one of {', '.join(LOSSES)}")
        if self.family == "snn" and self.loss != "rate":
            raise UserError("--loss last is for rnn/lstm; the SNN is trained with the rate-coding loss (eq. 10)")
        for name in ("epochs", "batch_size", "steps", "limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.dt_ms is not None and self.dt_ms <= 0:
            raise UserError(f"--dt must be positive (got {self.dt_ms})")
        if self.lr <= 0:
            raise UserError(f"--lr must be positive (got {self.lr})")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {self.device} asked for, but torch sees no CUDA device; use --device cpu")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        version = int(raw.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise UserError(f"config schema {version} is newer than this neurodeploy ({SCHEMA_VERSION}); "
                            "upgrade neurodeploy to read this run")
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def apply_model_defaults(config: TrainConfig, model: ModelFile) -> TrainConfig:
    """Fill unset dt / steps / batch size from the model file's per-dataset defaults (paper Table IV)."""
    defaults = model.datasets.get(config.dataset)
    fallback = {"nmnist": (10.0, 15, 50), "dvsgesture": (5.0, 60, 36)}.get(config.dataset, (5.0, 15, 32))
    dt, steps, batch = (defaults.dt_ms, defaults.steps, defaults.batch_size) if defaults else fallback
    config.dt_ms = config.dt_ms if config.dt_ms is not None else dt
    config.steps = config.steps if config.steps is not None else steps
    config.batch_size = config.batch_size if config.batch_size is not None else batch
    if config.surrogate_width is None:
        # source paper: a = 0.25 for N-MNIST, 0.5 for the DVS Gesture CNN
        config.surrogate_width = 0.5 if config.dataset == "dvsgesture" and model.arch.is_convolutional else 0.25
    return config


@dataclass
class EpochMetrics:
    """One line of ``metrics.jsonl``."""

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: list[EpochMetrics]


def build_network(config: TrainConfig, model: ModelFile, input_shape: tuple[int, int, int]) -> torch.nn.Module:
    """The family's network for ``model.arch``; only the SNN imports Lava (lava-dl SLAYER)."""
    if config.family == "snn":
        from neurodeploy.snn import LIFMapping, build_spiking_network

        return build_spiking_network(model.arch, input_shape, LIFMapping(surrogate_width=config.surrogate_width))
    from neurodeploy.recurrent import build_recurrent_network

    return build_recurrent_network(config.family, model.arch, input_shape)


CALIBRATION_SAMPLES = 8


def _wake_silent_layers(network, config: TrainConfig, train_split, console) -> None:
    """Data-driven init of a fresh SNN (:meth:`SpikingNetwork.wake_silent_layers`) on a few training samples,
    drawn with the run's seed; what changed is printed and kept in the run config."""
    count = min(CALIBRATION_SAMPLES, len(train_split))
    index = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(config.seed))[:count]
    x, _ = train_split.batch(index, config.device)
    changes = network.wake_silent_layers(x)
    config.resolved["init"] = {"calibration_samples": count, "woken_layers": [c.to_dict() for c in changes]}
    for change in changes:
        console.print(f"init: {change.layer} was silent on {count} training samples "
                      f"({change.active_before:.1%} of neurons spiked); weights x{change.gain:.3g} -> "
                      f"{change.active_after:.1%} spike, mean rate {change.rate_after:.2%}")


def loss_function(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    from neurodeploy import losses

    return losses.loss_rate if config.loss == "rate" else losses.loss_last


IN_MEMORY_LIMIT_BYTES = 512 * 2**20


class SplitFrames:
    """One split's binned frames: held in RAM when small (N-MNIST), else streamed from disk per batch with an
    on-disk cache of binned frames keyed by dataset, dt and T (DVS Gesture: 128x128x2xT never all in RAM)."""

    def __init__(self, config: TrainConfig, split: str, limit: int | None):
        from neurodeploy.data.datasets import FrameDataset, default_cache_dir

        source = config.resolved["source_obj"]
        self.dataset = FrameDataset(source, split, dt_ms=config.dt_ms, steps=config.steps, limit=limit,
                                    seed=config.seed, frame_cache_dir=default_cache_dir() / "frames")
        self.labels = torch.as_tensor(np.asarray(self.dataset.labels), dtype=torch.long)
        width, height, polarities = source.sensor_size
        size = len(self.labels) * width * height * polarities * config.steps
        self.frames = None
        if size <= IN_MEMORY_LIMIT_BYTES:
            self.frames = torch.from_numpy(np.stack([self.dataset.frames(i) for i in range(len(self.labels))])
                                           if len(self.labels) else np.zeros((0, polarities, height, width,
                                                                                config.steps), np.uint8))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.frames is not None:
            x = self.frames[index]
        else:
            x = torch.from_numpy(np.stack([self.dataset.frames(int(i)) for i in index]))
        return x.to(device=device, dtype=torch.float32), self.labels[index].to(device)


def resolve_data(config: TrainConfig):
    """Find the dataset (or the synthetic fallback) and record its provenance in the config."""
    from neurodeploy.data.datasets import resolve_dataset

    source = resolve_dataset(
        config.dataset, Path(config.data_dir) if config.data_dir else None,
        allow_synthetic=config.allow_synthetic, seed=config.seed,
    )
    config.resolved.update({
        "source_obj": source,
        "data_source": source.source,
        "data_root": str(source.root),
        "sensor_size": list(source.sensor_size),
        "num_classes": int(source.num_classes),
    })
    return source


def input_shape_of(sensor_size) -> tuple[int, int, int]:
    """(C, H, W) from tonic's sensor size (W, H, P)."""
    width, height, polarities = sensor_size
    return (int(polarities), int(height), int(width))


def _evaluate(network, split: SplitFrames, batch_size, device) -> float:
    from neurodeploy import losses

    network.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x, y = split.batch(torch.arange(start, min(start + batch_size, len(split))), device)
            correct += int((losses.predict(network(x)) == y).sum())
    return correct / max(1, len(split))


def _save_checkpoint(run_dir: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic.write_bytes(run_dir / CHECKPOINT, buffer.getvalue())


def load_checkpoint(run_dir: Path) -> dict:
    """Read a run's checkpoint without executing anything from it.

    ``torch.load(weights_only=True)`` unpickles only tensors and plain containers (dict, list, tuple, str,
    numbers, None); a file that names any other callable, as a crafted checkpoint does to run code at load
    time, is refused before that callable is looked up.
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise UserError(f"{path}: no checkpoint in this run directory; train first (neurodeploy train ...)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: checkpoint holds objects other than tensors and plain values (refused, nothing "
                        "in it was run); use a checkpoint written by neurodeploy train") from exc
    except Exception as exc:  # noqa: BLE001 - any other read failure means a damaged file
        raise UserError(f"{path}: checkpoint cannot be read ({exc.__class__.__name__}); retrain or --resume "
                        "from an intact copy") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise UserError(f"{path}: not a neurodeploy checkpoint; retrain or --resume from an intact copy")
    if int(state.get("schema_version", 0)) > SCHEMA_VERSION:
        raise UserError(f"{path}: checkpoint schema {state['schema_version']} is newer than this neurodeploy "
                        f"({SCHEMA_VERSION}); upgrade neurodeploy to read this run")
    return state


def load_run_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise UserError(f"{path}: not a neurodeploy run directory (no {CONFIG}); pass a run made by `train`")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: damaged run config ({exc}); retrain into a new --out") from exc
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc


def load_trained_network(run_dir: Path) -> tuple[TrainConfig, ModelFile, torch.nn.Module]:
    """Rebuild a run's network and load its latest weights (CPU)."""
    config = load_run_config(run_dir)
    model = resolve_arch(config.arch, config.dataset)
    shape = input_shape_of(config.resolved["sensor_size"])
    network = build_network(config, model, shape)
    _load_weights(network, load_checkpoint(run_dir), run_dir)
    network.eval()
    return config, model, network


def _load_weights(network: torch.nn.Module, state: dict, run_dir: Path) -> None:
    try:
        network.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:  # torch reports missing keys and size mismatches as RuntimeError
        raise UserError(f"{Path(run_dir) / CHECKPOINT}: the weights do not fit the network that {CONFIG} "
                        "describes (edited config or mixed-up files); retrain into a new --out") from exc


def _write_config(run_dir: Path, config: TrainConfig, model: ModelFile) -> None:
    data = config.to_dict()
    data["resolved"] = {k: v for k, v in config.resolved.items() if k != "source_obj"}
    data["resolved"]["arch_notation"] = model.arch.notation()
    if config.family == "snn":
        from neurodeploy.snn import LIFMapping

        data["resolved"]["lif_mapping"] = LIFMapping(surrogate_width=config.surrogate_width).to_dict()
    atomic.write_json(run_dir / CONFIG, data)


def train(config: TrainConfig, run_dir: Path, *, resume: bool = False, console=None) -> TrainResult:
    """Train ``config`` into ``run_dir``; prints a progress bar per epoch and one line per epoch."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    run_dir = Path(run_dir)
    start_epoch, metrics, state = 0, [], None
    if resume:
        previous = load_run_config(run_dir)
        state = load_checkpoint(run_dir)
        _check_same_run(previous, config, run_dir)
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
    atomic.check_writable_dir(run_dir)
    # read every sample before creating the run directory: a damaged dataset leaves no half-made run behind
    train_split = SplitFrames(config, "train", config.limit)
    test_split = SplitFrames(config, "test", config.test_limit)
    _prepare_run_dir(run_dir)

    torch.manual_seed(config.seed)
    network = build_network(config, model, shape).to(config.device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    if state is not None:
        _load_weights(network, state, run_dir)
        optimizer.load_state_dict(state["optimizer"])
    elif config.family == "snn":
        _wake_silent_layers(network, config, train_split, console)
    _write_config(run_dir, config, model)

    criterion = loss_function(config)
    num_classes = model.arch.num_classes
    console.print(f"[bold]train[/bold] {config.family} {model.arch.notation()} on {config.dataset} "
                  f"({config.resolved['data_source']}): {len(train_split)} train / {len(test_split)} test samples, "
                  f"dt={config.dt_ms} ms, T={config.steps}, batch {config.batch_size}, lr {config.lr}")
    from neurodeploy import losses

    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        network.train()
        order = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
        total_loss, correct, seen = 0.0, 0, 0
        columns = (TextColumn(f"epoch {epoch + 1}/{config.epochs}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("train", total=len(order), loss=0.0)
            for start in range(0, len(order), config.batch_size):
                index = order[start:start + config.batch_size]
                x, y = train_split.batch(index, config.device)
                out = network(x)
                loss = criterion(out, torch.nn.functional.one_hot(y, num_classes).float())
                if not torch.isfinite(loss):
                    raise UserError(f"{run_dir}: loss became {loss.item()} at epoch {epoch + 1}; lower --lr")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(index)
                correct += int((losses.predict(out.detach()) == y).sum())
                seen += len(index)
                progress.update(task, advance=len(index), loss=total_loss / seen)
        test_accuracy = _evaluate(network, test_split, config.batch_size, config.device)
        record = EpochMetrics(epoch + 1, total_loss / seen, correct / seen, test_accuracy,
                              round(time.perf_counter() - started, 3))
        metrics.append(record)
        _save_checkpoint(run_dir, {
            "epoch": epoch, "model": network.state_dict(), "optimizer": optimizer.state_dict(),
            "metrics": [m.to_dict() for m in metrics], "schema_version": SCHEMA_VERSION,
        })
        atomic.write_text(run_dir / METRICS, "".join(json.dumps(m.to_dict()) + "\n" for m in metrics))
        console.print(f"epoch {record.epoch:3d}  loss {record.loss:.4f}  train {record.train_accuracy:6.2%}  "
                      f"test {record.test_accuracy:6.2%}  {record.seconds:.1f} s")
    return TrainResult(run_dir, metrics)


def _prepare_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT, CONFIG, METRICS):  # temp files of a process killed (SIGKILL) mid-write
            for stale in run_dir.glob(f".{name}.*.tmp"):
                stale.unlink()
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot write the run directory ({exc.strerror}); choose a writable --out") \
            from exc


def _check_same_run(previous: TrainConfig, requested: TrainConfig, run_dir: Path) -> None:
    for name in ("dataset", "family", "arch", "loss", "seed"):
        if getattr(requested, name) != getattr(previous, name):
            raise UserError(f"{run_dir}: --resume with --{name} {getattr(requested, name)} but the run used "
                            f"{getattr(previous, name)}; resume with the same settings")
