"""The run report's schema: validated records (``run_report.json``, docs/report_schema.md) and their reader.

The numbers are made in :mod:`neurodeploy.pipeline.layer_reports`; the JSON is written from these records, and the
Markdown, the rich table and the PNGs are rendered from the JSON dict (:mod:`neurodeploy.reports.render`)
and never recompute a number. Every report says its mode (hardware / simulated / emulated / float),
its energy kind (estimated / measured) and its data source (real / synthetic / file: spikes from a user's
``--input`` file, whose origin neurodeploy cannot vouch for).
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from neurodeploy import __version__
from neurodeploy.errors import UserError
from neurodeploy.metrics.cost import FAMILIES
from neurodeploy.metrics.energy import (
    EnergyBreakdown,
)
from neurodeploy.metrics.run_metrics import AccuracyInterval, EnergySplit, Latency
from neurodeploy.safe_files import load_json

SCHEMA_VERSION = 1
MODES = ("hardware", "simulated", "emulated", "float")
ENERGY_KINDS = ("estimated", "measured")
DATA_SOURCES = ("real", "synthetic", "file")
PROVENANCE_PACKAGES = ("neurodeploy", "numpy", "torch", "lava-nc", "lava-dl", "h5py", "tonic")


def _check_count(owner: str, name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} = {value!r} must be a finite number >= 0")


def _check_choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {name} '{value}' must be one of {', '.join(choices)}")


class _Record:
    """``to_dict`` / ``from_dict`` for flat dataclass records; nested ones override ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = ""):
        where = where or cls.__name__
        if not isinstance(raw, Mapping):
            raise UserError(f"{where}: expected an object, got {type(raw).__name__}")
        names = {item.name for item in fields(cls)}  # type: ignore[arg-type]
        required = {item.name for item in fields(cls)  # type: ignore[arg-type]
                    if item.default is MISSING and item.default_factory is MISSING}
        missing = sorted(required - set(raw))
        if missing:
            raise UserError(f"{where}: missing keys {missing}")
        unknown = sorted(set(raw) - names)
        if unknown:
            raise UserError(f"{where}: unknown keys {unknown}")
        try:
            return cls(**dict(raw))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: {exc}") from exc


@dataclass(frozen=True)
class LayerReport(_Record):
    """One layer, averaged per sample. ``spike_rate`` is spikes / neuron / step."""

    name: str
    type: str
    shape: tuple[int, ...]
    neurons: int
    params: int
    spikes: float
    spike_rate: float
    synops: float
    neuron_updates: float
    macs: float
    energy_j: float | None
    cores: int | None
    adds: float = 0.0
    muls: float = 0.0
    energy_by_op_j: dict[str, float] = field(default_factory=dict)
    synapses: int = 0

    def __post_init__(self):
        owner = f"layer {self.name!r}"
        if not self.name:
            raise ValueError("a layer needs a name")
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))
        if any(v < 1 for v in self.shape):
            raise ValueError(f"{owner}: shape {self.shape} must be positive")
        for name in ("neurons", "params", "spikes", "synops", "neuron_updates", "macs", "adds", "muls"):
            _check_count(owner, name, getattr(self, name))
        _check_count(owner, "energy_j", self.energy_j, optional=True)
        _check_count(owner, "cores", self.cores, optional=True)
        if not 0.0 <= self.spike_rate <= 1.0:
            raise ValueError(f"{owner}: spike_rate {self.spike_rate} must be in [0, 1] "
                             "spikes / neuron / step")
        for kind, joules in self.energy_by_op_j.items():
            _check_count(owner, f"energy_by_op_j[{kind}]", joules)


@dataclass(frozen=True)
class ToolInfo(_Record):
    name: str = "neurodeploy"
    version: str = __version__


@dataclass(frozen=True)
class ModelInfo(_Record):
    """``params``: trainable weights and biases of the trained model (the figure ``cost`` gives);
    ``synapses``: connections as deployed (a conv kernel weight counts once per connection it makes)."""

    family: str
    arch: str
    params: int
    synapses: int | None = None

    def __post_init__(self):
        _check_choice("model", "family", self.family, FAMILIES)
        _check_count("model", "params", self.params)
        _check_count("model", "synapses", self.synapses, optional=True)


