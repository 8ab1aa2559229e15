"""The one GPU check (docs/gpu.md): on a machine with a CUDA torch, run the GPU tests and a short measured job
and write ``docs/gpu/gpu_check.json`` and ``docs/gpu/gpu_check.md``.

Measured (each number says its kind; wall times are synchronised host wall times):
- SLAYER SNN training step (forward + backward + Adam) on the GPU and on the CPU, same net (2312-512-10),
  same batch, at T = 15 and T = 300: median of ``--repeats`` steps after 2 warm-up steps;
- float parity of a GPU-trained SNN after export: trained on the GPU on synthetic N-MNIST, exported to netx,
  run on the emulator against the float reference on the same samples (spike-for-spike, per layer);
- RNN / LSTM (2312-512 + FC), ConvLSTM (the RSNN's front end) and the whole RSNN (DVS Gesture, small):
  inference latency and NVML energy per sample, split into static (board power before the region x time)
  and dynamic (the rest);
- peak GPU memory of every job (``torch.cuda.max_memory_allocated``).

Without CUDA it exits 2 with "no CUDA GPU". On a GPU box without internet, ``--print-wheelhouse-commands``
prints the step for a connected machine and ``--install-wheelhouse`` installs it there (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "gpu"
# the box's own builds stay: never downloaded into the target, never installed over
KEEP_FROM_THE_BOX = ("torch", "numpy", "triton")
CUDA_LIBRARIES = "nvidia-"  # torch's CUDA runtime wheels (nvidia-cublas-cu12, ...), not nvidia-ml-py
# what the check itself needs besides the project's dependencies (pytest for the GPU tests)
CHECK_EXTRAS = ("pytest>=7.4", "hypothesis>=6.100")
# tonic declares expelliarmus and librosa, which it never imports for the readers we use and which have no
# wheel for every Python: tonic comes without its requirements, plus the ones its import needs
WITHOUT_DEPS = {"tonic": ("importRosbag>=1.0",)}
TONIC_IMPORT_NEEDS = ("tqdm", "typing-extensions")
SNN_ARCH, RECURRENT_ARCH, RSNN_ARCH = "Input-512FC-10", "Input-512FC-10", "dvsgesture_rsnn_small"
GPU_TESTS = ("tests/test_gpu_energy.py", "tests/test_devices.py", "tests/test_lava_compat.py")


# ------------------------------------------------------------------------------------ the offline wheelhouse

def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower().replace("_", "-")


def _kept_from_the_box(name: str) -> bool:
    name = name.lower().replace("_", "-")
    return name in KEEP_FROM_THE_BOX or (name.startswith(CUDA_LIBRARIES) and name != "nvidia-ml-py")


def wheelhouse_requirements() -> tuple[list[str], list[str]]:
    """(requirements resolved with their dependencies, pins downloaded without): pyproject.toml's
    dependencies and its gpu extra without torch / numpy, plus pytest; requirements-nodeps.txt's Lava pins."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["gpu"], *CHECK_EXTRAS, *TONIC_IMPORT_NEEDS]
    resolved = [r for r in wanted if not _kept_from_the_box(_name(r)) and _name(r) not in WITHOUT_DEPS]
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()]
    nodeps = [pin for pin in lines if pin.startswith("lava-")]
    for requirement in wanted:
        nodeps += [requirement, *WITHOUT_DEPS[_name(requirement)]] if _name(requirement) in WITHOUT_DEPS else []
    return resolved, nodeps


