"""Hardware profiles (``hw_configs/*.yaml``) and the mapping of a network onto neuromorphic cores.

A profile is a cited data file: every coefficient is ``{value, unit, source[, note]}`` and lives in one of
five sections (docs/energy.md lists every coefficient and its source):

- ``energy``: joules per operation -- ``synop``, ``neuron_update_active``, ``neuron_update_inactive``,
  ``spike_within_tile``, ``spike_hop``, ``mac``, ``add``, ``mul``;
- ``power``: ``static`` (added to estimates as power x time), ``tdp`` (informational);
- ``timing``: ``time_per_step``;
- ``limits``: ``neurons_per_core``, ``synaptic_memory_per_core``, ``fan_in_axons_per_core``,
  ``fan_out_per_core``, ``cores_per_chip``, ``chips_per_board``;
- ``bits``: ``weight``, ``state_u``, ``state_v``, ``activation``, ``spike``.

A coefficient may be absent (the op kind is then not counted) or have ``value: null`` with a source saying
it is not published. Values are stored as written and converted to SI units (J, W, s, bit, count) on use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from neurodeploy.errors import UserError
from neurodeploy.metrics.placement import ConvShape, ConvTiling, spatial_tiles
from neurodeploy.safe_files import load_yaml

HW_CONFIGS_DIR = Path(__file__).resolve().parents[2] / "hw_configs"
PROFILE_KINDS = ("neuromorphic", "digital", "gpu")

# unit -> (dimension, factor to SI)
_UNITS: dict[str, tuple[str, float]] = {
    "J": ("energy", 1.0), "mJ": ("energy", 1e-3), "uJ": ("energy", 1e-6), "nJ": ("energy", 1e-9),
    "pJ": ("energy", 1e-12), "fJ": ("energy", 1e-15),
    "W": ("power", 1.0), "mW": ("power", 1e-3), "uW": ("power", 1e-6),
    "s": ("time", 1.0), "ms": ("time", 1e-3), "us": ("time", 1e-6), "ns": ("time", 1e-9),
    "bit": ("memory", 1.0), "B": ("memory", 8.0), "KiB": ("memory", 8.0 * 1024),
    "MiB": ("memory", 8.0 * 1024**2),
    "neurons": ("count", 1.0), "axons": ("count", 1.0), "edges": ("count", 1.0), "cores": ("count", 1.0),
    "chips": ("count", 1.0),
}

# section -> key -> dimension
SECTIONS: dict[str, dict[str, str]] = {
    "energy": {key: "energy" for key in (
        "synop", "neuron_update_active", "neuron_update_inactive", "spike_within_tile", "spike_hop",
        "mac", "add", "mul")},
    "power": {"static": "power", "tdp": "power"},
    "timing": {"time_per_step": "time"},
    "limits": {"neurons_per_core": "count", "synaptic_memory_per_core": "memory",
               "fan_in_axons_per_core": "count", "fan_out_per_core": "count", "cores_per_chip": "count",
               "chips_per_board": "count"},
    "bits": {key: "memory" for key in ("weight", "state_u", "state_v", "activation", "spike")},
}


@dataclass(frozen=True)
class Coefficient:
    """One cited number: ``value`` in ``unit``, where it comes from, and how it was derived or borrowed."""

    value: float | None
    unit: str
    source: str
    note: str = ""

    def __post_init__(self):
        if self.unit not in _UNITS:
            raise ValueError(f"unknown unit '{self.unit}'; use one of {', '.join(_UNITS)}")
        if not self.source.strip():
            raise ValueError("every coefficient needs a source (paper, table, year, or 'not published')")
        if self.value is not None and (not math.isfinite(float(self.value)) or float(self.value) < 0):
            raise ValueError(f"value {self.value!r} must be a finite non-negative number or null")

    @property
    def dimension(self) -> str:
        return _UNITS[self.unit][0]

    @property
    def si(self) -> float | None:
        """The value in SI units (J, W, s, bit, count), or None when not published."""
        return None if self.value is None else float(self.value) * _UNITS[self.unit][1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "unit": self.unit, "source": self.source}
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Coefficient:
        unknown = set(raw) - {"value", "unit", "source", "note"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; a coefficient has value, unit, source, note")
        if "value" not in raw or "unit" not in raw or "source" not in raw:
            raise ValueError("a coefficient needs value, unit and source")
        value = raw["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"value {value!r} is not a number")
        return cls(value, str(raw["unit"]), str(raw["source"]), str(raw.get("note") or ""))


@dataclass(frozen=True)
class HardwareProfile:
    """A validated hardware profile; see the module docstring for the keys."""

    name: str
    title: str
    kind: str
    coefficients: dict[str, dict[str, Coefficient]] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self):
        if self.kind not in PROFILE_KINDS:
            raise ValueError(f"kind '{self.kind}' must be one of {', '.join(PROFILE_KINDS)}")
        for section, entries in self.coefficients.items():
            if section not in SECTIONS:
                raise ValueError(f"unknown section '{section}'; sections are {', '.join(SECTIONS)}")
            for key, coeff in entries.items():
                if key not in SECTIONS[section]:
                    raise ValueError(f"unknown key '{section}.{key}'; known: {', '.join(SECTIONS[section])}")
                if coeff.dimension != SECTIONS[section][key]:
                    raise ValueError(f"'{section}.{key}' has unit '{coeff.unit}', expected a "
                                     f"{SECTIONS[section][key]} unit")
                if section in ("limits", "bits") and coeff.value is not None and (
                        coeff.si <= 0 or (section == "bits" and coeff.si != int(coeff.si))):
                    raise ValueError(f"'{section}.{key}' must be a positive whole number")

    def coefficient(self, key: str) -> Coefficient:
        """The coefficient ``key`` (e.g. ``"synop"``, ``"neurons_per_core"``) with its value and source."""
        for entries in self.coefficients.values():
            if key in entries:
                return entries[key]
        known = sorted(k for entries in self.coefficients.values() for k in entries)
        raise UserError(f"{self.path or self.name}: profile has no coefficient '{key}'; "
                        f"it has {', '.join(known)}")

    def has(self, key: str) -> bool:
        """True when ``key`` is present with a published (non-null) value."""
        return any(entries.get(key) is not None and entries[key].value is not None
                   for entries in self.coefficients.values())

    def si(self, key: str) -> float | None:
        """Value of ``key`` in SI units, or None when absent or not published."""
        return self.coefficient(key).si if self.has(key) else None

    def bit_width(self, key: str) -> int | None:
        """Bit width ``bits.<key>`` as an int, or None."""
        value = self.si(key) if key in SECTIONS["bits"] else None
        return None if value is None else int(value)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "title": self.title, "kind": self.kind}
        for section, entries in self.coefficients.items():
            out[section] = {key: coeff.to_dict() for key, coeff in entries.items()}
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], path: Path | None = None) -> HardwareProfile:
        where = path or raw.get("name", "profile")
        if not isinstance(raw, Mapping):
            raise UserError(f"{where}: a hardware profile must be a YAML mapping")
        unknown = set(raw) - {"name", "title", "kind", *SECTIONS}
        if unknown:
            raise UserError(f"{where}: unknown top-level keys {sorted(unknown)}; allowed: name, title, kind, "
                            f"{', '.join(SECTIONS)}")
        try:
            coefficients = {
                section: {key: Coefficient.from_dict(value) for key, value in (raw[section] or {}).items()}
                for section in SECTIONS if section in raw
            }
            return cls(str(raw["name"]), str(raw.get("title", "")), str(raw.get("kind", "")), coefficients,
                       path)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise UserError(f"{where}: invalid hardware profile ({exc}); fix the file, see "
                            "hw_configs/loihi2.yaml") from exc


def list_profiles() -> list[str]:
    """Names of the profiles shipped in ``hw_configs/``."""
    return sorted(p.stem for p in HW_CONFIGS_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """Load a profile by name (``loihi2`` -> ``hw_configs/loihi2.yaml``) or by path to a YAML file."""
    text = str(name_or_path)
    is_path = text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text
    path = Path(text) if is_path else HW_CONFIGS_DIR / f"{text}.yaml"
    if not path.exists():
        raise UserError(f"{path}: unknown hardware profile '{text}'; "
                        f"known profiles: {', '.join(list_profiles())}")
    raw = load_yaml(path, "hardware profile", "fix the YAML")
    return HardwareProfile.from_dict(raw, path)


@dataclass(frozen=True)
class LayerFootprint:
    """What one layer asks of a chip: neurons, stored synapses, fan-in (input axons per neuron); ``conv`` the
    geometry of a convolution layer (mapped in spatial tiles with shared kernels, metrics/placement.py)."""

    name: str
    neurons: int
    synapses: int
    fan_in: int
    weight_bits: int | None = None  # None: the profile's bits.weight
    conv: ConvShape | None = None

    def __post_init__(self):
        for attr in ("neurons", "synapses", "fan_in"):
            if int(getattr(self, attr)) < 0:
                raise ValueError(f"layer {self.name}: {attr} must be >= 0")
        if self.weight_bits is not None and self.weight_bits < 1:
            raise ValueError(f"layer {self.name}: weight_bits must be >= 1")


@dataclass(frozen=True)
class LayerResources:
    """Cores one layer needs, by each limit; ``cores`` is the largest, ``limited_by`` names it."""

    name: str
    cores: int
    cores_by_neurons: int
    cores_by_memory: int
    cores_by_fan_in: int
    limited_by: str
    tiling: ConvTiling | None = None  # conv layers: the spatial tiles (metrics/placement.py)

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "tiling": None if self.tiling is None else self.tiling.to_dict()}


@dataclass(frozen=True)
class ResourceMap:
    """Cores per layer and in total, and how many chips and boards that makes."""

    profile: str
    layers: tuple[LayerResources, ...]
    cores_per_chip: int
    chips_per_board: int

    @property
    def total_cores(self) -> int:
        return sum(layer.cores for layer in self.layers)

    @property
    def chips(self) -> int:
        return max(1, math.ceil(self.total_cores / self.cores_per_chip))

    @property
    def boards(self) -> int:
        return max(1, math.ceil(self.chips / self.chips_per_board))

    @property
    def fits_one_chip(self) -> bool:
        return self.total_cores <= self.cores_per_chip

    @property
    def fits_one_board(self) -> bool:
        return self.chips <= self.chips_per_board

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "total_cores": self.total_cores,
            "chips": self.chips,
            "boards": self.boards,
            "fits_one_chip": self.fits_one_chip,
            "fits_one_board": self.fits_one_board,
            "cores_per_chip": self.cores_per_chip,
            "chips_per_board": self.chips_per_board,
            "layers": [layer.to_dict() for layer in self.layers],
            "assumptions": "one layer per core (cores are not shared between layers); dense layers: synaptic "
                           "memory = synapses x weight bits, indices and delays not counted, a neuron whose "
                           "fan-in exceeds the per-core axon limit is split over ceil(fan_in / limit) cores; "
                           "conv layers: spatial tiles of all channels per core, the kernel stored once per "
                           "core (weight sharing), input axons = the input pixels x channels the tile reads "
                           "(docs/chip_model.md)",
        }


def map_resources(layers: Sequence[LayerFootprint], profile: HardwareProfile) -> ResourceMap:
    """Cores per layer from the profile's per-core limits: the one core mapping of lint, the resource report
    and the chip model.

    Dense layers (and a conv layer none of whose tiles fits):
    cores = max( ceil(neurons / neurons_per_core),
                 ceil(synapses * weight_bits / synaptic_memory_bits_per_core),
                 ceil(fan_in / fan_in_axons_per_core) )
    Conv layers (``LayerFootprint.conv``): the spatial tiles of :func:`neurodeploy.metrics.placement.spatial_tiles`.
    chips = ceil(total cores / cores_per_chip), boards = ceil(chips / chips_per_board).
    """
    needed = ("neurons_per_core", "synaptic_memory_per_core", "fan_in_axons_per_core", "cores_per_chip",
              "chips_per_board")
    missing = [key for key in needed if not profile.has(key)]
    if missing:
        raise UserError(f"{profile.path or profile.name}: profile has no per-core limits "
                        f"({', '.join(missing)}); map onto a neuromorphic profile such as loihi2")
    neurons_per_core = profile.si("neurons_per_core")
    memory_bits = profile.si("synaptic_memory_per_core")
    axons = profile.si("fan_in_axons_per_core")
    default_bits = profile.bit_width("weight") or 8
    result = []
    for layer in layers:
        bits = layer.weight_bits or default_bits
        tiling = None if layer.conv is None else spatial_tiles(layer.conv, neurons_per_core, axons, memory_bits, bits)
        if tiling is not None:
            result.append(LayerResources(
                layer.name, tiling.cores, math.ceil(layer.neurons / neurons_per_core),
                math.ceil(layer.conv.kernel_weights(layer.conv.out_shape[0]) * bits / memory_bits),
                math.ceil(tiling.axons_per_core / axons), f"spatial tiles ({tiling.limited_by})", tiling))
            continue
        by = {
            "neurons": math.ceil(layer.neurons / neurons_per_core),
            "memory": math.ceil(layer.synapses * bits / memory_bits),
            "fan_in": math.ceil(layer.fan_in / axons),
        }
        limited_by = max(by, key=by.get)
        result.append(LayerResources(layer.name, by[limited_by], by["neurons"], by["memory"],
                                     by["fan_in"], limited_by))
    return ResourceMap(profile.name, tuple(result), int(profile.si("cores_per_chip")),
                       int(profile.si("chips_per_board")))


def print_profile(profile: HardwareProfile, console=None) -> None:
    """Every coefficient of ``profile`` with its unit, source and note, as a rich table."""
    console = console or Console()
    table = Table(title=f"{profile.name}: {profile.title} ({profile.kind})")
    for column in ("section", "key", "value", "unit", "source", "note"):
        table.add_column(column, justify="right" if column == "value" else "left", overflow="fold")
    for section, entries in profile.coefficients.items():
        for key, coeff in entries.items():
            value = "not published" if coeff.value is None else f"{coeff.value:g}"
            table.add_row(section, key, value, coeff.unit, coeff.source, coeff.note)
    console.print(table)