@dataclass(frozen=True)
class DataInfo(_Record):
    dataset: str
    source: str
    split: str
    samples: int
    dt_ms: float
    steps: int
    sample_set: str | None = None  # digest of the samples' inputs and labels: equal digests, same samples
    synthetic_source: str | None = None  # what synthetic data was made from, e.g. "mnist-digits"

    def __post_init__(self):
        _check_choice("data", "source", self.source, DATA_SOURCES)
        for name in ("samples", "dt_ms", "steps"):
            _check_count("data", name, getattr(self, name))


@dataclass(frozen=True)
class BackendInfo(_Record):
    name: str
    mode: str
    hw_config: str | None
    device: str

    def __post_init__(self):
        _check_choice("backend", "mode", self.mode, MODES)


@dataclass(frozen=True)
class PerSample(_Record):
    """Totals per sample (SNN: synops, neuron updates, spikes; ANN family: MACs, adds, muls)."""

    synops: float
    neuron_updates: float
    spikes: float
    macs: float
    adds: float
    muls: float
    energy_j: float | None
    latency_s: float | None

    def __post_init__(self):
        for item in fields(self):
            _check_count("per_sample", item.name, getattr(self, item.name),
                         optional=item.name in ("energy_j", "latency_s"))


@dataclass(frozen=True)
class EnergyInfo(_Record):
    """How ``per_sample.energy_j`` was obtained; coefficients are ``{key: {value, unit, source, note}}``."""

    kind: str
    profile: str | None
    total_j: float | None = None
    by_op_j: dict[str, float] = field(default_factory=dict)
    coefficients: dict[str, dict[str, Any]] = field(default_factory=dict)
    uncounted: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        _check_choice("energy", "kind", self.kind, ENERGY_KINDS)
        _check_count("energy", "total_j", self.total_j, optional=True)
        object.__setattr__(self, "uncounted", tuple(self.uncounted))
        object.__setattr__(self, "notes", tuple(self.notes))

    @classmethod
    def from_breakdown(cls, breakdown: EnergyBreakdown) -> EnergyInfo:
        d = breakdown.to_dict()
        return cls(d["kind"], d["profile"], d["total_j"], d["by_op_j"], d["coefficients"],
                   tuple(d["uncounted"]), tuple(d["notes"]))


@dataclass(frozen=True)
class MemoryBits(_Record):
    """Memory in bits (companion paper eq. 8); ``bit_widths`` says at which widths."""

    weights: int
    state: int
    spikes: int
    total: int
    bit_widths: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("weights", "state", "spikes", "total"):
            _check_count("memory_bits", name, getattr(self, name))
        if self.total != self.weights + self.state + self.spikes:
            raise ValueError(f"memory_bits: total {self.total} != weights + state + spikes")

    @classmethod
    def of(cls, bits: Mapping[str, int], bit_widths: Mapping[str, int] | None = None) -> MemoryBits:
        return cls(int(bits["weights"]), int(bits["state"]), int(bits["spikes"]),
                   int(bits["weights"]) + int(bits["state"]) + int(bits["spikes"]), dict(bit_widths or {}))


@dataclass(frozen=True)
class Parity(_Record):
    """Float model vs chip execution: accuracies, per-layer spike-count agreement (fraction of equal
    counts), where they first diverge (``{"layer": name, "timestep": t}``, None when identical), and the
    fraction of samples both predict the same class for (also without labels)."""

    float_accuracy: float | None
    chip_accuracy: float | None
    layer_spike_agreement: dict[str, float] = field(default_factory=dict)
    first_divergence: dict[str, Any] | None = None
    identical: bool | None = None  # every spike of every layer equal; None when not compared
    prediction_agreement: float | None = None

    def __post_init__(self):
        for name in ("float_accuracy", "chip_accuracy", "prediction_agreement"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"parity: {name} {value} must be in [0, 1]")
        for layer, agreement in self.layer_spike_agreement.items():
            if not 0.0 <= agreement <= 1.0:
                raise ValueError(f"parity: agreement of {layer} {agreement} must be in [0, 1]")
        if self.first_divergence is not None and set(self.first_divergence) != {"layer", "timestep"}:
            raise ValueError("parity: first_divergence needs exactly 'layer' and 'timestep'")
        if self.identical and self.first_divergence is not None:
            raise ValueError("parity: identical spikes cannot have a first divergence")