def manylinux_platforms(glibc_minor: int = 28, machine: str = "x86_64") -> list[str]:
    """Every manylinux tag a box with glibc 2.``glibc_minor`` runs (pip matches ``--platform`` tags exactly)."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 16, -1)]
    return [*tags, f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]


def wheelhouse_commands(python_version: str, wheelhouse: str = "wheelhouse", glibc_minor: int = 28
                        ) -> list[list[str]]:
    """The commands a connected machine runs to fill ``wheelhouse`` for a box with ``python_version``."""
    resolved, nodeps = wheelhouse_requirements()
    platforms = [arg for tag in manylinux_platforms(glibc_minor) for arg in ("--platform", tag)]
    common = ["pip", "download", "--only-binary=:all:", "--python-version", python_version, *platforms,
              "--implementation", "cp", "-d", wheelhouse]
    # Lava declares Python <3.11 (neurodeploy.lava_compat makes it import on 3.11+)
    return [[*common, *resolved], [*common, "--no-deps", "--ignore-requires-python", *nodeps]]


def install_command(wheelhouse: Path, target: Path, python: str = sys.executable) -> list[str]:
    """``pip install`` of every wheel in ``wheelhouse`` except the box's own torch / numpy / CUDA libraries,
    from the folder only (``--no-index``), without resolving (``--no-deps``), into ``target``."""
    wheels = sorted(p for p in Path(wheelhouse).glob("*.whl") if not _kept_from_the_box(p.name.split("-", 1)[0]))
    if not wheels:
        raise SystemExit(f"error: {wheelhouse}: no wheels; fill it with --print-wheelhouse-commands (docs/gpu.md)")
    return [python, "-m", "pip", "install", "--no-index", "--find-links", str(wheelhouse), "--no-deps",
            "--target", str(target), *map(str, wheels)]


# ------------------------------------------------------------------------------------------- measurements

def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if device.startswith("cuda") else None


def _network(family: str, arch: str, dataset: str, steps: int, device: str):
    from neurodeploy.models.arch import resolve_arch
    from neurodeploy.models.training import TrainConfig, apply_model_defaults, build_network

    model = resolve_arch(arch, dataset)
    config = TrainConfig(dataset=dataset, family=family, arch=arch, steps=steps, dt_ms=10.0 if dataset == "nmnist"
                         else 5.0, device=device)
    apply_model_defaults(config, model)
    shape = (2, 34, 34) if dataset == "nmnist" else (2, 128, 128)
    return build_network(config, model, shape).to(device), shape


def slayer_step(device: str, steps: int, batch: int, repeats: int) -> dict:
    """Median wall time of one SLAYER training step (forward, rate loss, backward, Adam) on ``device``."""
    import torch

    from neurodeploy.models.losses import loss_rate

    torch.manual_seed(0)
    network, shape = _network("snn", SNN_ARCH, "nmnist", steps, device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    x = (torch.rand(batch, *shape, steps) < 0.03).float().to(device)
    y = torch.randint(0, 10, (batch,)).to(device)
    _peak_reset(device)
    times = []
    for index in range(2 + repeats):  # 2 warm-up steps (CUDA context, SLAYER's JIT kernels, allocator)
        _sync(device)
        started = time.perf_counter()
        optimizer.zero_grad()
        loss_rate(network(x), y).backward()
        optimizer.step()
        _sync(device)
        if index >= 2:
            times.append(time.perf_counter() - started)
    return {"device": device, "steps": steps, "batch": batch, "net": SNN_ARCH, "step_s": statistics.median(times),
            "kind": f"host wall time, synchronised, median of {repeats} steps after 2 warm-up",
            "peak_gpu_gib": _peak_gib(device)}


def inference(device: str, name: str, batch: int, min_duration_s: float, batches: int = 4) -> dict:
    """Latency and NVML energy per sample of one float model (neurodeploy.metrics.gpu_energy)."""
    import torch

    from neurodeploy.metrics.gpu_energy import measure_inference

    family, arch, dataset, steps = {"rnn": ("rnn", RECURRENT_ARCH, "nmnist", 15),
                                    "lstm": ("lstm", RECURRENT_ARCH, "nmnist", 15),
                                    "convlstm": ("rsnn", RSNN_ARCH, "dvsgesture", 60),
                                    "rsnn": ("rsnn", RSNN_ARCH, "dvsgesture", 60)}[name]
    torch.manual_seed(0)
    network, shape = _network(family, arch, dataset, steps, device)
    model = network.front if name == "convlstm" else network
    inputs = [(torch.rand(batch, *shape, steps) < 0.03).float() for _ in range(batches)]
    _peak_reset(device)
    m = measure_inference(model, inputs, device, warmup_batches=2, min_duration_s=min_duration_s)
    static = m.idle_energy_j_per_sample
    return {"model": name, "arch": arch if name != "convlstm" else f"{arch} (front end)", "steps": steps,
            "device": device, "batch": m.batch_size, "samples": m.samples, "latency_s_per_sample":
            m.latency_s_per_sample, "latency_kind": "host wall time, synchronised, after 2 warm-up batches",
            "energy_kind": m.energy_kind, "energy_j_per_sample": m.energy_j_per_sample, "static_j_per_sample": static,
            "dynamic_j_per_sample": None if m.energy_j_per_sample is None or static is None
            else m.energy_j_per_sample - static, "energy_note": m.energy_note, "peak_gpu_gib": _peak_gib(device)}


def trained_parity(device: str, work: Path, samples: int) -> dict:
    """Train a small SNN on ``device`` (synthetic N-MNIST), export it, and run it on the emulator: the report's
    parity section (emulator vs float reference, same samples)."""
    from rich.console import Console

    from neurodeploy.data.synthetic_nmnist import generate_synthetic_nmnist
    from neurodeploy.deploy.export import export_run
    from neurodeploy.models.training import TrainConfig
    from neurodeploy.pipeline.request import RunRequest
    from neurodeploy.pipeline.run import execute
    from neurodeploy.pipeline.train import train

    data = generate_synthetic_nmnist(work / "data", train_per_class=30, test_per_class=10, seed=0)
    run_dir = work / "snn"
    config = TrainConfig(dataset="nmnist", family="snn", arch="Input-128FC-10", epochs=3, lr=3e-3, steps=15,
                         dt_ms=10, batch_size=30, data_dir=str(data), allow_synthetic=False, seed=1, device=device)
    quiet = Console(quiet=True)
    _peak_reset(device)
    started = time.perf_counter()
    result = train(config, run_dir, console=quiet)
    train_s = time.perf_counter() - started
    export_run(run_dir)
    report = execute(RunRequest(target=run_dir, backend="emulator", samples=samples), console=quiet,
                     err_console=quiet)
    return {"trained_on": device, "train_wall_s": round(train_s, 2), "epochs": len(result.metrics),
            "train_samples": 300, "data": "synthetic N-MNIST (mnist-digits)", "run_samples": samples,
            "accuracy_emulator": report["accuracy"], "parity": report["parity"],
            "peak_gpu_gib": _peak_gib(device)}


def run_gpu_tests() -> dict:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"files": list(GPU_TESTS), "exit_code": done.returncode, "summary": lines[-1] if lines else ""}


# ------------------------------------------------------------------------------------------------- report

def render_markdown(result: dict) -> str:
    gpu = result["machine"]["gpu"]
    out = [f"# GPU check: {gpu['name']} (sm {gpu['capability']})", "",
           f"Machine: {gpu['name']}, {gpu['memory_gib']} GiB, driver {gpu['driver']}; torch {gpu['torch']} + CUDA "
           f"{gpu['cuda']}; numpy {result['machine']['numpy']}; CPU {result['machine']['cpu']['name']} "
           f"({result['machine']['cpu']['threads']} threads); Python {result['machine']['python']}; "
           f"{result['machine']['date_utc']}.", "",
           f"GPU tests ({', '.join(result['gpu_tests']['files'])}): {result['gpu_tests']['summary']}", "",
           "## SLAYER training step (measured: host wall time, synchronised, median)", "",
           "| T | batch | GPU s/step | CPU s/step | speed-up | peak GPU GiB |", "|---|---|---|---|---|---|"]
    for gpu_row, cpu_row in result["slayer_step"]:
        out.append(f"| {gpu_row['steps']} | {gpu_row['batch']} | {gpu_row['step_s']:.4f} | {cpu_row['step_s']:.4f} | "
                   f"{cpu_row['step_s'] / gpu_row['step_s']:.1f}x | {gpu_row['peak_gpu_gib']} |")
    parity = result.get("parity")
    if parity:
        out += ["", "## A GPU-trained SNN after export (emulator vs float, same samples)", "",
                f"Trained on the GPU in {parity['train_wall_s']} s ({parity['epochs']} epochs, {parity['data']}); "
                f"{parity['run_samples']} samples on the emulator: accuracy {parity['accuracy_emulator']:.3f}.", "",
                "```", json.dumps(parity["parity"], indent=1)[:3000], "```"]
    out += ["", "## Inference per sample (latency measured; energy NVML-measured, static = board power before the "
            "region x time)", "", "| model | T | batch | samples | latency µs | energy mJ | dynamic mJ | static mJ | "
            "kind | peak GPU GiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["inference"]:
        def mj(value):
            return "-" if value is None else f"{value * 1e3:.3f}"
        out.append(f"| {row['model']} ({row['arch']}) | {row['steps']} | {row['batch']} | {row['samples']} | "
                   f"{row['latency_s_per_sample'] * 1e6:.1f} | {mj(row['energy_j_per_sample'])} | "
                   f"{mj(row['dynamic_j_per_sample'])} | {mj(row['static_j_per_sample'])} | {row['energy_kind']} | "
                   f"{row['peak_gpu_gib']} |")
    return "\n".join(out) + "\n"


def machine_record() -> dict:
    import platform
    from datetime import datetime, timezone

    import numpy

    from neurodeploy import devices

    return {"gpu": devices.describe("cuda"), "cpu": devices.describe("cpu"), "numpy": numpy.__version__,
            "python": platform.python_version(), "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for gpu_check.json / .md")
    parser.add_argument("--repeats", type=int, default=5, help="timed SLAYER steps per point")
    parser.add_argument("--batch", type=int, default=32, help="SLAYER training batch")
    parser.add_argument("--skip-tests", action="store_true", help="measure only")
    parser.add_argument("--print-wheelhouse-commands", action="store_true",
                        help="print the pip download commands for a connected machine, then exit")
    parser.add_argument("--python-version", default="3.12", help="the GPU box's Python (with the option above)")
    parser.add_argument("--glibc", type=int, default=28, help="the GPU box's glibc 2.N (`ldd --version`)")
    parser.add_argument("--install-wheelhouse", type=Path, help="install this wheelhouse into --target, then exit")
    parser.add_argument("--target", type=Path, default=ROOT / ".gpu-deps", help="where --install-wheelhouse installs")
    args = parser.parse_args(argv)
    if args.print_wheelhouse_commands:
        for command in wheelhouse_commands(args.python_version, glibc_minor=args.glibc):
            print(shlex.join(command))
        return 0
    if args.install_wheelhouse is not None:
        return subprocess.run(install_command(args.install_wheelhouse, args.target), check=False).returncode
    sys.path.insert(0, str(ROOT))
    from neurodeploy import devices

    missing = devices.cuda_missing(0)
    if missing:
        print(f"error: no CUDA GPU: {missing}; run `make gpu-check` on a machine with an NVIDIA GPU and a CUDA "
              "build of torch (docs/gpu.md)", file=sys.stderr)
        return 2
    result = {"machine": machine_record(), "gpu_tests": run_gpu_tests() if not args.skip_tests else
              {"files": [], "exit_code": None, "summary": "skipped (--skip-tests)"}}
    result["slayer_step"] = [(slayer_step("cuda", steps, args.batch, args.repeats),
                              slayer_step("cpu", steps, args.batch, max(1, args.repeats // 2 if steps > 100 else
                                                                        args.repeats)))
                             for steps in (15, 300)]
    with tempfile.TemporaryDirectory() as work:
        result["parity"] = trained_parity("cuda", Path(work), samples=100)
    result["inference"] = [inference("cuda", name, 16, 2.0) for name in ("rnn", "lstm", "convlstm", "rsnn")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "gpu_check.md").write_text(render_markdown(result))
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return 0 if result["gpu_tests"]["exit_code"] in (0, None) else 1


if __name__ == "__main__":
    sys.exit(main())
