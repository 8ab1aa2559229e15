"""Training for every family (snn, rnn, lstm, rsnn) under the paper's shared settings: the run's configuration,
the network of a family, the data splits and one epoch of the training loop.

The data order of each epoch depends only on (seed, epoch), so an interrupted and resumed run ends with the
same weights and metrics as one that was not. Files (config, checkpoint, metrics) are written by
:mod:`neurodeploy.deploy.run_folder`; :func:`neurodeploy.pipeline.train.train` runs the epochs.
"""

from __future__ import annotations

import json
import math
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from neurodeploy import devices, options
from neurodeploy.data.datasets import (
    DATASETS,
    DEFAULT_DATASET,
    FrameDataset,
    check_frames_use_time,
    dataset_kind,
    default_cache_dir,
    resolve_dataset,
)
from neurodeploy.errors import OptionError, UserError
from neurodeploy.models import losses
from neurodeploy.models.ann import build_ann
from neurodeploy.models.arch import Architecture, ModelFile
from neurodeploy.models.frame_ann import FRAME_KINDS, FrameAnnNetwork
from neurodeploy.models.recurrent import build_recurrent_network
from neurodeploy.models.rsnn import AGGREGATIONS, DEFAULT_AGGREGATION, build_rsnn, split_rsnn
from neurodeploy.models.snn import LIFMapping, build_spiking_network
from neurodeploy.models.tcnn import TemporalCnn

SCHEMA_VERSION = 1
# ann: static images (neurodeploy.pipeline.ann, for `convert`) or event frames (--frames); tcnn: Deng's temporal CNN
FAMILIES = ("snn", "rnn", "lstm", "rsnn", "ann", "tcnn")
ONE_PASS_FAMILIES = ("ann", "tcnn")  # run once per sample on all T steps; trained with cross-entropy
SPIKING_FAMILIES = ("snn", "rsnn")  # families with a spiking part that runs on the chip (rate-coding loss)
LOSSES = ("rate", "last")
MAX_LR = options.MAX_LR  # Adam steps of more than 1 per update only diverge
MAX_THRESHOLD = 2.0**17 / 64  # vThMant = 64 theta must fit Lava's 24-bit voltage after its << 6


# `train --preset`: epochs and Adam learning rate. fast: the demo's schedule, a useful accuracy on the default
# data (1,000 train / 300 test synthetic N-MNIST samples) in minutes on 2 CPU cores; paper: Table IV's schedule.
TRAIN_PRESETS = {"fast": {"epochs": 8, "lr": 1e-3}, "paper": {"epochs": 100, "lr": 1e-4}}
DEFAULT_PRESET = "fast"