@dataclass(frozen=True)
class HybridSplit(_Record):
    """An RSNN run's split (docs/rsnn.md), per sample: the host front end (torch; energy ``measured`` on a
    GPU with a working NVML counter, else ``estimated`` as MACs x the host profile), the chip (synops, neuron
    updates, dynamic and static energy, estimated) and the boundary between them (values and bytes sent as
    levels, spikes they become on the chip, the encoding)."""

    front_end_device: str
    front_end_energy_kind: str
    front_end_energy_j: float | None
    front_end_energy_source: str
    front_end_macs: float
    front_end_latency_s: float | None
    chip_synops: float
    chip_neuron_updates: float
    chip_dynamic_j: float | None
    chip_static_j: float | None
    boundary_values: int
    boundary_bytes: int
    boundary_spikes: float
    boundary_encoding: str

    def __post_init__(self):
        _check_choice("hybrid", "front_end_energy_kind", self.front_end_energy_kind, ENERGY_KINDS)
        for name in ("front_end_macs", "chip_synops", "chip_neuron_updates", "boundary_values", "boundary_bytes",
                     "boundary_spikes"):
            _check_count("hybrid", name, getattr(self, name))
        for name in ("front_end_energy_j", "front_end_latency_s", "chip_dynamic_j", "chip_static_j"):
            _check_count("hybrid", name, getattr(self, name), optional=True)

    @property
    def total_j(self) -> float | None:
        """Front end + chip (dynamic + static); None when a part has no figure."""
        if self.front_end_energy_j is None or self.chip_dynamic_j is None:
            return None
        return self.front_end_energy_j + self.chip_dynamic_j + (self.chip_static_j or 0.0)


@dataclass(frozen=True)
class Provenance(_Record):
    versions: dict[str, str]
    python: str
    timestamp: str


