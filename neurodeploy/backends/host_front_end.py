"""An RSNN's front end on the host (torch, CPU or CUDA): the boundary spikes it sends to the chip, and its
timing and energy (docs/rsnn.md).

The front end runs once over the test frames to produce the boundary levels (integers, so the chip input
does not depend on the device's float rounding beyond the level rounding itself) and their count-encoded
spikes; :func:`neurodeploy.metrics.gpu_energy.measure_inference` then times it (and on a GPU with a working
NVML counter measures its board energy) over the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurodeploy.metrics.gpu_energy import InferenceMeasurement, measure_inference
from neurodeploy.models.rsnn import boundary_levels, count_spikes

BATCH_SIZE = 64
WARMUP_BATCHES = 2


@dataclass(frozen=True)
class FrontEndRun:
    """``spikes`` (N, C', H, W, T) uint8 that enter the chip, ``levels`` (N, C', H, W) int their counts, and
    the front end's timing / energy on ``measurement.device_name``."""

    spikes: np.ndarray
    levels: np.ndarray
    measurement: InferenceMeasurement


def run_front_end(network, frames: np.ndarray, device: str) -> FrontEndRun:
    """The front end of the RSNN ``network`` on ``frames`` (N, C, H, W, T) on ``device``."""
    front = network.front.to(device).eval()
    batches = [torch.from_numpy(frames[i:i + BATCH_SIZE]).float() for i in range(0, len(frames), BATCH_SIZE)]
    with torch.inference_mode():
        levels = torch.cat([boundary_levels(front(x.to(device)), network.steps).cpu() for x in batches])
    measurement = measure_inference(front, batches, device, warmup_batches=WARMUP_BATCHES)
    front.to("cpu")
    return FrontEndRun(count_spikes(levels, network.steps).numpy(), levels.numpy(), measurement)