@dataclass
class TrainConfig:
    """Everything that determines a training run (paper Table IV defaults where a field is None)."""

    dataset: str = DEFAULT_DATASET
    family: str = "snn"
    arch: str | None = None  # None: the dataset's default model (neurodeploy.data.datasets.RunDefaults)
    loss: str = "rate"
    epochs: int = 100
    batch_size: int | None = None
    micro_batch: int | None = None
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
    # SNN variants (neurodeploy.models.snn): leak off -> k = 1; reset off (float only); hidden dense layers
    # recurrent; adaptive leakage k = exp(-dt / leak_tau_ms) with a fixed time constant
    leak: bool = True
    reset: bool = True
    recurrent: bool = False
    leak_tau_ms: float | None = None
    # rsnn: how the front end's T feature maps become the classifier's input (neurodeploy.models.rsnn)
    aggregation: str | None = None
    # snn: one threshold per spiking block in SLAYER units (default: LIFMapping's 1.25 for all); set by `convert`
    thresholds: list | None = None
    # ann on event data: binary | intensity frames (Deng Models 4 / 5, neurodeploy.models.frame_ann); None: static
    frames: str | None = None
    schema_version: int = SCHEMA_VERSION
    resolved: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.arch is None and self.dataset in DATASETS:  # an unknown dataset fails when its data is looked up
            self.arch = DATASETS[self.dataset].defaults.arch
        if self.family == "rsnn" and self.aggregation is None:
            self.aggregation = DEFAULT_AGGREGATION

    def validate(self, *, device_present: bool = True) -> None:
        """Every setting in its declared range (:mod:`neurodeploy.options`); with ``device_present`` also
        that a CUDA device exists when one is asked for (``auto`` becomes the device it picks)."""
        if self.family not in FAMILIES:
            raise UserError(f"unknown --model '{self.family}'; choose one of {', '.join(FAMILIES)}")
        if self.loss not in LOSSES:
            raise UserError(f"unknown --loss '{self.loss}'; choose one of {', '.join(LOSSES)}")
        if self.family in ONE_PASS_FAMILIES and self.loss != "rate":
            raise UserError(f"--loss is for snn/rnn/lstm; --model {self.family} trains with cross-entropy")
        if self.family in SPIKING_FAMILIES and self.loss != "rate":
            raise UserError("--loss last is for rnn/lstm; the SNN is trained with the rate-coding loss (eq. 10)")
        if self.aggregation is not None and (self.family != "rsnn" or self.aggregation not in AGGREGATIONS):
            raise UserError(f"--aggregation {self.aggregation} is for --model rsnn, one of {', '.join(AGGREGATIONS)}")
        self._check_frames()
        for name in ("epochs", "batch_size", "micro_batch", "limit", "test_limit", "seed"):
            options.check(f"--{name.replace('_', '-')}", getattr(self, name))
        options.check_binning(self.dt_ms, self.steps)
        if not 0 < self.lr <= MAX_LR:  # also False for NaN
            raise UserError(f"--lr {self.lr} is out of range; give a learning rate in (0, {MAX_LR:g}] (paper: 1e-4)")
        devices.check_device_name(self.device)
        if self.surrogate_width is not None and not 0 < self.surrogate_width < 100:
            raise UserError(f"surrogate_width {self.surrogate_width} is out of range; give a value in (0, 100)")
        if self.family != "snn" and self.is_snn_variant:
            raise UserError("--no-leak, --no-reset, --recurrent and --leak-tau change the spiking neuron; they are "
                            "for --model snn (rnn/lstm have their own recurrence)")
        if self.thresholds is not None and (self.family != "snn" or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= MAX_THRESHOLD
                for t in self.thresholds)):
            raise UserError(f"thresholds {self.thresholds} are for an snn run, each in (0, {MAX_THRESHOLD:g}] (set by "
                            "convert)")
        if self.leak_tau_ms is not None and (not 0 < self.leak_tau_ms < float("inf") or not self.leak):
            raise UserError(f"--leak-tau must be positive and finite and needs the leak on (got {self.leak_tau_ms} ms, "
                            f"leak {'on' if self.leak else 'off'})")
        if device_present:  # a run folder's config is read on any machine; training resolves auto here
            self.device = devices.resolve_device(self.device)

    def _check_frames(self) -> None:
        if self.frames is None:
            return
        if self.frames not in FRAME_KINDS:
            raise OptionError(f"unknown --frames '{self.frames}'; choose one of {', '.join(FRAME_KINDS)}")
        if self.family != "ann":
            raise OptionError(f"--frames {self.frames} is the input of a frame-based ANN; use it with --model ann "
                              f"(got --model {self.family})")
        if dataset_kind(self.dataset).read_frames is not None:
            raise OptionError(f"--frames {self.frames} makes frames from events; {self.dataset} holds static images "
                              "(train it with --model ann alone)")

    @property
    def is_snn_variant(self) -> bool:
        return not self.leak or not self.reset or self.recurrent or self.leak_tau_ms is not None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        version = int(raw.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise UserError(f"config schema {version} is newer than this neurodeploy ({SCHEMA_VERSION}); "
                            "upgrade neurodeploy to read this run")
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for name, value in known.items():
            declared = cls.__dataclass_fields__[name].type
            allowed = _FIELD_TYPES[declared]
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise UserError(f"'{name}' is {json.dumps(value)[:40]}, expected {declared}; restore the file or "
                                "retrain into a new --out")
        config = cls(**known)
        config.validate(device_present=False)
        _check_resolved(config.resolved)
        return config


# the annotation of each TrainConfig field -> the JSON types config.json may hold for it
_FIELD_TYPES = {"str": (str,), "str | None": (str, type(None)), "int": (int,), "int | None": (int, type(None)),
                "float": (int, float), "float | None": (int, float, type(None)), "bool": (bool,), "dict": (dict,),
                "list | None": (list, type(None))}


def _check_resolved(resolved: dict) -> None:
    """The data facts a trained run records: sensor size (W, H, P) and class count, when present."""
    sensor = resolved.get("sensor_size")
    if sensor is not None and not (isinstance(sensor, list) and len(sensor) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65_536 for v in sensor)):
        raise UserError(f"resolved.sensor_size is {json.dumps(sensor)[:40]}, expected [W, H, P] positive integers; "
                        "restore the file or retrain into a new --out")
    classes = resolved.get("num_classes")
    if classes is not None and not (isinstance(classes, int) and not isinstance(classes, bool) and
                                    1 <= classes <= 1_000_000):
        raise UserError(f"resolved.num_classes is {json.dumps(classes)[:40]}, expected a positive integer; "
                        "restore the file or retrain into a new --out")


