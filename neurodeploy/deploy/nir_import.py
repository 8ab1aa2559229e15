"""NIR graph -> a deployable run folder: ``model.net`` (netx, for Lava, the emulator and Loihi 2) plus the
graph itself as the float reference (``neurodeploy import``).

What is deployed
----------------
A chip layer is one spiking neuron node (``IF``, ``LIF`` or ``CubaLIF``) with the stateless nodes on the
single path into it from the previous neuron (or the ``Input``): Affine, Linear, Scale, Conv1d, Conv2d,
SumPool2d, AvgPool2d and Flatten, composed into one synapse. A path made of pooling, 2-D convolutions and
scales becomes a netx ``conv`` layer when the composition is itself a convolution (checked numerically:
e.g. SumPool2d 2 then a 3x3 conv is a 6x6 conv of stride 2 and padding 2); anything else becomes a
``dense`` layer (the composed matrix, inputs flattened in C order). A neuron with a path from itself back
to itself (a recurrent subgraph, e.g. snnTorch's ``lif1.lif -> lif1.w_rec -> lif1.lif``) becomes a
``dense_rec`` layer. Everything else is refused with the node and the reason (UserError, exit 2):
branches, sums of several inputs, Delay, Threshold, and the non-spiking I / LI / CubaLI nodes (the chip
backends record spikes, so a voltage readout could not be compared).

Continuous time -> Loihi's discrete CUBA at dt (the float reference's discretisation is in
:mod:`neurodeploy.models.nir_reference`; lava-dl's convention, current/voltage decays in 1/4096)::

    CubaLIF  iDecay = round(4096 dt / tau_syn)   vDecay = round(4096 dt / tau_mem)
    LIF      iDecay = 4096 (current = input)     vDecay = round(4096 dt / tau)
    IF       iDecay = 4096                       vDecay = 0 (no leak)

Loihi adds the integer synaptic input ``a`` to the current ``u`` and ``u`` (plus a bias) to the voltage;
the graph's voltage ``v`` maps to Loihi's as ``v_loihi = s (v - v_reset)`` for a per-layer scale ``s``
(integer weight units per graph voltage unit, ``vThMant = round(s (v_th - v_reset))``), so each graph
weight ``W`` becomes ``round(s g W)`` with the per-neuron input gain ``g``:

    CubaLIF  g = (dt/tau_mem) R (dt/tau_syn) w_in      LIF  g = (dt/tau) R      IF  g = R

and constant drives become Loihi's voltage bias (``bias_mant``, per step):
``s [(dt/tau_mem) R w_in b + (dt/tau_mem)(v_leak - v_reset)]`` for a CubaLIF (b: the synapse's bias),
``s [(dt/tau) (R b + v_leak - v_reset)]`` for a LIF, ``s R b`` for an IF.

8-bit weights: the file holds even integers in [-256, 254] (an 8-bit mantissa with exponent 1, lava-dl's
own convention, which netx loads without loss). The scale is ``s = 64 * 2^e`` per layer; ``e`` minimises
the number of weights that clip (beyond the range) or vanish (non-zero in the graph, zero on the chip),
then the rounding error, then |e| (so a graph whose weights are already on lava-dl's 1/64 grid keeps it).
Both counts are reported per layer.

Where Loihi's neuron differs from the graph's, the layer's ``notes`` say so and the closest form is
deployed: a bias that the graph filters through the synaptic current is added to the voltage (same steady
state; exact when the current has no memory), a non-zero ``v_reset`` is deployed by shifting the voltage
(exact except the initial state), decays and thresholds are rounded to Loihi's integers, and a leak slower
than 1/8192 per step vanishes. Loihi's 24-bit current wraps and its voltage saturates; the float reference
has neither. Frameworks that reset by subtraction (Sinabs' IAF, snnTorch's ``subtract``) cannot say so in
NIR; the graph, the reference and the chip all reset to ``v_reset``.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import nir
import numpy as np
from rich.table import Table

from neurodeploy import atomic, folders
from neurodeploy.data.datasets import dataset_for_input
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer
from neurodeploy.deploy.netx_write import write_netx
from neurodeploy.deploy.nir_neuron import choose_scale, map_neuron
from neurodeploy.deploy.nir_read import read_graph
from neurodeploy.deploy.nir_record import GRAPH_FILE, IMPORT_RECORD, NET_FILE, ImportedLayer, NirImport
from neurodeploy.deploy.nir_synapse import Synapse, as_dense, compose_synapse
from neurodeploy.deploy.nir_topology import LayerPath, layer_paths, refuse
from neurodeploy.errors import UserError
from neurodeploy.kernels.loihi_ranges import BIAS_RANGE
from neurodeploy.models.nir_reference import FlatGraph, flatten_graph
from neurodeploy.options import check_binning

DEFAULT_DT_MS = 1.0
SAMPLE_DURATION_MS = 300.0  # an N-MNIST sample: three saccades of about 100 ms


def _neuron_shape(node: nir.NIRNode) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(node.v_threshold).shape)


def _row_values(values: np.ndarray, shape: tuple[int, ...], synapse: Synapse, name: str, node,
                what: str) -> np.ndarray:
    """Per-neuron values as the layer stores them: per neuron (dense) or per output channel (conv)."""
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), shape)
    if synapse.kind == "dense":
        return values.reshape(-1)
    per_channel = values.reshape(synapse.out_shape[0], -1)
    if not np.allclose(per_channel, per_channel[:, :1], rtol=1e-9, atol=0):
        raise refuse(name, node, f"{what} differs within a channel; a netx conv layer shares it per channel")
    return per_channel[:, 0]


def build_layer(graph: FlatGraph, path: LayerPath, index: int, in_shape: tuple[int, ...], dt_s: float,
                flatten_before: bool) -> tuple[NetxLayer, ImportedLayer]:
    """The netx layer of one :class:`LayerPath` and its import-table row."""
    node = graph.nodes[path.neuron]
    shape = _neuron_shape(node)
    mapping = map_neuron(path.neuron, node, dt_s)
    synapse = compose_synapse(graph, path.synapse, in_shape, shape, path.neuron)
    if path.recurrent is not None and synapse.kind == "conv":  # netx recurrence exists for dense layers only
        synapse = as_dense(graph, path.synapse, in_shape, shape, path.neuron)
    notes = list(mapping.notes)
    gain = _row_values(mapping.gain, shape, synapse, path.neuron, node, "the input gain (R, w_in)")
    bias_gain = _row_values(mapping.bias_gain, shape, synapse, path.neuron, node, "R * w_in")
    drive = _row_values(mapping.drive, shape, synapse, path.neuron, node, "v_leak")
    row = (slice(None),) + (None,) * (synapse.weight.ndim - 1)
    weights = [synapse.weight * gain[row]]
    bias = synapse.bias * bias_gain
    recurrent_nodes: tuple[str, ...] = ()
    if path.recurrent is not None:
        loop = compose_synapse(graph, path.recurrent, shape, shape, path.neuron)
        if loop.kind != "dense":
            loop = as_dense(graph, path.recurrent, shape, shape, path.neuron)
        weights.append(loop.weight * gain.reshape(-1)[:, None])
        bias = bias + loop.bias * bias_gain
        recurrent_nodes = path.recurrent
    if np.any(bias != 0):
        notes.append("bias: added to the voltage each step (Loihi has no current bias); exact" if
                     mapping.current_decay == 1.0 else
                     "bias: the graph filters it through the synaptic current, Loihi adds it to the voltage: same "
                     "steady state, different first steps")
    choice = choose_scale(weights, mapping.threshold)
    exact_threshold = mapping.threshold * choice.scale
    if abs(choice.v_th_mant - exact_threshold) > 1e-6 * exact_threshold:
        notes.append(f"threshold: {exact_threshold:.3f} rounded to vThMant {choice.v_th_mant}")
    bias_mant = np.round((bias + drive) * choice.scale)
    low, high = BIAS_RANGE
    if bias_mant.size and (bias_mant.min() < low or bias_mant.max() > high):
        raise refuse(path.neuron, node, f"its bias and leak drive need a bias of up to "
                                        f"{np.abs(bias_mant).max():.4g} integer units per step at weight scale "
                                        f"{choice.scale:g}, beyond Loihi's 13-bit bias [{low}, {high}]")
    bias_mant = bias_mant.astype(np.int64)
    cuba = CubaParams(mapping.i_decay, mapping.v_decay, choice.v_th_mant)
    common = dict(index=index, neuron=cuba, bias=bias_mant if np.any(bias_mant) else None, name=path.neuron)
    if synapse.kind == "conv":
        g = synapse.geometry
        layer = NetxLayer(kind="conv", in_shape=g.in_shape, out_shape=g.out_shape, weight=choice.weights[0],
                          kernel=g.kernel, stride=g.stride, padding=g.padding, dilation=g.dilation, groups=g.groups,
                          **common)
    else:
        layer = NetxLayer(kind="dense_rec" if path.recurrent is not None else "dense",
                          in_shape=(math.prod(in_shape),), out_shape=(math.prod(shape),), weight=choice.weights[0],
                          weight_rec=choice.weights[1] if path.recurrent is not None else None,
                          flatten_before=flatten_before, **common)
    row_record = ImportedLayer(
        name=path.neuron, kind=layer.kind, neuron=type(node).__name__,
        nodes=(*path.synapse, path.neuron, *recurrent_nodes), shape=tuple(layer.out_shape),
        i_decay=cuba.i_decay, v_decay=cuba.v_decay, v_th_mant=cuba.v_th_mant, weight_scale=choice.scale,
        weights=sum(int(np.count_nonzero(w)) for w in weights), clipped=choice.clipped, vanished=choice.vanished,
        notes=tuple(notes))
    return layer, row_record


def resolve_input_shape(graph: FlatGraph, requested: tuple[int, ...] | None) -> tuple[int, ...]:
    """The Input node's shape, or ``--input`` when given (it must hold the same number of values)."""
    declared = graph.input_shape()
    if requested is None:
        return declared
    if math.prod(requested) != math.prod(declared):
        raise UserError(f"--input {requested[1]}x{requested[2]}x{requested[0]} has {math.prod(requested)} values "
                        f"but the graph's Input node '{graph.input_node}' takes {declared}")
    return tuple(requested)


