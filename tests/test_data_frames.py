"""frames.py: Deng Model-4 binary and Model-5 intensity frame encoders on hand-made events."""

import numpy as np
import pytest

from neurodeploy.data.events import events_to_frames, make_events
from neurodeploy.data.frames import binary_frames, frame_input_shape, intensity_frames
from neurodeploy.errors import OptionError

SENSOR = (3, 2, 2)  # W, H, P -> frames (P=2, H=2, W=3); one frame flattens to 12 values in (P, H, W) order

# x, y, t (us), p: bins of 1 ms, T = 3
EVENTS = make_events(
    x=[0, 0, 2, 1, 2, 2, 0],
    y=[0, 0, 1, 0, 1, 1, 1],
    t=[0, 400, 999, 1000, 2500, 2999, 3000],  # two at (ON, 0, 0) in bin 0; 3000 us is past the window
    p=[1, 1, 0, 1, 0, 0, 1],
)


def _flat(p, y, x):
    return p * 6 + y * 3 + x  # index inside one unfolded row (P, H, W) = (2, 2, 3)


def test_binary_frames_unfold_time_into_rows():
    out = binary_frames(EVENTS, 3, sensor_size=SENSOR, dt_ms=1.0)
    expected = np.zeros((1, 3, 12), dtype=np.uint8)
    expected[0, 0, _flat(1, 0, 0)] = 1  # two ON events in bin 0 -> still 1
    expected[0, 0, _flat(0, 1, 2)] = 1  # t = 999 us: last us of bin 0
    expected[0, 1, _flat(1, 0, 1)] = 1  # t = 1000 us opens bin 1
    expected[0, 2, _flat(0, 1, 2)] = 1  # two OFF events in bin 2
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_binary_frames_of_binned_frames_equal_those_of_events_and_keep_batch_axes():
    binned = events_to_frames(EVENTS, SENSOR, 1.0, 3)  # (P, H, W, T)
    single = binary_frames(EVENTS, 3, sensor_size=SENSOR, dt_ms=1.0)
    np.testing.assert_array_equal(binary_frames(binned), single)
    batch = np.stack([binned, np.zeros_like(binned)])
    out = binary_frames(batch * 5)  # counts are clipped to 0/1
    assert out.shape == (2, 1, 3, 12)
    np.testing.assert_array_equal(out[0], single)
    assert out[1].sum() == 0
    # the MLP input is the image flattened frame after frame: T x P*H*W values
    flat = single.reshape(-1)
    assert flat.shape == (36,) and flat[12 + _flat(1, 0, 1)] == 1


def test_intensity_frames_count_every_event_and_normalise_by_the_peak():
    out = intensity_frames(EVENTS, 3, sensor_size=SENSOR, dt_ms=1.0)
    expected = np.zeros((2, 2, 3), dtype=np.float32)
    expected[0, 1, 2] = 3 / 3  # OFF at (y=1, x=2): t = 999, 2500, 2999
    expected[1, 0, 0] = 2 / 3  # ON at (0, 0): t = 0, 400
    expected[1, 0, 1] = 1 / 3  # ON at (0, 1): t = 1000; the ON event at 3000 us is outside the window
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-7)


def test_intensity_frames_of_binned_frames_count_active_bins_per_sample():
    binned = events_to_frames(EVENTS, SENSOR, 1.0, 3)
    batch = np.stack([binned, np.zeros_like(binned)])
    out = intensity_frames(batch)
    assert out.shape == (2, 2, 2, 3)
    expected = np.zeros((2, 2, 3), dtype=np.float32)
    expected[0, 1, 2] = 2 / 2  # bins 0 and 2
    expected[1, 0, 0] = 1 / 2
    expected[1, 0, 1] = 1 / 2
    np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(out[1], 0)  # no events: stays 0, no division by zero


def test_single_polarity_sensor_merges_polarities():
    events = make_events([1, 1, 0], [0, 0, 0], [0, 1500, 100], [0, 1, 1])
    np.testing.assert_allclose(intensity_frames(events, 2, sensor_size=(2, 1, 1), dt_ms=1.0),
                               [[[0.5, 1.0]]])
    np.testing.assert_array_equal(binary_frames(events, 2, sensor_size=(2, 1, 1), dt_ms=1.0),
                                  [[[1, 1], [0, 1]]])


def test_frame_input_shape_of_nmnist():
    assert frame_input_shape("binary", (2, 34, 34), 100) == (1, 100, 2312)
    assert frame_input_shape("intensity", (2, 34, 34), 100) == (2, 34, 34)


@pytest.mark.parametrize("call", [
    lambda: binary_frames(EVENTS, 3),  # events without sensor_size / dt_ms
    lambda: binary_frames(EVENTS, 3, sensor_size=(2, 2, 2), dt_ms=1.0),  # x = 2 outside a 2-wide sensor
    lambda: intensity_frames(EVENTS, 0, sensor_size=SENSOR, dt_ms=1.0),
    lambda: binary_frames(np.zeros((2, 3, 4))),  # not (..., P, H, W, T)
    lambda: binary_frames(np.zeros((2, 2, 3, 4)), 5),  # T mismatch
    lambda: intensity_frames(-np.ones((2, 2, 3, 4))),
    lambda: intensity_frames(np.full((2, 2, 3, 4), np.nan)),
    lambda: frame_input_shape("rgb", (2, 34, 34), 10),
    lambda: frame_input_shape("binary", (2, 34, 34), 0),
])
def test_bad_input_is_an_option_error(call):
    with pytest.raises(OptionError):
        call()
