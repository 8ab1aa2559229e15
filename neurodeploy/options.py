"""The declared range of every numeric command-line option, checked before any work is done.

Typer parses the type (a non-number is a usage error); :func:`check` then refuses NaN, infinities and
values outside the range below with one line naming the option. Frame binning (``--dt``, ``--steps``) is
checked by :func:`check_binning`, the learning rate by ``TrainConfig.validate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from neurodeploy.errors import UserError


@dataclass(frozen=True)
class Range:
    """Allowed values ``low <= v <= high`` (``low < v`` when ``low_open``); ``why`` explains the bounds."""

    low: float
    high: float
    low_open: bool = False
    why: str = ""

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        low = f"above {_number(self.low)}" if self.low_open else f"from {_number(self.low)}"
        return f"{low} to {_number(self.high)}" + (f" ({self.why})" if self.why else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


RANGES: dict[str, Range] = {
    "--epochs": Range(1, 1_000_000),
    "--batch-size": Range(1, 1_000_000),
    "--micro-batch": Range(1, 1_000_000),
    "--limit": Range(1, 1_000_000_000),
    "--test-limit": Range(1, 1_000_000_000),
    "--samples": Range(1, 1_000_000_000),
    "--seed": Range(0, 2**32 - 1, why="numpy and torch seeds"),
    "--density": Range(0, 1, low_open=True, why="a spike probability per step; 0 would benchmark empty input"),
    "--train-per-class": Range(1, 100_000),
    "--test-per-class": Range(1, 100_000),
}
MIN_DT_MS = 0.001  # event timestamps are whole microseconds: a shorter frame only adds empty frames
MAX_DT_MS = 1e6  # 1000 s, far longer than any recording here (N-MNIST ~0.3 s, DVS Gesture ~6 s)
MAX_STEPS = 100_000
MAX_LR = 1.0  # Adam steps of more than 1 per update only diverge


def check_binning(dt_ms: float | None, steps: int | None) -> None:
    """UserError unless --dt (ms) and --steps (T) are usable numbers: MIN_DT_MS <= dt <= MAX_DT_MS, finite;
    1 <= T <= MAX_STEPS. None means "the default"."""
    if dt_ms is not None and not (MIN_DT_MS <= dt_ms <= MAX_DT_MS):  # also False for NaN
        raise UserError(f"--dt {dt_ms} ms is out of range; give a frame width from {MIN_DT_MS} ms (1 us, the "
                        f"timestamp resolution) to {MAX_DT_MS:g} ms")
    if steps is not None and not (1 <= steps <= MAX_STEPS):
        raise UserError(f"--steps {steps} is out of range; give T from 1 to {MAX_STEPS}")


def check(option: str, value: float | None) -> None:
    """UserError unless ``value`` (None: the default) lies in ``RANGES[option]``."""
    if value is None:
        return
    allowed = RANGES[option]
    if not allowed.contains(value):
        raise UserError(f"{option} {value} is out of range; give a value {allowed.describe()}")
