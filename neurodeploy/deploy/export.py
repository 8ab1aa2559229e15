"""Export a trained SNN run to lava-dl netx HDF5 and verify that Lava loads what we meant to write.

``export_run(run_dir)`` writes ``run_dir/model.net`` atomically, reloads it with
``lava.lib.dl.netx.hdf5.Network`` and checks, layer by layer, against the trained SLAYER network:
the number of layers, input/output sizes, and the CUBA parameters netx derives
(``vth = vThMant``, ``du = iDecay - 1``, ``dv = vDecay``; REFERENCE §4.3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
from rich.table import Table

from neurodeploy import atomic, lava_compat
from neurodeploy.deploy.netx import write_slayer_netx
from neurodeploy.deploy.run_folder import load_run_config, load_trained_network
from neurodeploy.errors import UserError

MODEL_FILE = "model.net"


@dataclass(frozen=True)
class ExportedLayer:
    """One synaptic layer as written, and as Lava loaded it."""

    index: int
    name: str
    kind: str
    in_size: int
    out_size: int
    i_decay: int
    v_decay: int
    v_th_mant: int
    weight_min: int
    weight_max: int
    lava_block: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    layers: list[ExportedLayer]


def export_run(run_dir: Path, out: Path | None = None) -> ExportResult:
    """Export the SNN of ``run_dir`` (a directory made by ``train --model snn``) and verify it."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if config.family != "snn":
        raise UserError(f"{run_dir}: a {config.family} run cannot be exported to netx (only spiking networks run "
                        "on Loihi); run it with `neurodeploy run RUN --backend torch`")
    if not config.reset:
        raise UserError(f"{run_dir}: an SNN trained without reset cannot run on the chip (Lava's CUBA neuron always "
                        "resets after a spike); evaluate it in float with `neurodeploy run RUN --backend torch`")
    target = Path(out) if out else run_dir / MODEL_FILE
    atomic.check_writable_dir(target.parent)
    _, _, network = load_trained_network(run_dir)
    with atomic.atomic_path(target) as tmp:
        write_slayer_netx(network, tmp)
        layers = verify_export(tmp, network)
    return ExportResult(target, layers)


def _synaptic_blocks(network) -> list[tuple[str, object]]:
    slayer = lava_compat.slayer()
    return [(name, block) for name, block in zip(network.block_names, network.blocks)
            if not isinstance(block, slayer.block.cuba.Flatten)]


def verify_export(path: Path, network) -> list[ExportedLayer]:
    """Load ``path`` with netx and compare it with ``network``; UserError on any mismatch."""
    try:
        lava_net = lava_compat.lava_module("lava.lib.dl.netx.hdf5").Network(net_config=str(path))
    except Exception as exc:  # noqa: BLE001 - netx raises many types for a file it cannot load
        raise UserError(f"{path}: lava-dl netx cannot load the export ({exc.__class__.__name__}: {exc}); "
                        "this architecture is not deployable as is") from exc
    ours = _synaptic_blocks(network)
    if len(lava_net.layers) != len(ours):
        raise UserError(f"{path}: netx loaded {len(lava_net.layers)} layers but the model has {len(ours)}")
    rows = []
    with h5py.File(path, "r") as handle:
        groups = [handle["layer"][str(i)] for i in range(len(handle["layer"]))]
        groups = [g for g in groups if g["type"][0].decode() not in ("flatten", "input")]
        for index, ((name, block), lava_block, group) in enumerate(zip(ours, lava_net.layers, groups)):
            params = block.neuron.device_params
            expected = {"vth": int(params["vThMant"]), "du": int(params["iDecay"]) - 1, "dv": int(params["vDecay"])}
            loaded = {key: int(np.asarray(getattr(lava_block.neuron, key).init).flat[0]) for key in expected}
            if loaded != expected:
                raise UserError(f"{path}: layer {index} ({name}) neuron parameters {loaded} differ from the "
                                f"trained {expected}")
            out_size = int(np.prod(lava_block.out.shape))
            if out_size != int(np.prod(block.neuron.shape)):
                raise UserError(f"{path}: layer {index} ({name}) has {out_size} neurons in Lava, "
                                f"{int(np.prod(block.neuron.shape))} trained")
            weight = np.asarray(group["weight"])
            if not np.all(np.isfinite(weight)):
                raise UserError(f"{path}: layer {index} ({name}) has non-finite weights; the training diverged")
            rows.append(ExportedLayer(
                index=index, name=name, kind=_kind_label(group), in_size=int(np.prod(lava_block.inp.shape)),
                out_size=out_size, i_decay=int(params["iDecay"]), v_decay=int(params["vDecay"]),
                v_th_mant=int(params["vThMant"]), weight_min=int(weight.min()), weight_max=int(weight.max()),
                lava_block=type(lava_block).__name__,
            ))
    return rows


def _kind_label(group) -> str:
    """netx layer type, and what it was mapped from when the export rewrote it (pool -> conv)."""
    kind = group["type"][0].decode()
    if "mappedFrom" in group:
        kind += f" (from SLAYER {group['mappedFrom'][0].decode()})"
    return kind


def print_export_table(result: ExportResult, console) -> None:
    table = Table(title=f"netx export: {result.path}")
    for column in ("#", "layer", "type", "in", "out", "iDecay", "vDecay", "vThMant", "weights", "Lava block"):
        table.add_column(column, justify="right" if column not in ("layer", "type", "Lava block") else "left")
    for row in result.layers:
        table.add_row(str(row.index), row.name, row.kind, str(row.in_size), str(row.out_size), str(row.i_decay),
                      str(row.v_decay), str(row.v_th_mant), f"[{row.weight_min}, {row.weight_max}]", row.lava_block)
    console.print(table)
