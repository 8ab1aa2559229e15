"""Event arrays and their binning into binary frames (pure numpy, no I/O).

Events are numpy structured arrays with tonic's generic dtype ``EVENT_DTYPE`` (fields ``x, y, t, p``;
``t`` in microseconds, ``p`` True for ON). Sensor sizes follow tonic's ``(W, H, P)`` convention.
"""

from __future__ import annotations

import math

import numpy as np

#: Same layout as ``tonic.io.events_struct``: x int16, y int16, t int64 (us), p bool.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def make_events(x, y, t, p) -> np.ndarray:
    """Build an ``EVENT_DTYPE`` array from four equally long sequences (t in us, p truthy = ON)."""
    x = np.asarray(x)
    events = np.empty(x.shape[0], dtype=EVENT_DTYPE)
    events["x"] = x
    events["y"] = y
    events["t"] = t
    events["p"] = np.asarray(p).astype(bool)
    return events


def as_event_array(events: np.ndarray) -> np.ndarray:
    """Return ``events`` as ``EVENT_DTYPE`` whatever the field order or integer widths of its dtype."""
    if events.dtype == EVENT_DTYPE:
        return events
    names = events.dtype.names or ()
    missing = {"x", "y", "t", "p"} - set(names)
    if missing:
        raise ValueError(f"event array lacks field(s) {sorted(missing)}; has {names}")
    return make_events(events["x"], events["y"], events["t"], events["p"])


def _bin_index(t_us: np.ndarray, dt_ms: float) -> np.ndarray:
    """floor(t / dt) with dt in us; exact integer arithmetic whenever dt is a whole number of us."""
    dt_us = dt_ms * 1000.0
    if abs(dt_us - round(dt_us)) < 1e-9:
        return np.floor_divide(t_us, round(dt_us))
    return np.floor(t_us / dt_us).astype(np.int64)


def events_to_frames(
    events: np.ndarray, sensor_size: tuple[int, int, int], dt_ms: float, steps: int
) -> np.ndarray:
    """Bin events into ``steps`` binary frames of ``dt_ms`` each (source paper eq. 12-13).

    ``S_i[p, y, x] = sign(#events with t in [i*dt, (i+1)*dt))`` for i = 0 .. steps-1, dt in us =
    1000 * dt_ms; time starts at t = 0 us, events before 0 or after ``steps * dt`` are dropped.
    A one-polarity sensor (P = 1) merges ON and OFF events.

    Args:
        events: structured array with fields x, y, t (us), p.
        sensor_size: (W, H, P) as in tonic.
        dt_ms: bin width in milliseconds (> 0).
        steps: number of frames T (>= 1).

    Returns:
        uint8 array of shape (P, H, W, steps) holding 0/1.
    """
    width, height, polarities = (int(v) for v in sensor_size)
    if dt_ms <= 0 or not math.isfinite(dt_ms):
        raise ValueError(f"dt_ms must be a positive number, got {dt_ms}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if polarities not in (1, 2):
        raise ValueError(f"sensor_size must be (W, H, P) with P in (1, 2), got {sensor_size}")
    frames = np.zeros((polarities, height, width, steps), dtype=np.uint8)
    if len(events) == 0:
        return frames
    x = events["x"].astype(np.intp)
    y = events["y"].astype(np.intp)
    if x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height:
        raise ValueError(f"event coordinates fall outside the {width}x{height} sensor")
    step = _bin_index(events["t"].astype(np.int64), dt_ms)
    keep = (step >= 0) & (step < steps)
    p = events["p"].astype(np.intp) if polarities == 2 else np.zeros(len(events), dtype=np.intp)
    frames[p[keep], y[keep], x[keep], step[keep]] = 1
    return frames


def steps_for_length(length_ms: float, dt_ms: float) -> int:
    """Number of frames that covers a fixed simulated length: T = round(length / dt), at least 1.

    This is the paper's second regime (Tables XI-XII): ``T x dt`` held constant while dt varies,
    e.g. 45 ms at dt = 3 ms gives T = 15, at dt = 1 ms gives T = 45.
    """
    if dt_ms <= 0 or length_ms <= 0:
        raise ValueError(f"length_ms and dt_ms must be positive, got {length_ms}, {dt_ms}")
    return max(1, round(length_ms / dt_ms))
