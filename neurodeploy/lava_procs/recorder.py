"""``SpikeRecorder``: a Lava process that writes the spikes it receives straight to a ``.npy`` file.

It replaces ``lava.proc.io.sink.RingBuffer`` for reading results back. A RingBuffer keeps its data in a Lava
``Var``, and ``Var.get()`` sends the array element by element over Lava's channels: about 40 us per value
was measured on the 270k-neuron DVS Gesture CNN, far longer than simulating it. The recorder's process model
receives the same spikes through a real Lava ``InPort`` at every step and writes step t's vector into row t of
a memory-mapped ``(steps, neurons)`` uint8 file that the parent created, so the parent reads everything back
at disk speed once ``run`` returns (Lava's runtime returns only after every model finished the last step).

Neurons are flat in Lava's own (x, y, z) = (W, H, C) order of the port. This module imports Lava at import
time (through :mod:`neurodeploy.lava_compat`): import it only where Lava is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy import lava_compat

_process = lava_compat.lava_module("lava.magma.core.process.process")
_ports = lava_compat.lava_module("lava.magma.core.process.ports.ports")
_decorator = lava_compat.lava_module("lava.magma.core.decorator")
_resources = lava_compat.lava_module("lava.magma.core.resources")
_model = lava_compat.lava_module("lava.magma.core.model.py.model")
_protocols = lava_compat.lava_module("lava.magma.core.sync.protocols.loihi_protocol")
_types = lava_compat.lava_module("lava.magma.core.model.py.type")
_py_ports = lava_compat.lava_module("lava.magma.core.model.py.ports")


def create_record_file(path: str | Path, steps: int, neurons: int) -> None:
    """Create the zeroed (steps, neurons) uint8 ``.npy`` a SpikeRecorder fills."""
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(steps, neurons)).flush()


class SpikeRecorder(_process.AbstractProcess):
    """Record every spike arriving at ``a_in`` (any shape) into the ``.npy`` at ``path``.

    Create the file with :func:`create_record_file` first. Step t (1-based Lava time step) goes to row
    t - 1; steps beyond the file's rows are not kept. Spike values are stored as uint8 (binary spikes: 0/1).
    """

    def __init__(self, *, shape: tuple[int, ...], path: str | Path) -> None:
        super().__init__(shape=shape, path=str(path))
        self.a_in = _ports.InPort(shape=shape)


@_decorator.implements(proc=SpikeRecorder, protocol=_protocols.LoihiProtocol)
@_decorator.requires(_resources.CPU)
@_decorator.tag("fixed_pt")
class PySpikeRecorderModel(_model.PyLoihiProcessModel):
    """Receive the port's vector each step and write it to the memory-mapped file (opened in the worker)."""

    a_in: _py_ports.PyInPort = _types.LavaPyType(_py_ports.PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._rows = None

    def run_spk(self) -> None:
        data = self.a_in.recv()
        if self._rows is None:
            self._rows = np.load(self.proc_params["path"], mmap_mode="r+")
        row = self.time_step - 1
        if row < self._rows.shape[0]:
            self._rows[row] = np.asarray(data).reshape(-1)


def create_count_file(path: str | Path, samples: int, neurons: int, steps: int) -> None:
    """Create the zeroed (samples, neurons + steps) int32 ``.npy`` a SpikeCounter fills."""
    np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=(samples, neurons + steps)).flush()


class SpikeCounter(_process.AbstractProcess):
    """Count the spikes arriving at ``a_in`` inside Lava, per sample, instead of keeping every value.

    Samples run back to back, ``period`` steps apart, each ``steps`` long (the rest of a period is a gap whose
    spikes belong to no sample). Into the int32 ``.npy`` at ``path`` (:func:`create_count_file`) row s gets
    sample s's spikes per neuron summed over its steps (the first ``neurons`` columns) and per step summed
    over the neurons (the last ``steps`` columns); the first sample's spike trains also go to the uint8
    ``(steps, neurons)`` ``.npy`` at ``first_path`` (:func:`create_record_file`), for a raster.
    """

    def __init__(self, *, shape: tuple[int, ...], path: str | Path, first_path: str | Path, period: int,
                 steps: int) -> None:
        super().__init__(shape=shape, path=str(path), first_path=str(first_path), period=int(period),
                         steps=int(steps))
        self.a_in = _ports.InPort(shape=shape)


@_decorator.implements(proc=SpikeCounter, protocol=_protocols.LoihiProtocol)
@_decorator.requires(_resources.CPU)
@_decorator.tag("fixed_pt")
class PySpikeCounterModel(_model.PyLoihiProcessModel):
    """Add each step's vector to its sample's counts in the memory-mapped files (opened in the worker)."""

    a_in: _py_ports.PyInPort = _types.LavaPyType(_py_ports.PyInPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._counts = self._first = None

    def run_spk(self) -> None:
        data = self.a_in.recv()
        if self._counts is None:
            self._counts = np.load(self.proc_params["path"], mmap_mode="r+")
            self._first = np.load(self.proc_params["first_path"], mmap_mode="r+")
        sample, step = divmod(self.time_step - 1, self.proc_params["period"])
        steps = self.proc_params["steps"]
        if step >= steps or sample >= self._counts.shape[0]:
            return
        spikes = np.asarray(data).reshape(-1)
        neurons = spikes.size
        self._counts[sample, :neurons] += spikes
        self._counts[sample, neurons + step] = int(spikes.sum())
        if sample == 0:
            self._first[step] = spikes
