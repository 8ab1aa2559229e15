"""The README's first command: train -> export -> run on Lava -> report, on the embedded default.

With no N-MNIST copy on the machine this uses the synthetic N-MNIST-format set, which every report labels
``data.source: synthetic``. Settings are chosen to finish in minutes on 2 CPU cores; they are the paper's
architecture and neuron model with a shorter schedule (fewer samples and epochs, higher lr).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from neurodeploy.deploy.export import export_run, print_export_table
from neurodeploy.deploy.run_folder import CHECKPOINT
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train

DEMO_TRAINING = dict(dataset="nmnist", family="snn", arch="mlp", epochs=8, lr=1e-3, seed=0)
DEMO_RUN_SAMPLES = 200


def run_demo(out: Path, *, fresh: bool, console, err_console) -> None:
    out = Path(out)
    if fresh or not (out / CHECKPOINT).exists():
        if fresh and out.exists():
            shutil.rmtree(out)
        train(TrainConfig(**DEMO_TRAINING), out, console=err_console)
    else:
        err_console.print(f"using the trained run in {out} (pass --fresh to retrain)")
    result = export_run(out)
    print_export_table(result, console)
    execute(RunRequest(target=out, backend="lava", samples=DEMO_RUN_SAMPLES), console=console,
            err_console=err_console)
