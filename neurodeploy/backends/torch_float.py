"""The ``torch`` backend: the trained float (SLAYER) network itself, mode ``float``; never imports Lava
beyond what the network's own blocks need (lava-dl SLAYER is torch code)."""

from __future__ import annotations

import numpy as np
import torch

FLOAT_PROFILE = "cmos45nm"  # the float model on a CPU is priced with 45 nm CMOS per-op energies


def float_layer_spikes(network, frames: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Per-layer spikes (N, n, T) of the trained SLAYER network, neurons in (c, h, w) order."""
    network.eval()
    network.record = True
    collected: list[list[np.ndarray]] = []
    try:
        with torch.no_grad():
            for start in range(0, len(frames), batch_size):
                network(torch.from_numpy(frames[start:start + batch_size]).float())
                for index, spikes in enumerate(network.layer_spikes):
                    if len(collected) <= index:
                        collected.append([])
                    collected[index].append(spikes.numpy().astype(np.uint8))
    finally:
        network.record = False
    return [np.concatenate(chunks) for chunks in collected]
