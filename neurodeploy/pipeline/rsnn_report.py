"""The report of an RSNN run (docs/rsnn.md): the host front end's layers (static op counts, energy measured on a
GPU or estimated with the host profile) before the chip classifier's layers (measured spikes, built by
:func:`neurodeploy.pipeline.snn_report.build_snn_report`), and the ``hybrid`` section with the energy split and the
traffic across the boundary.

Per sample: E = E_front + E_chip,dynamic + E_chip,static; E_front = NVML board energy / samples (measured) or
sum over front layers of (MACs e_mac + adds e_add + muls e_mul) x T (estimated); the chip part as for any
SNN run. The total is labelled ``estimated`` whenever one of its parts is.
"""

from __future__ import annotations

import dataclasses

from neurodeploy.deploy.front_end import Boundary
from neurodeploy.metrics.cost import static_cost
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.metrics.run_metrics import EnergySplit
from neurodeploy.pipeline.layer_reports import build_static_layer_reports
from neurodeploy.pipeline.snn_report import trainable_params
from neurodeploy.reports.schema import EnergyInfo, HybridSplit, MemoryBits, ModelInfo, PerSample, RunReport

# what the front-end estimate never prices (as for the rnn / lstm baselines)
FRONT_END_LEAVES_OUT = ("front end: nonlinearities (tanh, sigmoid), memory accesses, host static power",
                        "boundary: the count encoding on the host and the transfer of the levels")


def _front_end(network, config, front_run, host_profile: str):
    """(layer build, static cost, energy J per sample, energy kind, its source) of the front end."""
    cost = static_cost(network.arch, network.input_shape, "rsnn", aggregation=network.front.aggregation,
                       steps=network.steps)
    host = dataclasses.replace(cost, layers=cost.layers[:cost.host_layers])
    build = build_static_layer_reports(host, int(config.steps), load_profile(host_profile))
    measurement = front_run.measurement
    if measurement.energy_kind == "measured":
        return build, host, measurement.energy_j_per_sample, "measured", (
            f"NVML board energy on {measurement.device_name} over the front end's run / samples (idle included)")
    return build, host, build.energy.total_j, "estimated", f"front-end MACs, adds, muls x {host_profile} coefficients"


def build_rsnn_report(chip: RunReport, *, network, config, front_run, boundary: Boundary,
                      host_profile: str) -> RunReport:
    """The whole RSNN report from the chip part's report (``chip``, built for ``network.classifier``)."""
    build, host_cost, front_j, front_kind, front_source = _front_end(network, config, front_run, host_profile)
    totals = {key: getattr(chip.per_sample, key) + sum(getattr(layer, key) for layer in build.layers)
              for key in ("synops", "neuron_updates", "spikes", "macs", "adds", "muls")}
    chip_split = chip.energy_split
    chip_dynamic = None if chip_split is None else chip_split.dynamic_j
    chip_static = None if chip_split is None else chip_split.static_j
    total_j = None if chip.per_sample.energy_j is None else front_j + chip.per_sample.energy_j
    front_ops = dict(build.energy.joules) if front_kind == "estimated" else {"front_end": front_j}
    energy = EnergyInfo(
        "estimated", f"{host_profile} (host) + {chip.energy.profile} (chip)", total_j,
        {**front_ops, **chip.energy.by_op_j},
        {**{key: coeff.to_dict() for key, coeff in build.energy.coefficients.items()}, **chip.energy.coefficients},
        (*chip.energy.uncounted, *build.energy.uncounted),
        (f"front end: {front_kind}, {front_source}", *chip.energy.notes))
    split = None if chip_split is None else EnergySplit(
        "estimated", front_j + (chip_dynamic or 0.0), chip_static,
        f"front end {front_kind} ({front_source}) + chip {chip_split.dynamic_source}", chip_split.static_source,
        (*chip_split.leaves_out, *FRONT_END_LEAVES_OUT))
    host_bits = host_cost.memory_bits
    memory = MemoryBits.of({"weights": chip.memory_bits.weights + host_bits["weights"],
                            "state": chip.memory_bits.state + host_bits["state"],
                            "spikes": chip.memory_bits.spikes}, chip.memory_bits.bit_widths)
    measurement = front_run.measurement
    hybrid = HybridSplit(
        front_end_device=measurement.device_name, front_end_energy_kind=front_kind, front_end_energy_j=front_j,
        front_end_energy_source=front_source, front_end_macs=totals["macs"],
        front_end_latency_s=measurement.latency_s_per_sample, chip_synops=chip.per_sample.synops,
        chip_neuron_updates=chip.per_sample.neuron_updates, chip_dynamic_j=chip_dynamic, chip_static_j=chip_static,
        boundary_values=boundary.values, boundary_bytes=boundary.bytes_per_sample,
        boundary_spikes=float(front_run.levels.reshape(len(front_run.levels), -1).sum(axis=1).mean()),
        boundary_encoding=boundary.describe())
    return dataclasses.replace(
        chip, model=ModelInfo("rsnn", network.arch.notation(), trainable_params(network), chip.model.synapses),
        layers=(*build.layers, *chip.layers),
        per_sample=PerSample(**totals, energy_j=total_j, latency_s=chip.per_sample.latency_s),
        energy=energy, energy_split=split, memory_bits=memory, hybrid=hybrid)
