"""Synthetic DVS Gesture: a cartoon person making the 11 IBM gestures in front of a DVS.

Each sample renders an upper body (head, torso) and two two-link arms whose hands follow the class's
path: clapping, right/left hand waves, right/left arm circles clockwise and counter-clockwise (as seen
by the camera), arm roll, air drums, air guitar, and random "other" motion. Speed, size, position,
brightness, body sway and sensor noise vary per sample. Frames (128x128, every 5 ms over 1.5 s, enough
for the paper's T = 60 at dt = 25 ms) go through the DVS model and are written in tonic's layout
(``ibmGestureTrain/user<NN>_<lighting>/<label>.npy``), so the real reader path is exercised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from neurodeploy.data.dvs_model import DVSParameters, DVSSensor, background_events
from neurodeploy.data.dvsgesture import (
    DVSGESTURE_CLASSES,
    DVSGESTURE_SENSOR,
    TONIC_FOLDERS,
    write_tonic_gesture_file,
)
from neurodeploy.data.synthetic_nmnist import events_summary, generate_once

GENERATOR = "neurodeploy.data.synthetic_dvsgesture"
GENERATOR_VERSION = 1
DURATION_MS = 1500.0
FRAME_STEP_MS = 5.0
LIGHTINGS = ("fluorescent", "fluorescent_led", "lab", "led", "natural")  # IBM's recording conditions
DVS_PARAMS = DVSParameters(threshold_on=0.4, threshold_off=0.4, threshold_mismatch=0.1)
_BATCH = 8  # samples simulated side by side in one tall sensor image
_SWAY_MARGIN = 3  # px; the body sways by at most 1.5 px
_CHUNK = 60  # frames rendered at once

# Body geometry in body units (about 1 px); origin at the chest, y down, the subject's right on the
# image's left (the camera faces the subject).
HEAD, HEAD_RADIUS = np.array([0.0, -40.0]), 11.0
NECK, HIP, TORSO_RADIUS = np.array([0.0, -24.0]), np.array([0.0, 34.0]), 15.0
SHOULDERS = np.array([[-17.0, -22.0], [17.0, -22.0]])  # right, left
LINK, ARM_RADIUS, HAND_RADIUS = 22.0, 4.5, 5.5
REST = np.array([[-22.0, 26.0], [22.0, 26.0]])


def _circle(centre, radius, angle):
    return np.stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)], axis=-1)


def _still(point, t):
    return np.broadcast_to(np.asarray(point, dtype=float), (len(t), 2)).copy()


def _hand_paths(label: int, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hand positions (2, K, 2) [right, left] of gesture ``label`` at times ``t`` (s), body units."""
    speed = rng.uniform(0.75, 1.33)
    phase = rng.uniform(0, 2 * np.pi)

    def w(hz):  # angular frequency with this sample's speed
        return 2 * np.pi * hz * speed * t + phase

    def wave(side):  # side -1 = right (image left), +1 = left
        return np.stack([side * 30 + 10 * np.sin(w(2.0)), -48 + 3 * np.cos(2 * w(2.0))], axis=-1)

    def circles(side, direction):  # direction +1 = clockwise on the image (y points down)
        return _circle((side * 24.0, -20.0), 22.0, direction * w(0.9))

    paths: dict[int, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
        0: lambda: (np.stack([-(2 + 8 * (1 + np.cos(w(1.8)))), np.full_like(t, -4.0)], axis=-1),
                    np.stack([2 + 8 * (1 + np.cos(w(1.8))), np.full_like(t, -4.0)], axis=-1)),
        1: lambda: (wave(-1), _still(REST[1], t)),
        2: lambda: (_still(REST[0], t), wave(+1)),
        3: lambda: (circles(-1, +1), _still(REST[1], t)),
        4: lambda: (circles(-1, -1), _still(REST[1], t)),
        5: lambda: (_still(REST[0], t), circles(+1, +1)),
        6: lambda: (_still(REST[0], t), circles(+1, -1)),
        7: lambda: (_circle((-5.0, -2.0), 7.0, w(1.5)), _circle((5.0, -2.0), 7.0, w(1.5) + np.pi)),
        8: lambda: (np.stack([np.full_like(t, -14.0), 6 + 9 * np.sin(w(2.5))], axis=-1),
                    np.stack([np.full_like(t, 14.0), 6 + 9 * np.sin(w(2.5) + np.pi)], axis=-1)),
        9: lambda: (np.stack([np.full_like(t, -6.0), 14 + 7 * np.sin(w(3.0))], axis=-1),
                    np.stack([34 + 2 * np.sin(w(0.8)), -8 + 2 * np.cos(w(0.8))], axis=-1)),
        10: lambda: (_random_path(REST[0] * 0.6, t, rng), _random_path(REST[1] * 0.6, t, rng)),
    }
    right, left = paths[label]()
    amplitude = rng.uniform(0.8, 1.2)  # size of the movement around its own centre
    hands = np.stack([right, left])
    centre = hands.mean(axis=1, keepdims=True)
    return centre + amplitude * (hands - centre)


