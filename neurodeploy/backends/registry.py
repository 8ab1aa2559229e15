"""The one table of backends: their names, modes, the run families they execute and the options they take
(docs/architecture.md: adding a backend). Everything else asks it; no other module spells out a list of
backend names (``tests/test_architecture.py`` checks).

A chip backend runs spike inputs (N, n_in, T) through a netx file and returns the recorded spikes and
synaptic counts (:class:`~neurodeploy.backends.spike_run.SpikeRun`) with the run's mode: ``hardware`` (a
Loihi 2 board), ``simulated`` (Lava's CPU simulator) or ``emulated`` (neurodeploy's bit-exact emulator).
``SpikeRun.wall_s`` is the backend's own wall time for the batch (``latency_kind`` says what it includes).
The float ``torch`` backend has no chip runner: the pipeline runs the trained network itself (mode
``float``, :mod:`.torch_float`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from neurodeploy.backends import lava_sim, loihi2_board
from neurodeploy.backends.emulator import run_emulator
from neurodeploy.backends.spike_run import SpikeRun
from neurodeploy.backends.torch_float import FLOAT_PROFILE
from neurodeploy.deploy.netx import load_netx
from neurodeploy.errors import OptionError, UserError

Progress = Callable[[int, int], None]

MODES = ("float", "simulated", "emulated", "hardware")
# Options of `run` that only some backends honour (the request refuses them elsewhere):
# count_only: --count-only; net_input: a .net file or --input spikes; require_hardware: --require-hardware
OPTIONS = ("count_only", "net_input", "require_hardware")
SPIKING_FAMILIES = ("snn", "rsnn")  # what a chip backend runs (an rsnn's classifier; its front end is on torch)


@dataclass
class ChipExecution:
    """A SpikeRun plus how it was produced; ``banner`` is printed before the report (e.g. an emulation
    standing in for a board)."""

    spike_run: SpikeRun
    mode: str
    backend_label: str
    banner: str | None = None


class ChipRunner(Protocol):
    """What a chip backend's file provides: ``run`` a batch through a netx file."""

    latency_kind: str

    def run(self, net_path: Path, inputs: np.ndarray, *, require_hardware: bool,
            progress: Progress | None, count_layers: bool = False) -> ChipExecution:
        """``count_layers``: the backend may keep only counts of the hidden layers (``SpikeRun.counted``)."""


@dataclass(frozen=True)
class Backend:
    """One row of the table.

    ``mode`` is what the backend aims at (``loihi2`` is ``hardware``, and reports ``emulated`` when no board
    answers). ``families``: the run families it executes. ``options``: the entries of :data:`OPTIONS` it
    honours. ``runner``: the chip backend's runner; None for the float backend, which the pipeline runs
    itself. ``default_samples``: test samples a run takes without ``--samples`` (None: all).
    ``in_studies``: a study's spiking cells may name it as ``snn_backend``.
    """

    name: str
    mode: str
    summary: str
    families: tuple[str, ...] = SPIKING_FAMILIES
    options: frozenset[str] = frozenset()
    runner: ChipRunner | None = None
    default_profile: str = "loihi2"  # hardware profile that prices its counts (hw_configs/)
    default_samples: int | None = None
    in_studies: bool = False
    latency_kind: str = field(default="")

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"backend {self.name}: mode {self.mode!r} is not one of {', '.join(MODES)}")
        unknown = set(self.options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"backend {self.name}: unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}")
        if self.runner is not None and not self.latency_kind:
            object.__setattr__(self, "latency_kind", self.runner.latency_kind)

    @property
    def is_chip(self) -> bool:
        """Runs a netx file (the float backend runs the trained network)."""
        return self.runner is not None

    def honours(self, option: str) -> bool:
        return option in self.options


@dataclass(frozen=True)
class LavaRunner:
    latency_kind: str = "Lava CPU simulator wall time (build, compile, run, readback)"

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        """``count_layers``: hidden layers counted inside Lava, only the output's trains read back."""
        return ChipExecution(lava_sim.run_lava(net_path, inputs, progress=progress, count_layers=count_layers),
                             "simulated", "lava")


@dataclass(frozen=True)
class EmulatorRunner:
    latency_kind: str = "emulator wall time on the host CPU"

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        return ChipExecution(run_emulator(load_netx(net_path), inputs, progress=progress), "emulated", "emulator")


