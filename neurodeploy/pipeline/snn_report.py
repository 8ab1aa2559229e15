"""Assemble the RunReport of an SNN run from measured per-layer spikes (docs/report_schema.md).

A layer comes either as full spike trains (N, n, T) or, when Lava only counted it, as its counts
(:class:`~neurodeploy.metrics.activity.LayerActivity`). Spikes, synops, energy, memory, hops, firing
statistics and NeuroBench metrics need only the counts; the SANA-FE chip estimate and the active neuron
updates need every spike train and are left out of a counted run, with the reason in the latency notes.

Per layer and per sample: spikes, spike rate, synops = sum over steps of input spikes x fan-out, neuron
updates = neurons x steps, energy estimated from a hardware profile. Memory (companion paper eq. 8):
M = M_w + M_p + M_s with M_s the largest number of spikes in flight at any one step of any sample.
"""

from __future__ import annotations

import math

import numpy as np

from neurodeploy import devices
from neurodeploy.backends.chip_model import (
    Placement,
    SanafeDeclined,
    estimate_chip,
    nonzero_fan_out,
    routing_hops,
)
from neurodeploy.backends.chip_placement import netx_footprint
from neurodeploy.backends.chip_time import AnalyticChipTime, analytic_chip_time
from neurodeploy.backends.loihi2_board import NOT_RUN_ON_A_BOARD
from neurodeploy.backends.neuron_activity import active_neuron_updates
from neurodeploy.errors import UserError
from neurodeploy.metrics.activity import LayerActivity, count_over_time
from neurodeploy.metrics.cost import deployed_architecture, layer_fan_out, layer_names, static_cost
from neurodeploy.metrics.gpu_energy import device_name
from neurodeploy.metrics.hardware import HardwareProfile, load_profile
from neurodeploy.metrics.parity import accuracy_of
from neurodeploy.metrics.placement import arch_conv_shape
from neurodeploy.metrics.run_metrics import (
    AccuracyInterval,
    EnergySplit,
    Latency,
    NeuroBenchMetrics,
    connection_sparsity,
    firing_stats_of_counts,
)
from neurodeploy.pipeline.layer_reports import SNNLayerRecord, build_snn_layer_reports
from neurodeploy.reports.schema import (
    BackendInfo,
    DataInfo,
    MemoryBits,
    ModelInfo,
    Parity,
    RunReport,
    ToolInfo,
    collect_provenance,
)

CHIP_MODEL_SAMPLES = 16  # samples SANA-FE simulates per run (its figures are means over them)
# what the op-count estimate of a chip run does not price, whatever the profile
CHIP_LEAVES_OUT = ("barrier synchronisation", "axon messages (SANA-FE prices them)", "off-chip input and output")


Layer = np.ndarray | LayerActivity  # a layer's full spike trains (N, n, T) or the counts a backend kept


def _per_neuron(layer: Layer) -> np.ndarray:
    """Spikes per (sample, neuron) summed over the steps, int (N, n)."""
    return layer.per_neuron if isinstance(layer, LayerActivity) else count_over_time(layer)


def _per_step(layer: Layer) -> np.ndarray:
    """Spikes per (sample, step) summed over the neurons, int (N, T)."""
    return layer.per_step if isinstance(layer, LayerActivity) else layer.sum(axis=1, dtype=np.int32)


def _chip_activity(net, profile: HardwareProfile, input_spikes, layer_spikes: list[Layer]) -> tuple[list, list]:
    """Active neuron updates and tile hops per layer and sample, exact for the emulated (= Lava) run.

    Hops follow the profile's core mapping on one chip; a network that needs more than one chip has no
    hop count (None). The last layer's spikes leave the chip: no hops. Active updates need every spike
    train: None per layer when a layer was only counted.
    """
    if any(isinstance(layer, LayerActivity) for layer in layer_spikes):
        active = [None] * len(layer_spikes)
    else:
        active = active_neuron_updates(net, input_spikes, layer_spikes)
    try:
        placement = Placement.for_profile(net, profile)
    except UserError:
        return active, [None] * len(layer_spikes)
    per_spike = routing_hops(net, placement)
    hops = [(_per_neuron(spikes) * per_spike[index + 1]).sum(axis=1) for index, spikes in enumerate(layer_spikes[:-1])]
    return active, [*hops, np.zeros(len(layer_spikes[-1]))]


