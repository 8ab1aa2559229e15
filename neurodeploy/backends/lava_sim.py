"""Run a netx network on Lava's CPU simulator, ``Loihi2SimCfg(select_tag="fixed_pt")``, and record spikes.

All Lava imports go through :mod:`neurodeploy.lava_compat` and happen inside functions.

Many samples per Lava run
-------------------------
Starting Lava costs ~0.3 s per run plus ~2 s of imports per process, so :func:`run_lava` runs a batch of
samples back to back in one run and returns them as if each had its own fresh T-step run. Two exact
schedules are implemented (the tests check both against one run per sample):

- ``"reset"`` (any network): every neuron is a ``LIFReset`` whose ``u`` and ``v`` are zeroed at the first
  step of every sample (netx's ``reset_interval = T``, each layer's offset overwritten to that same step),
  and an ``io.reset.Reset`` process zeroes each synapse's accumulation buffer (Dense/DelayDense ``a_buff``,
  Conv ``a_buf``, both synapses of a recurrent layer) in the management phase after each sample's last
  step. Nothing from one sample reaches the next, whatever the biases, delays or recurrence.
- ``"gap"`` (no biases, no recurrence; no extra processes, ~20% faster): zero steps between samples, with
  per-layer reset offsets computed here. After each sample come G = sum over synaptic layers of
  (1 + max delay) zero steps, and layer k is reset at global step ``s*(T+G) + 1 - sum_{j>k}(1 + dmax_j)``,
  once everything upstream is silent. netx's own offsets (+1 per layer) give this only for two layers with
  ``reset_offset=-1``, which is why that setting works for two-layer networks; on three layers it is off. A
  bias makes silent layers fire, so no gap separates samples then.

``"auto"`` picks ``"gap"`` when it is exact and ``"reset"`` otherwise; ``"separate"`` runs one Lava run per
sample.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy import lava_compat, signals
from neurodeploy.backends.emulator import validate_inputs
from neurodeploy.backends.spike_run import LayerActivity, SpikeRun
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import NetxNetwork
from neurodeploy.errors import UserError
from neurodeploy.kernels.lava_limits import MAX_CONV_GROUPS

BATCHING = ("auto", "reset", "gap", "separate")
READBACK = ("file", "var")
# neuron updates per Lava run by default: the 2312-512-10 MLP runs 500 samples at once, the 270k-neuron DVS
# Gesture CNN one sample per run, so long runs report progress and each run's overhead (~1 s) stays small
LAVA_RUN_NEURON_STEPS = 4_000_000
LAVA_MULTIPROCESSING = "lava.magma.runtime.message_infrastructure.multiprocessing"
_FORKING_LAVA_WORKERS = threading.Event()


_forking_pid = os.getpid()


def _remember_forking_pid() -> None:
    global _forking_pid
    _forking_pid = os.getpid()


def _lava_worker_signals() -> None:
    # Ctrl-C, SIGTERM and a hang-up may reach the whole process group; the parent stops the workers
    # (_abort_runtime), so they leave every terminating signal to it (and die with it, even by SIGKILL).
    if _FORKING_LAVA_WORKERS.is_set():
        signals.leave_to_parent(_forking_pid)


os.register_at_fork(before=_remember_forking_pid, after_in_child=_lava_worker_signals)


def loihi2_hardware_available() -> bool:
    """True only when Intel's lava-loihi extension is installed and reports a Loihi 2 system.

    ``lava.utils.loihi.is_installed()`` checks for lava-loihi; a board is then reachable through SLURM
    (``lava.utils.slurm.is_available()``) or a configured Ethernet host (``NXSDKHOST``). Any import or
    probing failure counts as "no hardware".
    """
    try:
        loihi = lava_compat.lava_module("lava.utils.loihi")
        if not loihi.is_installed():
            return False
        slurm = lava_compat.lava_module("lava.utils.slurm")
        return bool(slurm.is_available()) or "NXSDKHOST" in os.environ
    except Exception:  # noqa: BLE001 - any failure to probe means we cannot use hardware
        return False


def netx_load_error(path: str | Path, exc: BaseException) -> UserError:
    """A netx failure while building ``hdf5.Network`` as a one-line UserError naming the file."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(
        f"{path}: lava-dl netx could not build this network ({type(exc).__name__}: {detail}); "
        "check it with `neurodeploy` model inspection or re-export it with lava-dl"
    )


