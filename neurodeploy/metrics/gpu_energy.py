"""Latency, throughput and measured energy of PyTorch inference (the GPU side of ``compare``).

Energy is read from NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``: millijoules since
the driver was loaded, Volta and newer) before and after the timed region: ``E = (e1 - e0) / 1000`` J. It is
the energy of the whole board over that wall time (idle power and any other process on the same GPU
included), which is why the timed region repeats the batches for at least ``min_duration_s``: the counter
updates only every few tens of milliseconds. Without CUDA, without ``nvidia-ml-py`` or on a GPU whose counter
is not supported, only timing is returned (``energy_kind=None``) and the caller estimates energy from
op counts x a hardware profile, labelled ``estimated``.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from neurodeploy.errors import UserError

INSTALL_HINT = "pip install 'neurodeploy[gpu]' (nvidia-ml-py)"


class EnergyUnavailable(Exception):
    """NVML cannot give an energy reading for this device; the message says why."""


class NvmlEnergyCounter:
    """NVML's cumulative energy counter of one GPU, read in joules.

    ``index`` is an NVML device index; :meth:`for_cuda_device` finds the one behind a torch CUDA device.
    ``open()`` / ``close()`` wrap ``nvmlInit`` / ``nvmlShutdown``; any NVML failure is raised as
    :class:`EnergyUnavailable`.
    """

    def __init__(self, index: int | None = None, uuid: str | None = None):
        self.index = index
        self.uuid = uuid
        self._nvml = None
        self._handle = None

    @classmethod
    def for_cuda_device(cls, device: torch.device) -> NvmlEnergyCounter:
        index = device.index if device.index is not None else torch.cuda.current_device()
        # NVML numbers GPUs by PCI bus, CUDA by speed unless CUDA_DEVICE_ORDER=PCI_BUS_ID, and
        # CUDA_VISIBLE_DEVICES renumbers them; the UUID names the same board in both.
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        return cls(index=index, uuid=f"GPU-{uuid}" if uuid is not None else None)

    def open(self) -> NvmlEnergyCounter:
        try:
            import pynvml  # optional GPU extra (nvidia-ml-py): CUDA machines only
        except ImportError as exc:
            raise EnergyUnavailable(f"NVML bindings not installed; {INSTALL_HINT}") from exc
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise EnergyUnavailable(f"NVML did not start ({exc})") from exc
        self._nvml = pynvml
        try:
            self._handle = self._find_handle(pynvml)
            self.read_j()  # fails here, not after the run, when the counter is not supported
        except EnergyUnavailable:
            self.close()
            raise
        return self

    def _find_handle(self, pynvml):
        try:
            if self.uuid is not None:
                try:
                    return pynvml.nvmlDeviceGetHandleByUUID(self.uuid)
                except pynvml.NVMLError:
                    pass  # e.g. a MIG instance UUID; fall back to the index
            return pynvml.nvmlDeviceGetHandleByIndex(self.index or 0)
        except pynvml.NVMLError as exc:
            raise EnergyUnavailable(f"NVML has no GPU {self.uuid or self.index} ({exc})") from exc

    def read_j(self) -> float:
        """Energy used by the board since the driver loaded, in joules."""
        try:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0
        except self._nvml.NVMLError as exc:
            raise EnergyUnavailable(f"NVML energy counter unavailable on this GPU ({exc}); it needs Volta "
                                    "or newer") from exc

    def read_power_w(self) -> float | None:
        """The board's power draw now (``nvmlDeviceGetPowerUsage``, mW -> W), or None when NVML has none."""
        try:
            return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
        except (self._nvml.NVMLError, AttributeError):
            return None

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
        self._nvml = None
        self._handle = None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EnergyMeter:
    """Context manager timing a region on ``device`` and, on a CUDA device with NVML, its energy.

    After the ``with`` block: ``wall_s`` (seconds), ``energy_j`` (joules, or None) and ``energy_kind``
    ('measured' or None); ``unavailable_reason`` says why there is no energy. CUDA work queued inside the
    block is waited for before the clock and the counter are read. ``counter`` overrides the NVML counter
    chosen for ``device`` (another GPU of the same board, or tests).
    """

    def __init__(self, device: torch.device | str, counter: NvmlEnergyCounter | None = None):
        self.device = torch.device(device)
        self.counter = counter
        if counter is None and self.device.type == "cuda":
            self.counter = NvmlEnergyCounter.for_cuda_device(self.device)
        self.wall_s: float = 0.0
        self.energy_j: float | None = None
        self.unavailable_reason: str | None = (
            None if self.counter is not None else f"no energy counter for {self.device}")
        self.idle_power_w: float | None = None  # board power sampled before the timed region
        self._start_j: float | None = None
        self._opened = False
        self._start_s = 0.0

    @property
    def energy_kind(self) -> str | None:
        return "measured" if self.energy_j is not None else None

    @property
    def idle_energy_j(self) -> float | None:
        """Idle part of the measured energy: board power before the run x run time (at most the total)."""
        if self.energy_j is None or self.idle_power_w is None:
            return None
        return min(self.energy_j, self.idle_power_w * self.wall_s)

    def __enter__(self) -> EnergyMeter:  # noqa: PYI034 - Self needs Python 3.11
        _synchronize(self.device)
        if self.counter is not None and not self._opened:
            try:
                self.counter.open()
                self._opened = True
                self.idle_power_w = self.counter.read_power_w()
                self._start_j = self.counter.read_j()
            except EnergyUnavailable as exc:
                self.unavailable_reason = str(exc)
                if self._opened:
                    self.counter.close()
                    self._opened = False
        self._start_s = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            _synchronize(self.device)
            self.wall_s = time.perf_counter() - self._start_s
            if self._opened and exc_type is None:
                self._finish_energy()
        finally:
            if self._opened:
                self.counter.close()
                self._opened = False

    def _finish_energy(self) -> None:
        try:
            used_j = self.counter.read_j() - self._start_j
        except EnergyUnavailable as exc:
            self.unavailable_reason = str(exc)
            return
        if used_j < 0:
            self.unavailable_reason = f"NVML energy counter went backwards ({used_j:.3f} J); driver reloaded?"
            return
        if used_j == 0:
            self.unavailable_reason = (f"NVML energy counter did not advance in {self.wall_s:.3f} s; measure "
                                       "over a longer run (min_duration_s)")
            return
        self.energy_j = used_j


def device_name(device: torch.device | str) -> str:
    """A readable name: the GPU model, or the CPU model and the threads torch uses."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class InferenceMeasurement:
    """Timing (always) and energy (measured on a GPU, or filled in later as an estimate) per sample."""

    latency_s_per_sample: float
    samples_per_s: float
    energy_j_per_sample: float | None
    energy_kind: str | None  # 'measured' | 'estimated' | None (not known yet)
    device_name: str
    samples: int
    wall_s: float
    batch_size: int
    energy_note: str | None = None
    idle_energy_j_per_sample: float | None = None  # board power before the run x time, per sample

    def __post_init__(self):
        if self.energy_kind not in (None, "measured", "estimated"):
            raise ValueError(f"energy_kind must be 'measured', 'estimated' or None, not {self.energy_kind!r}")
        if (self.energy_kind is None) != (self.energy_j_per_sample is None):
            raise ValueError("an energy figure needs its kind, and a kind needs a figure")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _inputs(batches: Iterable) -> list[torch.Tensor]:
    inputs = [batch[0] if isinstance(batch, (tuple, list)) else batch for batch in batches]
    if not inputs:
        raise UserError("no batches to measure; give at least one batch of samples")
    return inputs


def measure_inference(model: torch.nn.Module, batches: Iterable, device: torch.device | str, *,
                      warmup_batches: int = 2, min_duration_s: float = 1.0,
                      counter: NvmlEnergyCounter | None = None,
                      require_measured: bool = False) -> InferenceMeasurement:
    """Time ``model`` on ``batches`` (tensors, or tuples whose first item is the input) and measure energy.

    The batches are moved to ``device`` before timing (the model's compute is measured, not host transfers);
    ``warmup_batches`` forward passes run first (CUDA context, kernels, allocator). The timed region passes
    over all batches, repeated until ``min_duration_s`` has elapsed. Per sample:
    ``latency_s = wall_s / samples``, ``energy_j = E / samples``. ``require_measured`` turns missing energy
    into a UserError instead of ``energy_kind=None``.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for, but torch sees no CUDA device; use --device cpu")
    inputs = [x.to(device, non_blocking=True) for x in _inputs(batches)]
    model = model.to(device).eval()
    samples = 0
    with torch.inference_mode():
        for index in range(warmup_batches):
            model(inputs[index % len(inputs)])
        meter = EnergyMeter(device, counter)
        with meter:
            started = time.perf_counter()
            while True:
                for x in inputs:
                    model(x)
                    samples += x.shape[0]
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if time.perf_counter() - started >= min_duration_s:
                    break
    if require_measured and meter.energy_j is None:
        raise UserError(f"no measured energy on {device}: {meter.unavailable_reason}")
    wall_s = max(meter.wall_s, 1e-12)
    return InferenceMeasurement(
        latency_s_per_sample=wall_s / samples,
        samples_per_s=samples / wall_s,
        energy_j_per_sample=None if meter.energy_j is None else meter.energy_j / samples,
        energy_kind=meter.energy_kind,
        device_name=device_name(device),
        samples=samples,
        wall_s=meter.wall_s,
        batch_size=int(inputs[0].shape[0]),
        energy_note=meter.unavailable_reason,
        idle_energy_j_per_sample=None if meter.idle_energy_j is None else meter.idle_energy_j / samples,
    )
