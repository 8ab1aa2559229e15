"""The record of a NIR import (``nir_import.json`` in an imported run folder) and the folder's file names.

:class:`NirImport` says what ``neurodeploy import`` did, one :class:`ImportedLayer` per deployed layer;
:func:`load_import` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neurodeploy.errors import UserError

IMPORT_RECORD = "nir_import.json"
GRAPH_FILE = "model.nir"
NET_FILE = "model.net"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ImportedLayer:
    """One deployed layer and how it was mapped (a row of the import table)."""

    name: str  # the NIR neuron node whose spikes this layer reproduces
    kind: str  # dense | dense_rec | conv
    neuron: str  # IF | LIF | CubaLIF
    nodes: tuple[str, ...]  # NIR nodes folded into the layer, input side first
    shape: tuple[int, ...]
    i_decay: int
    v_decay: int
    v_th_mant: int
    weight_scale: float  # s: integer weight units per graph voltage unit
    weights: int
    clipped: int
    vanished: int
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "nodes": list(self.nodes), "shape": list(self.shape), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImportedLayer:
        return cls(**{**raw, "nodes": tuple(raw["nodes"]), "shape": tuple(raw["shape"]),
                      "notes": tuple(raw["notes"])})


@dataclass(frozen=True)
class NirImport:
    """What ``import`` did: the record ``nir_import.json`` of an imported run folder.

    ``input_shape`` (C, H, W) or (n,): what the chip's input neurons receive; ``dataset``: the event
    dataset whose frames fit that input (None: ``run`` needs ``--input X.npy``); ``steps``: T of a sample
    when ``run`` loads the dataset.
    """

    source: str
    dt_ms: float
    input_shape: tuple[int, ...]
    dataset: str | None
    steps: int
    layers: tuple[ImportedLayer, ...]
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "source": self.source, "dt_ms": self.dt_ms,
                "input_shape": list(self.input_shape), "dataset": self.dataset, "steps": self.steps,
                "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NirImport:
        return cls(source=raw["source"], dt_ms=float(raw["dt_ms"]), input_shape=tuple(raw["input_shape"]),
                   dataset=raw["dataset"], steps=int(raw["steps"]),
                   layers=tuple(ImportedLayer.from_dict(layer) for layer in raw["layers"]),
                   schema_version=int(raw["schema_version"]))


def load_import(run_dir: Path) -> NirImport:
    """The import record of an imported run folder."""
    path = Path(run_dir) / IMPORT_RECORD
    try:
        raw = json.loads(path.read_text())
        record = NirImport.from_dict(raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable import record ({exc}); import the graph again") from exc
    if record.schema_version > SCHEMA_VERSION:
        raise UserError(f"{path}: schema {record.schema_version} is newer than this neurodeploy; upgrade it")
    return record

