"""Event datasets: readers and writers of the real formats, synthetic stand-ins, binning to frames.

Layers: ``events``, ``frames`` (a frame-based ANN's input) and ``dvs_model`` are pure numpy kernels;
``nmnist`` / ``dvsgesture`` read and write the on-disk formats; ``synthetic_*`` generate stand-ins in those
formats; ``datasets`` finds a dataset and serves frames to PyTorch; ``contrast`` and ``info`` describe a dataset.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EVENT_DTYPE": "events",
    "events_to_frames": "events",
    "steps_for_length": "events",
    "binary_frames": "frames",
    "intensity_frames": "frames",
    "DatasetSource": "datasets",
    "FrameDataset": "datasets",
    "load_frames_array": "datasets",
    "resolve_dataset": "datasets",
    "DatasetInfo": "info",
    "dataset_info": "info",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, so that importing the numpy kernels does not pull in torch.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