def _records(network, net, input_spikes: np.ndarray, layer_spikes: list[Layer],
             activity: tuple[list, list] | None = None) -> list[SNNLayerRecord]:
    arch, shape = deployed_architecture(network)
    shapes = arch.shapes(shape)
    trainable = [layer.params for layer in static_cost(arch, shape, "snn").layers]
    records = []
    names = layer_names(network)
    previous = input_spikes
    for index, (spikes, (layer, (in_shape, out_shape))) in enumerate(zip(layer_spikes, zip(arch.layers, shapes))):
        if net is not None:  # chip run: the synapses with a non-zero weight, in netx neuron order
            netx_layer = [layer for layer in net.layers if layer.kind != "input"][index]
            fan_out = nonzero_fan_out(netx_layer)
            conv = netx_footprint(netx_layer).conv
        else:
            fan_out = layer_fan_out(layer, in_shape)
            conv = arch_conv_shape(layer, in_shape, out_shape)
        records.append(SNNLayerRecord(
            name=names[index], type=layer.kind, shape=tuple(out_shape), params=int(trainable[index]),
            fan_out=fan_out, input_spikes=_per_neuron(previous), output_spikes=_per_neuron(spikes),
            fan_in=math.prod(in_shape) if layer.kind == "dense" else None,
            active_neuron_updates=None if activity is None else activity[0][index],
            spike_hops=None if activity is None else activity[1][index], conv=conv,
        ))
        previous = spikes
    return records


def _memory(network, layer_spikes, profile) -> tuple[MemoryBits, MemoryBits | None]:
    arch, shape = deployed_architecture(network)
    cost = static_cost(arch, shape, "snn", profile=profile)
    in_flight = sum(_per_step(spikes) for spikes in layer_spikes)  # (N, T) spikes per step
    max_spikes = int(in_flight.max()) if in_flight.size else 0
    bits = dict(cost.memory_bits)
    bits["spikes"] = max_spikes * cost.spike_bits
    memory = MemoryBits.of(bits, {"weight": cost.bits, "state": cost.bits, "spike": cost.spike_bits})
    chip = None
    if cost.memory_bits_chip:
        chip_bits = dict(cost.memory_bits_chip)
        chip_bits["spikes"] = max_spikes * profile.bit_width("spike")
        chip = MemoryBits.of(chip_bits, {key: profile.bit_width(key)
                                         for key in ("weight", "state_u", "state_v", "spike")})
    return memory, chip


def parity_record(parity, names: list[str]) -> Parity | None:
    """The report's Parity section from a :class:`~neurodeploy.metrics.parity.SpikeParity` (None: not compared)."""
    if parity is None:
        return None
    return Parity(float_accuracy=parity.float_accuracy, chip_accuracy=parity.chip_accuracy,
                  layer_spike_agreement=dict(zip(names, parity.layer_count_agreement)),
                  first_divergence=parity.first_divergence, identical=parity.identical,
                  prediction_agreement=parity.prediction_agreement)


