"""Analytic per-core chip time: SANA-FE's Loihi event times on our placement, without simulating the network.

SANA-FE (:mod:`neurodeploy.backends.chip_model`) is only run up to ``MAX_TOTAL_CONNECTIONS`` synapses; above
that (the DVS Gesture CNN: about 110 M) this model gives the chip time, and it can be run on any network for
comparison. Per time step and core c (docs/chip_model.md, "Analytic chip time"):

    t_c = N_c (t_access + t_update) + S_c t_spike + M_out,c t_out       (the core's own neurons, its messages)
        + M_in,c t_in + E_c t_synapse                                     (spike messages it receives)
    t_step = max over cores of t_c + t_sync(tiles in use)

with N_c the neurons on the core (every one is serviced every step), S_c their spikes, M_out,c the spike
messages its neurons send (one per destination core with a non-zero synapse), M_in,c the messages it
receives, E_c the synaptic events (input spikes x non-zero synapses onto its neurons; conv and dense layers
use their own synapse unit's time). Every time is read at run time from the installed SANA-FE's own Loihi
description (``sanafe/examples/loihi.yaml``); t_sync is its table of barrier times by tiles in use. The
placement is the one the SANA-FE path uses (:func:`neurodeploy.backends.chip_model.chip_placement`) and the
activity the run's recorded spikes. Left out: mesh hop latency and NoC contention (SANA-FE's detailed
scheduler has them), and the overlap of a core's sending with its receiving (SANA-FE's scheduler lets them
overlap; here they add up, as a core works through them one after the other). No energy is derived here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import sanafe
import scipy.sparse
import yaml

from neurodeploy.backends.chip_model import _feed_forward, chip_placement, static_energy
from neurodeploy.backends.chip_placement import CORES_PER_TILE, synaptic_layers
from neurodeploy.deploy.netx_records import NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import HardwareProfile

__all__ = ["AnalyticChipTime", "EventTimes", "analytic_chip_time", "sanafe_event_times"]

ANALYTIC_SOURCE = "analytic per-core model with SANA-FE {version}'s Loihi 1 event times (sanafe/examples/loihi.yaml)"


@dataclass(frozen=True)
class EventTimes:
    """SANA-FE's Loihi per-event latencies, seconds, and its barrier table (tiles in use -> seconds)."""

    conv_synapse: float
    dense_synapse: float
    neuron_access: float
    neuron_update: float
    spike_out: float
    message_in: float
    message_out: float
    sync: tuple[tuple[int, float], ...]
    source: str

    def sync_for(self, tiles: int) -> float:
        """SANA-FE's table lookup: the entry of the largest key <= tiles (the first entry below all keys)."""
        value = self.sync[0][1]
        for key, seconds in self.sync:
            if key <= tiles:
                value = seconds
        return value

    def to_dict(self) -> dict[str, Any]:
        out = {key: value for key, value in vars(self).items() if key not in ("sync", "source")}
        return {**out, "sync": {str(k): v for k, v in self.sync}, "source": self.source}


def _unit(units: list[dict], name: str) -> dict:
    for unit in units:
        if unit["name"] == name or unit["name"].startswith(name + "["):
            return unit["attributes"]
    raise UserError(f"SANA-FE's loihi.yaml has no unit {name!r}: install sanafe==2.2.9")


@lru_cache(maxsize=1)
def sanafe_event_times() -> EventTimes:
    """The Loihi event times of the installed SANA-FE's ``examples/loihi.yaml`` (Davies et al. 2018's figures,
    as SANA-FE's authors took them)."""
    path = Path(sanafe.__file__).parent / "examples" / "loihi.yaml"
    arch = yaml.safe_load(path.read_text())["architecture"]
    core = arch["tile"][0]["core"][0]
    soma = _unit(core["soma"], "loihi_lif")
    sync = arch["attributes"].get("latency_sync")
    if arch["attributes"].get("sync_model") != "table" or not isinstance(sync, dict):
        raise UserError(f"{path}: expected SANA-FE's table synchronisation model: install sanafe==2.2.9")
    return EventTimes(
        conv_synapse=float(_unit(core["synapse"], "loihi_conv_synapse")["latency_process_spike"]),
        dense_synapse=float(_unit(core["synapse"], "loihi_dense_synapse")["latency_process_spike"]),
        neuron_access=float(soma["latency_access_neuron"]), neuron_update=float(soma["latency_update_neuron"]),
        spike_out=float(soma["latency_spike_out"]),
        message_in=float(_unit(core["axon_in"], "loihi_in")["latency_message_in"]),
        message_out=float(_unit(core["axon_out"], "loihi_out")["latency_message_out"]),
        sync=tuple(sorted((int(k), float(v)) for k, v in sync.items())),
        source=f"sanafe {metadata.version('sanafe')}: {path.name}",
    )


