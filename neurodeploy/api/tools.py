"""Compare, cost, lint, study, NIR import, benchmarks, datasets and hardware profiles: the rest of the Python
API (docs/api.md). Same conventions as :mod:`neurodeploy.api.runs`: UserError, quiet unless ``output``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurodeploy import atomic, devices, folders, options
from neurodeploy.api.records import Comparison, Report, StudyResult
from neurodeploy.api.runs import Output, Run, choice
from neurodeploy.data.datasets import DEFAULT_DATASET, dataset_kind, resolve_dataset
from neurodeploy.data.frames import FRAME_KINDS
from neurodeploy.data.info import dataset_info as collect_dataset_info
from neurodeploy.data.info import plot_contrast
from neurodeploy.deploy.lint import LintResult, lint_architecture, print_lint
from neurodeploy.deploy.nir_import import import_nir as import_graph
from neurodeploy.deploy.nir_import import print_import_table
from neurodeploy.errors import OptionError
from neurodeploy.metrics.cost import FAMILIES as COST_FAMILIES
from neurodeploy.metrics.cost import CostReport, print_cost_table, static_cost
from neurodeploy.metrics.hardware import HardwareProfile, list_profiles, load_profile, print_profile
from neurodeploy.models.arch import resolve_arch
from neurodeploy.models.rsnn import DEFAULT_AGGREGATION
from neurodeploy.pipeline import bench as workloads
from neurodeploy.pipeline import pilotnet
from neurodeploy.reports.bench_pilotnet import print_pilotnet
from neurodeploy.reports.compare import print_comparison, write_comparison
from neurodeploy.safe_files import check_regular_file
from neurodeploy.study.results import plan_lines, write_results
from neurodeploy.study.runner import RunOptions, prepare_study_dir, run_study
from neurodeploy.study.spec import load_study

MAX_INPUT_SIDE = 4096  # event cameras today: up to 1280x720
MAX_INPUT_CHANNELS = 64


def parse_input_size(text: str | Sequence[int]) -> tuple[int, int, int]:
    """'34x34x2' (H x W x C), or (H, W, C) -> (C, H, W)."""
    try:
        parts = text.lower().split("x") if isinstance(text, str) else list(text)
        height, width, channels = (int(v) for v in parts)
    except (ValueError, TypeError):
        raise OptionError(f"--input '{text}' is not HxWxC, e.g. 34x34x2") from None
    if min(height, width, channels) < 1:
        raise OptionError(f"--input '{text}' has a zero size")
    if max(height, width) > MAX_INPUT_SIDE or channels > MAX_INPUT_CHANNELS:
        raise OptionError(f"--input '{text}' is too large; sides up to {MAX_INPUT_SIDE}, channels up to "
                          f"{MAX_INPUT_CHANNELS}")
    return (channels, height, width)


def _arch_and_input(arch: str, input: str | Sequence[int] | None, dataset: str | None):
    """The architecture of ``arch`` and its input shape (C, H, W): ``input`` when given, else the sensor of
    the dataset the model file is written for (its first), else of ``dataset`` (default nmnist)."""
    model = resolve_arch(arch, dataset or DEFAULT_DATASET)
    if input is not None:
        return model.arch, parse_input_size(input)
    source = dataset or next(iter(model.datasets), DEFAULT_DATASET)
    return model.arch, dataset_kind(source).input_shape


def _target(item: Any) -> Path:
    """A run folder or report file behind a Run, a Report or a path."""
    if isinstance(item, Report):
        return item.path
    if isinstance(item, Run):
        return item.path
    if isinstance(item, (str, Path)):
        return Path(item)
    raise OptionError(f"compare: {item!r} is not a Run, a Report or a path to a run folder or run_report.json")


def compare(runs_or_reports: Any, *, out: Path | str | None = None, output: Output | None = None) -> Comparison:
    """Several runs side by side (runs, reports, run folders or ``run_report.json`` paths); with ``out`` also
    writes comparison.md, comparison.csv and accuracy_vs_energy.png there."""
    output = Output.choose(output, False)
    items = [runs_or_reports] if isinstance(runs_or_reports, (str, Path, Run, Report)) else list(runs_or_reports)
    comparison = Comparison.of([_target(item) for item in items])
    paths = [] if out is None else write_comparison(list(comparison.rows), Path(out))
    print_comparison(list(comparison.rows), output.console)
    for path in paths:
        output.console.print(f"wrote {path}")
    return Comparison(comparison.rows, tuple(paths))


def cost(arch: str, *, family: str = "snn", dataset: str | None = None, input: str | Sequence[int] | None = None,
         aggregation: str | None = None, steps: int = 1, frames: str | None = None,
         output: Output | None = None) -> CostReport:
    """Static parameter, memory and per-step operation counts of ``arch`` as ``family`` (snn | rnn | lstm |
    ann | rsnn), conventions in docs/cost.md; ``input`` 'HxWxC' (default: the dataset's sensor); rsnn:
    ``aggregation`` (default mean) and ``steps`` T; ann: ``frames`` binary (``steps`` T binary frames) or
    intensity, the companion paper's frame-based ANNs on event data (Models 4 / 5)."""
    output = Output.choose(output, False)
    architecture, shape = _arch_and_input(arch, input, dataset)
    options.check_binning(None, steps)
    family = choice(family, COST_FAMILIES, "--family")
    if frames is not None:
        choice(frames, FRAME_KINDS, "--frames")
    report = static_cost(architecture, shape, family, aggregation=aggregation or DEFAULT_AGGREGATION, steps=steps,
                         frames=frames)
    print_cost_table(report, output.console)
    return report


def lint(arch: str, *, input: str | Sequence[int] | None = None, hw: str = "loihi2", dataset: str | None = None,
         output: Output | None = None) -> LintResult:
    """Check that an SNN architecture maps onto netx/Lava and fits the chip of profile ``hw``; the result's
    ``ok`` and ``problems`` say whether and why not."""
    output = Output.choose(output, False)
    architecture, shape = _arch_and_input(arch, input, dataset)
    result = lint_architecture(architecture, shape, hw)
    print_lint(result, output.console)
    return result


def import_nir(path: Path | str, out: Path | str, *, dt: float | None = None,
               input: str | Sequence[int] | None = None, steps: int | None = None,
               output: Output | None = None) -> Run:
    """Deploy a NIR graph (from snnTorch, Sinabs, Norse, ...) into the run folder ``out`` (model.net, the graph
    as float reference, nir_import.json); ``dt`` in ms maps time constants to decays (default 1); ``input``
    'HxWxC' when the graph's input is flat. Returns the run; ``Run.run`` reports its fidelity (docs/nir.md)."""
    output = Output.choose(output, False)
    record = import_graph(Path(path), Path(out), dt_ms=dt, input_shape=parse_input_size(input) if input else None,
                          steps=steps)
    print_import_table(record, Path(out), output.console)
    output.console.print(f"wrote {out} (model.net, model.nir, nir_import.json); run it with "
                         f"`neurodeploy run {out} --backend emulator`")
    return Run(out)


def study(path: Path | str, *, address: str | None = None, resume: bool = False, out: Path | str | None = None,
          cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, num_cpus: int | None = None,
          dry_run: bool = False, output: Output | None = None) -> StudyResult:
    """Run the comparison grid of a study file (docs/study.md) on Ray Tune into ``out`` (default
    runs/study-<name>), then write study.csv, study.md and plots; ``dry_run`` only plans. ``address``: a Ray
    cluster (auto or ray://HOST:10001), default Ray inside this process (``num_cpus`` of it)."""
    output = Output.choose(output, False)
    spec = load_study(Path(path))
    plan = tuple(plan_lines(spec))
    out = Path(out) if out is not None else Path("runs") / f"study-{spec.name}"
    if dry_run:
        for line in plan:
            output.console.print(line, highlight=False, soft_wrap=True, markup=False)  # "[leak on, ...]" is text
        return StudyResult(spec.name, out, plan, len(spec.cells()))
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise OptionError(f"--cpus-per-trial must be positive and --gpus-per-trial not negative (got "
                          f"{cpus_per_trial}, {gpus_per_trial})")
    if address is None:  # a cluster's GPUs are on its nodes, not here
        devices.check_gpus(gpus_per_trial)
    if num_cpus is not None and (num_cpus < 1 or address):
        raise OptionError("--num-cpus is for the embedded Ray (no --address) and must be at least 1")
    prepare_study_dir(spec, out, resume)
    outcome = run_study(spec, out, RunOptions(address=address, cpus_per_trial=cpus_per_trial,
                                              gpus_per_trial=gpus_per_trial, resume=resume, num_cpus=num_cpus))
    paths = tuple(write_results(spec, outcome, out))
    for written in paths:
        output.console.print(f"wrote {written}")
    return StudyResult(spec.name, out, plan, len(spec.cells()), outcome, paths)


def bench(workload: str = "backends", *, net: Path | str | None = None, samples: int | None = None,
          steps: str | Sequence[int] | None = None, density: float = 0.03, arch: str | None = None,
          input: str | Sequence[int] = "128x128x2", emulator_samples: int | None = None,
          data_dir: Path | str | None = None, frame_rate: float | None = None, layers: int | None = None,
          crop_width: int | None = None, output: Output | None = None) -> dict[str, Any]:
    """Throughput workloads (host wall time): ``backends`` emulator vs Lava samples/s on a netx file
    (bit-exactness checked), ``testset`` a whole N-MNIST-format test set through the emulator, ``conv``
    emulator vs Lava on a conv SNN; ``pilotnet``: lava-dl's PilotNet LIF through the emulator and chip model
    beside Intel's measured Loihi 2 figures (``frame_rate``, ``layers``, ``crop_width``; its table is printed
    on ``output``). Returns the measurements."""
    output = Output.choose(output, False)
    workload = choice(workload, workloads.WORKLOADS, "--workload")
    if workload == "pilotnet":
        if layers is not None and layers < 2:
            raise OptionError(f"--layers {layers}: keep at least 2 layers (the input layer and one synaptic layer)")
        result = pilotnet.run_pilotnet_benchmark(num_layers=layers, crop_width=crop_width, frame_rate=frame_rate)
        print_pilotnet(result, output.console)
        return result
    options.check("--samples", samples)
    options.check("--samples", emulator_samples)
    options.check("--density", density)
    step_list = None
    if steps:
        try:
            step_list = [int(s) for s in (steps.split(",") if isinstance(steps, str) else steps)]
        except ValueError:
            raise OptionError(f"--steps '{steps}' is not a comma-separated list of whole numbers, e.g. 15,300") \
                from None
        for value in step_list:
            options.check_binning(None, value)
    if net is not None:
        check_regular_file(net, "--net")
    if workload == "testset":
        result = workloads.run_testset_benchmark(samples or 10_000,
                                                 data_dir=None if data_dir is None else Path(data_dir))
    elif workload == "conv":
        result = workloads.run_conv_benchmark(arch or workloads.DVS_CNN, parse_input_size(input),
                                              samples=samples or 1, steps=(step_list or [60])[0], density=density,
                                              emulator_samples=emulator_samples or 10)
    else:
        result = workloads.run_benchmark(None if net is None else Path(net), samples=samples or 20,
                                         steps=step_list or [15, 300], density=density,
                                         emulator_samples=emulator_samples or 1000)
    result["ran_on"] = devices.describe("cpu")  # emulator, Lava and SLAYER's CPU forward pass: all on the CPU
    return result


def generate_data(dataset: str, out: Path | str, *, seed: int = 0, train_per_class: int | None = None,
                  test_per_class: int | None = None, source: str | None = None) -> Path:
    """Write a synthetic dataset in the real on-disk format (labelled synthetic everywhere); ``source``
    (nmnist only): the digits shown, mnist-digits (default) or sklearn-digits. Returns its folder."""
    options.check("--seed", seed)
    options.check("--train-per-class", train_per_class)
    options.check("--test-per-class", test_per_class)
    atomic.check_writable_dir(Path(out))
    kind = dataset_kind(dataset)
    sizes: dict[str, Any] = {k: v for k, v in (("train_per_class", train_per_class),
                                               ("test_per_class", test_per_class)) if v is not None}
    if source is not None:
        if dataset != "nmnist":
            raise OptionError(f"--source {source}: only the synthetic nmnist has a choice of source digits; "
                              "drop --source")
        sizes["source"] = source
    return kind.generate(Path(out), seed=seed, **sizes)


def dataset_info(dataset: str, *, dt: float | None = None, steps: int | None = None, limit: int = 200,
                 data_dir: Path | str | None = None, allow_synthetic: bool = True,
                 out: Path | str = "runs/data-info", output: Output | None = None) -> dict[str, Any]:
    """Sample counts, events per sample, frame density and temporal contrast (source paper eq. 16-17) of
    ``limit`` samples; writes <dataset>_info.json and a heat-map PNG into ``out`` and returns the info."""
    output = Output.choose(output, False)
    options.check_binning(dt, steps)
    options.check("--limit", limit)
    out = Path(out)
    atomic.check_writable_dir(out)
    folders.check_output_dir(out, (folders.DATA_INFO,))
    source = resolve_dataset(dataset, None if data_dir is None else Path(data_dir), allow_synthetic=allow_synthetic)
    defaults = dataset_kind(dataset).defaults
    info = collect_dataset_info(source, dt_ms=defaults.dt_ms if dt is None else dt,
                                steps=defaults.steps if steps is None else steps, limit=limit)
    data = info.to_dict()
    path = plot_contrast(info.contrast.matrix, out / f"{dataset}_temporal_contrast.png",
                         title=f"Temporal contrast, {source.source} {dataset}, dt {info.dt_ms} ms")
    atomic.write_json(out / f"{dataset}_info.json", data)
    output.console.print_json(json.dumps({k: v for k, v in data.items() if k != "contrast_matrix"}, default=str))
    output.console.print(f"wrote {path} and {out / f'{dataset}_info.json'}")
    return data


def hardware_profiles() -> list[str]:
    """Names of the known hardware profiles (hw_configs/)."""
    return list(list_profiles())


def hardware_profile(name: str, *, output: Output | None = None) -> HardwareProfile:
    """A hardware profile by name or YAML file, every coefficient with its source."""
    output = Output.choose(output, False)
    profile = load_profile(name)
    print_profile(profile, output.console)
    return profile
