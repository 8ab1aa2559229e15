"""Bad input through the real command line (SPEC 7, issue 7).

Every case runs one ``neurodeploy`` command on a damaged or wrong input inside its own folder and checks
the contract: exit code 2, exactly one ``error: ...`` line on stderr that names the problem and the fix,
no traceback, and not one file created or changed in that folder (no partial outputs). A few cases also
go through a fresh interpreter to check the real entry point, and ``--debug`` brings the traceback back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.data.nmnist import read_nmnist_file, write_nmnist_file


@dataclass
class Workspace:
    """One case's folder, with helpers that copy the shared fixtures into it before damaging them."""

    root: Path
    nmnist: Path
    snn_run: Path
    rnn_run: Path

    def dataset(self, damage: Callable[[Path], object] = lambda d: None) -> Path:
        folder = self.root / "data"
        shutil.copytree(self.nmnist, folder)
        damage(folder)
        return folder

    def run(self, damage: Callable[[Path], object] = lambda d: None, source: Path | None = None) -> Path:
        folder = self.root / "run"
        shutil.copytree(source or self.snn_run, folder)
        damage(folder)
        return folder

    def net(self, damage: Callable[[Path], object]) -> Path:
        path = self.root / "model.net"
        shutil.copy(self.snn_run / "model.net", path)
        damage(path)
        return path

    def spikes(self, shape=(2312, 12), name="x.npy") -> Path:
        np.save(self.root / name, np.zeros(shape, np.uint8))
        return self.root / name

    def empty_folder(self) -> Path:
        path = self.root / "empty"
        path.mkdir()
        return path

    def blocker(self) -> Path:
        """A regular file: any output path under it cannot be created."""
        path = self.root / "blocker"
        path.write_text("a file, not a folder\n")
        return path


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Workspace], list[str]]
    names: str  # the error line must name this (file, option or value)
    fix: str  # ... and say this (the remedy)


# ------------------------------------------------------------------------------------- damage helpers


def _first_test_bin(folder: Path) -> Path:
    return min((folder / "Test" / "0").glob("*.bin"))


def _truncate(path: Path, drop: int = 2) -> None:
    path.write_bytes(path.read_bytes()[:-drop])


