"""The README's first command, the tool's main job end to end on the embedded default: an SNN trained,
exported, run on Lava and on the emulator (the whole test split), an LSTM and an RNN trained on the same data
and run with torch, and ``compare`` printing the table and writing the accuracy-vs-energy plot.

With no N-MNIST copy on the machine this uses the synthetic N-MNIST-format set, which every report labels
``data.source: synthetic``. Settings are chosen to finish in minutes on 2 CPU cores: the paper's architecture
and neuron model with the ``fast`` preset (8 epochs, lr 1e-3) for the SNN and 2 epochs for the baselines.
The baselines and the comparison go next to ``--out``: ``runs/demo-snn`` -> ``runs/demo-lstm``,
``runs/demo-rnn``, ``runs/demo-compare``.

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
from neurodeploy.models.training import TRAIN_PRESETS, TrainConfig
from neurodeploy.pipeline.request import RunRequest
from neurodeploy.pipeline.run import execute
from neurodeploy.pipeline.train import train
from neurodeploy.reports.compare import load_comparison_rows, print_comparison, write_comparison

DEMO_TRAINING = dict(dataset="nmnist", family="snn", arch="mlp", **TRAIN_PRESETS["fast"], seed=0)
DEMO_RUN_SAMPLES = 200  # Lava's CPU simulation of the first 200 test samples
DEMO_BACKEND = "lava"
DEMO_FULL_BACKEND = "emulator"  # bit-exact with Lava, fast enough for the whole test split
# the baselines: the same architecture and data, 2 epochs (LSTM: about 87 % on the default data)
DEMO_BASELINES = {family: dict(DEMO_TRAINING, family=family, epochs=2) for family in ("lstm", "rnn")}
# what train, export and run write in a run folder: all that --fresh removes
# (config.json stays: train rewrites it, and it keeps the folder provably ours meanwhile)
TRAINING_FILES = (CHECKPOINT, METRICS, folders.TRAINING_DONE, MODEL_FILE)


def plan_demo(out: Path, *, fresh: bool, settings: dict | None = None) -> str:
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
    if _is_demo_run(out, settings or DEMO_TRAINING):
        return "resume" if (out / CHECKPOINT).exists() else "train"
    raise UserError(f"{out}: holds a training run that did not finish (no {folders.TRAINING_DONE}) and is not the "
                    "demo's; continue it with `neurodeploy train ... --resume`, retrain it with `demo --fresh`, or "
                    "choose another --out")


def sibling(out: Path, name: str) -> Path:
    """The folder of the demo's ``name`` part beside ``out``: runs/demo-snn -> runs/demo-lstm."""
    stem = out.name[:-len("-snn")] if out.name.endswith("-snn") else out.name
    return out.parent / f"{stem}-{name}"


def run_demo(out: Path, *, fresh: bool, console, err_console) -> list[Path]:
    """Run the demo; returns the comparison's files (table, CSV, plot)."""
    out = Path(out)
    baselines = {family: sibling(out, family) for family in DEMO_BASELINES}
    compare_dir = sibling(out, "compare")
    folders.check_output_dir(compare_dir, (folders.COMPARISON,))  # before hours of work, not after
    for family, folder in baselines.items():  # every folder checked before the first is written
        plan_demo(folder, fresh=fresh, settings=DEMO_BASELINES[family])
    _train_part(out, DEMO_TRAINING, fresh=fresh, err_console=err_console)
    result = export_run(out)
    print_export_table(result, console)
    execute(RunRequest(target=out, backend=DEMO_BACKEND, samples=DEMO_RUN_SAMPLES), console=console,
            err_console=err_console)
    execute(RunRequest(target=out, backend=DEMO_FULL_BACKEND), console=console, err_console=err_console)
    for family, folder in baselines.items():
        _train_part(folder, DEMO_BASELINES[family], fresh=fresh, err_console=err_console)
        execute(RunRequest(target=folder, backend="torch"), console=console, err_console=err_console)
    rows = load_comparison_rows([out, *baselines.values()])
    paths = write_comparison(rows, compare_dir)
    print_comparison(rows, console)
    for path in paths:
        console.print(f"wrote {path}", highlight=False)
    return paths


def _train_part(out: Path, settings: dict, *, fresh: bool, err_console) -> None:
    action = plan_demo(out, fresh=fresh, settings=settings)
    if action == "retrain":
        clear_demo_run(out)
    if action in ("train", "retrain"):
        train(TrainConfig(**settings), out, console=err_console)
    elif action == "use":
        err_console.print(f"using the trained run in {out} (pass --fresh to retrain)", highlight=False)
    else:
        err_console.print(f"{out}: its training stopped before the last epoch; continuing it from its checkpoint "
                          "(pass --fresh to retrain)", highlight=False)
        train(TrainConfig(**settings), out, resume=True, console=err_console)


def _is_demo_run(run_dir: Path, settings: dict) -> bool:
    config = load_run_config(run_dir)
    return all(getattr(config, name) == value for name, value in settings.items() if name != "epochs")


def clear_demo_run(run_dir: Path) -> None:
    """Remove the files train and export wrote in ``run_dir`` (a training run neurodeploy made, checked by
    the caller) but its config, which train rewrites. Everything else stays: a user's notes, reports (the
    demo's run rewrites its own)."""
    for name in TRAINING_FILES:
        path = run_dir / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
