"""Frame encoders that turn event data into the input of a frame-based ANN (pure numpy, no I/O).

Companion paper (Deng et al., "Rethinking the performance comparison between SNNs and ANNs", Neural
Networks 2020), §4.1, Fig. 4c-d:

- Model-4, *binary frames*: the events are binned into T binary frames (:func:`events_to_frames`) and the
  frames are unfolded into one binary image, a row per time step: shape ``(1, T, P*H*W)`` (C, H, W). An MLP
  reads it flattened (T x P*H*W inputs: N-MNIST at T = 100 gives the 231,200-wide input of Deng Table 6's
  Model-4 weight count); a CNN reads it as a one-channel T x P*H*W image (docs/cost.md, "Deng Table 6").
- Model-5, *intensity frames*: the events are counted per pixel and polarity over the whole window and the
  counts are normalised by the sample's largest count, one frame of shape ``(P, H, W)`` in [0, 1].

Both take either one sample's events (a structured array, with ``sensor_size`` (W, H, P), ``dt_ms`` and
``steps``, binned as :func:`neurodeploy.data.events.events_to_frames` bins them) or frames that are already
binned, shape ``(..., P, H, W, T)`` with any leading batch axes (the layout of
:class:`neurodeploy.data.datasets.FrameDataset`).
"""

from __future__ import annotations

import math

import numpy as np

from neurodeploy.data.events import _bin_index, as_event_array, events_to_frames
from neurodeploy.errors import OptionError

FRAME_KINDS = ("binary", "intensity")


def _is_events(data) -> bool:
    return isinstance(data, np.ndarray) and data.dtype.names is not None


def _binned(data, steps: int | None, sensor_size, dt_ms: float | None) -> np.ndarray:
    """``data`` as binned frames (..., P, H, W, T): events are binned, binned frames checked."""
    if _is_events(data):
        if sensor_size is None or dt_ms is None or steps is None:
            raise OptionError("events need sensor_size (W, H, P), dt_ms and steps to be binned into frames")
        try:
            return events_to_frames(as_event_array(data), tuple(sensor_size), dt_ms, steps)
        except ValueError as error:
            raise OptionError(str(error)) from None
    frames = np.asarray(data)
    if frames.ndim < 4 or min(frames.shape[-4:]) < 1:
        raise OptionError(f"binned frames must have shape (..., P, H, W, T), got {frames.shape}")
    if steps is not None and steps != frames.shape[-1]:
        raise OptionError(f"steps={steps} but the binned frames hold T={frames.shape[-1]}")
    if not np.issubdtype(frames.dtype, np.number) and frames.dtype != bool:
        raise OptionError(f"binned frames must be numeric, got dtype {frames.dtype}")
    if frames.size and not np.isfinite(frames).all():
        raise OptionError("binned frames hold NaN or infinite values")
    if frames.size and frames.min() < 0:
        raise OptionError("binned frames hold negative values; expected event counts or 0/1 frames")
    return frames


def binary_frames(data, steps: int | None = None, *, sensor_size=None, dt_ms: float | None = None) -> np.ndarray:
    """Deng Model-4's input: T binary frames unfolded into one image, shape (..., 1, T, P*H*W), uint8 0/1.

    Row t is frame t flattened in (P, H, W) order, so ``out.reshape(..., -1)`` is the MLP's input of
    T x P*H*W values, frame after frame. A pixel is 1 when it saw at least one event in its bin (binned
    frames holding counts are clipped to 0/1). ``data``: one sample's events (needs ``sensor_size``,
    ``dt_ms``, ``steps``) or binned frames (..., P, H, W, T).
    """
    frames = _binned(data, steps, sensor_size, dt_ms)
    lead, (p, h, w, t) = frames.shape[:-4], frames.shape[-4:]
    unfolded = np.moveaxis(frames, -1, -4).reshape(*lead, 1, t, p * h * w)  # (..., T, P, H, W) -> rows
    return (unfolded > 0).astype(np.uint8)


def intensity_frames(data, steps: int | None = None, *, sensor_size=None, dt_ms: float | None = None) -> np.ndarray:
    """Deng Model-5's input: counts per (P, H, W) accumulated over the window, normalised, float32 in [0, 1].

    Events: every event with t in [0, steps x dt) counts once (the window of :func:`events_to_frames`).
    Binned frames: their values are summed over T (0/1 frames give the number of bins with an event). Each
    sample is divided by its largest count, so its brightest pixel is 1; a sample without events stays 0.
    Shape: (P, H, W) for events, (..., P, H, W) for binned frames.
    """
    if _is_events(data):
        _binned(data, steps, sensor_size, dt_ms)  # the same checks (window, sensor bounds) as binary frames
        events = as_event_array(data)
        width, height, polarities = (int(v) for v in sensor_size)
        counts = np.zeros((polarities, height, width), dtype=np.float64)
        if len(events):
            step = _bin_index(events["t"].astype(np.int64), dt_ms)
            keep = (step >= 0) & (step < steps)
            channel = events["p"].astype(np.intp) if polarities == 2 else np.zeros(len(events), dtype=np.intp)
            np.add.at(counts, (channel[keep], events["y"].astype(np.intp)[keep], events["x"].astype(np.intp)[keep]),
                      1.0)
    else:
        counts = _binned(data, steps, sensor_size, dt_ms).sum(axis=-1, dtype=np.float64)
    peak = counts.max(axis=(-3, -2, -1), keepdims=True) if counts.size else np.zeros(counts.shape[:-3] + (1, 1, 1))
    return np.divide(counts, peak, out=np.zeros_like(counts), where=peak > 0).astype(np.float32)


def frame_input_shape(frames: str, sensor_shape: tuple[int, int, int], steps: int) -> tuple[int, int, int]:
    """The ANN's input shape (C, H, W) for ``frames`` (binary | intensity) of a (C, H, W) sensor and T steps.

    binary: (1, T, C*H*W), the unfolded image of :func:`binary_frames`; intensity: the sensor's (C, H, W).
    """
    if frames not in FRAME_KINDS:
        raise OptionError(f"unknown --frames '{frames}'; choose one of {', '.join(FRAME_KINDS)}")
    if steps < 1:
        raise OptionError(f"--steps {steps}: binary frames need T >= 1")
    if frames == "intensity":
        return tuple(sensor_shape)
    return (1, steps, math.prod(sensor_shape))