def _set_first_x(path: Path, x: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[0] = x
    path.write_bytes(bytes(data))


def _as_128x128_recording(folder: Path) -> None:
    """Rewrite every test sample as if a 128x128 sensor had recorded it (a DVS Gesture-sized camera)."""
    for path in (folder / "Test").glob("*/*.bin"):
        events = read_nmnist_file(path)
        events["x"] = events["x"] * 3 + 20
        events["y"] = events["y"] * 3 + 20
        write_nmnist_file(path, events)


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _newer_schema(run: Path) -> None:
    _edit_json(run / "config.json", lambda c: c.update(schema_version=99))


def _newer_checkpoint(run: Path) -> None:
    import torch

    state = torch.load(run / "checkpoint.pt", weights_only=False)
    state["schema_version"] = 99
    torch.save(state, run / "checkpoint.pt")


def _other_sensor(run: Path) -> None:
    _edit_json(run / "config.json", lambda c: c["resolved"].update(sensor_size=[128, 128, 2]))


def _h5(edit: Callable[[h5py.File], object]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as handle:
            edit(handle)
    return damage


def _replace(handle: h5py.File, key: str, value) -> None:
    del handle[key]
    handle.create_dataset(key, data=value)


def _not_netx(path: Path) -> None:
    path.unlink()
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=np.zeros((4, 4)))


def _unknown_layer(handle: h5py.File) -> None:
    del handle["layer/0/type"]
    handle["layer/0"].create_dataset("type", (1,), "S10", [b"spiral"])


def _hostile_layer_type(handle: h5py.File) -> None:
    """A type string holding rich markup and a newline: it must neither crash the CLI nor split its line."""
    del handle["layer/0/type"]
    handle["layer/0"].create_dataset("type", (1,), "S12", [b"[/x]\n[red]"])


def _bad_weight(layer: int, value: float) -> Callable[[h5py.File], None]:
    def edit(handle: h5py.File) -> None:
        weight = handle[f"layer/{layer}/weight"][()].astype(np.float64)
        weight[0, 0] = value
        _replace(handle, f"layer/{layer}/weight", weight)
    return edit


def _narrow_second_layer(handle: h5py.File) -> None:
    _replace(handle, "layer/1/weight", handle["layer/1/weight"][()][:, :50])


def _gesture_tree(folder: Path, train_file: Callable[[Path], object]) -> Path:
    """A tonic-layout DVS Gesture copy whose one training sample is written by ``train_file``."""
    train = folder / "ibmGestureTrain" / "user01_fluorescent"
    test = folder / "ibmGestureTest" / "user24_fluorescent"
    train.mkdir(parents=True)
    test.mkdir(parents=True)
    train_file(train / "0.npy")
    np.save(test / "0.npy", np.array([[1, 2, 0, 5]], dtype=np.int32))
    return folder


def _ibm_tree(folder: Path) -> Path:
    """An IBM-release DVS Gesture copy whose labels file is not a table of numbers."""
    folder.mkdir()
    for user in ("user01_fluorescent", "user24_fluorescent"):
        (folder / f"{user}.aedat").write_bytes(b"#!AER-DAT3.1\r\n#End Of ASCII Header\r\n")
        (folder / f"{user}_labels.csv").write_text("class,startTime_usec,endTime_usec\nclap,soon,later\n")
    return folder


TRAIN = ["train", "nmnist", "--arch", "Input-16FC-10", "--epochs", "1", "--steps", "4", "--dt", "10",
         "--batch-size", "20", "--no-synthetic"]
GESTURE = ["train", "dvsgesture", "--arch", "Input-MP4-16FC-11", "--epochs", "1", "--steps", "4", "--no-synthetic"]


def _train(ws: Workspace, data: Path, *extra: str) -> list[str]:
    return [*TRAIN, "--data-dir", str(data), "--out", str(ws.root / "out"), *extra]


def _run_net(ws: Workspace, net: Path, backend: str = "emulator") -> list[str]:
    return ["run", str(net), "--backend", backend, "--input", str(ws.spikes()),
            "--save-output", str(ws.root / "y.npy")]


def _run(ws: Workspace, run: Path, *extra: str) -> list[str]:
    return ["run", str(run), "--backend", "emulator", "--samples", "4", *extra]


CASES = [
    # ---- datasets (train): missing, empty, corrupt folders and files
    Case("train: --data-dir does not exist",
         lambda ws: _train(ws, ws.root / "no-such-folder"), "no-such-folder: N-MNIST not found", "--data-dir"),
    Case("train: --data-dir is an empty folder",
         lambda ws: _train(ws, ws.empty_folder()),
         "empty: N-MNIST not found", "--data-dir"),
    Case("train: a digit folder is missing",
         lambda ws: _train(ws, ws.dataset(lambda d: shutil.rmtree(d / "Train" / "3"))),
         "Train/3: missing", "re-copy the N-MNIST dataset"),
    Case("train: an empty .bin file",
         lambda ws: _train(ws, ws.dataset(lambda d: _first_test_bin(d).write_bytes(b""))),
         ".bin: empty N-MNIST sample file", "re-copy"),
    Case("train: a truncated .bin file",
         lambda ws: _train(ws, ws.dataset(lambda d: _truncate(_first_test_bin(d)))),
         ".bin: truncated or corrupt", "re-copy"),
    Case("train: a corrupt .bin file (x=200 on 34x34)",
         lambda ws: _train(ws, ws.dataset(lambda d: _set_first_x(_first_test_bin(d)))),
         "x=200", "re-copy"),
    Case("train: a DVS Gesture .npy that is not numpy",
         lambda ws: [*GESTURE, "--data-dir", str(_gesture_tree(ws.root / "dvs", lambda p: p.write_bytes(b"junk"))),
                     "--out", str(ws.root / "out")],
         "0.npy: cannot read DVS Gesture sample", "re-copy the DVS Gesture dataset"),
    Case("train: a DVS Gesture .npy of the wrong shape",
         lambda ws: [*GESTURE, "--data-dir", str(_gesture_tree(ws.root / "dvs", lambda p: np.save(p, np.ones((5, 3))))),
                     "--out", str(ws.root / "out")],
         "not a DVS Gesture sample", "re-copy"),
    Case("train: an IBM DVS Gesture labels file that is not numbers",
         lambda ws: [*GESTURE, "--data-dir", str(_ibm_tree(ws.root / "ibm")), "--out", str(ws.root / "out")],
         "_labels.csv: cannot read the gesture labels", "re-copy"),
    Case("train: unwritable --out",
         lambda ws: [*TRAIN, "--data-dir", str(ws.nmnist), "--out", str(ws.blocker() / "run")],
         "blocker is a file", "choose another --out"),
    Case("train: --resume a folder that holds no run",
         lambda ws: _train(ws, ws.nmnist, "--resume"), "config.json: not a neurodeploy run directory",
         "pass a run made by `train`"),
    Case("train: --epochs 0",
         lambda ws: [*_train(ws, ws.nmnist), "--epochs", "0"], "--epochs", "at least 1"),
    # ---- export
    Case("export: an RNN run",
         lambda ws: ["export", str(ws.run(source=ws.rnn_run))], "a rnn run cannot be exported", "--backend torch"),
    Case("export: a run from a newer schema version",
         lambda ws: ["export", str(ws.run(_newer_schema))], "config schema 99 is newer", "upgrade neurodeploy"),
    Case("export: a damaged config.json",
         lambda ws: ["export", str(ws.run(lambda r: (r / "config.json").write_text("{not json")))],
         "config.json: damaged run config", "retrain"),
    Case("export: a damaged checkpoint",
         lambda ws: ["export", str(ws.run(lambda r: (r / "checkpoint.pt").write_bytes(b"\x80garbage")))],
         "checkpoint.pt: checkpoint cannot be read", "retrain"),
    Case("export: unwritable --out",
         lambda ws: ["export", str(ws.run()), "--out", str(ws.blocker() / "model.net")],
         "blocker is a file", "choose another --out"),
    # ---- run: options
    Case("run: --samples 0", lambda ws: [*_run(ws, ws.run()), "--samples", "0"], "--samples", "at least 1"),
    Case("run: unknown --hw", lambda ws: _run(ws, ws.run(), "--hw", "loihi9"),
         "unknown hardware profile 'loihi9'", "known profiles: "),
    Case("run: unknown --backend", lambda ws: ["run", str(ws.run()), "--backend", "gpu"],
         "unknown --backend 'gpu'", "choose one of lava, loihi2, emulator, torch"),
    Case("run: unwritable --out", lambda ws: _run(ws, ws.run(), "--out", str(ws.blocker() / "reports")),
         "blocker is a file", "choose another --out"),
    Case("run: target does not exist", lambda ws: _run(ws, ws.root / "no-such-run"),
         "no-such-run: no such run directory", "pass a run made by `train`"),
    # ---- run: run directories
    Case("run: a run directory from a newer schema version", lambda ws: _run(ws, ws.run(_newer_schema)),
         "config.json: config schema 99 is newer", "upgrade neurodeploy"),
    Case("run: a checkpoint from a newer schema version", lambda ws: _run(ws, ws.run(_newer_checkpoint)),
         "checkpoint.pt: checkpoint schema 99 is newer", "upgrade neurodeploy"),
    Case("run: config edited to another sensor size", lambda ws: _run(ws, ws.run(_other_sensor)),
         "checkpoint.pt: the weights do not fit", "retrain"),
    Case("run: an SNN run that was never exported",
         lambda ws: _run(ws, ws.run(lambda r: (r / "model.net").unlink())), "model.net: not exported yet",
         "neurodeploy export"),
    Case("run: an RNN run on --backend lava",
         lambda ws: ["run", str(ws.run(source=ws.rnn_run)), "--backend", "lava"],
         "a rnn run executes on --backend torch only", "--backend torch"),
    # ---- run: data of the wrong sensor size
    Case("run: --data-dir recorded by a 128x128 sensor",
         lambda ws: ["run", str(ws.run()), "--backend", "emulator", "--no-synthetic",
                     "--data-dir", str(ws.dataset(_as_128x128_recording))],
         "on a 34x34 sensor", "re-copy the N-MNIST dataset"),
    Case("run: --input spikes for the wrong number of inputs",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator",
                     "--input", str(ws.spikes((128 * 128 * 2, 12))), "--save-output", str(ws.root / "y.npy")],
         "spike input must be (neurons=2312, T)", "(N, 2312, T)"),
    Case("run: --input is not a .npy file",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator",
                     "--input", str(ws.blocker()), "--save-output", str(ws.root / "y.npy")],
         "blocker: cannot read as .npy", "numpy.save"),
    # ---- run: HDF5 files
    Case("run: a .net file that is not HDF5", lambda ws: _run_net(ws, ws.net(lambda p: p.write_text("hello"))),
         "model.net: not an HDF5 file", "netx network exported by lava-dl"),
    Case("run: an empty .net file", lambda ws: _run_net(ws, ws.net(lambda p: p.write_bytes(b""))),
         "model.net: not an HDF5 file", "exported by lava-dl"),
    Case("run: a truncated .net file", lambda ws: _run_net(ws, ws.net(lambda p: _truncate(p, p.stat().st_size // 2))),
         "model.net: not an HDF5 file", "exported by lava-dl"),
    Case("run: an HDF5 file that is not netx", lambda ws: _run_net(ws, ws.net(_not_netx)),
         "model.net: no 'layer' group", "export it with lava-dl"),
    Case("run: an unknown layer type", lambda ws: _run_net(ws, ws.net(_h5(_unknown_layer))),
         "layer 0: unknown layer type 'spiral'", "supported: "),
    Case("run: a layer type holding markup and a newline", lambda ws: _run_net(ws, ws.net(_h5(_hostile_layer_type))),
         "layer 0: unknown layer type '[/x]\\n[red]'", "supported: "),
    Case("run: NaN weights", lambda ws: _run_net(ws, ws.net(_h5(_bad_weight(0, np.nan)))),
         "layer 0: 'weight' contains NaN or inf", "export it again"),
    Case("run: inf weights (lava backend)", lambda ws: _run_net(ws, ws.net(_h5(_bad_weight(1, np.inf))), "lava"),
         "layer 1: 'weight' contains NaN or inf", "export it again"),
    Case("run: mismatched layer shapes", lambda ws: _run_net(ws, ws.net(_h5(_narrow_second_layer))),
         "layer 1: weight expects 50 inputs but the previous layer has 64", "fix the layer sizes"),
    Case("run: a corrupt model.net inside a run directory",
         lambda ws: _run(ws, ws.run(lambda r: _truncate(r / "model.net", 1000))), "model.net: not an HDF5 file",
         "exported by lava-dl"),
    Case("data generate: unknown --source",
         lambda ws: ["data", "generate", "nmnist", "--out", str(ws.root / "syn"), "--source", "emnist"],
         "--source emnist", "choose one of mnist-digits, sklearn-digits"),
    Case("data generate: --source for a dataset without one",
         lambda ws: ["data", "generate", "dvsgesture", "--out", str(ws.root / "syn"), "--source", "mnist-digits"],
         "--source mnist-digits", "drop --source"),
]


@pytest.fixture
def workspace(tmp_path, tiny_nmnist, trained_snn_run, trained_rnn_run) -> Workspace:
    root = tmp_path / "case"
    root.mkdir()
    return Workspace(root, Path(tiny_nmnist), Path(trained_snn_run), Path(trained_rnn_run))


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every file and folder under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in folder.rglob("*")}


def assert_one_line_error(exit_code: int, stdout: str, stderr: str, case: Case) -> str:
    """The CLI contract for bad input; returns the error line."""
    output = stdout + stderr
    assert "Traceback" not in output, output
    assert exit_code == 2, output
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"expected exactly one error line on stderr:\n{output}"
    assert "error:" not in stdout, stdout
    assert stderr.rstrip().splitlines()[-1] == errors[0], f"the error must be one line and the last one:\n{stderr}"
    line = errors[0]
    assert case.names in line, f"error line does not name {case.names!r}: {line}"
    assert case.fix in line, f"error line does not give the fix {case.fix!r}: {line}"
    return line


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_no_files(case: Case, workspace: Workspace):
    args = case.build(workspace)
    before = _snapshot(workspace.root)
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        pytest.fail("".join(traceback.format_exception(result.exception)))
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, case)
    assert _snapshot(workspace.root) == before, "the failed command created or changed files"


def test_the_table_has_at_least_twenty_cases_across_commands():
    commands = {case.name.split(":")[0] for case in CASES}
    assert len(CASES) >= 20 and commands == {"train", "export", "run"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.parametrize("name", ["run: NaN weights", "run: a run directory from a newer schema version"])
def test_the_installed_entry_point_prints_one_line_on_stderr(name, workspace):
    """A fresh interpreter, a narrow terminal: still one line (no wrapping), nothing on stdout."""
    case = next(c for c in CASES if c.name == name)
    args = case.build(workspace)
    before = _snapshot(workspace.root)
    done = _cli(*args)
    assert_one_line_error(done.returncode, done.stdout, done.stderr, case)
    assert done.stdout == ""
    assert _snapshot(workspace.root) == before


def test_debug_shows_the_traceback(workspace):
    case = next(c for c in CASES if c.name == "run: NaN weights")
    done = _cli("--debug", *case.build(workspace))
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "UserError" in done.stderr and case.names in done.stderr