@dataclass(frozen=True)
class AnalyticChipTime:
    """Chip time per sample from :func:`analytic_chip_time` (means over ``samples``) and what set it."""

    model: str
    samples: int
    samples_total: int
    steps: int
    latency_per_sample_s: float
    latency_per_step_s: tuple[float, ...]
    busiest_core_share: dict[str, float]  # of the slowest core's time, summed over steps: which events
    sync_per_step_s: float
    cores: int
    tiles: int
    event_times: EventTimes
    static_energy_j: float | None = None
    static_source: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "kind": "analytic", "samples": self.samples, "samples_total": self.samples_total,
            "steps": self.steps, "latency_per_sample_s": self.latency_per_sample_s,
            "latency_per_step_s": list(self.latency_per_step_s), "busiest_core_share": dict(self.busiest_core_share),
            "sync_per_step_s": self.sync_per_step_s, "cores": self.cores, "tiles": self.tiles,
            "event_times_s": self.event_times.to_dict(), "dynamic_energy_j": None,
            "static_energy_j": self.static_energy_j, "static_source": self.static_source, "notes": list(self.notes),
        }


def _onehot(homes: np.ndarray, cores: int) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix((np.ones(homes.size), (np.arange(homes.size), homes)), shape=(homes.size, cores))


def _link(matrix: scipy.sparse.spmatrix, dest: scipy.sparse.csr_matrix, src: scipy.sparse.csr_matrix,
          synapse_time: float, times: EventTimes) -> tuple:
    """One connection (n_src, n_dst): non-zero synapses per (source neuron, destination core), the cores each
    source neuron's spike is sent to (one message each), the time of its messages out, its sources' cores."""
    reach = scipy.sparse.csr_matrix(matrix, copy=True)
    reach.eliminate_zeros()
    reach.data[:] = 1.0
    per_core = (reach @ dest).tocsr()
    touched = per_core.copy()
    touched.data[:] = 1.0
    fan = np.asarray(touched.sum(axis=1)).ravel()
    return per_core, touched, fan * times.message_out, src, synapse_time


def _per_step(spikes: np.ndarray) -> scipy.sparse.csr_matrix:
    """(n, T) spikes of one sample as a sparse (T, n) float matrix."""
    return scipy.sparse.csr_matrix(spikes.T.astype(np.float64))


class _Cores:
    """Per step and core, the time of each event kind (T, cores), for one sample."""

    KINDS = ("neurons", "spikes", "messages_out", "messages_in", "synapses")

    def __init__(self, steps: int, cores: int):
        self.parts = {kind: np.zeros((steps, cores)) for kind in self.KINDS}

    def add(self, kind: str, value) -> None:
        self.parts[kind] += np.asarray(value.toarray() if scipy.sparse.issparse(value) else value)

    def total(self) -> np.ndarray:
        return sum(self.parts.values())


