"""Reading a NIR graph file without trusting it: :func:`read_graph` is ``nir.read`` through the safe HDF5
reader, with every numeric field checked before the graph is built.

The file is opened once, by :func:`neurodeploy.safe_hdf5.open_hdf5` (no links to other files, no virtual or
externally stored datasets, declared sizes bounded by what the file stores), its ``node`` tree is read as
``nir.serialization.hdf2dict`` reads it, and each numeric field of each node (weights, biases, time
constants, thresholds, geometry, shapes) must hold finite numbers no larger than ``MAX_MAGNITUDE``; only
then does ``nir.dict2NIRNode`` build the graph. A refusal is one line naming the file, the node and the
field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.safe_hdf5 import open_hdf5, read_tree

# 1e12: far beyond any trained weight, time constant or threshold; below it the import's arithmetic (scales
# up to 2**18) stays finite without overflow warnings.
MAX_MAGNITUDE = 1e12
TEXT_FIELDS = {"type", "version", "edges", "padding"}  # padding may be "same" / "valid" (Conv)
NOT_READ = {"metadata"}  # free-form, kept by nir as it is


def _check_numbers(path: Path, where: str, value: Any) -> None:
    if isinstance(value, (str, bytes)):
        raise UserError(f"{path}: '{where}' holds text {str(value)[:40]!r}, not numbers; write the graph again "
                        "with nir.write")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise UserError(f"{path}: '{where}' holds {array.dtype} values, not numbers; write the graph again "
                        "with nir.write")
    if array.size == 0 or array.dtype.kind in "biu":
        if array.size and np.abs(array.astype(np.float64)).max() > MAX_MAGNITUDE:
            raise UserError(f"{path}: '{where}' holds integers beyond {MAX_MAGNITUDE:g}; check the graph")
        return
    if not np.all(np.isfinite(array)):
        raise UserError(f"{path}: '{where}' holds NaN or inf; fix the model (a diverged training?) and write "
                        "the graph again")
    if np.abs(array).max() > MAX_MAGNITUDE:
        raise UserError(f"{path}: '{where}' holds values up to {float(np.abs(array).max()):.3g}, beyond "
                        f"{MAX_MAGNITUDE:g}; check the model")


def check_fields(path: Path, tree: dict[str, Any], prefix: str = "node") -> None:
    """UserError for the first field of the read ``node`` tree that should hold finite numbers and does not."""
    for key, value in tree.items():
        where = f"{prefix}/{key}"
        if key in NOT_READ:
            continue
        if isinstance(value, dict):
            check_fields(path, value, where)
        elif key in TEXT_FIELDS:
            if key == "padding" and not isinstance(value, (str, bytes)):
                _check_numbers(path, where, value)
        else:
            _check_numbers(path, where, value)


def read_graph(path: Path) -> nir.NIRGraph:
    """The NIR graph at ``path`` (module docstring), or a one-line UserError."""
    path = Path(path)
    fix = "give a NIR graph (.nir) written with nir.write"
    with open_hdf5(path, "NIR graph", fix) as handle:
        node = handle.get("node")
        if not isinstance(node, h5py.Group):
            raise UserError(f"{path}: no 'node' group; not a NIR graph ({fix})")
        tree = read_tree(path, node, "node")
    check_fields(path, tree)
    if "type_check" in tree:
        raise UserError(f"{path}: holds a 'type_check' key that nir.read refuses; write the graph again")
    try:
        graph = nir.dict2NIRNode({**tree, "type_check": True})
    except Exception as exc:  # noqa: BLE001 - nir raises many types for a tree it cannot build
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"{path}: not a NIR graph nir {nir.__version__} can read ({type(exc).__name__}: "
                        f"{detail[:200]}); write it again with nir.write") from exc
    if not isinstance(graph, nir.NIRGraph):
        raise UserError(f"{path}: holds a single {type(graph).__name__} node, not a NIRGraph")
    return graph
