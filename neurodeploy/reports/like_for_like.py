"""What each figure of a comparison row comes from, and every difference between rows that breaks like for like.

Read from the run reports only (no figure is recomputed). Per row: where its energy comes from (a device's
meter, a chip profile's op counts, a float model priced on a profile), where its latency comes from (the chip
model, a device's measured wall time) and whether that latency is one sample's own time or a batch's time / its
size. :func:`like_for_like_warnings` returns one :class:`ComparisonWarning` per kind of difference, naming
the rows (numbered from 1, as in the tables).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import load_profile

SMALL_TEST_SET = 100  # fewer test samples than this: a 95 % interval wider than about +-10 points
ALT_ESTIMATE_GAP = 0.25  # show the other energy estimate beside the one used when they differ by more than this


@dataclass(frozen=True)
class ComparisonWarning:
    """One difference that breaks like for like: ``key`` names its kind, ``rows`` the rows it concerns."""

    key: str
    text: str
    rows: tuple[int, ...] = ()

    def line(self) -> str:
        return f"warning ({self.key}): {self.text}"


def profile_label(name: str | None) -> tuple[str, str]:
    """(short device name, profile kind) of a hardware profile: "Intel Loihi 1", "neuromorphic"."""
    if not name:
        return "no profile", "unknown"
    try:
        profile = load_profile(name)
    except (UserError, OSError, ValueError):
        return name, "unknown"
    short = profile.title.split("(")[0].split(",")[0].strip() or profile.name
    return short, profile.kind


ESTIMATE_KIND = {"gpu": "TDP estimate", "neuromorphic": "op-count estimate", "digital": "per-op estimate"}


def device_class(text: str) -> str:
    """A coarse class of a device description: Loihi, GPU, CPU or a generic CMOS model."""
    lowered = text.lower()
    if "loihi" in lowered or "sana-fe" in lowered:
        return "Loihi"
    if "threads" in lowered or lowered.startswith("cpu") or "xeon" in lowered or "epyc" in lowered:
        return "CPU"
    if "cmos" in lowered:
        return "CMOS model"
    if any(word in lowered for word in ("nvidia", "cuda", "gpu", "h100", "a100")):
        return "GPU"
    return text or "unknown"


def energy_source(*, kind: str | None, profile: str | None, mode: str, device: str, static_counted: bool) -> str:
    """Where a row's energy figure comes from, in words."""
    if kind is None:
        return "no energy figure"
    if kind == "measured":
        return f"{device}, measured (NVML board energy)"
    short, profile_kind = profile_label(profile)
    qualifier = ESTIMATE_KIND.get(profile_kind, "estimate")
    if mode == "float":
        return f"float model priced on the {short} profile ({qualifier}; not run on that device)"
    static = " + static power x chip time" if static_counted else ""
    return f"{short} profile, {qualifier}{static}"


def energy_device(*, kind: str | None, profile: str | None, device: str) -> str:
    """The device whose figures price a row's energy (the measuring device, or the profile's)."""
    if kind is None:
        return ""
    if kind == "measured":
        return device_class(device)
    short, profile_kind = profile_label(profile)
    return {"neuromorphic": "Loihi", "gpu": "GPU", "digital": "CMOS model"}.get(profile_kind, short)


def latency_source(*, kind: str | None, source: str, device: str, samples: int, batch_size: int | None) -> str:
    """Where a row's latency comes from and what kind of time it is, in words."""
    if kind is None:
        return "no latency (a simulator's host time is not a latency)"
    if kind == "chip_estimate" and source.startswith("analytic"):
        return f"analytic per-core chip model (SANA-FE's Loihi 1 event times), per sample, mean of {samples}"
    if kind == "chip_estimate":
        calibration = " (Loihi 1 cal.)" if "Loihi 1" in source else ""
        return f"chip model SANA-FE{calibration}, per sample, mean of {samples}"
    label = device if device_class(device) != "CPU" else ("CPU" if device.lower() == "cpu" else f"CPU {device}")
    basis = f"batch-amortised (batch {batch_size})" if (batch_size or 1) > 1 else "per sample"
    return f"{label}, measured, {basis}"


def latency_basis(kind: str | None, batch_size: int | None) -> str | None:
    """per sample / batch-amortised: whether a latency is one sample's own time."""
    if kind is None:
        return None
    return "batch-amortised" if (batch_size or 1) > 1 else "per sample"