def analytic_chip_time(net: NetxNetwork, inputs: np.ndarray, layer_spikes: list[np.ndarray],
                       profile: HardwareProfile, *, placement: str = "minimal", max_samples: int | None = None,
                       input_bias: np.ndarray | None = None, declined: str | None = None) -> AnalyticChipTime:
    """Chip time per sample of ``net`` on ``inputs`` (N, n_in, T) with the run's ``layer_spikes`` [(N, n, T)]
    per synaptic layer, on the chip model's ``placement`` (``"minimal"`` or ``"balanced"``).

    ``input_bias`` given: the input layer's neurons (bias-driven, as lava-dl's PilotNet) are priced on the
    input cores, as the SANA-FE path does. ``declined``: why SANA-FE was not run (said in the model string).
    Static energy = the profile's static power x this time (None without one).
    """
    times = sanafe_event_times()
    layers = synaptic_layers(net)
    if len(layer_spikes) != len(layers):
        raise ValueError(f"{len(layer_spikes)} spike arrays for {len(layers)} synaptic layers")
    samples = inputs.shape[0] if max_samples is None else min(inputs.shape[0], max_samples)
    steps = inputs.shape[2]
    input_neurons = input_bias is not None and net.layers[0].kind == "input" and net.layers[0].neuron is not None
    plan = chip_placement(net, profile, inputs[:samples], [s[:samples] for s in layer_spikes], placement,
                          input_neurons)
    cores = plan.cores
    homes = [np.asarray(plan.inputs, dtype=np.int64), *(np.asarray(h, dtype=np.int64) for h in plan.layers)]
    used = np.unique(np.concatenate(homes))
    tiles = int(np.unique(used // CORES_PER_TILE).size)
    sync = times.sync_for(tiles)
    neuron_time = times.neuron_access + times.neuron_update
    # per connection (feed-forward, recurrent): synapses of each source neuron onto each core, the cores it sends
    # a message to, and where the source sits; ``links``: (index of the source in ``sources`` below, connection)
    onehots = [_onehot(h, cores) for h in homes]  # (neurons, cores): where each neuron of the input / a layer sits
    links = []
    for k, layer in enumerate(layers):
        forward, recurrent = _feed_forward(layer)
        synapse_time = times.conv_synapse if layer.kind == "conv" else times.dense_synapse
        links.append((k, _link(forward.matrix, onehots[k + 1], onehots[k], synapse_time, times)))
        if recurrent is not None:  # replayed from the layer's own spikes, on its own cores
            links.append((k + 1, _link(recurrent.matrix, onehots[k + 1], onehots[k + 1], times.dense_synapse, times)))

    own = np.zeros(cores)
    for layer_homes in homes[1:]:
        own += np.bincount(layer_homes, minlength=cores) * neuron_time
    if input_neurons:
        own += np.bincount(homes[0], minlength=cores) * neuron_time
    step_totals = np.zeros(steps)
    share = dict.fromkeys(_Cores.KINDS, 0.0)
    for n in range(samples):
        acc = _Cores(steps, cores)
        acc.add("neurons", np.broadcast_to(own, (steps, cores)))
        sources = [inputs[n], *(spikes[n] for spikes in layer_spikes)]
        if input_neurons:
            acc.add("spikes", _per_step(sources[0]) @ onehots[0] * times.spike_out)
        for k, spikes in enumerate(sources[1:]):
            acc.add("spikes", _per_step(spikes) @ onehots[k + 1] * times.spike_out)
        for index, (per_core, touched, out_time, src_onehot, synapse_time) in links:
            src = _per_step(sources[index])
            acc.add("synapses", src @ per_core * synapse_time)
            acc.add("messages_in", src @ touched * times.message_in)
            acc.add("messages_out", src.multiply(out_time[None, :]).tocsr() @ src_onehot)
        total = acc.total()
        slowest = np.argmax(total, axis=1)
        step_totals += total[np.arange(steps), slowest] + sync
        for kind, part in acc.parts.items():
            share[kind] += float(part[np.arange(steps), slowest].sum())
    latency_steps = step_totals / samples
    latency = float(latency_steps.sum())
    busy = sum(share.values())
    notes = [f"placement ({placement}): {cores} cores on {tiles} tiles, the chip model's (docs/chip_model.md)",
             f"barrier per step {sync * 1e6:g} us (SANA-FE's table for {tiles} tiles)",
             "left out: mesh hop latency, NoC contention, and the overlap of a core's sending with its receiving "
             "(SANA-FE's scheduler models them); no energy from this model",
             "measured against SANA-FE 2.2.9's chip time: 0.94-1.15x on small nets it simulates whole, 0.36-0.93x "
             "on PilotNet LIF, where its NoC congestion model adds time (docs/chip_model.md)"]
    if samples < inputs.shape[0]:
        notes.append(f"{samples} of {inputs.shape[0]} samples; figures are means over those")
    model = ANALYTIC_SOURCE.format(version=metadata.version("sanafe"))
    if declined:
        model += f"; SANA-FE declined: {declined}"
    static_j, static_source = static_energy(profile, latency, "the analytic chip time per sample")
    return AnalyticChipTime(
        model=model, samples=samples, samples_total=int(inputs.shape[0]), steps=steps, latency_per_sample_s=latency,
        latency_per_step_s=tuple(float(v) for v in latency_steps),
        busiest_core_share={kind: value / busy for kind, value in share.items()} if busy else {},
        sync_per_step_s=sync, cores=cores, tiles=tiles, event_times=times, static_energy_j=static_j,
        static_source=static_source, notes=tuple(notes),
    )