@dataclass(frozen=True)
class _Lava:
    """The Lava modules a run needs (imported through lava_compat)."""

    netx: object
    source: object
    sink: object
    reset: object
    run_configs: object
    run_conditions: object
    recorder: object

    @classmethod
    def load(cls) -> _Lava:
        _import_lava_multiprocessing()
        signals.start_resource_tracker()
        from neurodeploy.lava_procs import recorder  # Lava: the module defines Lava Process classes at load

        return cls(
            netx=lava_compat.netx(),
            source=lava_compat.lava_module("lava.proc.io.source"),
            sink=lava_compat.lava_module("lava.proc.io.sink"),
            reset=lava_compat.lava_module("lava.proc.io.reset"),
            run_configs=lava_compat.lava_module("lava.magma.core.run_configs"),
            run_conditions=lava_compat.lava_module("lava.magma.core.run_conditions"),
            recorder=recorder,
        )


def _import_lava_multiprocessing() -> None:
    """Import Lava's message infrastructure, which needs the 'fork' multiprocessing start method
    (:mod:`neurodeploy.lava_compat`, fix 3, lets it import when 'fork' is already set)."""
    method = multiprocessing.get_start_method(allow_none=True)
    if LAVA_MULTIPROCESSING not in sys.modules and method not in (None, "fork"):
        raise UserError(f"Lava needs the 'fork' multiprocessing start method, this process uses '{method}'; "
                        "run Lava in a fresh process")
    lava_compat.lava_module(LAVA_MULTIPROCESSING)


