"""A training run's folder: ``config.json`` (resolved settings and data provenance), ``checkpoint.pt``
(model, optimizer, epoch and metrics, rewritten atomically after every epoch) and ``metrics.jsonl`` (one line
per finished epoch); and the trained network rebuilt from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import torch

from neurodeploy import atomic, safe_files
from neurodeploy.errors import UserError
from neurodeploy.models.arch import ModelFile, resolve_arch
from neurodeploy.models.training import (
    SCHEMA_VERSION,
    SPIKING_FAMILIES,
    EpochMetrics,
    TrainConfig,
    build_network,
    input_shape_of,
    lif_mapping,
)

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
MAX_CHECKPOINT_BYTES = 1 << 32  # 4 GiB: far above any network this tool trains


def save_checkpoint(run_dir: Path, state: dict) -> None:
    save_torch_state(run_dir / CHECKPOINT, state)


def save_torch_state(path: Path, state: dict) -> None:
    """Write ``state`` (tensors and plain values only, readable by :func:`load_torch_state`) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def checkpoint_sha256(run_dir: Path) -> str:
    """SHA-256 (hex) of the run's checkpoint file: what an export records to tie ``model.net`` to it."""
    path = Path(run_dir) / CHECKPOINT
    return hashlib.sha256(safe_files.read_bytes(path, "checkpoint", MAX_CHECKPOINT_BYTES)).hexdigest()


def load_checkpoint(run_dir: Path) -> dict:
    """Read a run's checkpoint without executing anything from it (:func:`load_torch_state`)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise UserError(f"{path}: no checkpoint in this run directory; train first (neurodeploy train ...)")
    state = load_torch_state(path, "checkpoint", "use a checkpoint written by neurodeploy train",
                             "retrain or --resume from an intact copy")
    if "model" not in state:
        raise UserError(f"{path}: not a neurodeploy checkpoint; retrain or --resume from an intact copy")
    if int(state.get("schema_version", 0)) > SCHEMA_VERSION:
        raise UserError(f"{path}: checkpoint schema {state['schema_version']} is newer than this neurodeploy "
                        f"({SCHEMA_VERSION}); upgrade neurodeploy to read this run")
    return state


def load_torch_state(path: Path, what: str, source_fix: str, damaged_fix: str) -> dict:
    """A dict of tensors and plain values from a torch file, without executing anything from it.

    ``torch.load(weights_only=True)`` unpickles only tensors and plain containers (dict, list, tuple, str,
    numbers, None); a file that names any other callable, as a crafted file does to run code at load
    time, is refused before that callable is looked up.
    """
    content = safe_files.read_bytes(path, what, MAX_CHECKPOINT_BYTES)
    try:
        state = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(f"{path}: {what} holds objects other than tensors and plain values (refused, nothing "
                        f"in it was run); {source_fix}") from exc
    except Exception as exc:  # noqa: BLE001 - any other read failure means a damaged file
        raise UserError(f"{path}: {what} cannot be read ({exc.__class__.__name__}); {damaged_fix}") from exc
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a neurodeploy {what}; {damaged_fix}")
    return state


def load_run_config(run_dir: Path) -> TrainConfig:
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise UserError(f"{path}: not a neurodeploy run directory (no {CONFIG}); pass a run made by `train`")
    raw = safe_files.load_json(path, "run config", "retrain into a new --out")
    try:
        return TrainConfig.from_dict(raw)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: damaged run config ({exc}); retrain into a new --out") from exc
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc


def load_trained_network(run_dir: Path) -> tuple[TrainConfig, ModelFile, torch.nn.Module]:
    """Rebuild a run's network and load its latest weights (CPU)."""
    config = load_run_config(run_dir)
    model = resolve_arch(config.arch, config.dataset)
    shape = input_shape_of(config.resolved["sensor_size"])
    network = build_network(config, model, shape)
    load_weights(network, load_checkpoint(run_dir), run_dir)
    if config.family in SPIKING_FAMILIES:
        network.apply_leak()  # the config's dt decides the decay of an adaptive-leakage run
    network.eval()
    return config, model, network


def chip_network(config: TrainConfig, network: torch.nn.Module) -> torch.nn.Module:
    """The part of a trained network that runs on the chip: an RSNN's spiking classifier, an SNN itself."""
    return network.classifier if config.family == "rsnn" else network


def load_weights(network: torch.nn.Module, state: dict, run_dir: Path) -> None:
    try:
        network.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:  # torch reports missing keys and size mismatches as RuntimeError
        raise UserError(f"{Path(run_dir) / CHECKPOINT}: the weights do not fit the network that {CONFIG} "
                        "describes (edited config or mixed-up files); retrain into a new --out") from exc


def write_config(run_dir: Path, config: TrainConfig, model: ModelFile) -> None:
    data = config.to_dict()
    data["resolved"] = {k: v for k, v in config.resolved.items() if k != "source_obj"}
    data["resolved"]["arch_notation"] = model.arch.notation()
    if config.family in SPIKING_FAMILIES:
        data["resolved"]["lif_mapping"] = lif_mapping(config).to_dict()
    atomic.write_json(run_dir / CONFIG, data)


def write_metrics(run_dir: Path, metrics: list[EpochMetrics]) -> None:
    atomic.write_text(run_dir / METRICS, "".join(json.dumps(m.to_dict()) + "\n" for m in metrics))


def make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot write the run directory ({exc.strerror}); choose a writable --out") \
            from exc


def prepare_run_dir(run_dir: Path) -> None:
    """Remove temp files of a killed writer and check the folder is writable (under the run lock)."""
    try:
        for name in (CHECKPOINT, CONFIG, METRICS):  # temp files of a process killed (SIGKILL) mid-write
            for stale in run_dir.glob(f".{name}.*.tmp"):
                stale.unlink()
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{run_dir}: cannot write the run directory ({exc.strerror}); choose a writable --out") \
            from exc


def check_same_run(previous: TrainConfig, requested: TrainConfig, run_dir: Path) -> None:
    for name in ("dataset", "family", "arch", "loss", "seed", "leak", "reset", "recurrent", "leak_tau_ms",
                 "aggregation"):
        if getattr(requested, name) != getattr(previous, name):
            raise UserError(f"{run_dir}: --resume with --{name} {getattr(requested, name)} but the run used "
                            f"{getattr(previous, name)}; resume with the same settings")
