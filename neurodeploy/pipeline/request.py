"""What ``neurodeploy run`` was asked to do, checked before any work, and the test samples it runs on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodeploy import devices, folders, options
from neurodeploy.atomic import check_writable_dir
from neurodeploy.backends import registry
from neurodeploy.data.datasets import default_cache_dir, load_frames_array
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import load_profile
from neurodeploy.models.training import resolve_data
from neurodeploy.safe_files import check_output_file, check_path_name


@dataclass
class RunRequest:
    """What ``neurodeploy run`` was asked to do."""

    target: Path
    backend: str = "lava"
    samples: int | None = None
    out: Path | None = None
    hw: str | None = None
    device: str = "cpu"
    require_hardware: bool = False
    input_npy: Path | None = None
    save_output: Path | None = None
    data_dir: Path | None = None
    allow_synthetic: bool = True
    score_on_synthetic: bool = False  # a run trained on real data may be scored on synthetic data
    count_only: bool = False  # Lava counts hidden layers' spikes inside Lava; the report is built from counts

    def validate(self) -> None:
        options.check("--samples", self.samples)
        devices.check_device(self.device)
        backend = registry.backend(self.backend)  # an unknown name fails here, listing the known ones
        if self.count_only and not backend.honours("count_only"):
            raise UserError(f"--count-only counts spikes inside Lava; it needs --backend "
                            f"{' or '.join(registry.names(option='count_only'))}, not {self.backend}")
        check_path_name(self.target, "the run folder or .net file")
        if not Path(self.target).exists():
            raise UserError(f"{self.target}: no such run directory or .net file; pass a run made by `train`")
        if self.input_npy is not None and not backend.honours("net_input"):
            raise UserError(f"--input feeds a .net file on {', '.join(registry.names(option='net_input'))}; not on "
                            f"--backend {self.backend}")
        if self.save_output is not None and self.input_npy is None:
            what = "a .net file" if Path(self.target).suffix == ".net" else str(self.target)
            raise UserError(f"--save-output on {what} needs --input X.npy (neurons x T spikes) to run; without "
                            "--input a run folder is evaluated on its dataset and writes reports only")
        # bad options fail here, before minutes of simulation and before any report file is written
        if self.hw:
            load_profile(self.hw)
        if self.out is not None or Path(self.target).is_dir():
            check_writable_dir(self.report_dir(), "--out")
            folders.check_output_dir(self.report_dir(), (folders.RUN_REPORT,))
        if self.save_output is not None:
            check_output_file(self.save_output, "--save-output")
            folders.check_output_file_owned(self.save_output, "--save-output")
            check_writable_dir(Path(self.save_output).parent, "--save-output")

    def report_dir(self) -> Path:
        """Where the report goes: ``--out``, else ``RUN/reports/<backend>``."""
        return Path(self.out) if self.out is not None else Path(self.target) / "reports" / self.backend


def load_test_frames(request: RunRequest, config, default_limit: int | None, progress=None):
    """The run's test set in RAM; the binned frames are cached (one packed file per selection of samples)
    for later runs; ``progress(done, total)`` follows the event decoding."""
    trained_on = config.resolved.get("data_source")
    if request.data_dir is not None:
        config.data_dir = str(request.data_dir)
    config.allow_synthetic = request.allow_synthetic
    source = resolve_data(config)
    if trained_on == "real" and source.source == "synthetic" and not request.score_on_synthetic:
        raise UserError(f"{source.root}: synthetic data, but the run was trained on real {config.dataset}; point "
                        "--data-dir at the real dataset, or pass --score-on-synthetic to score it anyway")
    if list(source.sensor_size) != list(config.resolved.get("sensor_size", source.sensor_size)):
        raise UserError(f"{source.root}: sensor size {source.sensor_size} differs from the run's "
                        f"{config.resolved['sensor_size']}; point --data-dir at the dataset the run was trained on")
    limit = request.samples or default_limit
    frames, labels = load_frames_array(source, "test", config.dt_ms, config.steps, limit, config.seed,
                                       cache_dir=default_cache_dir(), progress=progress)
    return source, np.asarray(frames), np.asarray(labels)
