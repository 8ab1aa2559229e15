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
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
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

    def fifo(self, name: str = "pipe") -> Path:
        """A named pipe: reading it waits forever for a writer, an atomic rename would replace it."""
        path = self.root / name
        os.mkfifo(path)
        return path

    def device(self, name: str = "null") -> Path:
        """A private character device (a copy of /dev/null's node): never /dev/null itself, which code
        with this bug would replace by a regular file for the whole machine."""
        path = self.root / name
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs CAP_MKNOD")
        return path

    def folder(self, name: str) -> Path:
        path = self.root / name
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


# ---------------------------------------------------------------------- hostile files (issue 12)


def _edit_checkpoint(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        import torch

        state = torch.load(run / "checkpoint.pt", weights_only=True)
        change(state)
        torch.save(state, run / "checkpoint.pt")
    return damage


def _nudge_first_weight(state: dict) -> None:
    """What more training does to a checkpoint: the weights move, the exported model.net stays behind."""
    name = next(k for k, v in state["model"].items() if v.is_floating_point() and v.numel() > 1)
    state["model"][name] = state["model"][name] + 0.01


def _blow_up_weights(state: dict) -> None:
    """What `train --lr 1e30` leaves: huge but finite weights."""
    for name, value in state["model"].items():
        if value.is_floating_point() and "weight" in name:
            state["model"][name] = value * 1e6


def _foreign_export(handle: h5py.File) -> None:
    """A model.net of the same shape exported from another run."""
    handle.attrs["neurodeploy_checkpoint_sha256"] = "0" * 64
    handle.attrs["neurodeploy_run_id"] = "f" * 32


def _no_provenance(handle: h5py.File) -> None:
    for key in list(handle.attrs):
        del handle.attrs[key]


def _write(ws: Workspace, name: str, content: str | bytes) -> Path:
    path = ws.root / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + \
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"


def _npy_header_only(shape: tuple[int, ...], dtype: str = "<u1") -> bytes:
    """A .npy file whose header promises ``shape`` but which holds 16 bytes of data."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(16)


def _npy(ws: Workspace, name: str, array, **kwargs) -> Path:
    path = ws.root / name
    np.save(path, array, **kwargs)
    return path


def _npz(ws: Workspace) -> Path:
    path = ws.root / "x.npz"
    np.savez(path, x=np.zeros((2312, 12), np.uint8))
    return path


def _model_yaml(ws: Workspace, text: str) -> Path:
    return _write(ws, "model.yaml", text)


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
         lambda ws: [*_train(ws, ws.nmnist), "--epochs", "0"], "--epochs 0 is out of range", "from 1 to"),
    # ---- export
    Case("export: an RNN run",
         lambda ws: ["export", str(ws.run(source=ws.rnn_run))], "a rnn run cannot be exported", "--backend torch"),
    Case("export: a run from a newer schema version",
         lambda ws: ["export", str(ws.run(_newer_schema))], "config schema 99 is newer", "upgrade neurodeploy"),
    Case("export: a damaged config.json",
         lambda ws: ["export", str(ws.run(lambda r: (r / "config.json").write_text("{not json")))],
         "config.json: cannot read run config (not valid JSON", "retrain"),
    Case("export: a damaged checkpoint",
         lambda ws: ["export", str(ws.run(lambda r: (r / "checkpoint.pt").write_bytes(b"\x80garbage")))],
         "checkpoint.pt: checkpoint cannot be read", "retrain"),
    Case("export: unwritable --out",
         lambda ws: ["export", str(ws.run()), "--out", str(ws.blocker() / "model.net")],
         "blocker is a file", "choose another --out"),
    # ---- run: options
    Case("run: --samples 0", lambda ws: [*_run(ws, ws.run()), "--samples", "0"], "--samples 0 is out of range",
         "from 1 to"),
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
         "blocker: cannot read --input as .npy", "numpy.save"),
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
    # ---- special files (issue 12, point 2): refused before any work, never read (a FIFO blocks) or replaced
    Case("run: --save-output is a FIFO",
         lambda ws: [*_run_net(ws, ws.net(lambda p: None))[:-1], str(ws.fifo("y.npy"))],
         "y.npy: --save-output names a FIFO", "choose a new or regular file"),
    Case("run: --save-output is an existing folder",
         lambda ws: [*_run_net(ws, ws.net(lambda p: None))[:-1], str(ws.folder("y.npy"))],
         "y.npy: --save-output names a folder", "choose a new or regular file"),
    Case("run: --save-output is a device node",
         lambda ws: [*_run_net(ws, ws.net(lambda p: None))[:-1], str(ws.device())],
         "null: --save-output names a character device", "choose a new or regular file"),
    Case("run: --input is a FIFO",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input", str(ws.fifo("x.npy"))],
         "x.npy: --input is a FIFO", "pass a regular file"),
    Case("run: the .net target is a FIFO",
         lambda ws: ["run", str(ws.fifo("model.net")), "--backend", "emulator", "--input", str(ws.spikes())],
         "model.net: netx network is a FIFO", "pass a regular file"),
    Case("run: --hw names a FIFO", lambda ws: _run(ws, ws.run(), "--hw", str(ws.fifo("hw.yaml"))),
         "hw.yaml: hardware profile is a FIFO", "pass a regular file"),
    Case("run: config.json of the run is a FIFO",
         lambda ws: _run(ws, ws.run(lambda r: ((r / "config.json").unlink(), os.mkfifo(r / "config.json")))),
         "config.json: run config is a FIFO", "pass a regular file"),
    Case("export: --out is a FIFO", lambda ws: ["export", str(ws.run()), "--out", str(ws.fifo("out.net"))],
         "out.net: --out names a FIFO", "choose a new or regular file"),
    Case("export: --out is an existing folder", lambda ws: ["export", str(ws.run()), "--out", str(ws.folder("o"))],
         "o: --out names a folder", "choose a new or regular file"),
    Case("export: checkpoint.pt is a FIFO",
         lambda ws: ["export", str(ws.run(lambda r: ((r / "checkpoint.pt").unlink(), os.mkfifo(r / "checkpoint.pt"))))],
         "checkpoint.pt: checkpoint is a FIFO", "pass a regular file"),
    Case("train: --arch model file is a FIFO", lambda ws: [*_train(ws, ws.nmnist), "--arch", str(ws.fifo("m.yaml"))],
         "m.yaml: model file is a FIFO", "pass a regular file"),
    Case("train: a .bin sample is a FIFO",
         lambda ws: _train(ws, ws.dataset(lambda d: os.mkfifo(d / "Test" / "0" / "fifo.bin"))),
         "fifo.bin: N-MNIST sample is a FIFO", "pass a regular file"),
    # ---- silent wrong results (issue 12, point 5)
    Case("run: model.net exported from an older checkpoint",
         lambda ws: _run(ws, ws.run(_edit_checkpoint(_nudge_first_weight))),
         "model.net: was exported from an older checkpoint of this run", "run `neurodeploy export"),
    Case("run: model.net from another run of the same shape",
         lambda ws: _run(ws, ws.run(lambda r: _h5(_foreign_export)(r / "model.net"))),
         "model.net: was exported from another run", "run `neurodeploy export"),
    Case("run: model.net that records no checkpoint",
         lambda ws: _run(ws, ws.run(lambda r: _h5(_no_provenance)(r / "model.net"))),
         "model.net: does not record which checkpoint", "run `neurodeploy export"),
    Case("export: weights of a diverged run clipped to 8 bits",
         lambda ws: ["export", str(ws.run(_edit_checkpoint(_blow_up_weights)))],
         "of its weights to clipping (limit 1%)", "--accept-quantization-loss"),
    Case("train: --dt so large that every event falls in frame 0",
         lambda ws: [*_train(ws, ws.nmnist), "--dt", "100000"], "every event of the", "use a --dt that spreads"),
    Case("train: --dt 0", lambda ws: [*_train(ws, ws.nmnist), "--dt", "0"], "--dt 0.0 ms is out of range",
         "give a frame width"),
    Case("data: info --dt 0 (was: silently 10 ms)",
         lambda ws: ["data", "info", "nmnist", "--dt", "0", "--out", str(ws.root / "info")],
         "--dt 0.0 ms is out of range", "give a frame width"),
    Case("bench: --density -1", lambda ws: ["bench", "--density", "-1"], "--density -1.0 is out of range",
         "give a value above 0 to 1"),
    Case("bench: --density 0 (empty input)", lambda ws: ["bench", "--density", "0"], "--density 0.0 is out of range",
         "give a value above 0 to 1"),
    # ---- resource exhaustion (issue 12, point 6)
    Case("run: --hw YAML with an alias bomb",
         lambda ws: _run(ws, ws.run(), "--hw", str(_write(ws, "hw.yaml", ALIAS_BOMB))),
         "anchors and aliases (&, *) are not allowed", "fix the YAML"),
    Case("train: a model YAML nested 10,000 deep",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", str(_model_yaml(ws, "[" * 10_000 + "]" * 10_000))],
         "nesting deeper than 32 levels", "pick another --arch"),
    Case("run: --hw YAML of 2 MB", lambda ws: _run(ws, ws.run(), "--hw", str(_write(ws, "hw.yaml", "#" * 2**21))),
         "hardware profile is 2097152 bytes, more than the 1048576 allowed", "pass the right file"),
    Case("run: --input .npy header promising 2 TB",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input",
                     str(_write(ws, "x.npy", _npy_header_only((2312, 10**9))))],
         "x.npy: --input header promises (2312, 1000000000) uint8", "numpy.save"),
    Case("run: --input .npy header promising more than the file holds",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input",
                     str(_write(ws, "x.npy", _npy_header_only((2312, 12))))],
         "x.npy: --input is truncated", "numpy.save"),
    Case("run: --input .npy of Python objects (pickle)",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input",
                     str(_npy(ws, "x.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True))],
         "x.npy: --input holds Python objects", "numpy.save"),
    # ---- one line instead of a traceback (issue 12, point 7)
    Case("train: --lr nan", lambda ws: [*_train(ws, ws.nmnist), "--lr", "nan"], "--lr nan is out of range",
         "give a learning rate in (0, 1]"),
    Case("train: --lr inf", lambda ws: [*_train(ws, ws.nmnist), "--lr", "inf"], "--lr inf is out of range",
         "give a learning rate in (0, 1]"),
    Case("train: --lr 1e30", lambda ws: [*_train(ws, ws.nmnist), "--lr", "1e30"], "--lr 1e+30 is out of range",
         "give a learning rate in (0, 1]"),
    Case("train: --lr -1", lambda ws: [*_train(ws, ws.nmnist), "--lr", "-1"], "--lr -1.0 is out of range",
         "give a learning rate"),
    Case("train: --lr abc (not a number)", lambda ws: [*_train(ws, ws.nmnist), "--lr", "abc"],
         "Invalid value for '--lr'", "train --help`"),
    Case("train: --epochs 1.5 (not a whole number)", lambda ws: [*_train(ws, ws.nmnist), "--epochs", "1.5"],
         "Invalid value for '--epochs'", "train --help`"),
    Case("train: --dt nan", lambda ws: [*_train(ws, ws.nmnist), "--dt", "nan"], "--dt nan ms is out of range",
         "give a frame width"),
    Case("train: --steps -1", lambda ws: [*_train(ws, ws.nmnist), "--steps", "-1"], "--steps -1 is out of range",
         "give T from 1 to"),
    Case("train: --steps 10**9", lambda ws: [*_train(ws, ws.nmnist), "--steps", "1000000000"],
         "--steps 1000000000 is out of range", "give T from 1 to"),
    Case("train: --seed -1", lambda ws: [*_train(ws, ws.nmnist), "--seed", "-1"], "--seed -1 is out of range",
         "from 0 to 4294967295"),
    Case("train: --seed 2**70", lambda ws: [*_train(ws, ws.nmnist), "--seed", str(2**70)],
         f"--seed {2**70} is out of range", "from 0 to 4294967295"),
    Case("train: --batch-size 0", lambda ws: [*_train(ws, ws.nmnist), "--batch-size", "0"],
         "--batch-size 0 is out of range", "from 1 to"),
    Case("train: --limit -5", lambda ws: [*_train(ws, ws.nmnist), "--limit", "-5"], "--limit -5 is out of range",
         "from 1 to"),
    Case("train: unknown --device", lambda ws: [*_train(ws, ws.nmnist), "--device", "tpu"], "unknown --device 'tpu'",
         "use cpu, cuda, cuda:N or auto"),
    Case("train: integer overflow in an architecture string",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", "Input-99999999999999999999999FC-10"],
         "units 99999999999999999999999 is above the limit", "use a smaller layer"),
    Case("train: a model YAML whose datasets entry is a list",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", str(_model_yaml(ws, "arch: Input-16FC-10\ndatasets: [1, 2]\n"))],
         "model.yaml: 'datasets' must map a dataset name", "fix the model file"),
    Case("train: a model YAML whose dt_ms is a string",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", str(_model_yaml(
             ws, "arch: Input-16FC-10\ndatasets:\n  nmnist: {dt_ms: fast, steps: 4, batch_size: 8}\n"))],
         "dt_ms is a number", "fix the model file"),
    Case("train: a model YAML whose micro_batch is a string",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", str(_model_yaml(
             ws, "arch: Input-16FC-10\ndatasets:\n  nmnist: {dt_ms: 10, steps: 4, batch_size: 8, micro_batch: x}\n"))],
         "micro_batch whole numbers", "fix the model file"),
    Case("train: a model YAML whose micro_batch is 0",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", str(_model_yaml(
             ws, "arch: Input-16FC-10\ndatasets:\n  nmnist: {dt_ms: 10, steps: 4, batch_size: 8, micro_batch: 0}\n"))],
         "--micro-batch 0 is out of range", "give a value"),
    Case("train: --micro-batch 0",
         lambda ws: [*_train(ws, ws.nmnist), "--micro-batch", "0"],
         "--micro-batch 0 is out of range", "give a value"),
    Case("run: --count-only on the emulator",
         lambda ws: ["run", str(ws.run()), "--backend", "emulator", "--count-only"],
         "--count-only counts spikes inside Lava", "--backend lava"),
    Case("train: a model YAML whose arch is a number",
         lambda ws: [*_train(ws, ws.nmnist), "--arch", str(_model_yaml(ws, "arch: 5\n"))],
         "model.yaml: a model file needs an 'arch' key", "architecture string"),
    Case("run: unknown --device", lambda ws: ["run", str(ws.run(source=ws.rnn_run)), "--backend", "torch",
                                              "--device", "gpu0"], "unknown --device 'gpu0'",
         "use cpu, cuda, cuda:N or auto"),
    Case("run: config.json with epochs as a string",
         lambda ws: _run(ws, ws.run(lambda r: _edit_json(r / "config.json", lambda c: c.update(epochs="ten")))),
         "config.json: 'epochs' is \"ten\", expected int", "retrain into a new --out"),
    Case("run: config.json with a string sensor size",
         lambda ws: _run(ws, ws.run(lambda r: _edit_json(r / "config.json",
                                                         lambda c: c["resolved"].update(sensor_size="big")))),
         "config.json: resolved.sensor_size is \"big\"", "retrain into a new --out"),
    Case("run: config.json that is a list",
         lambda ws: _run(ws, ws.run(lambda r: (r / "config.json").write_text("[1, 2]"))),
         "config.json: damaged run config", "retrain into a new --out"),
    Case("run: --input of strings",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input",
                     str(_npy(ws, "x.npy", np.full((2312, 12), "1")))],
         "x.npy: --input holds <U1 values, not numbers", "numpy.save"),
    Case("run: --input of a structured dtype",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input",
                     str(_npy(ws, "x.npy", np.zeros((2312, 12), dtype=[("a", "u1"), ("b", "f4")])))],
         "x.npy: --input holds", "not numbers"),
    Case("run: --input is an .npz archive",
         lambda ws: ["run", str(ws.net(lambda p: None)), "--backend", "emulator", "--input", str(_npz(ws))],
         "x.npz: cannot read --input as .npy", "numpy.save"),
    Case("bench: --steps with a word", lambda ws: ["bench", "--steps", "15,abc"], "--steps '15,abc' is not",
         "e.g. 15,300"),
    Case("bench: --samples 0", lambda ws: ["bench", "--samples", "0"], "--samples 0 is out of range", "from 1 to"),
    Case("data: generate --seed -1",
         lambda ws: ["data", "generate", "nmnist", "--out", str(ws.root / "g"), "--seed", "-1"],
         "--seed -1 is out of range", "from 0 to"),
    Case("data: generate --train-per-class 0",
         lambda ws: ["data", "generate", "nmnist", "--out", str(ws.root / "g"), "--train-per-class", "0"],
         "--train-per-class 0 is out of range", "from 1 to"),
    Case("cost: --input with an absurd size", lambda ws: ["cost", "Input-10", "--input", "99999999999x9x2"],
         "--input '99999999999x9x2' is too large", "sides up to"),
    Case("cost: an architecture string with a huge kernel", lambda ws: ["cost", "Input-16C99999-10"],
         "kernel 99999 is above the limit 31", "use a smaller layer"),
    Case("hw: show a profile whose value has 300 hex digits",
         lambda ws: ["hw", "show", str(_write(ws, "hw.yaml", (Path(__file__).parent.parent / "hw_configs" /
                                                               "loihi2.yaml").read_text().replace(
             "value: 23.6", "value: 0x" + "f" * 300)))], "hw.yaml: invalid hardware profile", "fix the file"),
    Case("lint: unknown command option", lambda ws: ["lint", "Input-10", "--bogus"], "No such option: --bogus",
         "lint --help`"),
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


# ---- devices (issue 23 family 6): a GPU asked for on a machine without one is refused, never ignored
NO_GPU = "sees no usable GPU" if torch.version.cuda else "built without CUDA"
DEVICE_CASES = [
    Case("train: snn --device cuda", lambda ws: [*_train(ws, ws.nmnist), "--device", "cuda"], "--device cuda",
         NO_GPU),
    Case("train: lstm --device cuda:0", lambda ws: [*_train(ws, ws.nmnist), "--model", "lstm", "--device", "cuda:0"],
         "--device cuda:0", "use --device cpu (or auto)"),
    Case("run: snn --backend emulator --device cuda", lambda ws: [*_run(ws, ws.run()), "--device", "cuda"],
         "--device cuda", NO_GPU),
    Case("run: snn --backend torch --device cuda",
         lambda ws: ["run", str(ws.run()), "--backend", "torch", "--device", "cuda"], "--device cuda", NO_GPU),
    Case("run: snn --backend lava --device cuda:1",
         lambda ws: ["run", str(ws.run()), "--backend", "lava", "--device", "cuda:1"], "--device cuda:1", NO_GPU),
    Case("run: rnn --backend torch --device cuda",
         lambda ws: ["run", str(ws.run(source=ws.rnn_run)), "--backend", "torch", "--device", "cuda"],
         "--device cuda", "use --device cpu (or auto)"),
    Case("run: a .net file with --input and --device cuda",
         lambda ws: [*_run_net(ws, ws.net(lambda p: None)), "--device", "cuda"], "--device cuda", NO_GPU),
    Case("study: --gpus-per-trial 1 without a GPU",
         lambda ws: ["study", str(Path(__file__).resolve().parents[1] / "studies" / "table9.yaml"),
                     "--gpus-per-trial", "1", "--out", str(ws.root / "study")], "--gpus-per-trial 1", NO_GPU),
    Case("study: --gpus-per-trial 0.5 without a GPU",
         lambda ws: ["study", str(Path(__file__).resolve().parents[1] / "studies" / "table9.yaml"),
                     "--gpus-per-trial", "0.5", "--out", str(ws.root / "study")], "--gpus-per-trial 0.5",
         "use --gpus-per-trial 0"),
]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU; the refusals are for one without")
@pytest.mark.parametrize("case", DEVICE_CASES, ids=[case.name for case in DEVICE_CASES])
def test_a_gpu_asked_for_without_one_exits_2(case: Case, workspace: Workspace):
    test_bad_input_exits_2_with_one_line_and_leaves_no_files(case, workspace)


def test_the_table_has_at_least_twenty_cases_across_commands():
    commands = {case.name.split(":")[0] for case in CASES}
    assert len(CASES) >= 20 and {"train", "export", "run"} <= commands


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
