"""Estimated energy: operation counts x energy per operation from a hardware profile (docs/energy.md).

    E = sum_k N_k e_k + P_static t

with N_k the count of op kind k (synops, neuron updates, spikes routed, tile hops, MACs, adds, muls), e_k the
profile's joules per op and t either a wall time measured on the chip or steps x the profile's time per
step. Every figure produced here is labelled ``kind: "estimated"``; measured energy (NVML) is recorded
elsewhere. An op kind that occurs but has no coefficient in the profile is listed in ``uncounted`` rather
than silently priced at zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import Coefficient, HardwareProfile

OP_KINDS = ("synops", "neuron_updates", "spike_routing", "macs", "adds", "muls", "static")
ESTIMATED = "estimated"


@dataclass(frozen=True)
class OpCounts:
    """Operation counts of one layer, in any consistent unit (typically per sample).

    ``neuron_updates`` is every neuron-timestep; ``neuron_updates_active`` those where the neuron spiked or
    received input. When it is None the split is unknown and all updates are priced as active (an upper
    bound). ``spike_hops`` is the total number of tile hops travelled by the output spikes (None when unknown:
    routing energy then counts within-tile delivery only, a lower bound).
    """

    synops: float = 0.0
    neuron_updates: float = 0.0
    neuron_updates_active: float | None = None
    spikes_out: float = 0.0
    spike_hops: float | None = None
    macs: float = 0.0
    adds: float = 0.0
    muls: float = 0.0

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{item.name} = {value!r}: operation counts must be finite and >= 0")
        if self.neuron_updates_active is not None and self.neuron_updates_active > self.neuron_updates:
            raise ValueError("neuron_updates_active cannot exceed neuron_updates")


@dataclass(frozen=True)
class EnergyBreakdown:
    """Joules by op kind, with the coefficients used and what could not be priced."""

    profile: str
    joules: dict[str, float] = field(default_factory=dict)
    coefficients: dict[str, Coefficient] = field(default_factory=dict)
    uncounted: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    kind: str = ESTIMATED

    def __post_init__(self):
        if self.kind != ESTIMATED:
            raise ValueError("energy computed from a profile is always 'estimated'")
        unknown = set(self.joules) - set(OP_KINDS)
        if unknown:
            raise ValueError(f"unknown op kinds {sorted(unknown)}; known: {', '.join(OP_KINDS)}")

    @property
    def total_j(self) -> float:
        return float(sum(self.joules.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "profile": self.profile,
            "total_j": self.total_j,
            "by_op_j": dict(self.joules),
            "coefficients": {key: coeff.to_dict() for key, coeff in self.coefficients.items()},
            "uncounted": list(self.uncounted),
            "notes": list(self.notes),
        }


def combine(breakdowns: Iterable[EnergyBreakdown]) -> EnergyBreakdown:
    """Sum breakdowns of the same profile (e.g. all layers plus static)."""
    items = list(breakdowns)
    if not items:
        raise ValueError("nothing to combine")
    profiles = {b.profile for b in items}
    if len(profiles) > 1:
        raise ValueError(f"cannot add energies from different profiles {sorted(profiles)}")
    joules: dict[str, float] = {}
    coefficients: dict[str, Coefficient] = {}
    uncounted: list[str] = []
    notes: list[str] = []
    for b in items:
        for kind, value in b.joules.items():
            joules[kind] = joules.get(kind, 0.0) + value
        coefficients.update(b.coefficients)
        uncounted += [u for u in b.uncounted if u not in uncounted]
        notes += [n for n in b.notes if n not in notes]
    return EnergyBreakdown(items[0].profile, joules, coefficients, tuple(uncounted), tuple(notes))


class _Pricer:
    """Accumulates count x coefficient per op kind for one profile."""

    def __init__(self, profile: HardwareProfile):
        self.profile = profile
        self.joules: dict[str, float] = {}
        self.used: dict[str, Coefficient] = {}
        self.uncounted: list[str] = []
        self.notes: list[str] = []

    def add(self, kind: str, count: float, key: str) -> bool:
        if count == 0:
            return True
        if not self.profile.has(key):
            if kind not in self.uncounted:
                self.uncounted.append(kind)
            return False
        self.joules[kind] = self.joules.get(kind, 0.0) + count * self.profile.si(key)
        self.used[key] = self.profile.coefficient(key)
        return True

    def result(self) -> EnergyBreakdown:
        return EnergyBreakdown(self.profile.name, self.joules, self.used, tuple(self.uncounted),
                               tuple(self.notes))


def estimate_layer_energy(counts: OpCounts, profile: HardwareProfile) -> EnergyBreakdown:
    """Dynamic energy of one layer.

    E = synops e_synop + U_active e_update_active + U_inactive e_update_inactive
        + spikes e_spike_within_tile + hops e_spike_hop + MACs e_mac + adds e_add + muls e_mul   [J]

    Loihi: Davies et al. 2018 Table 2. Without an ``neuron_update_inactive`` coefficient inactive updates
    are priced as active ones.
    """
    pricer = _Pricer(profile)
    pricer.add("synops", counts.synops, "synop")
    active = counts.neuron_updates if counts.neuron_updates_active is None else counts.neuron_updates_active
    inactive = counts.neuron_updates - active
    if counts.neuron_updates_active is None and counts.neuron_updates and profile.has("neuron_update_active"):
        pricer.notes.append("active/inactive neuron updates unknown: all priced as active (upper bound)")
    pricer.add("neuron_updates", active, "neuron_update_active")
    has_inactive = profile.has("neuron_update_inactive")
    inactive_key = "neuron_update_inactive" if has_inactive else "neuron_update_active"
    pricer.add("neuron_updates", inactive, inactive_key)
    pricer.add("spike_routing", counts.spikes_out, "spike_within_tile")
    if counts.spikes_out and counts.spike_hops is None and profile.has("spike_hop"):
        pricer.notes.append("tile hops unknown: routing energy counts within-tile delivery only "
                            "(lower bound)")
    pricer.add("spike_routing", counts.spike_hops or 0.0, "spike_hop")
    pricer.add("macs", counts.macs, "mac")
    pricer.add("adds", counts.adds, "add")
    pricer.add("muls", counts.muls, "mul")
    return pricer.result()


def estimate_static_energy(profile: HardwareProfile, *, steps: int | None = None,
                           wall_time_s: float | None = None, chip_time_s: float | None = None,
                           chip_time_source: str = "") -> EnergyBreakdown:
    """Static energy P_static x t [J].

    t is ``wall_time_s`` when given (it must be measured on the chip itself: an emulator's wall time says
    nothing about the chip), else ``chip_time_s`` (the chip time of a chip performance model, named by
    ``chip_time_source``), else ``steps`` x the profile's ``time_per_step``. Without any, or without a
    static power, nothing is added and the reason is noted.
    """
    pricer = _Pricer(profile)
    if not profile.has("static"):
        return pricer.result()
    if wall_time_s is None and chip_time_s is not None:
        if chip_time_s < 0 or not math.isfinite(chip_time_s):
            raise ValueError("chip_time_s must be finite and >= 0")
        pricer.notes.append(f"static energy = static power x chip time estimated by {chip_time_source}")
        pricer.add("static", float(chip_time_s), "static")
        return pricer.result()
    if wall_time_s is not None:
        if wall_time_s < 0 or not math.isfinite(wall_time_s):
            raise ValueError("wall_time_s must be finite and >= 0")
        seconds = float(wall_time_s)
        pricer.notes.append("static energy = static power x measured wall time")
    elif steps is not None and profile.has("time_per_step"):
        seconds = steps * profile.si("time_per_step")
        pricer.used["time_per_step"] = profile.coefficient("time_per_step")
        pricer.notes.append("static energy = static power x steps x time per step")
    else:
        pricer.uncounted.append("static")
        pricer.notes.append("static power not counted: no chip wall time and no published time per step")
        return pricer.result()
    pricer.add("static", seconds, "static")
    return pricer.result()


@dataclass(frozen=True)
class HostChipEnergy:
    """Energy of a host front end and a chip back end from their op counts (docs/rsnn.md):
    ``host_j = MACs x E_MAC``, ``chip_j = synops x E_AC`` (the profile's ``mac`` and ``synop``), estimated."""

    host_macs: float
    chip_synops: float
    host_j: float
    chip_j: float
    profile: str

    @property
    def ratio(self) -> float:
        """host_j / chip_j (inf for a silent chip)."""
        return self.host_j / self.chip_j if self.chip_j else math.inf


def host_chip_energy(host_macs: float, chip_synops: float, profile: HardwareProfile) -> HostChipEnergy:
    """Price ``host_macs`` float MACs and ``chip_synops`` synaptic accumulates with ``profile``; UserError
    naming the profile when it lacks either coefficient."""
    missing = [key for key in ("mac", "synop") if not profile.has(key)]
    if missing:
        raise UserError(f"--hw {profile.name}: the profile has no energy for {', '.join(missing)}; use --hw cmos45nm")
    counts = OpCounts(macs=host_macs, synops=chip_synops)  # checks both are finite and >= 0
    return HostChipEnergy(counts.macs, counts.synops, counts.macs * profile.si("mac"),
                          counts.synops * profile.si("synop"), profile.name)
