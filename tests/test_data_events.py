"""events.py: binning golden cases and agreement with tonic's own frame binning."""

import numpy as np
import pytest
import tonic.io
from tonic.functional.to_frame import to_frame_numpy

from neurodeploy.data.events import (
    EVENT_DTYPE,
    as_event_array,
    events_to_frames,
    make_events,
    steps_for_length,
)

SENSOR = (4, 3, 2)  # W, H, P


def test_dtype_is_tonics_generic_event_dtype():
    assert EVENT_DTYPE == tonic.io.events_struct


def test_golden_binning_is_binary_and_half_open():
    events = make_events(
        x=[0, 0, 3, 1, 2, 2],
        y=[0, 0, 2, 1, 1, 1],
        t=[0, 10, 999, 1000, 2999, 3000],  # two events in one bin; 3000 us is past 3 x 1 ms
        p=[1, 1, 0, 1, 0, 1],
    )
    frames = events_to_frames(events, SENSOR, dt_ms=1.0, steps=3)
    expected = np.zeros((2, 3, 4, 3), dtype=np.uint8)
    expected[1, 0, 0, 0] = 1  # two ON events at (0, 0) in [0, 1000) -> still 1
    expected[0, 2, 3, 0] = 1  # t = 999 us is the last microsecond of frame 0
    expected[1, 1, 1, 1] = 1  # t = 1000 us opens frame 1
    expected[0, 1, 2, 2] = 1
    assert frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, expected)


def test_only_first_steps_frames_and_negative_times_dropped():
    events = make_events([0, 1, 2], [0, 0, 0], [-5, 4000, 1999], [1, 1, 1])
    frames = events_to_frames(events, SENSOR, dt_ms=2.0, steps=2)
    assert frames.sum() == 1 and frames[1, 0, 2, 0] == 1


def test_fractional_dt_uses_floor_of_t_over_dt():
    events = make_events([0, 0, 0], [0, 0, 0], [0, 1, 3], [1, 1, 1])
    frames = events_to_frames(events, SENSOR, dt_ms=0.0015, steps=3)  # 1.5 us bins
    np.testing.assert_array_equal(frames[1, 0, 0], [1, 0, 1])


def test_single_polarity_sensor_merges_on_and_off():
    events = make_events([1, 1], [2, 2], [0, 1500], [0, 1])
    frames = events_to_frames(events, (4, 3, 1), dt_ms=1.0, steps=2)
    assert frames.shape == (1, 3, 4, 2)
    np.testing.assert_array_equal(frames[0, 2, 1], [1, 1])


def test_empty_events_give_zero_frames():
    frames = events_to_frames(np.empty(0, EVENT_DTYPE), SENSOR, dt_ms=5, steps=4)
    assert frames.shape == (2, 3, 4, 4) and not frames.any()


@pytest.mark.parametrize("dt_ms, steps", [(1.0, 15), (3.0, 15), (10.0, 7), (2.5, 9)])
def test_agrees_with_tonic_to_frame_sign(dt_ms, steps):
    rng = np.random.default_rng(3)
    n = 3000
    events = make_events(rng.integers(0, 4, n), rng.integers(0, 3, n),
                         np.sort(rng.integers(0, 60_000, n)), rng.integers(0, 2, n))
    dt_us = dt_ms * 1000
    theirs = to_frame_numpy(events.copy(), SENSOR, time_window=dt_us, start_time=0, end_time=steps * dt_us)
    ours = events_to_frames(events, SENSOR, dt_ms, steps)
    np.testing.assert_array_equal(ours, np.sign(theirs).transpose(1, 2, 3, 0))


def test_field_order_of_other_dtypes_is_accepted():
    gesture_dtype = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
    events = np.array([(1, 2, True, 1500)], dtype=gesture_dtype)
    converted = as_event_array(events)
    assert converted.dtype == EVENT_DTYPE and converted["t"][0] == 1500
    assert events_to_frames(events, SENSOR, 1.0, 2)[1, 2, 1, 1] == 1


def test_rejects_out_of_sensor_events_and_bad_arguments():
    with pytest.raises(ValueError):
        events_to_frames(make_events([4], [0], [0], [1]), SENSOR, 1.0, 2)
    with pytest.raises(ValueError):
        events_to_frames(make_events([0], [0], [0], [1]), SENSOR, 0.0, 2)
    with pytest.raises(ValueError):
        events_to_frames(make_events([0], [0], [0], [1]), SENSOR, 1.0, 0)


def test_steps_for_fixed_simulated_length():
    assert steps_for_length(45, 3) == 15
    assert steps_for_length(45, 1) == 45
    assert steps_for_length(45, 2) == 22  # round(22.5) -> banker's rounding keeps 22
    assert steps_for_length(1, 20) == 1
