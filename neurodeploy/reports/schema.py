"""Run reports (SPEC 5.3): validated records -> ``run_report.json`` -> Markdown, terminal table and plots.

The JSON is written from the records; the Markdown, the rich table and the PNGs are rendered from the JSON
dict and never recompute a number. Every report says its mode (hardware / simulated / emulated / float),
its energy kind (estimated / measured) and its data source (real / synthetic).
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

import numpy as np

from neurodeploy import __version__, plots
from neurodeploy.atomic import write_json, write_text
from neurodeploy.cost import FAMILIES, CostReport, synops_per_sample
from neurodeploy.energy import (
    EnergyBreakdown,
    OpCounts,
    combine,
    estimate_layer_energy,
    estimate_static_energy,
)
from neurodeploy.errors import UserError
from neurodeploy.hardware import HardwareProfile, LayerFootprint, ResourceMap, map_resources

SCHEMA_VERSION = 1
MODES = ("hardware", "simulated", "emulated", "float")
ENERGY_KINDS = ("estimated", "measured")
DATA_SOURCES = ("real", "synthetic")
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
    family: str
    arch: str
    params: int

    def __post_init__(self):
        _check_choice("model", "family", self.family, FAMILIES)
        _check_count("model", "params", self.params)


@dataclass(frozen=True)
class DataInfo(_Record):
    dataset: str
    source: str
    split: str
    samples: int
    dt_ms: float
    steps: int

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
    counts), and where they first diverge (``{"layer": name, "timestep": t}``, None when identical)."""

    float_accuracy: float | None
    chip_accuracy: float | None
    layer_spike_agreement: dict[str, float] = field(default_factory=dict)
    first_divergence: dict[str, Any] | None = None
    identical: bool | None = None  # every spike of every layer equal; None when not compared

    def __post_init__(self):
        for name in ("float_accuracy", "chip_accuracy"):
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
_OPTIONAL_SECTIONS = {"memory_bits_chip": MemoryBits, "parity": Parity, "provenance": Provenance}


@dataclass(frozen=True)
class RunReport:
    """Everything ``run_report.json`` holds (SPEC 5.3 minimum keys plus chip memory, parity, resources,
    provenance). ``accuracy`` is a fraction in [0, 1]."""

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
        known = {"schema_version", "accuracy", "layers", "resources", *_SECTIONS, *_OPTIONAL_SECTIONS}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise UserError(f"run report: unknown keys {unknown}")
        missing = sorted((set(_SECTIONS) | {"accuracy", "layers"}) - set(raw))
        if missing:
            raise UserError(f"run report: missing keys {missing}")
        parts: dict[str, Any] = {name: kind.from_dict(raw[name], name) for name, kind in _SECTIONS.items()}
        for name, kind in _OPTIONAL_SECTIONS.items():
            parts[name] = None if raw.get(name) is None else kind.from_dict(raw[name], name)
        if not isinstance(raw["layers"], list):
            raise UserError("run report: layers must be a list")
        parts["layers"] = tuple(LayerReport.from_dict(layer, f"layers[{i}]")
                                for i, layer in enumerate(raw["layers"]))
        try:
            return cls(accuracy=raw["accuracy"], resources=raw.get("resources"), schema_version=version,
                       **parts)
        except (TypeError, ValueError) as exc:
            raise UserError(f"run report: {exc}") from exc


def load_run_report(path: Path | str) -> RunReport:
    """Read and validate ``run_report.json`` (or a run directory holding one)."""
    import json

    path = Path(path)
    if path.is_dir():
        path = path / "run_report.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read run report ({exc}); rerun `neurodeploy run`") from exc
    try:
        return RunReport.from_dict(raw)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------- builders