def collect_provenance(packages: Sequence[str] = PROVENANCE_PACKAGES) -> Provenance:
    """Installed versions of ``packages`` ('not installed' when absent), Python version, UTC time."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return Provenance(versions, f"{platform.python_implementation()} {sys.version.split()[0]}",
                      datetime.now(timezone.utc).isoformat(timespec="seconds"))


_SECTIONS = {"tool": ToolInfo, "model": ModelInfo, "data": DataInfo, "backend": BackendInfo,
             "per_sample": PerSample, "energy": EnergyInfo, "memory_bits": MemoryBits}
_OPTIONAL_SECTIONS = {"memory_bits_chip": MemoryBits, "parity": Parity, "provenance": Provenance,
                      "hybrid": HybridSplit}
# like-for-like figures (neurodeploy.metrics.run_metrics): latency with its kind, host wall time of a simulator,
# energy as dynamic + static, accuracy with its 95 % Wilson interval
_METRIC_SECTIONS = {"latency": Latency, "host_wall": Latency, "energy_split": EnergySplit,
                    "accuracy_interval": AccuracyInterval}
# free-form mappings: SANA-FE's chip estimate, NeuroBench-named metrics, per-layer firing statistics, and
# where each part ran (neurodeploy.devices.describe: GPU name, capability, driver, torch + CUDA; CPU model, threads)
_MAPPING_SECTIONS = ("chip_model", "neurobench", "firing", "ran_on")


@dataclass(frozen=True)
class RunReport:
    """Everything ``run_report.json`` holds (docs/report_schema.md: the minimum keys plus chip memory, parity,
    resources, provenance). ``accuracy`` is a fraction in [0, 1]."""

    tool: ToolInfo
    model: ModelInfo
    data: DataInfo
    backend: BackendInfo
    accuracy: float | None
    per_sample: PerSample
    energy: EnergyInfo
    memory_bits: MemoryBits
    layers: tuple[LayerReport, ...]
    memory_bits_chip: MemoryBits | None = None
    parity: Parity | None = None
    resources: dict[str, Any] | None = None
    provenance: Provenance | None = None
    latency: Latency | None = None
    host_wall: Latency | None = None
    energy_split: EnergySplit | None = None
    accuracy_interval: AccuracyInterval | None = None
    chip_model: dict[str, Any] | None = None
    neurobench: dict[str, Any] | None = None
    firing: dict[str, Any] | None = None
    ran_on: dict[str, Any] | None = None
    hybrid: HybridSplit | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"accuracy {self.accuracy} must be a fraction in [0, 1]")
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version}: this neurodeploy writes "
                             f"{SCHEMA_VERSION}")
        if self.energy.kind == "measured" and self.backend.mode not in ("float", "hardware"):
            raise ValueError(f"energy measured in '{self.backend.mode}' mode: only hardware or GPU (float) "
                             "runs can measure energy; label it 'estimated'")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique: {names}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version}
        for name in ("tool", "model", "data", "backend"):
            out[name] = getattr(self, name).to_dict()
        out["accuracy"] = self.accuracy
        out["per_sample"] = self.per_sample.to_dict()
        out["energy"] = self.energy.to_dict()
        out["memory_bits"] = self.memory_bits.to_dict()
        out["memory_bits_chip"] = None if self.memory_bits_chip is None else self.memory_bits_chip.to_dict()
        out["layers"] = [layer.to_dict() for layer in self.layers]
        out["parity"] = None if self.parity is None else self.parity.to_dict()
        out["resources"] = self.resources
        out["provenance"] = None if self.provenance is None else self.provenance.to_dict()
        out["hybrid"] = None if self.hybrid is None else self.hybrid.to_dict()
        for name in _METRIC_SECTIONS:
            value = getattr(self, name)
            out[name] = None if value is None else value.to_dict()
        for name in _MAPPING_SECTIONS:
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunReport:
        """Validate and rebuild; a report written by a newer neurodeploy is refused."""
        if not isinstance(raw, Mapping):
            raise UserError("run report: expected a JSON object")
        version = raw.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise UserError(f"run report: schema_version {version!r} must be an integer")
        if version > SCHEMA_VERSION:
            raise UserError(f"run report has schema_version {version}, newer than this neurodeploy's "
                            f"{SCHEMA_VERSION}; upgrade neurodeploy to read it")
        known = {"schema_version", "accuracy", "layers", "resources", *_SECTIONS, *_OPTIONAL_SECTIONS,
                 *_METRIC_SECTIONS, *_MAPPING_SECTIONS}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UserError(f"run report: unknown keys {unknown}")
        missing = sorted((set(_SECTIONS) | {"accuracy", "layers"}) - set(raw))
        if missing:
            raise UserError(f"run report: missing keys {missing}")
        parts: dict[str, Any] = {name: kind.from_dict(raw[name], name) for name, kind in _SECTIONS.items()}
        for name, kind in _OPTIONAL_SECTIONS.items():
            parts[name] = None if raw.get(name) is None else kind.from_dict(raw[name], name)
        for name, kind in _METRIC_SECTIONS.items():
            try:
                parts[name] = None if raw.get(name) is None else kind.from_dict(raw[name])
            except (KeyError, TypeError, ValueError) as exc:
                raise UserError(f"run report: {name}: {exc}") from exc
        for name in _MAPPING_SECTIONS:
            if raw.get(name) is not None and not isinstance(raw[name], Mapping):
                raise UserError(f"run report: {name} must be an object")
            parts[name] = raw.get(name)
        if not isinstance(raw["layers"], list):
            raise UserError("run report: layers must be a list")
        parts["layers"] = tuple(LayerReport.from_dict(layer, f"layers[{i}]")
                                for i, layer in enumerate(raw["layers"]))
        try:
            return cls(accuracy=raw["accuracy"], resources=raw.get("resources"), schema_version=version,
                       **parts)
        except (TypeError, ValueError) as exc:
            raise UserError(f"run report: {exc}") from exc


# ``firing`` holds one rate per neuron: the DVS Gesture CNN's report (about 200 k neurons) is 4.4 MB
MAX_RUN_REPORT_BYTES = 64 << 20


def load_run_report(path: Path | str) -> RunReport:
    """Read and validate ``run_report.json`` (or a run directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "run_report.json"
    raw = load_json(path, "run report", "rerun `neurodeploy run`", max_bytes=MAX_RUN_REPORT_BYTES)
    try:
        return RunReport.from_dict(raw)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc
