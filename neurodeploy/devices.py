"""Where torch work runs: ``--device`` (cpu | cuda | cuda:N | auto) checked and resolved in one place, and a
record of the machine a report's numbers come from.

``cuda`` without a usable GPU is a :class:`~neurodeploy.errors.UserError` naming what is missing (a CPU-only
torch build, no driver / no visible GPU, or an index past the last GPU); ``auto`` takes the first GPU when
torch can use one, else the CPU. Nothing here falls back silently: a resolved device is the device used.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import torch

from neurodeploy.errors import UserError

AUTO = "auto"
DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d{1,3})?")


def check_device_name(device: str, option: str = "--device") -> str:
    """``device`` unchanged when it is well formed (whether this machine has it or not)."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise UserError(f"unknown {option} '{device}'; use {DEVICE_CHOICES}")
    return device


def check_device(device: str, option: str = "--device") -> str:
    """``device`` unchanged when it is well formed and, if it names a GPU, that GPU is usable."""
    if check_device_name(device, option).startswith("cuda"):
        missing = cuda_missing(torch.device(device).index or 0)
        if missing:
            raise UserError(f"{option} {device}: {missing}; use {option} cpu (or auto)")
    return device


def resolve_device(device: str, option: str = "--device") -> str:
    """The torch device to use: ``cpu``, or ``cuda`` / ``cuda:N`` when usable; ``auto`` picks ``cuda`` if torch
    can use a GPU, else ``cpu``."""
    check_device(device, option)
    if device == AUTO:
        return "cuda" if not cuda_missing(0) else "cpu"
    return device


def cpu_only(device: str, what: str, option: str = "--device") -> str:
    """``cpu`` for work that only runs on the CPU (``what`` names it); an explicit GPU request is refused
    rather than ignored."""
    check_device(device, option)
    if device.startswith("cuda"):
        raise UserError(f"{option} {device}: {what} runs on the CPU; {option} places RNN/LSTM runs and the RSNN "
                        f"front end; drop {option} (or pass cpu or auto)")
    return "cpu"


def check_gpus(gpus: float, option: str = "--gpus-per-trial") -> None:
    """UserError when ``gpus`` > 0 GPUs are asked for on a machine where torch can use none."""
    if gpus > 0:
        missing = cuda_missing(0)
        if missing:
            raise UserError(f"{option} {gpus:g}: {missing}; use {option} 0 (or a Ray cluster with GPUs, --address)")


def cuda_missing(index: int = 0) -> str | None:
    """Why torch cannot run on GPU ``index`` (a phrase), or None when it can."""
    build = f"torch {torch.__version__}"
    if torch.version.cuda is None:
        return f"{build} is built without CUDA (a CPU-only wheel); install a CUDA build of torch"
    if not torch.cuda.is_available():
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = (f"CUDA_VISIBLE_DEVICES='{hidden}' hides every GPU" if hidden is not None and not hidden.strip(", ")
               else "no NVIDIA GPU or driver found")
        return f"{build} (CUDA {torch.version.cuda}) sees no usable GPU ({why})"
    count = torch.cuda.device_count()
    if index >= count:
        return f"torch sees {count} GPU(s), cuda:0 to cuda:{count - 1}"
    return None


def describe(device: str) -> dict:
    """Where work on ``device`` ran: a GPU's name, compute capability, memory, driver, torch and CUDA version;
    the CPU's model and the threads torch uses. JSON-ready."""
    place = torch.device(device)
    if place.type != "cuda":
        return {"type": "cpu", "name": cpu_model(), "threads": torch.get_num_threads(),
                "logical_cpus": os.cpu_count(), "torch": torch.__version__}
    index = place.index if place.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {"type": "cuda", "index": index, "name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "driver": driver_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda}


def label(record: dict) -> str:
    """One line for a :func:`describe` record, e.g. ``cuda:0 NVIDIA H200 (sm 9.0, driver 570.1, torch 2.11 +
    CUDA 13.0)`` or ``cpu AMD EPYC 7B13 (2 threads)``."""
    if record.get("type") == "cuda":
        return (f"cuda:{record['index']} {record['name']} (sm {record['capability']}, driver {record['driver']}, "
                f"torch {record['torch']} + CUDA {record['cuda']})")
    return f"cpu {record.get('name')} ({record.get('threads')} threads)"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def driver_version() -> str:
    """The NVIDIA driver version from NVML (the ``gpu`` extra), or why it is not known."""
    try:
        import pynvml  # the gpu extra (nvidia-ml-py)
    except ImportError:
        return "unknown (nvidia-ml-py not installed)"
    try:
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        return f"unknown (NVML: {exc})"
    return version.decode() if isinstance(version, bytes) else str(version)