def _random_path(centre, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random trajectory: two sinusoids per axis with random frequency and amplitude."""
    path = _still(centre, t)
    for axis in range(2):
        for _ in range(2):
            hz, amp, phase = rng.uniform(0.4, 2.0), rng.uniform(4.0, 16.0), rng.uniform(0, 2 * np.pi)
            path[:, axis] += amp * np.sin(2 * np.pi * hz * t + phase)
    return path


def _elbows(shoulders: np.ndarray, hands: np.ndarray) -> np.ndarray:
    """Two-link inverse kinematics: the elbow bends outwards and down, the arm straightens when too far."""
    reach = hands - shoulders
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    along = reach / np.maximum(distance, 1e-9)
    bend = np.sqrt(np.maximum(LINK**2 - (np.minimum(distance, 2 * LINK) / 2) ** 2, 0.0))
    normal = np.stack([-along[..., 1], along[..., 0]], axis=-1)
    outward = np.sign(shoulders[..., :1])  # right arm bends to the image left, left arm to the right
    normal = np.where(normal[..., :1] * outward < 0, -normal, normal)
    return shoulders + along * np.minimum(distance, 2 * LINK) / 2 + bend * normal


def _paint_capsule(image: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float, level: float) -> None:
    """Blend a segment of half-width ``radius`` (antialiased edge) into ``image`` at ``level``."""
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    alpha = _capsule_coverage(xs[None], ys[None], a[None], b[None], radius)[0]
    image += alpha * (level - image)


def _capsule_coverage(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float):
    """Coverage in [0, 1] of segments a[k]-b[k] of half-width ``radius`` at pixel centres (xs, ys).

    ``xs`` / ``ys`` broadcast against (n, rows, cols); ``a`` / ``b`` are (n, 2). The edge is
    antialiased over one pixel: coverage = clip(radius + 1/2 - distance, 0, 1).
    """
    seg = (b - a).astype(np.float32)[:, None, None, :]
    dx = (xs - a[:, 0, None, None]).astype(np.float32)
    dy = (ys - a[:, 1, None, None]).astype(np.float32)
    norm = np.maximum((seg**2).sum(-1), 1e-9)
    along = np.clip((dx * seg[..., 0] + dy * seg[..., 1]) / norm, 0.0, 1.0)
    distance = np.hypot(dx - along * seg[..., 0], dy - along * seg[..., 1])
    return np.clip(np.float32(radius + 0.5) - distance, 0.0, 1.0)


class _Person:
    """One sample's scene: geometry and brightness drawn once, poses evaluated for all frames."""

    def __init__(self, label: int, t_s: np.ndarray, rng: np.random.Generator) -> None:
        width, height, _ = DVSGESTURE_SENSOR
        self.scale = rng.uniform(0.9, 1.2)
        centre = np.array([64 + rng.uniform(-8, 8), 74 + rng.uniform(-8, 8)])
        sway_hz, sway_px = rng.uniform(0.2, 0.7), rng.uniform(0.0, 1.5)
        self.sway = sway_px * np.sin(2 * np.pi * sway_hz * t_s + rng.uniform(0, 2 * np.pi))  # x, px
        background, body = rng.uniform(0.15, 0.35), rng.uniform(0.45, 0.65)
        self.skin = np.float32(rng.uniform(0.75, 0.95))
        self.noise_hz = rng.uniform(0.02, 0.15)
        hands = _hand_paths(label, t_s, rng)  # (2, K, 2)
        shoulders = np.broadcast_to(SHOULDERS[:, None, :], hands.shape)
        elbows = _elbows(shoulders, hands)
        # Joints in pixels, (K, 2 arms, 3 joints, 2): shoulder, elbow, hand; sway moves the whole person.
        self.joints = centre + self.scale * np.stack([shoulders, elbows, hands], axis=2).transpose(1, 0, 2, 3)
        self.joints[..., 0] += self.sway[:, None, None]
        # The still body is drawn once on a wider canvas, cut at every whole-pixel sway offset.
        backdrop = np.full((height, width + 2 * _SWAY_MARGIN), background, dtype=np.float32)
        shift = centre + np.array([_SWAY_MARGIN, 0.0])
        _paint_capsule(backdrop, shift + self.scale * NECK, shift + self.scale * HIP,
                       TORSO_RADIUS * self.scale, body)
        _paint_capsule(backdrop, shift + self.scale * HEAD, shift + self.scale * HEAD,
                       HEAD_RADIUS * self.scale, body)
        # shifted[m] is the body moved right by m - _SWAY_MARGIN whole pixels.
        self.shifted = np.stack([backdrop[:, 2 * _SWAY_MARGIN - m:2 * _SWAY_MARGIN - m + width]
                                 for m in range(2 * _SWAY_MARGIN + 1)])

    def _arms_coverage(self, frames: slice) -> np.ndarray:
        """Coverage (n, H, W) of both arms: 1 - prod(1 - coverage) over upper arms, forearms, hands.

        Each limb is evaluated only in a box around it, for all frames of the chunk at once.
        """
        width, height, _ = DVSGESTURE_SENSOR
        joints = self.joints[frames]
        n = len(joints)
        limbs = [(arm, i, j, (HAND_RADIUS if i == j else ARM_RADIUS) * self.scale)
                 for arm in range(2) for i, j in ((0, 1), (1, 2), (2, 2))]
        boxes = []
        for arm, i, j, radius in limbs:
            a, b = joints[:, arm, i], joints[:, arm, j]
            size = math.ceil(np.abs(b - a).max() + 2 * radius) + 4
            boxes.append((a, b, radius, size, np.floor(np.minimum(a, b) - radius - 1).astype(np.int64)))
        pad = max(box[3] for box in boxes)
        rows, cols = height + 2 * pad, width + 2 * pad
        transmit = np.ones((n, rows, cols), dtype=np.float32)
        flat = transmit.reshape(-1)
        k = np.arange(n)[:, None, None]
        for a, b, radius, size, origin in boxes:
            origin = np.clip(origin, -pad, np.array([width, height]) + pad - size)
            xs = (origin[:, 0, None] + np.arange(size))[:, None, :]  # (n, 1, size)
            ys = (origin[:, 1, None] + np.arange(size))[:, :, None]  # (n, size, 1)
            alpha = _capsule_coverage(xs, ys, a, b, radius)
            where = (k * rows + ys + pad) * cols + (xs + pad)  # flat indices: 1-D fancy indexing is fastest
            flat[where] *= 1.0 - alpha
        return 1.0 - transmit[:, pad:pad + height, pad:pad + width]

    def render(self, frames: slice) -> np.ndarray:
        """Intensity frames (n, 128, 128) float32 for the frame indices in ``frames``."""
        sway = self.sway[frames]
        whole = np.floor(sway).astype(np.int64)
        frac = (sway - whole).astype(np.float32)[:, None, None]
        # Linear sub-pixel shift of the still body between its two nearest whole-pixel shifts.
        image = (1 - frac) * self.shifted[whole + _SWAY_MARGIN] + frac * self.shifted[whole + _SWAY_MARGIN + 1]
        image += self._arms_coverage(frames) * (self.skin - image)
        return image


def _simulate_batch(labels: list[int], rngs: list[np.random.Generator],
                    sensor_rng: np.random.Generator) -> list[np.ndarray]:
    """Render the batch side by side (stacked vertically) through one DVS; split events per sample."""
    width, height, _ = DVSGESTURE_SENSOR
    t_ms = np.arange(0.0, DURATION_MS + FRAME_STEP_MS / 2, FRAME_STEP_MS)
    t_us = np.rint(t_ms * 1000).astype(np.int64)
    people = [_Person(label, t_ms / 1000, rng) for label, rng in zip(labels, rngs)]
    parts = []
    sensor = None
    for first in range(0, len(t_ms), _CHUNK):
        chunk = slice(first, min(first + _CHUNK, len(t_ms)))
        tall = np.concatenate([person.render(chunk) for person in people], axis=1)
        for frame, t in zip(tall, t_us[chunk]):
            if sensor is None:
                sensor = DVSSensor(frame, t, DVS_PARAMS, sensor_rng)
            else:
                parts.append(sensor.step(frame, t))
    events = np.concatenate(parts)
    sample = events["y"] // height
    events["y"] %= height
    order = np.argsort(sample, kind="stable")
    bounds = np.searchsorted(sample[order], np.arange(len(people) + 1))
    out = []
    for i, (person, rng) in enumerate(zip(people, rngs)):
        noise = background_events((height, width), person.noise_hz, 0, int(t_us[-1]), rng)
        merged = np.concatenate([events[order[bounds[i]:bounds[i + 1]]], noise])
        out.append(merged[np.argsort(merged["t"], kind="stable")])
    return out


def _folder_names(count: int, first_user: int) -> list[str]:
    """``user<NN>_<lighting>`` for ``count`` recordings: each user under each of IBM's lightings."""
    return [f"user{first_user + i // len(LIGHTINGS):02d}_{LIGHTINGS[i % len(LIGHTINGS)]}" for i in range(count)]


def _generate_split(root: Path, split: str, per_class: int, first_user: int, seed: int) -> list[int]:
    """One recording folder per repetition, holding one ``<label>.npy`` per class, as tonic's layout."""
    plan = [(folder, label) for folder in _folder_names(per_class, first_user)
            for label in range(len(DVSGESTURE_CLASSES))]
    split_id = int(split == "test")
    counts = []
    for start in range(0, len(plan), _BATCH):
        batch = plan[start:start + _BATCH]
        rngs = [np.random.default_rng([seed, split_id, start + i]) for i in range(len(batch))]
        sensor_rng = np.random.default_rng([seed, split_id, start, 1])
        for (folder, label), events in zip(batch, _simulate_batch([lab for _, lab in batch], rngs, sensor_rng)):
            write_tonic_gesture_file(root / TONIC_FOLDERS[split] / folder / f"{label}.npy", events)
            counts.append(len(events))
    return counts


def generate_synthetic_dvsgesture(root: Path | str, *, train_per_class: int = 8, test_per_class: int = 2,
                                  seed: int = 0) -> Path:
    """Write a synthetic DVS Gesture set in tonic's layout to ``root`` (reused when already complete).

    ``train_per_class`` / ``test_per_class`` recordings (``user<NN>_<lighting>`` folders) per split,
    each with one sample of every class; test users are numbered after the train users.
    """
    if train_per_class < 1 or test_per_class < 1:
        raise ValueError("train_per_class and test_per_class must be >= 1")
    root = Path(root)
    wanted = {"generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed,
              "train_per_class": train_per_class, "test_per_class": test_per_class}

    def build() -> dict:
        first_test_user = 1 + -(-train_per_class // len(LIGHTINGS))
        counts = {
            "train": _generate_split(root, "train", train_per_class, 1, seed),
            "test": _generate_split(root, "test", test_per_class, first_test_user, seed),
        }
        return {
            "dataset": "dvsgesture",
            "source": "synthetic",
            "synthetic_source": "rendered-gestures",
            "description": "cartoon arm gestures through a DVS model, in tonic's layout (not DVS Gesture)",
            "sensor_size": list(DVSGESTURE_SENSOR),
            "duration_ms": DURATION_MS,
            "counts": {split: len(values) for split, values in counts.items()},
            "events_per_sample": events_summary(counts["train"] + counts["test"]),
            "dvs": DVS_PARAMS.to_dict(),
        }

    return generate_once(root, wanted, list(TONIC_FOLDERS.values()), build)