@dataclass(frozen=True)
class SNNLayerRecord:
    """Measured spikes of one SNN layer: counts summed over the T steps of each sample.

    ``fan_out`` (n_in,) outgoing synapses per input neuron (:func:`neurodeploy.cost.layer_fan_out`),
    ``input_spikes`` (N, n_in), ``output_spikes`` (N, n_out); ``active_neuron_updates`` (N,) optional:
    neuron-steps where the neuron spiked or received input (unknown -> all updates priced as active).
    """

    name: str
    type: str
    shape: tuple[int, ...]
    params: int
    fan_out: np.ndarray
    input_spikes: np.ndarray
    output_spikes: np.ndarray
    fan_in: int | None = None
    active_neuron_updates: np.ndarray | None = None

    def __post_init__(self):
        inputs, outputs = np.asarray(self.input_spikes), np.asarray(self.output_spikes)
        if inputs.ndim != 2 or outputs.ndim != 2 or inputs.shape[0] != outputs.shape[0]:
            raise ValueError(f"layer {self.name}: input/output spikes must be (N, n) with the same N, got "
                             f"{inputs.shape} and {outputs.shape}")
        if outputs.shape[1] != self.neurons:
            raise ValueError(f"layer {self.name}: {outputs.shape[1]} output neurons, shape {self.shape} says "
                             f"{self.neurons}")
        if np.asarray(self.fan_out).shape != (inputs.shape[1],):
            raise ValueError(f"layer {self.name}: fan_out must be ({inputs.shape[1]},)")

    @property
    def neurons(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class LayerBuild:
    """Layer reports with the energy (dynamic + static, per sample) and core mapping they came from."""

    layers: list[LayerReport]
    energy: EnergyBreakdown | None
    resources: ResourceMap | None

    def per_sample(self, latency_s: float | None) -> PerSample:
        """Totals of the layers; energy includes static energy when the build had any."""
        totals = {key: float(sum(getattr(layer, key) for layer in self.layers))
                  for key in ("synops", "neuron_updates", "spikes", "macs", "adds", "muls")}
        return PerSample(**totals, energy_j=None if self.energy is None else self.energy.total_j,
                         latency_s=latency_s)

    def energy_info(self, measured_j: float | None = None, meter: str = "nvml") -> EnergyInfo:
        """``energy`` section: the estimate, or a measured figure (then ``profile`` names the meter)."""
        if measured_j is not None:
            return EnergyInfo("measured", meter, measured_j)
        if self.energy is None:
            return EnergyInfo("estimated", None, None, notes=("no hardware profile: energy not estimated",))
        return EnergyInfo.from_breakdown(self.energy)


def _resources(footprints: list[LayerFootprint], profile: HardwareProfile | None) -> ResourceMap | None:
    if profile is None or not profile.has("neurons_per_core"):
        return None
    return map_resources(footprints, profile)


def build_snn_layer_reports(records: Sequence[SNNLayerRecord], steps: int,
                            profile: HardwareProfile | None = None, *,
                            wall_time_s: float | None = None) -> LayerBuild:
    """Per-sample layer reports of an SNN run from per-layer spike counts.

    synops = (1/N) sum_n sum_j in_{n,j} fan_out_j;  neuron updates = neurons x steps;
    spike rate = spikes / (neurons x steps) [spikes / neuron / step]; energy from ``profile``
    (:func:`neurodeploy.energy.estimate_layer_energy`), plus static power x ``wall_time_s`` (per sample,
    measured on the chip) or x steps x time per step in the total; cores from the profile's limits.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    counts, layers, breakdowns = [], [], []
    for rec in records:
        spikes = float(np.asarray(rec.output_spikes, dtype=np.float64).sum(axis=1).mean())
        updates = rec.neurons * steps
        active = None if rec.active_neuron_updates is None else float(np.mean(rec.active_neuron_updates))
        synops = synops_per_sample(rec.input_spikes, rec.fan_out)
        counts.append(OpCounts(synops=synops, neuron_updates=updates, neuron_updates_active=active,
                               spikes_out=spikes))
    footprints = [LayerFootprint(rec.name, rec.neurons, int(np.sum(rec.fan_out)),
                                 rec.fan_in or math.ceil(np.sum(rec.fan_out) / max(1, rec.neurons)))
                  for rec in records]
    resources = _resources(footprints, profile)
    for index, (rec, count) in enumerate(zip(records, counts)):
        breakdown = estimate_layer_energy(count, profile) if profile is not None else None
        breakdowns.append(breakdown)
        layers.append(LayerReport(
            name=rec.name, type=rec.type, shape=tuple(rec.shape), neurons=rec.neurons, params=rec.params,
            spikes=count.spikes_out, spike_rate=count.spikes_out / count.neuron_updates, synops=count.synops,
            neuron_updates=count.neuron_updates, macs=0.0,
            energy_j=None if breakdown is None else breakdown.total_j,
            cores=None if resources is None else resources.layers[index].cores,
            energy_by_op_j={} if breakdown is None else dict(breakdown.joules),
        ))
    energy = None
    if profile is not None:
        static = estimate_static_energy(profile, steps=steps, wall_time_s=wall_time_s)
        energy = combine([*breakdowns, static])
    return LayerBuild(layers, energy, resources)


def build_static_layer_reports(cost: CostReport, steps: int,
                               profile: HardwareProfile | None = None) -> LayerBuild:
    """Per-sample layer reports of an RNN / LSTM / ANN run, whose work does not depend on activity:
    MACs, adds and muls per step (:func:`neurodeploy.cost.static_cost`) x steps, energy from ``profile``."""
    if cost.family == "snn":
        raise ValueError("SNN work depends on spikes: use build_snn_layer_reports")
    layers, breakdowns = [], []
    for layer in cost.layers:
        count = OpCounts(macs=layer.macs_per_step * steps, adds=layer.adds_per_step * steps,
                         muls=layer.muls_per_step * steps)
        breakdown = estimate_layer_energy(count, profile) if profile is not None else None
        breakdowns.append(breakdown)
        layers.append(LayerReport(
            name=layer.name, type=layer.kind, shape=layer.out_shape, neurons=layer.neurons,
            params=layer.params, spikes=0.0, spike_rate=0.0, synops=0.0, neuron_updates=0.0,
            macs=float(count.macs),
            energy_j=None if breakdown is None else breakdown.total_j, cores=None, adds=float(count.adds),
            muls=float(count.muls), energy_by_op_j={} if breakdown is None else dict(breakdown.joules),
        ))
    energy = combine(breakdowns) if profile is not None else None
    return LayerBuild(layers, energy, None)


# --------------------------------------------------------------------------------------------- rendering


def _fmt(value: Any) -> str:
    """Readable number: thousands separators for integers, 4 significant digits otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or 1e3 <= abs(value) < 1e15:
            return f"{value:,.0f}"
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e3 else f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


LAYER_COLUMNS = (
    ("name", "layer"), ("type", "type"), ("shape", "shape"), ("neurons", "neurons"), ("params", "params"),
    ("spikes", "spikes / sample"), ("spike_rate", "spike rate (spikes/neuron/step)"),
    ("synops", "synops / sample"), ("neuron_updates", "neuron updates / sample"), ("macs", "MACs / sample"),
    ("energy_j", "energy / sample (J)"), ("cores", "cores"),
)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _memory_lines(title: str, memory: Mapping[str, Any] | None) -> list[str]:
    if memory is None:
        return [f"**{title}**: not computed", ""]
    widths = ", ".join(f"{k} {v} bit" for k, v in (memory.get("bit_widths") or {}).items())
    lines = [f"**{title}**" + (f" ({widths})" if widths else "")]
    rows = [(key, memory[key], memory[key] / 8 / 1024) for key in ("weights", "state", "spikes", "total")]
    return lines + [""] + _table(("part", "bits", "KiB"), rows)


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f} %"