def apply_model_defaults(config: TrainConfig, model: ModelFile) -> TrainConfig:
    """Fill unset dt / steps / batch size from the model file's per-dataset defaults (paper Table IV), and
    the micro-batch (memory) from the model file, else the whole batch."""
    defaults = model.datasets.get(config.dataset)
    fallback = dataset_kind(config.dataset).defaults  # the dataset's own, when the model file has none for it
    source = defaults or fallback
    dt, steps, batch = source.dt_ms, source.steps, source.batch_size
    config.dt_ms = config.dt_ms if config.dt_ms is not None else dt
    config.steps = config.steps if config.steps is not None else steps
    config.batch_size = config.batch_size if config.batch_size is not None else batch
    if config.micro_batch is None:
        config.micro_batch = defaults.micro_batch if defaults and defaults.micro_batch else config.batch_size
    config.micro_batch = min(config.micro_batch, config.batch_size)
    if config.surrogate_width is None:
        # source paper: a = 0.25 for N-MNIST, 0.5 for the DVS Gesture CNN
        config.surrogate_width = fallback.conv_surrogate_width if model.arch.is_convolutional \
            else fallback.surrogate_width
    return config


@dataclass
class EpochMetrics:
    """One line of ``metrics.jsonl``.

    ``seconds``: wall time of the epoch (training and test evaluation); ``peak_rss_bytes``: the training
    process's peak resident memory so far (``getrusage`` max RSS; None in runs made before it was recorded).
    """

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float
    seconds: float
    peak_rss_bytes: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: list[EpochMetrics]


def build_network(config: TrainConfig, model: ModelFile, input_shape: tuple[int, int, int]) -> torch.nn.Module:
    """The family's network for ``model.arch``; only the spiking families import Lava (lava-dl SLAYER, via
    lava_compat). ConvLSTM layers (``nCLk``) belong to the rsnn family only."""
    check_family_arch(config, model.arch, input_shape)
    if config.family == "rsnn":
        return build_rsnn(model.arch, input_shape, lif_mapping(config), config.aggregation, int(config.steps))
    if config.family == "snn":
        return build_spiking_network(model.arch, input_shape, lif_mapping(config), recurrent=config.recurrent,
                                     thresholds=config.thresholds)
    if config.family == "ann" and config.frames is not None:
        return FrameAnnNetwork(model.arch, input_shape, config.frames, int(config.steps))
    if config.family == "ann":
        return build_ann(model.arch, input_shape)
    if config.family == "tcnn":
        return TemporalCnn(model.arch, input_shape, int(config.steps))
    return build_recurrent_network(config.family, model.arch, input_shape)


def check_family_arch(config: TrainConfig, arch: Architecture, input_shape: tuple[int, int, int]) -> None:
    """UserError unless ``arch`` suits the family: an rsnn splits after its last nCLk layer, the other families
    have none."""
    if config.family == "rsnn":
        chip_layers = len(split_rsnn(arch, input_shape, config.aggregation, int(config.steps or 1)).classifier.layers)
    elif arch.has_convlstm:
        raise UserError(f"{arch.notation()}: nCLk (ConvLSTM) layers are the front end of --model rsnn; use "
                        "nC3 for a conv layer of this family")
    else:
        chip_layers = len(arch.layers)
    if config.family in SPIKING_FAMILIES and config.steps is not None and config.steps <= chip_layers:
        # every SLAYER block passes its spikes on one step later (as Lava's synapses): the first step at
        # which the output layer can spike is step number chip_layers (counted from 0)
        raise UserError(f"--steps {config.steps}: each of the {chip_layers} spiking layers of {arch.notation()} "
                        f"passes spikes on one step later (as on Loihi), so the output cannot spike before step "
                        f"{chip_layers + 1}; give at least {chip_layers + 1} steps (a smaller --dt)")


def lif_mapping(config: TrainConfig) -> LIFMapping:
    """The SNN's neuron mapping for the run's dt and variant."""
    return LIFMapping.for_run(dt_ms=float(config.dt_ms), leak=config.leak, leak_tau_ms=config.leak_tau_ms,
                              reset=config.reset, surrogate_width=config.surrogate_width)