def _neurobench(net, network, input_spikes, layer_spikes, steps: int) -> NeuroBenchMetrics | None:
    """NeuroBench's metrics of a chip run from the exported weights (spiking input: every op is an AC).

    effective ACs = sum over layers of input spikes x non-zero feed-forward fan-out, per sample;
    dense = every synapse every step; connection sparsity over the stored weight tensors.
    """
    if net is None:
        return None
    layers = [layer for layer in net.layers if layer.kind != "input"]
    effective, previous = 0.0, input_spikes
    for layer, spikes in zip(layers, layer_spikes):
        effective += float((_per_neuron(previous) * nonzero_fan_out(layer)).sum()) / len(_per_neuron(previous))
        previous = spikes
    total = sum(layer.synapses for layer in layers)
    weights = [w for layer in layers for w in (layer.weight, layer.weight_rec) if w is not None]
    footprint = sum(t.numel() * t.element_size() for t in [*network.parameters(), *network.buffers()])
    # 0/1 spikes: the non-zero activations are the spike counts; all = samples x neurons x steps
    fired = sum(int(_per_neuron(spikes).sum()) for spikes in layer_spikes)
    possible = sum(_per_neuron(spikes).size for spikes in layer_spikes) * steps
    return NeuroBenchMetrics(activation_sparsity=1.0 - fired / possible if possible else 0.0,
                             connection_sparsity=connection_sparsity(weights), effective_macs=0.0,
                             effective_acs=effective, dense=float(total * steps),
                             footprint_bytes=int(footprint))


def _chip_latency_and_static(net, profile, input_spikes, layer_spikes):
    """SANA-FE's estimate for a chip run; above its size limit the analytic per-core chip time
    (backends/chip_time.py, same placement and spikes; no energy); or (None, reason) when neither applies."""
    try:
        return estimate_chip(net, input_spikes, layer_spikes, profile, max_samples=CHIP_MODEL_SAMPLES), None
    except SanafeDeclined as exc:
        try:
            return analytic_chip_time(net, input_spikes, layer_spikes, profile, declined=exc.reason), None
        except UserError as other:
            return None, f"{exc}; analytic chip time: {other}"
    except UserError as exc:
        return None, str(exc)


def _chip_time_label(estimate) -> tuple[str, str]:
    """(what produced the chip time, the device the latency names) for the report's texts."""
    if isinstance(estimate, AnalyticChipTime):
        return ("the analytic per-core model (SANA-FE's Loihi 1 event times; SANA-FE declined this network)",
                "Loihi (analytic per-core model, SANA-FE's Loihi 1 event times)")
    return "SANA-FE (Loihi 1 calibration)", "Loihi (SANA-FE model)"


