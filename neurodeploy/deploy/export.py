"""Export a trained SNN run to lava-dl netx HDF5 and verify that Lava loads what we meant to write.

``export_run(run_dir)`` writes ``run_dir/model.net`` atomically, reloads it with
``lava.lib.dl.netx.hdf5.Network`` and checks, layer by layer, against the trained SLAYER network:
the number of layers, input/output sizes, and the CUBA parameters netx derives
(``vth = vThMant``, ``du = iDecay - 1``, ``dv = vDecay``; docs/fixed_point.md).

Quantisation loss: SLAYER writes each weight w as an even integer q = clamp(2 round(64 w / 2), -256, 254).
Per layer, ``clipped_fraction`` counts weights with |64 w - q| > 1 (beyond the range, not just rounded) and
``zeroed_fraction`` weights with w != 0 but q = 0. Past ``MAX_CLIPPED_FRACTION`` (1%) or
``MAX_ZEROED_FRACTION`` (50%) in any layer the chip would run a different network than the one trained
(e.g. ``--lr 1e30`` gives weights of 1e30, all clipped), so the export is refused unless
``accept_quantization_loss``. A trained 2312-64-10 MLP has no clipped weight and about 18% zeroed in its
first layer (the small ones).

An RSNN run (docs/rsnn.md) exports its spiking classifier this way and its ConvLSTM front end as
``front_end.pt`` (:mod:`neurodeploy.deploy.front_end`); the export table states the boundary between them.

Provenance: the file's root attributes record the SHA-256 of the checkpoint it was exported from
(``neurodeploy_checkpoint_sha256``) and the run id (``neurodeploy_run_id``); ``run`` refuses a
``model.net`` whose checkpoint is not the run's current one (:func:`check_export_is_current`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
from rich.table import Table

from neurodeploy import atomic, folders, lava_compat, run_lock, safe_files
from neurodeploy.deploy.front_end import Boundary, boundary_of, save_front_end
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_write import write_slayer_netx
from neurodeploy.deploy.run_folder import checkpoint_sha256, chip_network, load_run_config, load_trained_network
from neurodeploy.errors import UserError
from neurodeploy.kernels.lava_limits import SLAYER_WEIGHT_SCALE
from neurodeploy.models.training import SPIKING_FAMILIES
from neurodeploy.safe_hdf5 import open_hdf5

MODEL_FILE = "model.net"
MAX_CLIPPED_FRACTION = 0.01
MAX_ZEROED_FRACTION = 0.5
CHECKPOINT_ATTR = "neurodeploy_checkpoint_sha256"
RUN_ID_ATTR = "neurodeploy_run_id"


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
    clipped_fraction: float | None = None  # None: a pool layer, whose fixed weights are not trained
    zeroed_fraction: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExportResult:
    """The netx file and its layers; for an RSNN also the front-end file and the boundary."""

    path: Path
    layers: list[ExportedLayer]
    front_end: Path | None = None
    boundary: Boundary | None = None


def export_run(run_dir: Path, out: Path | None = None, *, accept_quantization_loss: bool = False) -> ExportResult:
    """Export the SNN of ``run_dir`` (made by ``train --model snn``, or an RSNN's classifier and front end)
    and verify it."""
    run_dir = Path(run_dir)
    with run_lock.hold(run_dir, "run folder"):
        return _export(run_dir, out, accept_quantization_loss)


def _export(run_dir: Path, out: Path | None, accept_quantization_loss: bool) -> ExportResult:
    config = load_run_config(run_dir)
    if config.family == "ann":
        raise UserError(f"{run_dir}: an ANN run exports after conversion to IF neurons: neurodeploy convert {run_dir} "
                        "(writes the SNN's model.net)")
    if config.family not in SPIKING_FAMILIES:
        raise UserError(f"{run_dir}: a {config.family} run cannot be exported to netx (only spiking networks run "
                        "on Loihi); run it with `neurodeploy run RUN --backend torch`")
    if not config.reset:
        raise UserError(f"{run_dir}: an SNN trained without reset cannot run on the chip (Lava's CUBA neuron always "
                        "resets after a spike); evaluate it in float with `neurodeploy run RUN --backend torch`")
    target = Path(out) if out else run_dir / MODEL_FILE
    safe_files.check_output_file(target, "--out")
    folders.check_output_file_owned(target, "--out")
    atomic.check_writable_dir(target.parent)
    _, _, trained = load_trained_network(run_dir)
    network = chip_network(config, trained)
    with atomic.atomic_path(target) as tmp:
        write_slayer_netx(network, tmp)
        with h5py.File(tmp, "r+") as handle:
            handle.attrs[CHECKPOINT_ATTR] = checkpoint_sha256(run_dir)
            handle.attrs[RUN_ID_ATTR] = str(config.resolved.get("run_id", ""))
        try:  # the export is in Loihi's range, as every reader of it will check
            load_netx(tmp)
        except UserError as exc:
            raise UserError(str(exc).replace(str(tmp), str(target))) from exc
        layers = verify_export(tmp, network)
        if not accept_quantization_loss:
            check_quantization_loss(target, layers)
    if config.family == "rsnn":
        return ExportResult(target, layers, save_front_end(run_dir, trained, config), boundary_of(trained))
    return ExportResult(target, layers)


def check_quantization_loss(target: Path, layers: list[ExportedLayer]) -> None:
    """UserError when a layer lost more than the allowed share of its weights to clipping or rounding."""
    for row in layers:
        if row.clipped_fraction is None:
            continue
        if row.clipped_fraction > MAX_CLIPPED_FRACTION or row.zeroed_fraction > MAX_ZEROED_FRACTION:
            raise UserError(
                f"{target}: layer {row.index} ({row.name}) loses {row.clipped_fraction:.1%} of its weights to "
                f"clipping (limit {MAX_CLIPPED_FRACTION:.0%}) and {row.zeroed_fraction:.1%} to rounding to zero "
                f"(limit {MAX_ZEROED_FRACTION:.0%}) in the chip's 8-bit weights; the chip would not run the "
                "trained network: retrain with a smaller --lr, or pass --accept-quantization-loss to export anyway")


def quantization_loss(weight, exported: np.ndarray) -> tuple[float, float]:
    """(clipped, zeroed) fractions of a float SLAYER weight tensor against its exported integers."""
    scaled = weight.detach().cpu().double().numpy().reshape(exported.shape) * SLAYER_WEIGHT_SCALE
    with np.errstate(invalid="ignore"):
        clipped = ~(np.abs(scaled - exported) <= 1.0)  # NaN counts as clipped
    zeroed = (scaled != 0) & (exported == 0)
    return float(clipped.mean()), float(zeroed.mean())


def _block_quantization_loss(block, group) -> tuple[float, float]:
    """:func:`quantization_loss` over every synapse of a block: a recurrent block (netx ``dense_rec``) has an
    input synapse (``weight``) and a recurrent one (``weight_rec``); the fractions are over all its weights."""
    if hasattr(block, "recurrent_synapse"):
        pairs = [(block.input_synapse.weight, np.asarray(group["weight"])),
                 (block.recurrent_synapse.weight, np.asarray(group["weight_rec"]))]
    else:
        pairs = [(block.synapse.weight, np.asarray(group["weight"]))]
    sizes = [exported.size for _, exported in pairs]
    losses = [quantization_loss(trained, exported) for trained, exported in pairs]
    return tuple(float(np.average([loss[k] for loss in losses], weights=sizes)) for k in (0, 1))


def check_export_is_current(net_path: Path, run_dir: Path) -> None:
    """UserError unless ``net_path`` was exported from ``run_dir``'s current checkpoint."""
    fix = f"run `neurodeploy export {run_dir}` to export this run's checkpoint"
    with open_hdf5(net_path, "netx network", fix) as handle:
        recorded = handle.attrs.get(CHECKPOINT_ATTR)
        run_id = handle.attrs.get(RUN_ID_ATTR)
    if recorded is None:
        raise UserError(f"{net_path}: does not record which checkpoint it was exported from (another tool or an "
                        f"older neurodeploy wrote it), so it may not be this run's network; {fix}")
    if str(recorded) == checkpoint_sha256(run_dir):
        return
    this_run = str(load_run_config(run_dir).resolved.get("run_id", ""))
    if run_id is not None and this_run and str(run_id) != this_run:
        raise UserError(f"{net_path}: was exported from another run (run id {run_id}, this run is {this_run}); "
                        f"{fix}")
    raise UserError(f"{net_path}: was exported from an older checkpoint of this run (the checkpoint changed "
                    f"since); {fix}")


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
    with open_hdf5(path, "netx export", "export the network again") as handle:
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
            pool = isinstance(block, lava_compat.slayer().block.cuba.Pool)
            clipped, zeroed = (None, None) if pool else _block_quantization_loss(block, group)
            rows.append(ExportedLayer(
                index=index, name=name, kind=_kind_label(group), in_size=int(np.prod(lava_block.inp.shape)),
                out_size=out_size, i_decay=int(params["iDecay"]), v_decay=int(params["vDecay"]),
                v_th_mant=int(params["vThMant"]), weight_min=int(weight.min()), weight_max=int(weight.max()),
                lava_block=type(lava_block).__name__, clipped_fraction=clipped, zeroed_fraction=zeroed,
            ))
    return rows


def _kind_label(group) -> str:
    """netx layer type, and what it was mapped from when the export rewrote it (pool -> conv)."""
    kind = group["type"][0].decode()
    if "mappedFrom" in group:
        kind += f" (from SLAYER {group['mappedFrom'][0].decode()})"
    return kind


def print_export_table(result: ExportResult, console) -> None:
    caption = None if result.boundary is None else (
        f"host front end (torch state_dict): {result.front_end}\n{result.boundary.describe()}")
    table = Table(title=f"netx export: {result.path}", caption=caption)
    for column in ("#", "layer", "type", "in", "out", "iDecay", "vDecay", "vThMant", "weights", "clipped", "zeroed",
                   "Lava block"):
        table.add_column(column, justify="right" if column not in ("layer", "type", "Lava block") else "left")
    for row in result.layers:
        losses = ["-" if f is None else f"{f:.1%}" for f in (row.clipped_fraction, row.zeroed_fraction)]
        table.add_row(str(row.index), row.name, row.kind, str(row.in_size), str(row.out_size), str(row.i_decay),
                      str(row.v_decay), str(row.v_th_mant), f"[{row.weight_min}, {row.weight_max}]", *losses,
                      row.lava_block)
    console.print(table)
