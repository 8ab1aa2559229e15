"""A DVS pixel model: intensity frames in, ON/OFF events out (pure numpy, vectorised over pixels).

Each pixel keeps the log intensity at its last event, ``L_ref``. Between two frames at t0 and t1 the
log intensity ``L = log(I + offset)`` is taken as linear in time; whenever it has moved by a whole
number n of contrast thresholds C from ``L_ref`` the pixel emits n events (ON when L rose, OFF when it
fell), event j at the time where ``L(t) = L_ref +- j*C`` (rounded to 1 us), and ``L_ref`` moves by n*C.
This is the standard event-camera model (Lichtsteiner et al. 2008; Gallego et al. 2020, eq. 1):

    e_k = (x_k, y_k, t_k, p_k)  whenever  |L(x_k, y_k, t_k) - L(x_k, y_k, t_k - Delta t_k)| = C

Optional non-idealities: per-pixel threshold mismatch ``C_xy = C * (1 + sigma * N(0, 1))`` fixed for the
sensor's life, and background activity (Poisson noise events of random polarity, ``noise_rate_hz`` per
pixel). All randomness comes from one seeded generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from neurodeploy.data.events import EVENT_DTYPE, make_events

_MIN_THRESHOLD = 0.01


@dataclass(frozen=True)
class DVSParameters:
    """Contrast thresholds (in log-intensity units) and sensor non-idealities."""

    threshold_on: float = 0.25
    threshold_off: float = 0.25
    threshold_mismatch: float = 0.0  # relative std of the per-pixel thresholds
    noise_rate_hz: float = 0.0  # background events per pixel per second
    log_offset: float = 1e-3  # L = log(I + log_offset) keeps dark pixels finite

    def __post_init__(self) -> None:
        if self.threshold_on <= 0 or self.threshold_off <= 0:
            raise ValueError("contrast thresholds must be positive")
        if self.threshold_mismatch < 0 or self.noise_rate_hz < 0 or self.log_offset <= 0:
            raise ValueError("threshold_mismatch and noise_rate_hz must be >= 0, log_offset > 0")

    def to_dict(self) -> dict:
        return asdict(self)


def _ragged_ranks(counts: np.ndarray) -> np.ndarray:
    """For counts [2, 3] return [1, 2, 1, 2, 3]: the rank of each repeated element within its run."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(1, total + 1) - starts


class DVSSensor:
    """State of a DVS pixel array; feed it frames in time order with :meth:`step`."""

    def __init__(
        self,
        first_frame: np.ndarray,
        t0_us: int,
        params: DVSParameters = DVSParameters(),
        rng: np.random.Generator | None = None,
    ) -> None:
        if first_frame.ndim != 2:
            raise ValueError(f"frames must be H x W, got shape {first_frame.shape}")
        self.params = params
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.shape = first_frame.shape
        self.log_prev = self._log(first_frame)
        self.log_ref = self.log_prev.copy()
        self.t_prev = int(t0_us)
        self.threshold_on = self._thresholds(params.threshold_on)
        self.threshold_off = self._thresholds(params.threshold_off)

    def _log(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape != self.shape:
            raise ValueError(f"frame shape {frame.shape} differs from the sensor's {self.shape}")
        return np.log(np.maximum(frame, 0.0) + self.params.log_offset).ravel()

    def _thresholds(self, nominal: float) -> np.ndarray:
        size = self.shape[0] * self.shape[1]
        if self.params.threshold_mismatch == 0:
            return np.full(size, nominal)
        spread = 1.0 + self.params.threshold_mismatch * self.rng.standard_normal(size)
        return np.maximum(nominal * spread, _MIN_THRESHOLD)

    def step(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Advance to ``frame`` observed at ``t_us``; return the events in [t_prev, t_us], sorted by t."""
        t_us = int(t_us)
        if t_us <= self.t_prev:
            raise ValueError(f"frame times must increase: {t_us} us after {self.t_prev} us")
        log_now = self._log(frame)
        change = log_now - self.log_ref
        parts = [
            self._crossings(change, log_now, t_us, on=True),
            self._crossings(change, log_now, t_us, on=False),
            self._noise(t_us),
        ]
        self.log_prev = log_now
        self.t_prev = t_us
        events = np.concatenate(parts)
        return events[np.argsort(events["t"], kind="stable")]

    def _crossings(self, change: np.ndarray, log_now: np.ndarray, t_us: int, *, on: bool) -> np.ndarray:
        sign = 1.0 if on else -1.0
        threshold = self.threshold_on if on else self.threshold_off
        pixels = np.flatnonzero(change >= threshold) if on else np.flatnonzero(change <= -threshold)
        if pixels.size == 0:
            return np.empty(0, dtype=EVENT_DTYPE)
        counts = np.floor(sign * change[pixels] / threshold[pixels]).astype(np.int64)
        ref_before = self.log_ref[pixels]
        self.log_ref[pixels] = ref_before + sign * counts * threshold[pixels]
        pix = np.repeat(pixels, counts)
        levels = np.repeat(ref_before, counts) + sign * _ragged_ranks(counts) * threshold[pix]
        start, moved = self.log_prev[pix], log_now[pix] - self.log_prev[pix]
        fraction = np.where(moved == 0, 1.0, (levels - start) / np.where(moved == 0, 1.0, moved))
        fraction = np.minimum(np.maximum(fraction, 0.0), 1.0)
        t = self.t_prev + np.rint(fraction * (t_us - self.t_prev)).astype(np.int64)
        width = self.shape[1]
        return make_events(pix % width, pix // width, t, np.full(pix.size, on))

    def _noise(self, t_us: int) -> np.ndarray:
        return background_events(self.shape, self.params.noise_rate_hz, self.t_prev, t_us, self.rng)


def background_events(shape: tuple[int, int], rate_hz: float, t0_us: int, t1_us: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Background activity: Poisson events at ``rate_hz`` per pixel in (t0, t1] us, random polarity."""
    height, width = shape
    count = rng.poisson(rate_hz * height * width * (t1_us - t0_us) * 1e-6) if rate_hz > 0 else 0
    pix = rng.integers(0, height * width, count)
    t = np.sort(rng.integers(t0_us + 1, t1_us + 1, count))
    return make_events(pix % width, pix // width, t, rng.integers(0, 2, count))


def frames_to_events(
    frames: Iterable[np.ndarray],
    times_us: Sequence[int],
    params: DVSParameters = DVSParameters(),
    seed: int = 0,
) -> np.ndarray:
    """Run a fresh :class:`DVSSensor` over intensity frames (H x W, linear units) taken at ``times_us``.

    The first frame sets every pixel's reference and emits nothing. Returns events sorted by t.
    """
    times = [int(t) for t in times_us]
    iterator = iter(frames)
    try:
        first = next(iterator)
    except StopIteration:
        return np.empty(0, dtype=EVENT_DTYPE)
    sensor = DVSSensor(np.asarray(first), times[0], params, np.random.default_rng(seed))
    parts = [np.empty(0, dtype=EVENT_DTYPE)]
    count = 1
    for frame, t_us in zip(iterator, times[1:]):
        parts.append(sensor.step(np.asarray(frame), t_us))
        count += 1
    if count != len(times):
        raise ValueError(f"{count} frames but {len(times)} frame times")
    return np.concatenate(parts)