CALIBRATION_SAMPLES = 8


def wake_silent_layers(network, config: TrainConfig, train_split, console) -> None:
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
    """The rate / last loss of the source paper; an ANN or temporal CNN (one output per sample) trains with
    cross-entropy."""
    if config.family in ONE_PASS_FAMILIES:
        return losses.loss_cross_entropy
    return losses.loss_rate if config.loss == "rate" else losses.loss_last


IN_MEMORY_LIMIT_BYTES = 512 * 2**20
FRAME_PROBE_SAMPLES = 8  # streamed splits: samples whose frames are checked to use time


class SplitFrames:
    """One split's binned frames: held in RAM when small (N-MNIST), else streamed from disk per batch with an
    on-disk cache of binned frames keyed by dataset, dt and T (DVS Gesture: 128x128x2xT never all in RAM)."""

    def __init__(self, config: TrainConfig, split: str, limit: int | None):
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
        probe = self.frames.numpy() if self.frames is not None else np.stack(
            [self.dataset.frames(i) for i in range(min(FRAME_PROBE_SAMPLES, len(self.labels)))])
        check_frames_use_time(probe, config.dt_ms, config.steps, f"{source.root} ({split})")

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
    source = resolve_dataset(
        config.dataset, Path(config.data_dir) if config.data_dir else None,
        allow_synthetic=config.allow_synthetic, seed=config.seed,
    )
    config.resolved.update({
        "source_obj": source,
        "data_source": source.source,
        "data_synthetic_source": source.synthetic_source,
        "data_root": str(source.root),
        "sensor_size": list(source.sensor_size),
        "num_classes": int(source.num_classes),
    })
    return source


def input_shape_of(sensor_size) -> tuple[int, int, int]:
    """(C, H, W) from tonic's sensor size (W, H, P)."""
    width, height, polarities = sensor_size
    return (int(polarities), int(height), int(width))


def batch_gradients(network: torch.nn.Module, criterion, x: torch.Tensor, targets: torch.Tensor,
                    micro_batch: int) -> tuple[float, torch.Tensor]:
    """Backpropagate the loss of batch ``x`` in micro-batches of at most ``micro_batch`` samples.

    The batch loss is a mean over its n samples, L = sum_m (n_m / n) L_m over micro-batches m, so the
    gradients of the scaled micro-batch losses add up in ``.grad`` to the whole batch's gradient (equal up
    to float rounding) while only one micro-batch's activations are kept for backward at a time.
    Returns L and the detached outputs of the whole batch.
    """
    total, outputs = 0.0, []
    for start in range(0, len(x), micro_batch):
        out = network(x[start:start + micro_batch])
        loss = criterion(out, targets[start:start + micro_batch]) * (len(out) / len(x))
        loss.backward()
        total += float(loss.detach())
        outputs.append(out.detach())
    return total, torch.cat(outputs)


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (``getrusage`` max RSS, reported in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def evaluate(network, split: SplitFrames, batch_size, device) -> float:
    """Test accuracy: the fraction of ``split`` whose predicted class (eq. 7) is the label."""
    network.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x, y = split.batch(torch.arange(start, min(start + batch_size, len(split))), device)
            correct += int((losses.predict(network(x)) == y).sum())
    return correct / max(1, len(split))


def run_epoch(network, optimizer, criterion, split: SplitFrames, config: TrainConfig, epoch: int,
              num_classes: int, *, run_dir: Path, console) -> tuple[float, float]:
    """One epoch over ``split`` in the order fixed by (seed, epoch), with a progress bar on ``console``;
    returns (mean loss, training accuracy)."""
    network.train()
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(config.seed * 100003 + epoch))
    total_loss, correct, seen = 0.0, 0, 0
    columns = (TextColumn(f"epoch {epoch + 1}/{config.epochs}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("train", total=len(order), loss=0.0)
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            x, y = split.batch(index, config.device)
            optimizer.zero_grad()
            loss, out = batch_gradients(network, criterion, x, torch.nn.functional.one_hot(y, num_classes).float(),
                                        config.micro_batch)
            if not math.isfinite(loss):
                raise UserError(f"{run_dir}: loss became {loss} at epoch {epoch + 1}; lower --lr")
            optimizer.step()
            total_loss += loss * len(index)
            correct += int((losses.predict(out) == y).sum())
            seen += len(index)
            progress.update(task, advance=len(index), loss=total_loss / seen)
    return total_loss / seen, correct / seen

