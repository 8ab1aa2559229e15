"""The README's first command: train -> export -> run on Lava -> report, on the embedded default.

With no N-MNIST copy on the machine this uses the synthetic N-MNIST-format set, which every report labels
``data.source: synthetic``. Settings are chosen to finish in minutes on 2 CPU cores; they are the paper's
architecture and neuron model with a shorter schedule (fewer samples and epochs, higher lr).

``--out`` is written only when it is new, empty or a training run neurodeploy made
(:func:`neurodeploy.folders.check_output_dir`); ``--fresh`` then removes only the files ``train``,
``export`` and ``run`` write there, never the folder. A run whose training was killed has no completion
record (:func:`neurodeploy.folders.training_finished`): a plain ``demo`` continues it from its checkpoint
instead of taking it as the trained run.
"""

from __future__ import annotations

from pathlib import Path

from neurodeploy import folders
from neurodeploy.deploy.export import MODEL_FILE, export_run, print_export_table
from neurodeploy.deploy.run_folder import CHECKPOINT, METRICS, load_run_config
from neurodeploy.errors import UserError
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train

DEMO_TRAINING = dict(dataset="nmnist", family="snn", arch="mlp", epochs=8, lr=1e-3, seed=0)
DEMO_RUN_SAMPLES = 200
DEMO_BACKEND = "lava"
# what train, export and run write in a run folder: all that --fresh removes
# (config.json stays: train rewrites it, and it keeps the folder provably ours meanwhile)
TRAINING_FILES = (CHECKPOINT, METRICS, folders.TRAINING_DONE, MODEL_FILE)


def plan_demo(out: Path, *, fresh: bool) -> str:
    """What ``demo`` does with ``out``: ``train`` (new or empty folder), ``retrain`` (--fresh on a training run
    neurodeploy made), ``use`` (a finished training run) or ``resume`` (the demo's run, killed mid-training).
    UserError (exit 2) for anything else: a user's folder, another kind of folder, another unfinished run."""
    out = Path(out)
    kind = folders.check_output_dir(out, (folders.TRAIN_RUN,))
    if kind is None:
        return "train"
    if fresh:
        return "retrain"
    if folders.training_finished(out):
        return "use"
    if _is_demo_run(out):
        return "resume" if (out / CHECKPOINT).exists() else "train"
    raise UserError(f"{out}: holds a training run that did not finish (no {folders.TRAINING_DONE}) and is not the "
                    "demo's; continue it with `neurodeploy train ... --resume`, retrain it with `demo --fresh`, or "
                    "choose another --out")


def run_demo(out: Path, *, fresh: bool, console, err_console) -> None:
    out = Path(out)
    action = plan_demo(out, fresh=fresh)
    if action == "retrain":
        clear_demo_run(out)
    if action in ("train", "retrain"):
        train(TrainConfig(**DEMO_TRAINING), out, console=err_console)
    elif action == "use":
        err_console.print(f"using the trained run in {out} (pass --fresh to retrain)", highlight=False)
    else:
        err_console.print(f"{out}: its training stopped before the last epoch; continuing it from its checkpoint "
                          "(pass --fresh to retrain)", highlight=False)
        train(TrainConfig(**DEMO_TRAINING), out, resume=True, console=err_console)
    result = export_run(out)
    print_export_table(result, console)
    execute(RunRequest(target=out, backend=DEMO_BACKEND, samples=DEMO_RUN_SAMPLES), console=console,
            err_console=err_console)


def _is_demo_run(run_dir: Path) -> bool:
    config = load_run_config(run_dir)
    return all(getattr(config, name) == value for name, value in DEMO_TRAINING.items() if name != "epochs")


def clear_demo_run(run_dir: Path) -> None:
    """Remove the files train and export wrote in ``run_dir`` (a training run neurodeploy made, checked by
    the caller) but its config, which train rewrites. Everything else stays: a user's notes, reports (the
    demo's run rewrites its own)."""
    for name in TRAINING_FILES:
        path = run_dir / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