def _energy_lines(energy: Mapping[str, Any]) -> list[str]:
    summary = (f"Kind: **{energy['kind']}**; profile: {energy['profile'] or '-'}; "
               f"total per sample: {_fmt(energy.get('total_j'))} J")
    lines = ["## Energy", "", summary, ""]
    if energy.get("by_op_j"):
        lines += _table(("op kind", "J / sample"), list(energy["by_op_j"].items()))
    if energy.get("coefficients"):
        lines += _table(("coefficient", "value", "unit", "source", "note"),
                        [(key, c["value"], c["unit"], c["source"], c.get("note", ""))
                         for key, c in energy["coefficients"].items()])
    if energy.get("uncounted"):
        lines += [f"Not counted (no coefficient in the profile): {', '.join(energy['uncounted'])}", ""]
    return lines + [f"- {note}" for note in energy.get("notes") or []] + [""]


def _resource_lines(resources: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Resources", ""]
    if not resources:
        return lines + ["Not mapped (no per-core limits in the profile).", ""]
    summary = (f"Profile {resources['profile']}: {resources['total_cores']} cores, "
               f"{resources['chips']} chip(s), {resources['boards']} board(s); "
               f"fits one chip: {_fmt(resources['fits_one_chip'])}; "
               f"fits one board: {_fmt(resources['fits_one_board'])}.")
    lines += [summary, ""]
    lines += _table(("layer", "cores", "by neurons", "by memory", "by fan-in", "limited by"),
                    [(r["name"], r["cores"], r["cores_by_neurons"], r["cores_by_memory"],
                      r["cores_by_fan_in"], r["limited_by"]) for r in resources["layers"]])
    if resources.get("assumptions"):
        lines += [f"Assumptions: {resources['assumptions']}", ""]
    return lines


def _accuracy_lines(report: Mapping[str, Any]) -> list[str]:
    accuracy = (f"Accuracy: {_percent(report['accuracy'])} ({report['backend']['mode']}, "
                f"{report['data']['source']} data)")
    lines = ["## Accuracy", "", accuracy, ""]
    parity = report.get("parity")
    if parity:
        first = parity["first_divergence"]
        where = "none (identical spikes)"
        if first:
            where = f"layer {first['layer']} at time step {first['timestep']}"
        summary = (f"Parity: float {_percent(parity['float_accuracy'])}, "
                   f"chip {_percent(parity['chip_accuracy'])}; first divergence: {where}")
        lines += [summary, ""]
        lines += _table(("layer", "spike-count agreement"), list(parity["layer_spike_agreement"].items()))
    return lines


def _provenance_lines(report: Mapping[str, Any]) -> list[str]:
    tool = report["tool"]
    tool_line = f"tool: {tool['name']} {tool['version']} (schema {report['schema_version']})"
    lines = ["## Provenance", "", "```", tool_line]
    provenance = report.get("provenance")
    if provenance:
        lines += [f"python: {provenance['python']}", f"timestamp: {provenance['timestamp']}"]
        lines += [f"{name}: {version}" for name, version in provenance["versions"].items()]
    return lines + ["```", ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """``run_report.md`` from the JSON dict: per-layer table first, then totals, accuracy / parity, energy
    (kind, coefficients and their sources), memory at paper and chip bit widths, resources, provenance."""
    model, data, backend, energy = report["model"], report["data"], report["backend"], report["energy"]
    banner = (f"Mode **{backend['mode']}** (backend {backend['name']}, device {backend['device']}, "
              f"hw config {backend['hw_config'] or '-'}); energy **{energy['kind']}**; "
              f"data **{data['source']}** ({_fmt(data['samples'])} samples, dt {data['dt_ms']} ms, "
              f"{data['steps']} steps). "
              "All layer figures are averages per sample.")
    lines = [f"# Run report: {model['family']} {model['arch']} on {data['dataset']} ({data['split']})", "",
             banner, "", "## Layers", ""]
    lines += _table([title for _, title in LAYER_COLUMNS],
                    [[layer.get(key) for key, _ in LAYER_COLUMNS] for layer in report["layers"]])
    per = report["per_sample"]
    lines += ["## Totals per sample", ""]
    lines += _table(("quantity", "value"), [
        ("synops", per["synops"]), ("neuron updates", per["neuron_updates"]), ("spikes", per["spikes"]),
        ("MACs", per["macs"]), ("adds", per["adds"]), ("muls", per["muls"]),
        (f"energy (J, {energy['kind']})", per["energy_j"]), ("latency (s)", per["latency_s"]),
        ("parameters", model["params"]),
    ])
    lines += _accuracy_lines(report)
    lines += _energy_lines(energy)
    lines += ["## Memory", ""]
    lines += _memory_lines("Paper bit widths (companion paper eq. 8)", report["memory_bits"])
    lines += _memory_lines("Chip bit widths", report.get("memory_bits_chip"))
    lines += _resource_lines(report.get("resources"))
    lines += _provenance_lines(report)
    return "\n".join(lines)


def print_layer_table(report: Mapping[str, Any], console=None) -> None:
    """The per-layer table of a report dict in the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    backend, energy = report["backend"], report["energy"]
    table = Table(title=f"{report['model']['family']} {report['model']['arch']} - mode {backend['mode']}, "
                        f"energy {energy['kind']}, data {report['data']['source']} (per sample)")
    for key, title in LAYER_COLUMNS:
        table.add_column(title, justify="left" if key in ("name", "type", "shape") else "right")
    for layer in report["layers"]:
        table.add_row(*[_fmt(layer.get(key)) for key, _ in LAYER_COLUMNS])
    console.print(table)


def write_run_report(report: RunReport, out_dir: Path | str, *,
                     raster: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Write ``run_report.json`` (atomic), ``run_report.md`` and the PNG plots; returns the paths written.

    ``raster`` maps layer name -> (neurons, T) spikes of one sample; it is saved as ``raster.npz`` and
    plotted as ``raster.png``.
    """
    out_dir = Path(out_dir)
    data = report.to_dict()
    paths = [write_json(out_dir / "run_report.json", data), write_text(out_dir / "run_report.md",
                                                                       render_markdown(data))]
    if any(layer["neurons"] and layer["neuron_updates"] for layer in data["layers"]):  # spiking layers only
        paths.append(plots.plot_spike_rates(data, out_dir / "spike_rate.png"))
    if any(layer.get("energy_by_op_j") for layer in data["layers"]):
        paths.append(plots.plot_energy_breakdown(data, out_dir / "energy_breakdown.png"))
    if raster:
        paths.append(plots.save_raster(raster, out_dir / "raster.npz"))
        paths.append(plots.plot_raster(raster, out_dir / "raster.png", title=_raster_title(data)))
    return paths


def _raster_title(report: Mapping[str, Any]) -> str:
    return (f"Spike raster of one sample\n{report['model']['family']} {report['model']['arch']} | "
            f"mode {report['backend']['mode']} | data {report['data']['source']}")