@dataclass(frozen=True)
class Loihi2Runner:
    """A Loihi 2 board when Intel's lava-loihi finds one (:mod:`.loihi2_board`: adapters between host and
    chip, as lava-dl's netx hardware examples build it); otherwise the bit-exact emulation, with a banner."""

    latency_kind: str = "board wall time, or emulator wall time when emulated"

    def run(self, net_path, inputs, *, require_hardware, progress, count_layers=False) -> ChipExecution:
        if lava_sim.loihi2_hardware_available():
            return ChipExecution(loihi2_board.run_board(net_path, inputs, progress=progress), "hardware", "loihi2",
                                 loihi2_board.NOT_RUN_ON_A_BOARD)
        if require_hardware:
            raise UserError("--require-hardware: no Loihi 2 board found (Intel's lava-loihi extension is not "
                            "installed or no board answers); drop --require-hardware to run the bit-exact emulation")
        banner = ("no Loihi 2 hardware found: running the bit-exact fixed-point EMULATION (mode: emulated); "
                  "numbers are not measured on a chip")
        return ChipExecution(run_emulator(load_netx(net_path), inputs, progress=progress), "emulated", "loihi2",
                             banner)


_TABLE: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add ``backend`` to the table (one line per backend below; a plug-in or a test may add more)."""
    if backend.name in _TABLE:
        raise ValueError(f"backend {backend.name} is already registered")
    _TABLE[backend.name] = backend
    return backend


@contextlib.contextmanager
def registered(backend: Backend) -> Iterator[Backend]:
    """``backend`` in the table for the duration of a ``with`` block (tests, plug-ins tried out)."""
    register(backend)
    try:
        yield backend
    finally:
        _TABLE.pop(backend.name, None)


register(Backend(name="lava", mode="simulated", runner=LavaRunner(), default_samples=500, in_studies=True,
                 options=frozenset({"count_only", "net_input"}),
                 summary="Lava's CPU simulator, fixed_pt (mode simulated)"))
register(Backend(name="loihi2", mode="hardware", runner=Loihi2Runner(),
                 options=frozenset({"net_input", "require_hardware"}),
                 summary="a Loihi 2 board when lava-loihi finds one (mode hardware), else the emulator with a "
                         "banner (mode emulated)"))
register(Backend(name="emulator", mode="emulated", runner=EmulatorRunner(), in_studies=True,
                 options=frozenset({"net_input"}),
                 summary="neurodeploy's bit-exact fixed-point emulator (mode emulated)"))
register(Backend(name="torch", mode="float", families=("snn", "rsnn", "rnn", "lstm", "ann", "tcnn"),
                 default_profile=FLOAT_PROFILE, in_studies=True, latency_kind="float model wall time on --device",
                 summary="the trained float model on --device (mode float)"))


def backend(name: str) -> Backend:
    """The registered backend ``name``; an unknown name is an OptionError listing the known ones."""
    try:
        return _TABLE[name]
    except KeyError:
        raise OptionError(f"unknown --backend '{name}'; choose one of {', '.join(_TABLE)}") from None


def names(*, family: str | None = None, option: str | None = None, chip: bool | None = None,
          in_studies: bool | None = None) -> tuple[str, ...]:
    """Registered backend names in table order, optionally only those running ``family``, honouring
    ``option``, on a chip (or not), or allowed in studies."""
    return tuple(b.name for b in _TABLE.values()
                 if (family is None or family in b.families) and (option is None or option in b.options)
                 and (chip is None or b.is_chip == chip) and (in_studies is None or b.in_studies == in_studies))


def choices(**selection) -> str:
    """Names joined for a help text or a message: ``lava | loihi2 | emulator | torch``."""
    return " | ".join(names(**selection))


SUGGESTED_MODES = ("emulated", "float", "simulated", "hardware")  # fastest first, no board needed first


def suggested(family: str | None) -> str:
    """The backend a message suggests for a run of ``family`` (None: an SNN): the fastest that runs it."""
    runs = [b for b in _TABLE.values() if (family or "snn") in b.families] or list(_TABLE.values())
    return min(runs, key=lambda b: SUGGESTED_MODES.index(b.mode)).name


def chip_backend(name: str) -> ChipRunner:
    """The runner of chip backend ``name`` (a UserError for the float backend or an unknown name)."""
    runner = backend(name).runner
    if runner is None:
        raise UserError(f"--backend {name} runs the trained float model, not a netx file; choose one of "
                        f"{', '.join(names(chip=True))}")
    return runner


def default_profile(name: str) -> str:
    """The hardware profile a run on backend ``name`` is priced with unless ``--hw`` names another."""
    return backend(name).default_profile