def plan_import(graph: nir.NIRGraph, dt_ms: float) -> tuple[list[NetxLayer], list[ImportedLayer], tuple[int, ...]]:
    """Netx layers and import-table rows for ``graph`` at ``dt_ms``, and the chip's input shape: the Input
    node's (C, H, W) when the first layer is a convolution, else flat (n,)."""
    check_binning(dt_ms, None)
    flat = flatten_graph(graph)
    layers, rows = [], []
    in_shape = flat.input_shape()
    for index, path in enumerate(layer_paths(flat)):
        try:
            layer, row = build_layer(flat, path, index, in_shape, dt_ms / 1000.0,
                                     flatten_before=bool(layers) and len(in_shape) > 1)
        except ValueError as exc:  # a record out of Loihi's range, or no weight scale fits the threshold
            raise refuse(path.neuron, flat.nodes[path.neuron], str(exc)) from None
        layers.append(layer)
        rows.append(row)
        in_shape = _neuron_shape(flat.nodes[path.neuron])
    declared = flat.input_shape()
    return layers, rows, declared if layers[0].kind == "conv" else (math.prod(declared),)


def import_nir(path: Path, out_dir: Path, *, dt_ms: float | None = None,
               input_shape: tuple[int, ...] | None = None, steps: int | None = None) -> NirImport:
    """Write ``out_dir`` (model.net, model.nir, nir_import.json) for the NIR graph at ``path``."""
    path, out_dir = Path(path), Path(out_dir)
    atomic.check_writable_dir(out_dir)
    folders.check_output_dir(out_dir, (folders.IMPORTED_RUN,))  # never a user's folder or a training run
    check_binning(dt_ms, steps)
    graph = read_graph(path)
    data_shape = resolve_input_shape(flatten_graph(graph), input_shape)
    dt = DEFAULT_DT_MS if dt_ms is None else float(dt_ms)
    layers, rows, chip_input = plan_import(graph, dt)
    dataset = dataset_for_input(tuple(data_shape))
    record = NirImport(source=str(path), dt_ms=dt, input_shape=tuple(chip_input), dataset=dataset,
                       steps=steps or int(math.ceil(SAMPLE_DURATION_MS / dt)), layers=tuple(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_netx(out_dir / NET_FILE, layers, input_shape=chip_input)
    with atomic.atomic_path(out_dir / GRAPH_FILE) as tmp:
        shutil.copyfile(path, tmp)
    atomic.write_json(out_dir / IMPORT_RECORD, record.to_dict())
    return record


def print_import_table(record: NirImport, out_dir: Path, console) -> None:
    table = Table(title=f"NIR import: {record.source} -> {out_dir} (dt {record.dt_ms:g} ms)")
    for column in ("layer", "type", "NIR nodes", "neurons", "iDecay", "vDecay", "vThMant", "scale", "weights",
                   "clipped", "vanished", "differences from the graph"):
        table.add_column(column, overflow="fold")
    for row in record.layers:
        table.add_row(row.name, f"{row.kind} ({row.neuron})", ", ".join(row.nodes), str(math.prod(row.shape)),
                      str(row.i_decay), str(row.v_decay), str(row.v_th_mant), f"{row.weight_scale:g}",
                      str(row.weights), str(row.clipped), str(row.vanished), "; ".join(row.notes) or "none")
