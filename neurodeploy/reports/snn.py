"""Assemble the RunReport of an SNN run from measured per-layer spikes (SPEC 5.2-5.3).

Per layer and per sample: spikes, spike rate, synops = sum over steps of input spikes x fan-out, neuron
updates = neurons x steps, energy estimated from a hardware profile. Memory (companion paper eq. 8):
M = M_w + M_p + M_s with M_s the largest number of spikes in flight at any one step of any sample.
"""

from __future__ import annotations

import math

import numpy as np

from neurodeploy.metrics.cost import layer_fan_out, layer_name, static_cost
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.metrics.parity import accuracy_of
from neurodeploy.models.arch import Architecture
from neurodeploy.reports.build import SNNLayerRecord, build_snn_layer_reports
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


def deployed_architecture(network) -> tuple[Architecture, tuple[int, int, int]]:
    """The on-chip part of the architecture (input downsampling removed) and its input shape."""
    layers = network.arch.layers[1:] if network.input_pool else network.arch.layers
    return Architecture(tuple(layers)), network.chip_input_shape


def layer_names(network) -> list[str]:
    """Report names of the on-chip layers (``fc1``, ``conv2``, ... numbered as in the architecture string)."""
    offset = 1 if network.input_pool else 0
    arch, _ = deployed_architecture(network)
    return [layer_name(index + offset, layer) for index, layer in enumerate(arch.layers)]


def _records(network, net, input_spikes: np.ndarray, layer_spikes: list[np.ndarray]) -> list[SNNLayerRecord]:
    arch, shape = deployed_architecture(network)
    shapes = arch.shapes(shape)
    records = []
    names = layer_names(network)
    previous = input_spikes
    for index, (spikes, (layer, (in_shape, out_shape))) in enumerate(zip(layer_spikes, zip(arch.layers, shapes))):
        if net is not None:  # chip run: geometry exactly as exported, in netx neuron order
            netx_layer = [layer for layer in net.layers if layer.kind != "input"][index]
            fan_out, params = np.asarray(netx_layer.fan_out()), int(netx_layer.params)
        else:
            fan_out = layer_fan_out(layer, in_shape)
            params = int(fan_out.sum()) if layer.kind != "pool" else 0
        records.append(SNNLayerRecord(
            name=names[index], type=layer.kind, shape=tuple(out_shape), params=params,
            fan_out=fan_out, input_spikes=previous.sum(axis=2), output_spikes=spikes.sum(axis=2),
            fan_in=math.prod(in_shape) if layer.kind == "dense" else None,
        ))
        previous = spikes
    return records


def _memory(network, layer_spikes, profile) -> tuple[MemoryBits, MemoryBits | None]:
    arch, shape = deployed_architecture(network)
    cost = static_cost(arch, shape, "snn", profile=profile)
    in_flight = sum(spikes.sum(axis=1) for spikes in layer_spikes)  # (N, T) spikes per step
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


def _parity(parity, names: list[str]) -> Parity | None:
    if parity is None:
        return None
    return Parity(float_accuracy=parity.float_accuracy, chip_accuracy=parity.chip_accuracy,
                  layer_spike_agreement=dict(zip(names, parity.layer_count_agreement)),
                  first_divergence=parity.first_divergence, identical=parity.identical)


def build_snn_report(*, request, config, model, network, net, source, input_spikes, layer_spikes, labels,
                     mode, wall_s, parity, profile_name) -> RunReport:
    profile = load_profile(profile_name)
    samples, _, steps = input_spikes.shape
    latency_s = wall_s / samples if wall_s is not None else None
    chip_wall = wall_s / samples if mode == "hardware" else None  # only a chip's own time prices static power
    build = build_snn_layer_reports(_records(network, net, input_spikes, layer_spikes), steps, profile,
                                    wall_time_s=chip_wall)
    memory, memory_chip = _memory(network, layer_spikes, profile)
    accuracy = accuracy_of(layer_spikes[-1], labels)
    return RunReport(
        tool=ToolInfo(),
        model=ModelInfo(family="snn", arch=model.arch.notation(),
                        params=int(sum(layer.params for layer in build.layers))),
        data=DataInfo(dataset=config.dataset, source=source.source, synthetic_source=source.synthetic_source,
                      split="test", samples=int(samples),
                      dt_ms=float(config.dt_ms), steps=int(steps)),
        backend=BackendInfo(name=request.backend, mode=mode, hw_config=profile.name, device="cpu"),
        accuracy=accuracy,
        per_sample=build.per_sample(latency_s),
        energy=build.energy_info(),
        memory_bits=memory,
        memory_bits_chip=memory_chip,
        layers=tuple(build.layers),
        parity=_parity(parity, layer_names(network)),
        resources=None if build.resources is None else build.resources.to_dict(),
        provenance=collect_provenance(),
    )
