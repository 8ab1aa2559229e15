"""dvs_model.py: event counts and timestamps against the analytic DVS model and a per-pixel reference."""

import numpy as np
import pytest

from neurodeploy.data.dvs_model import DVSParameters, DVSSensor, frames_to_events
from neurodeploy.data.events import EVENT_DTYPE

OFFSET = 1e-3


def constant(value, shape=(1, 1)):
    return np.full(shape, value, dtype=float)


def test_ramp_up_gives_on_events_at_analytic_crossing_times():
    # log intensity rises linearly over 10 ms by log(1.001 / 0.101) = 2.2935: floor(2.2935 / 0.25) = 9
    # crossings, the j-th at t = j * 0.25 / 2.2935 * 10 ms.
    params = DVSParameters(threshold_on=0.25, threshold_off=0.25, log_offset=OFFSET)
    events = frames_to_events([constant(0.1), constant(1.0)], [0, 10_000], params)
    rise = np.log(1.0 + OFFSET) - np.log(0.1 + OFFSET)
    expected_t = np.rint(np.arange(1, 10) * 0.25 / rise * 10_000).astype(np.int64)
    assert events.dtype == EVENT_DTYPE
    assert events["p"].all()
    np.testing.assert_array_equal(events["t"], expected_t)


def test_ramp_down_gives_off_events():
    params = DVSParameters(threshold_on=0.2, threshold_off=0.5, log_offset=OFFSET)
    events = frames_to_events([constant(1.0), constant(0.1)], [0, 1000], params)
    assert len(events) == 4 and not events["p"].any()  # floor(2.2935 / 0.5)


def test_reference_carries_over_between_frames():
    params = DVSParameters(threshold_on=0.5, threshold_off=0.5, log_offset=OFFSET)
    e = np.exp(1)
    frames = [constant(1.0), constant(e ** 0.4), constant(e ** 0.7), constant(e ** 0.2)]
    frames = [f - OFFSET for f in frames]  # log(I + offset) = 0, 0.4, 0.7, 0.2
    events = frames_to_events(frames, [0, 1000, 2000, 3000], params)
    # 0.4: nothing; 0.7: one ON at level 0.5 -> ref 0.5; 0.2: not yet 0.5 below the reference.
    assert len(events) == 1 and events["p"][0]
    # 0.5 is crossed 1/3 of the way from 0.4 to 0.7
    assert events["t"][0] == 1000 + round(1000 / 3)


def test_static_scene_without_noise_is_silent():
    frames = [np.random.default_rng(0).random((8, 8))] * 5
    assert len(frames_to_events(frames, range(0, 5000, 1000))) == 0


def naive_dvs(frames, times, threshold):
    """Per-pixel scalar loop of the same model, written independently of the vectorised one."""
    logs = [np.log(f + OFFSET) for f in frames]
    out = []
    h, w = frames[0].shape
    for yy in range(h):
        for xx in range(w):
            ref = logs[0][yy, xx]
            for k in range(1, len(frames)):
                a, b = logs[k - 1][yy, xx], logs[k][yy, xx]
                while b - ref >= threshold or ref - b >= threshold:
                    up = b > ref
                    ref = ref + threshold if up else ref - threshold
                    frac = (ref - a) / (b - a)
                    out.append((xx, yy, times[k - 1] + round(frac * (times[k] - times[k - 1])), up))
    return sorted(out, key=lambda e: (e[2], e[1], e[0], e[3]))


def test_matches_a_per_pixel_reference_on_random_video():
    rng = np.random.default_rng(1)
    frames = [rng.uniform(0.05, 1.0, (5, 6)) for _ in range(6)]
    times = [0, 700, 1500, 2000, 3100, 4000]
    events = frames_to_events(frames, times, DVSParameters(0.3, 0.3, log_offset=OFFSET))
    ours = sorted(((int(e["x"]), int(e["y"]), int(e["t"]), bool(e["p"])) for e in events),
                  key=lambda e: (e[2], e[1], e[0], e[3]))
    assert len(ours) > 50
    assert ours == naive_dvs(frames, times, 0.3)
    assert np.all(np.diff(events["t"]) >= 0)


def test_noise_rate_and_determinism():
    params = DVSParameters(noise_rate_hz=20.0)
    frames = [constant(0.5, (10, 10))] * 11
    times = range(0, 1_100_000, 100_000)  # 1 s
    events = frames_to_events(frames, times, params, seed=7)
    assert 1500 < len(events) < 2500  # 20 Hz x 100 px x 1 s
    assert 0.4 < events["p"].mean() < 0.6
    assert events["t"].min() > 0 and events["t"].max() <= 1_000_000
    np.testing.assert_array_equal(events, frames_to_events(frames, times, params, seed=7))
    assert not np.array_equal(events, frames_to_events(frames, times, params, seed=8))


def test_threshold_mismatch_is_seeded_and_spreads_counts():
    params = DVSParameters(threshold_on=0.2, threshold_mismatch=0.2)
    frames = [constant(0.1, (20, 20)), constant(1.0, (20, 20))]
    events = frames_to_events(frames, [0, 1000], params, seed=3)
    per_pixel = np.bincount(events["y"].astype(int) * 20 + events["x"], minlength=400)
    assert per_pixel.min() < per_pixel.max()
    np.testing.assert_array_equal(events, frames_to_events(frames, [0, 1000], params, seed=3))


def test_sensor_rejects_non_increasing_times_and_wrong_shapes():
    sensor = DVSSensor(constant(0.5, (2, 2)), 0)
    with pytest.raises(ValueError):
        sensor.step(constant(0.5, (2, 2)), 0)
    with pytest.raises(ValueError):
        sensor.step(constant(0.5, (3, 2)), 10)
    with pytest.raises(ValueError):
        DVSParameters(threshold_on=0)