def _to_lava_layout(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(n, steps) flat in (C, H, W) order -> Lava's (x, y, z) = (W, H, C) order, (W, H, C, steps)."""
    if len(shape) == 1:
        return flat
    return flat.reshape(*shape, flat.shape[-1]).transpose(2, 1, 0, 3)


def _from_lava_layout(data: np.ndarray) -> np.ndarray:
    """Sink data (x, y, z, steps) or (n, steps) -> (n, steps) flat in (C, H, W) order."""
    if data.ndim == 2:
        return data
    return data.transpose(2, 1, 0, 3).reshape(-1, data.shape[-1])


def _from_record_file(rows: np.ndarray, port_shape: tuple[int, ...]) -> np.ndarray:
    """SpikeRecorder rows (steps, x*y*z) in Lava's (x, y, z) order -> (n, steps) flat in (C, H, W) order."""
    return _from_lava_layout(rows.T.reshape(*port_shape, rows.shape[0]))


def _synapse_buffers(block) -> list:
    """The accumulation-buffer Vars of one netx block (what carries activity to the next step)."""
    buffers = []
    for name in ("synapse", "synapse_rec"):
        synapse = getattr(block, name, None)
        if synapse is None:
            continue
        buffers.append(synapse.a_buf if hasattr(synapse, "a_buf") else synapse.a_buff)
    return buffers


@dataclass(frozen=True)
class _Schedule:
    """How one Lava run lays out samples in time."""

    interval: int | None  # steps per sample including any gap; None = no resets (a single sample)
    gap: int  # zero steps after each sample
    layer_reset_steps: tuple[int, ...]  # per layer: time_step % interval at which u, v are zeroed
    reset_synapses: bool


def _schedule(net: NetxNetwork, steps: int, batching: str, samples: int) -> _Schedule:
    if samples == 1 or batching == "separate":
        return _Schedule(None, 0, (), False)
    if batching == "reset":
        return _Schedule(steps, 0, (1 % steps,) * len(net.layers), True)
    lags = [1 + (int(layer.delay.max()) if layer.delay is not None else 0) for layer in net.layers]
    gap = sum(lags)
    interval = steps + gap
    after = np.cumsum(lags[::-1])[::-1] - np.asarray(lags)  # sum of lags of the layers after k
    return _Schedule(interval, gap, tuple(int((1 - a) % interval) for a in after), False)


def _gap_blocker(net: NetxNetwork):
    """The first layer whose bias or recurrence keeps activity alive through a gap, or None."""
    for layer in net.layers:
        if (layer.bias is not None and np.any(layer.bias)) or layer.kind == "dense_rec":
            return layer
    return None


def warm_up_lava() -> None:
    """Import everything a Lava run needs (about 2 s once per process), e.g. before timing a run."""
    _Lava.load()


@dataclass(frozen=True)
class _Counting:
    """Layers counted inside Lava (SpikeCounter) in one run of ``samples`` samples, ``period`` steps apart."""

    positions: tuple[int, ...]
    samples: int
    steps: int
    period: int


def _run_once(lava: _Lava, net: NetxNetwork, num_layers: int | None, data: np.ndarray,
              positions: list[int], schedule: _Schedule, timings: dict[str, float], readback: str = "file",
              counting: _Counting | None = None) -> tuple[list[np.ndarray], list[LayerActivity]]:
    """One Lava run over ``data`` (n_in, total_steps); returns flat (n, total_steps) int arrays per recorded
    layer and the activity of each counted layer.

    Adds the seconds spent in ``network.run`` and in reading the recordings back to ``timings``.
    """
    if readback == "file":
        with tempfile.TemporaryDirectory(prefix="neurodeploy-lava-") as folder:
            return _run_recorded(lava, net, num_layers, data, positions, schedule, timings, Path(folder), counting)
    return _run_recorded(lava, net, num_layers, data, positions, schedule, timings, None)


def _counter(lava: _Lava, out, folder: Path, position: int, counting: _Counting):
    neurons = int(np.prod(out.shape))
    path, first = folder / f"counts{position}.npy", folder / f"first{position}.npy"
    lava.recorder.create_count_file(path, counting.samples, neurons, counting.steps)
    lava.recorder.create_record_file(first, counting.steps, neurons)
    return lava.recorder.SpikeCounter(shape=out.shape, path=path, first_path=first, period=counting.period,
                                      steps=counting.steps)


def _counted_activity(counter) -> LayerActivity:
    """A SpikeCounter's files -> LayerActivity with neurons in (C, H, W) order."""
    shape = counter.a_in.shape
    neurons = int(np.prod(shape))
    counts = np.load(counter.proc_params["path"])
    per_neuron = _from_lava_layout(counts[:, :neurons].T.reshape(*shape, -1)).T
    first = _from_record_file(np.load(counter.proc_params["first_path"]), shape)
    return LayerActivity(np.ascontiguousarray(per_neuron), counts[:, neurons:].copy(), first.astype(np.uint8))


def _run_recorded(lava: _Lava, net: NetxNetwork, num_layers: int | None, data: np.ndarray,
                  positions: list[int], schedule: _Schedule, timings: dict[str, float], folder: Path | None,
                  counting: _Counting | None = None
                  ) -> tuple[list[np.ndarray], list[LayerActivity]]:
    """:func:`_run_once` with SpikeRecorders (and SpikeCounters) writing into ``folder``, or RingBuffer sinks
    when it is None."""
    total_steps = data.shape[-1]
    kwargs = {"net_config": str(net.path), "num_layers": num_layers}
    if schedule.interval is not None:
        kwargs.update(reset_interval=schedule.interval, reset_offset=0)
    try:
        network = lava.netx.hdf5.Network(**kwargs)
    except Exception as exc:  # netx raises anything from KeyError to RuntimeError
        raise netx_load_error(net.path, exc) from exc
    try:
        if len(network.layers) != len(net.layers):
            raise UserError(f"{net.path}: netx built {len(network.layers)} layers, neurodeploy read "
                            f"{len(net.layers)}; report this file as a bug")
        # the network's input port has the first block's input shape: (n,) for dense, (W, H, C) for conv
        source = lava.source.RingBuffer(data=_to_lava_layout(data.astype(np.int32), net.layers[0].in_shape))
        source.s_out.connect(network.inp)
        sinks = []
        for position in positions:
            out = network.layers[position].out
            if folder is None:
                sink = lava.sink.RingBuffer(shape=out.shape, buffer=total_steps)
            else:
                path = folder / f"layer{position}.npy"
                lava.recorder.create_record_file(path, total_steps, int(np.prod(out.shape)))
                sink = lava.recorder.SpikeRecorder(shape=out.shape, path=path)
            out.connect(sink.a_in)
            sinks.append(sink)
        counters = []
        for position in counting.positions if counting is not None else ():
            counter = _counter(lava, network.layers[position].out, folder, position, counting)
            network.layers[position].out.connect(counter.a_in)
            counters.append(counter)
        if schedule.interval is not None:
            for block, step in zip(network.layers, schedule.layer_reset_steps):
                block.neuron.proc_params.overwrite("reset_offset", step)
            if schedule.reset_synapses:
                for block in network.layers:
                    for var in _synapse_buffers(block):
                        resetter = lava.reset.Reset(interval=schedule.interval, offset=schedule.interval - 1)
                        resetter.connect_var(var)
        config = lava.run_configs.Loihi2SimCfg(select_tag="fixed_pt")
        started = time.perf_counter()
        _FORKING_LAVA_WORKERS.set()
        try:
            network.run(condition=lava.run_conditions.RunSteps(num_steps=total_steps), run_cfg=config)
        finally:
            _FORKING_LAVA_WORKERS.clear()
        ran = time.perf_counter()
        if folder is None:
            recorded = [_from_lava_layout(np.asarray(sink.data.get())) for sink in sinks]
        else:
            recorded = [_from_record_file(np.load(sink.proc_params["path"]), sink.a_in.shape) for sink in sinks]
        activities = [_counted_activity(counter) for counter in counters]
        timings["run_s"] += ran - started
        timings["readback_s"] += time.perf_counter() - ran
    except BaseException:  # errors and KeyboardInterrupt: stop the runtime, keep the original error
        _abort_runtime(network)
        raise
    network.stop()
    return recorded, activities


def _concatenate(chunks: list[LayerActivity]) -> LayerActivity:
    """One layer's activity over the Lava runs of a batch, samples in order."""
    return LayerActivity(np.concatenate([c.per_neuron for c in chunks]), np.concatenate([c.per_step for c in chunks]),
                         chunks[0].first)


def _abort_runtime(network) -> None:
    """Terminate the worker processes of a failed or interrupted run.

    Lava's ``stop()`` waits for an answer from every runtime service: forever once a worker has died (an
    exception in a process model, or Ctrl-C, which reaches the whole process group).
    """
    runtime = getattr(network, "runtime", None)
    workers = getattr(runtime, "_messaging_infrastructure", None)
    if workers is None:  # no worker was started: Lava's own stop() cannot block
        with contextlib.suppress(Exception):
            network.stop()
        return
    for actor in workers.actors:  # they ignore SIGTERM (signals.leave_to_parent) and hold no resource
        with contextlib.suppress(ValueError):  # ValueError: Lava already joined and closed it
            actor.kill()
            multiprocessing.Process.join(actor, timeout=10)
    with contextlib.suppress(Exception):
        runtime.join()  # the parent's channel threads
    with contextlib.suppress(Exception):
        workers.smm.shutdown()  # the shared-memory manager's server: unlinks every segment, then exits
    runtime._is_started = False  # or Runtime.__del__ calls the blocking stop() again


def run_lava(
    net_path: str | Path,
    inputs: np.ndarray,
    *,
    record_layers: bool = True,
    count_layers: bool = False,
    num_layers: int | None = None,
    batching: str = "auto",
    samples_per_run: int | None = None,
    readback: str = "file",
    progress: Callable[[int, int], None] | None = None,
) -> SpikeRun:
    """Run ``inputs`` (N, n_in, T) through the netx file on Lava's fixed-point CPU simulator.

    Returns a :class:`SpikeRun` that looks exactly like N separate fresh T-step runs.

    - ``record_layers=False`` records only the output layer; ``num_layers`` keeps the first file layers,
      as in netx.
    - ``count_layers=True`` records the output layer's spike trains and counts every other layer inside
      Lava with a :class:`~neurodeploy.lava_procs.recorder.SpikeCounter` (per neuron and per step of each
      sample, plus the first sample's trains), returned in ``SpikeRun.counted``: per-layer reports of a big
      network without reading every value back (file readback only).
    - ``readback="file"`` records each layer with a :class:`~neurodeploy.lava_procs.recorder.SpikeRecorder`
      writing to a memory-mapped file; ``"var"`` uses Lava's ``io.sink.RingBuffer`` and ``Var.get()``, which
      costs 14-40 us per recorded value (minutes for one conv layer) and is kept as the reference the
      recorder is tested against.
    - ``samples_per_run`` caps the samples in one Lava run. By default a run holds about
      ``LAVA_RUN_NEURON_STEPS`` neuron updates: all samples of a small MLP, one sample of a big CNN.
      ``progress(done, total)`` is called after every run.
    - The Lava runtime is always stopped, also on errors and KeyboardInterrupt. ``metadata`` holds ``run_s``
      (inside ``network.run``), ``readback_s`` (reading the recordings) and ``runs``; ``wall_s`` also counts
      building and compiling, not imports.

    A Loihi 2 board runs through :mod:`neurodeploy.backends.loihi2_board` (adapters between host and chip).
    """
    if batching not in BATCHING:
        raise UserError(f"unknown batching {batching!r}; choose one of {', '.join(BATCHING)}")
    if readback not in READBACK:
        raise UserError(f"unknown readback {readback!r}; choose one of {', '.join(READBACK)}")
    net = load_netx(net_path, num_layers=num_layers)
    inputs = validate_inputs(net, inputs)
    for layer in net.layers:
        if layer.kind == "conv" and layer.groups > MAX_CONV_GROUPS:
            raise UserError(
                f"{net.path}: layer {layer.index} (conv) has {layer.groups} groups, but Lava's CPU Conv stores "
                f"groups as int8 and would silently output nothing; re-export with at most {MAX_CONV_GROUPS} "
                "groups (the emulator runs it as written)"
            )
        if layer.kind == "input":
            raise UserError(
                f"{net.path}: layer {layer.index} (input) has a neuron, which netx drives only through its "
                "bias, so spike inputs cannot reach the network; export it with a plain input layer"
            )
    blocker = _gap_blocker(net)
    if batching == "gap" and blocker is not None:
        raise UserError(
            f"{net.path}: layer {blocker.index} ({blocker.kind}) has a bias or recurrence, which gap batching "
            "cannot separate between samples; use batching='reset'"
        )
    if count_layers and readback != "file":
        raise UserError("counting spikes inside Lava needs the file readback (not 'var')")
    if batching == "auto":
        batching = "reset" if blocker is not None else "gap"
    started = time.perf_counter()
    lava = _Lava.load()
    n_samples, _, steps = inputs.shape
    positions = list(range(len(net.layers))) if record_layers and not count_layers else [len(net.layers) - 1]
    counted_positions = tuple(range(len(net.layers) - 1)) if count_layers else ()
    outputs = [np.empty((n_samples, net.layers[p].neurons, steps), dtype=np.uint8) for p in positions]
    counted: list[list[LayerActivity]] = [[] for _ in counted_positions]
    if samples_per_run is None:
        neuron_steps = sum(layer.neurons for layer in net.layers) * steps
        samples_per_run = max(1, LAVA_RUN_NEURON_STEPS // max(neuron_steps, 1))
    per_run = min(n_samples if batching != "separate" else 1, samples_per_run)
    timings = {"run_s": 0.0, "readback_s": 0.0, "runs": 0}
    for first in range(0, n_samples, per_run):
        batch = inputs[first:first + per_run]
        schedule = _schedule(net, steps, batching, len(batch))
        padded = np.concatenate([batch, np.zeros((len(batch), net.num_inputs, schedule.gap), np.uint8)], axis=2)
        data = padded.transpose(1, 0, 2).reshape(net.num_inputs, -1)  # samples back to back in time
        period = steps + schedule.gap
        counting = _Counting(counted_positions, len(batch), steps, period) if counted_positions else None
        recorded, activities = _run_once(lava, net, num_layers, data, positions, schedule, timings, readback,
                                         counting)
        for chunks, activity in zip(counted, activities):
            chunks.append(activity)
        for output, spikes in zip(outputs, recorded):
            per_sample = spikes.reshape(spikes.shape[0], len(batch), period)[:, :, :steps]
            output[first:first + len(batch)] = per_sample.transpose(1, 0, 2).astype(np.uint8)
        timings["runs"] += 1
        if progress is not None:
            progress(first + len(batch), n_samples)
    return SpikeRun(
        inputs=inputs, layer_spikes=outputs, steps=steps, backend="lava",
        wall_s=time.perf_counter() - started, layer_indices=tuple(positions),
        counted={p: _concatenate(chunks) for p, chunks in zip(counted_positions, counted)},
        metadata={"batching": batching, "readback": readback, "lava": lava_compat.versions(),
                  **timings},
    )
