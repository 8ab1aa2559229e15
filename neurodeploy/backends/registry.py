"""Chip backends behind one small protocol, found by name (docs/architecture.md: adding a backend).

A chip backend runs spike inputs (N, n_in, T) through a netx file and returns the recorded spikes and
synaptic counts (:class:`~neurodeploy.backends.spike_run.SpikeRun`) with the run's mode: ``hardware`` (a
Loihi 2 board), ``simulated`` (Lava's CPU simulator) or ``emulated`` (neurodeploy's bit-exact emulator).
``SpikeRun.wall_s`` is the backend's own wall time for the batch (``latency_kind`` says what it includes).
The float ``torch`` backend runs the trained network instead of a netx file (:mod:`.torch_float`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from neurodeploy.backends import lava_sim
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.backends.spike_run import SpikeRun
from neurodeploy.backends.torch_float import FLOAT_PROFILE
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.errors import UserError

Progress = Callable[[int, int], None]


@dataclass
class ChipExecution:
    """A SpikeRun plus how it was produced."""

    spike_run: SpikeRun
    mode: str
    backend_label: str
    banner: str | None = None


class ChipBackend(Protocol):
    name: str
    default_profile: str
    latency_kind: str
    shows_progress: bool  # takes a progress(done, total) callback

    def run(self, net_path: Path, inputs: np.ndarray, *, require_hardware: bool,
            progress: Progress | None, count_layers: bool = False) -> ChipExecution:
        """``count_layers``: the backend may keep only counts of the hidden layers (``SpikeRun.counted``)."""


@dataclass(frozen=True)
class LavaBackend:
    name: str = "lava"
    default_profile: str = "loihi2"  # hardware profile that prices its counts (hw_configs/)
    latency_kind: str = "Lava CPU simulator wall time (build, compile, run, readback)"
    shows_progress: bool = True

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        """``count_layers``: hidden layers counted inside Lava, only the output's trains read back."""
        return ChipExecution(lava_sim.run_lava(net_path, inputs, progress=progress, count_layers=count_layers),
                             "simulated", self.name)


@dataclass(frozen=True)
class EmulatorBackend:
    name: str = "emulator"
    default_profile: str = "loihi2"  # hardware profile that prices its counts (hw_configs/)
    latency_kind: str = "emulator wall time on the host CPU"
    shows_progress: bool = True

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        return ChipExecution(run_emulator(load_netx(net_path), inputs, progress=progress), "emulated", self.name)


@dataclass(frozen=True)
class Loihi2Backend:
    """A Loihi 2 board when Intel's lava-loihi finds one; otherwise the bit-exact emulation, with a banner."""

    name: str = "loihi2"
    default_profile: str = "loihi2"  # hardware profile that prices its counts (hw_configs/)
    latency_kind: str = "board wall time, or emulator wall time when emulated"
    shows_progress: bool = True

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        if lava_sim.loihi2_hardware_available():
            return ChipExecution(lava_sim.run_lava(net_path, inputs, hardware=True), "hardware", self.name)
        if require_hardware:
            raise UserError("--require-hardware: no Loihi 2 board found (Intel's lava-loihi extension is not "
                            "installed or no board answers); drop --require-hardware to run the bit-exact emulation")
        banner = ("no Loihi 2 hardware found: running the bit-exact fixed-point EMULATION (mode: emulated); "
                  "numbers are not measured on a chip")
        return ChipExecution(run_emulator(load_netx(net_path), inputs, progress=progress), "emulated", self.name,
                             banner)


CHIP_BACKENDS: dict[str, ChipBackend] = {backend.name: backend
                                         for backend in (LavaBackend(), Loihi2Backend(), EmulatorBackend())}


def chip_backend(name: str) -> ChipBackend:
    try:
        return CHIP_BACKENDS[name]
    except KeyError:
        raise UserError(f"unknown chip backend '{name}'; choose one of {', '.join(CHIP_BACKENDS)}") from None


def default_profile(backend: str) -> str:
    """The hardware profile a run on ``backend`` is priced with unless ``--hw`` names another."""
    return chip_backend(backend).default_profile if backend != "torch" else FLOAT_PROFILE