def build_snn_report(*, request, config, model, network, net, source, input_spikes, layer_spikes: list[Layer],
                     labels, mode, wall_s, parity, profile_name, sample_set=None) -> RunReport:
    """The report of one run; ``layer_spikes``: per on-chip layer its spike trains, or its counts where the
    backend only counted it (then the figures that need trains are absent and the latency notes say why)."""
    profile = load_profile(profile_name)
    samples, _, steps = input_spikes.shape
    chip = net is not None
    counted = [name for name, layer in zip(layer_names(network), layer_spikes)
               if isinstance(layer, LayerActivity)]
    if not chip:
        estimate, no_estimate = None, "float run: no chip"
    elif counted:
        estimate, no_estimate = None, (f"count-only run: layers {', '.join(counted)} were counted inside Lava, "
                                       "so no SANA-FE estimate and no active neuron updates (both need every "
                                       "spike train); rerun without --count-only for them")
    else:
        estimate, no_estimate = _chip_latency_and_static(net, profile, input_spikes, layer_spikes)
    chip_wall = wall_s / samples if mode == "hardware" else None  # only a chip's own time prices static power
    activity = _chip_activity(net, profile, input_spikes, layer_spikes) if chip else None
    time_source, time_device = _chip_time_label(estimate)
    build = build_snn_layer_reports(
        _records(network, net, input_spikes, layer_spikes, activity), steps, profile, wall_time_s=chip_wall,
        chip_time_s=None if estimate is None else estimate.latency_per_sample_s, chip_time_source=time_source)
    memory, memory_chip = _memory(network, layer_spikes, profile)
    accuracy = accuracy_of(_per_neuron(layer_spikes[-1]), labels)
    host_latency = wall_s / samples if wall_s is not None else None
    if chip:
        latency = Latency("chip_estimate", None if estimate is None else estimate.latency_per_sample_s,
                          "SANA-FE" if estimate is None else estimate.model,
                          0 if estimate is None else estimate.samples,
                          per_step_s=None if estimate is None else estimate.latency_per_sample_s / steps,
                          device=time_device,
                          notes=(no_estimate,) if estimate is None else estimate.notes)
        host_wall = Latency("host_wall", host_latency, f"host wall time of the {request.backend} backend "
                            "(build and run) / samples: simulator throughput, not a chip latency", int(samples),
                            device=device_name("cpu"), batch_size=int(samples),
                            notes=(NOT_RUN_ON_A_BOARD,) if mode == "hardware" else ())
    else:
        latency = Latency("measured", host_latency, "wall time of the float model on the host, one pass over "
                          "all samples in batches (not warmed up) / samples", int(samples),
                          device=device_name("cpu"), batch_size=int(samples))
        host_wall = None
    per_sample = build.per_sample(latency.per_sample_s)
    energy_info = build.energy_info()
    energy_split = None
    if build.energy is not None:
        static_j = build.energy.joules.get("static")
        reason = "; ".join(n for n in build.energy.notes if "static" in n) or (
            "no chip time to multiply static power by" if profile.has("static") else "profile has no static power")
        static_source = (f"static power {_static_label(profile)} x chip time per sample ({time_source}; pacing: "
                         "as fast as possible, samples back to back)" if static_j is not None
                         else f"not counted: {reason}")
        chip_leaves = CHIP_LEAVES_OUT
        if isinstance(estimate, AnalyticChipTime):  # no SANA-FE run: nothing prices the messages
            chip_leaves = tuple("axon messages" if item.startswith("axon messages") else item for item in chip_leaves)
        leaves = [*build.energy.uncounted, *(chip_leaves if chip else ())]
        energy_split = EnergySplit("estimated", build.energy.total_j - (static_j or 0.0), static_j,
                                   f"op counts x {profile.name} coefficients", static_source, tuple(leaves))
    correct = int(round(accuracy * samples))
    firing = {name: firing_stats_of_counts(_per_neuron(spikes), steps).to_dict()
              for name, spikes in zip(layer_names(network), layer_spikes)}
    neurobench = _neurobench(net, network, input_spikes, layer_spikes, steps)
    return RunReport(
        tool=ToolInfo(),
        model=ModelInfo(family="snn", arch=model.arch.notation(), params=trainable_params(network),
                        synapses=int(sum(layer.synapses for layer in build.layers))),
        data=DataInfo(dataset=config.dataset, source=source.source, synthetic_source=source.synthetic_source,
                      split="test", samples=int(samples), dt_ms=float(config.dt_ms), steps=int(steps),
                      sample_set=sample_set),
        backend=BackendInfo(name=request.backend, mode=mode, hw_config=profile.name, device="cpu"),
        accuracy=accuracy,
        per_sample=per_sample,
        energy=energy_info,
        memory_bits=memory,
        memory_bits_chip=memory_chip,
        layers=tuple(build.layers),
        parity=parity_record(parity, layer_names(network)),
        resources=None if build.resources is None else build.resources.to_dict(),
        provenance=collect_provenance(),
        latency=latency,
        host_wall=host_wall,
        energy_split=energy_split,
        accuracy_interval=AccuracyInterval.of(correct, int(samples)),
        chip_model=None if estimate is None else estimate.to_dict(),
        neurobench=None if neurobench is None else neurobench.to_dict(),
        firing=firing,
        ran_on={"model": devices.describe("cpu")},  # the float reference and the simulators run on the CPU
    )


def _static_label(profile: HardwareProfile) -> str:
    """The static power with its source and note (for loihi2 the published range 0.178-0.309 W)."""
    coefficient = profile.coefficient("static")
    note = f"; {coefficient.note}" if coefficient.note else ""
    return f"{coefficient.value:g} {coefficient.unit} ({coefficient.source}{note})"


def trainable_params(network) -> int:
    """Trainable weights and biases of the trained model: the one parameter count of every report."""
    return int(sum(p.numel() for p in network.parameters() if p.requires_grad))