def _distinct(rows, value) -> dict:
    """value -> row numbers (from 1) holding it, for the rows where it is not None."""
    groups: dict = {}
    for number, row in enumerate(rows, 1):
        key = value(row)
        if key is not None:
            groups.setdefault(key, []).append(number)
    return groups


def _named(groups: dict) -> str:
    return "; ".join(f"{key} in row{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
                     for key, numbers in groups.items())


def _all(groups: dict) -> tuple[int, ...]:
    return tuple(sorted(n for numbers in groups.values() for n in numbers))


def like_for_like_warnings(rows: Sequence) -> list[ComparisonWarning]:
    """Every difference between ``rows`` (:class:`neurodeploy.reports.compare.ComparisonRow`) that makes their
    figures not like for like, and every row whose own figures are not (one warning per kind)."""
    found: list[ComparisonWarning] = []

    def differ(key: str, value, what: str, consequence: str) -> None:
        groups = _distinct(rows, value)
        if len(groups) > 1:
            found.append(ComparisonWarning(key, f"{what} ({_named(groups)}): {consequence}", _all(groups)))

    differ("sample_sets", lambda r: r.sample_set, "different sample sets",
           "accuracies and energies are over different samples")
    differ("data_sources", lambda r: r.data_source, "different data sources", "accuracies are on different data")
    differ("timing", lambda r: f"dt {r.dt_ms:g} ms x {r.steps}", "different dt/T",
           "the inputs are binned differently, so work per sample differs")
    differ("static_energy", lambda r: None if r.energy_kind is None else
           ("static counted" if r.energy_static_j is not None else "no static"),
           "static energy counted in some rows only",
           "a total with static power beside one without is not like for like; compare the dynamic column")
    differ("energy_kinds", lambda r: r.energy_kind, "different energy kinds",
           "a measured energy beside an estimate from op counts")
    differ("latency_kinds", lambda r: r.latency_kind, "different latency kinds",
           "a chip model's estimate beside a measured wall time")
    differ("latency_basis", lambda r: latency_basis(r.latency_kind, r.latency_batch), "different latency bases",
           "one sample's own time beside a batch's time divided by its size")
    differ("latency_devices", lambda r: device_class(r.latency_device) if r.latency_kind else None,
           "latencies from different devices", "the latencies time different machines")
    mixed = [number for number, row in enumerate(rows, 1)
             if row.latency_kind and row.energy_device and device_class(row.latency_device) != row.energy_device]
    if mixed:
        parts = [f"row {n}: energy {rows[n - 1].energy_device}, latency {device_class(rows[n - 1].latency_device)}"
                 for n in mixed]
        found.append(ComparisonWarning("row_devices", "energy and latency come from different devices in one row ("
                                       + "; ".join(parts) + ")", tuple(mixed)))
    priced = [number for number, row in enumerate(rows, 1) if row.float_priced]
    if priced:
        found.append(ComparisonWarning(
            "float_priced", f"row{'s' if len(priced) > 1 else ''} {', '.join(map(str, priced))}: a float model "
            "priced on a hardware profile (op counts x per-op energies): not a run on that device", tuple(priced)))
    small = [number for number, row in enumerate(rows, 1) if 0 < row.samples < SMALL_TEST_SET]
    if small:
        found.append(ComparisonWarning(
            "small_test_set", f"row{'s' if len(small) > 1 else ''} {', '.join(map(str, small))}: fewer than "
            f"{SMALL_TEST_SET} test samples; the accuracy interval is too wide to separate models", tuple(small)))
    overlapping = [(a, b) for (a, row_a), (b, row_b) in itertools.combinations(enumerate(rows, 1), 2)
                   if (row_a.family, row_a.arch) != (row_b.family, row_b.arch) and _overlap(row_a, row_b)]
    if overlapping:
        pairs = ", ".join(f"{a}-{b}" for a, b in overlapping)
        found.append(ComparisonWarning(
            "intervals_overlap", f"accuracy intervals overlap (rows {pairs}): at 95 % these models cannot be told "
            "apart on these samples", tuple(sorted({n for pair in overlapping for n in pair}))))
    return found


def _overlap(a, b) -> bool:
    if None in (a.accuracy_low, a.accuracy_high, b.accuracy_low, b.accuracy_high):
        return False
    return a.accuracy_low <= b.accuracy_high and b.accuracy_low <= a.accuracy_high
