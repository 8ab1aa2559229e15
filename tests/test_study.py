"""`neurodeploy study`: the study file, the SNN variants it trains, and the grid on Ray Tune.

The Ray tests run `neurodeploy study` in subprocesses (their own session, so a timeout kills the whole
tree) with Ray's temp root in a private folder, and afterwards kill any Ray process that still names that
folder, so no raylet/gcs is left behind even on failure. Everything is tiny: a 2312-16-10 network, 1 epoch,
20 training / 10 test samples, T <= 4.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from neurodeploy.study.spec import load_study, parse_study

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")
RAY = str(Path(sys.executable).parent / "ray")
STUDY_TIMEOUT_S = 420


def _study(data_dir: Path, **changes) -> dict:
    """A 2x2 study (SNN, RNN) x (dt 5, 10 ms) at T = 4, one seed, tested also at dt 2.5 ms."""
    raw = {
        "name": "tiny", "title": "tiny 2x2", "dataset": "nmnist", "arch": "Input-16FC-10",
        "data_dir": str(data_dir), "scale": "quick",
        "scales": {"quick": {"epochs": 1, "lr": 0.003, "batch_size": 10, "limit": 20, "test_limit": 10}},
        "seeds": [0], "dt_ms": [5, 10], "steps": 4,
        "models": {"SNN": {"family": "snn"}, "RNN": {"family": "rnn", "loss": "last"}},
        "test": {"dt_ms": [2.5]}, "tables": ["accuracy", "generalisation"],
        "plots": ["accuracy_vs_dt", "generalisation_drop", "accuracy_vs_energy"],
        "paper": [{"model": "SNN", "dt_ms": 5, "accuracy": 0.99}],
    }
    raw.update(changes)
    return raw


def _write(folder: Path, raw: dict) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# ---------------------------------------------------------------- the study file

def test_shipped_studies_are_valid():
    studies = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))
    assert {p.stem for p in studies} >= {"table6", "table7", "table8", "table9", "table11", "table12"}
    for path in studies:
        spec = load_study(path)
        assert spec.cells(), path


def test_table12_cells_keep_t_times_dt_fixed():
    spec = load_study(Path(__file__).parent.parent / "studies" / "table12.yaml")
    cell = spec.cells()[0]
    assert [(p.dt_ms, p.steps) for p in cell.tests] == [(3, 15), (2, 22), (1, 45)]
    assert {m.name for m in spec.models} >= {"SNN", "RNN", "LSTM"}


@pytest.mark.parametrize("change, key", [
    ({"dt_ms": [0]}, "dt_ms"),
    ({"scale": "huge"}, "scale"),
    ({"models": {"RNN": {"family": "rnn", "reset": False}}}, "models.RNN"),
    ({"models": {"SNN": {"family": "snn", "loss": "last"}}}, "models.SNN.loss"),
    ({"paper": [{"model": "SNN", "dt_ms": 5, "accuracy": 99.1}]}, "paper[0].accuracy"),
    ({"colour": "red"}, "colour"),
    ({"window_ms": 40}, "steps"),
])
def test_bad_study_file_exits_2_naming_file_and_key(tmp_path, change, key):
    path = _write(tmp_path, _study(tmp_path, **change))
    result = subprocess.run([NEURODEPLOY, "study", str(path), "--dry-run"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert f"'{key}'" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (Path("runs") / "study-tiny").exists()


def test_dry_run_lists_cells_and_work(tmp_path):
    path = _write(tmp_path, _study(tmp_path))
    result = subprocess.run([NEURODEPLOY, "study", str(path), "--dry-run"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "4 cells" in result.stdout and "snn-dt5-T4-s0" in result.stdout and "dt2.5-T4" in result.stdout
    assert "320 sample-steps" in result.stdout  # 4 cells x T=4 x 1 epoch x 20 samples


# ---------------------------------------------------------------- SNN variants

def _snn(**variant):
    from neurodeploy.models.arch import resolve_arch
    from neurodeploy.models.training import TrainConfig, build_network

    config = TrainConfig(family="snn", arch="Input-8FC-4", dt_ms=3.0, steps=6, surrogate_width=0.25, **variant)
    torch.manual_seed(0)
    return build_network(config, resolve_arch(config.arch, "nmnist"), (2, 3, 3))


def _decays(network) -> set[float]:
    return {float(b.neuron.voltage_decay) / b.neuron.p_scale for b in network.blocks if hasattr(b, "neuron")}


def test_no_leak_is_voltage_decay_zero_and_adaptive_leak_follows_dt():
    import math

    assert _decays(_snn()) == {round(0.7 * 4096) / 4096}
    assert _decays(_snn(leak=False)) == {0.0}
    tau = 3.0 / math.log(1 / 0.3)  # k = 0.3 at the training dt of 3 ms
    assert _decays(_snn(leak_tau_ms=tau)) == {round(0.7 * 4096) / 4096}
    from neurodeploy.models.snn import LIFMapping

    at_1ms = LIFMapping.for_run(dt_ms=1.0, leak_tau_ms=tau)
    assert at_1ms.leak == pytest.approx(0.3 ** (1 / 3))


def test_no_reset_neuron_keeps_firing_above_threshold():
    """A constant drive of 0.8 threshold per step (k = 0.3): with reset the voltage restarts from 0 after each
    spike and fires every second step; without reset it settles at 0.8 / 0.7 thresholds and fires on every
    step from the second on."""
    counts = {}
    for reset in (True, False):
        network = _snn(reset=reset)
        block = network.blocks[0]
        drive = torch.full((1, 8, 12), 0.8 * block.neuron.threshold)
        with torch.no_grad():
            counts[reset] = int(block.neuron(drive).sum())
    assert counts[False] == 8 * 11
    assert counts[True] == 8 * 6


def test_recurrent_snn_has_trainable_cross_neuron_weights():
    network = _snn(recurrent=True)
    names = dict(network.named_parameters())
    recurrent = [name for name in names if "recurrent_synapse" in name]
    assert recurrent and names[recurrent[0]].requires_grad
    assert names[recurrent[0]].shape[:2] == (8, 8)
    x = (torch.rand(3, 2, 3, 3, 6) < 0.5).float()
    first = network(x)
    assert torch.equal(first, network(x))  # the state starts at zero on every call


def test_study_variants_train_export_and_run(tmp_path, tiny_nmnist):
    """Recurrent SNN: exported as dense_rec and bit-identical on the emulator; SNN without reset: export
    refused, evaluated in float; adaptive leakage: the test-variant run decays with exp(-dt/tau)."""
    import math

    from rich.console import Console

    from neurodeploy.deploy.export import export_run
    from neurodeploy.errors import UserError
    from neurodeploy.study.cell import run_cell

    tau = 5.0 / math.log(1 / 0.3)
    raw = _study(tiny_nmnist, dt_ms=[5], models={
        "SNN rec": {"family": "snn", "recurrent": True},
        "SNN no reset": {"family": "snn", "reset": False},
        "SNN adaptive": {"family": "snn", "leak_tau_ms": tau}}, paper=[])
    spec = parse_study(raw, "inline.yaml")
    console = Console(file=open(os.devnull, "w"))
    rows = {cell.model.name: run_cell(spec, cell, tmp_path, str(tiny_nmnist), console) for cell in spec.cells()}

    rec = rows["SNN rec"][0]
    report = json.loads((tmp_path / rec.report.report).read_text())
    assert rec.report.mode == "emulated" and report["parity"]["identical"]
    import h5py

    with h5py.File(tmp_path / "cells" / rec.cell / "model.net") as handle:
        assert handle["layer/0/type"][0] == b"dense_rec"

    no_reset = rows["SNN no reset"]
    assert all(r.report.mode == "float" and r.float_only for r in no_reset)
    with pytest.raises(UserError, match="without reset"):
        export_run(tmp_path / "cells" / no_reset[0].cell)

    adaptive = rows["SNN adaptive"][1]
    assert adaptive.test_dt_ms == 2.5
    config = json.loads((tmp_path / "cells" / adaptive.cell / "test" / "dt2.5-T4" / "config.json").read_text())
    assert config["resolved"]["lif_mapping"]["leak"] == pytest.approx(math.exp(-2.5 / tau))
    with h5py.File(tmp_path / "cells" / adaptive.cell / "test" / "dt2.5-T4" / "model.net") as handle:
        v_decay = int(np.asarray(handle["layer/0/neuron/vDecay"]))
    assert v_decay == round((1 - math.exp(-2.5 / tau)) * 4096)


# ---------------------------------------------------------------- the grid on Ray

@pytest.fixture()
def ray_tmp():
    """A private Ray temp root (short: Ray's socket paths must fit 107 bytes); afterwards every process
    that still names it is killed, by pid."""
    folder = tempfile.mkdtemp(prefix="ndray", dir="/tmp")
    yield folder
    _kill_ray_processes(folder)
    assert not _ray_processes(folder), "Ray processes left behind"
    shutil.rmtree(folder, ignore_errors=True)


def _ray_processes(folder: str) -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split(None, 1)[0]) for line in listing.splitlines()
            if folder in line and int(line.split(None, 1)[0]) != os.getpid()]


def _kill_ray_processes(folder: str) -> None:
    """Kill every process that names ``folder`` (Ray's temp root of one test), then remove the folder."""
    for _ in range(20):
        pids = _ray_processes(folder)
        if not pids:
            shutil.rmtree(folder, ignore_errors=True)
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def _env(ray_tmp: str) -> dict:
    # RAY_AUTH_MODE=disabled: a local test cluster without Ray's token file in ~/.ray
    return {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _run_study(args: list[str], ray_tmp: str, timeout: float = STUDY_TIMEOUT_S) -> subprocess.CompletedProcess:
    process = subprocess.Popen([NEURODEPLOY, "study", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_env(ray_tmp), start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"neurodeploy study ran over {timeout} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _accuracies(folder: Path) -> list[tuple]:
    with open(folder / "study.csv") as handle:
        return [(r["cell"], r["test_dt_ms"], r["accuracy"], r["synops_per_sample"], r["macs_per_sample"])
                for r in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_nmnist):
    """The 2x2 study run once, start to end, on the embedded Ray (one CPU)."""
    folder = tmp_path_factory.mktemp("study")
    path = _write(folder, _study(tiny_nmnist))
    ray_root = tempfile.mkdtemp(prefix="ndray", dir="/tmp")
    try:
        result = _run_study([str(path), "--num-cpus", "1", "--out", str(folder / "out")], ray_root)
    finally:
        _kill_ray_processes(ray_root)
    assert result.returncode == 0, result.stderr[-3000:]
    return path, folder / "out", result


def test_two_by_two_study_on_embedded_ray(uninterrupted):
    _, out, result = uninterrupted
    rows = _accuracies(out)
    assert len(rows) == 8  # 4 cells x (own dt + dt 2.5 ms)
    assert {r[0] for r in rows} == {"snn-dt5-T4-s0", "snn-dt10-T4-s0", "rnn-dt5-T4-s0", "rnn-dt10-T4-s0"}
    assert all(0 <= float(r[2]) <= 1 for r in rows)
    assert "4/4 done" in result.stderr  # the live progress lines
    markdown = (out / "study.md").read_text()
    assert "| SNN | leak on, reset on | emulated |" in markdown and "(paper 99.00%)" in markdown
    assert "paper: not given" in markdown
    for name in ("accuracy_vs_dt.png", "generalisation_drop.png", "accuracy_vs_energy.png"):
        assert (out / name).stat().st_size > 1000
    # every number is an ordinary run folder: the SNN cell re-runs on its own with `neurodeploy run`
    cell = out / "cells" / "snn-dt5-T4-s0"
    assert (cell / "model.net").is_file() and (cell / "test" / "dt2.5-T4" / "config.json").is_file()
    from neurodeploy.reports.compare import load_comparison_rows

    assert len(load_comparison_rows([out])) == 8  # `compare` reads the study folder


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_study_resumes_to_the_same_tables(uninterrupted, tmp_path, stop):
    path, reference, _ = uninterrupted
    out = tmp_path / "out"
    ray_root = tempfile.mkdtemp(prefix="ndray", dir="/tmp")
    process = subprocess.Popen([NEURODEPLOY, "study", str(path), "--num-cpus", "1", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(ray_root),
                               start_new_session=True)
    try:
        deadline = time.monotonic() + STUDY_TIMEOUT_S
        while not list(out.glob("cells/*/cell.json")):
            assert process.poll() is None and time.monotonic() < deadline, "no cell finished"
            time.sleep(0.5)
        process.send_signal(stop)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, err[-3000:]
        assert "--resume" in err
        finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("cells/*/cell.json")}
        assert 1 <= len(finished) < 4
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _kill_ray_processes(ray_root)
    result = _run_study([str(path), "--num-cpus", "1", "--resume", "--out", str(out)], ray_root)
    _kill_ray_processes(ray_root)
    assert result.returncode == 0, result.stderr[-3000:]
    # only the unfinished cells ran again
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("cells/*/cell.json") if p.parent.name in finished} \
        == finished
    assert _accuracies(out) == _accuracies(reference)
    assert (out / "study.md").read_text().replace(str(out), "") == \
        (reference / "study.md").read_text().replace(str(reference), "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_study_on_a_separate_ray_head(tmp_path, tiny_nmnist, ray_tmp):
    """`ray start --head` in a subprocess; the study goes to it through --address."""
    port = _free_port()
    head_log = open(tmp_path / "head.log", "w")
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--object-store-memory=100000000", f"--temp-dir={ray_tmp}",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=head_log, stderr=subprocess.STDOUT, env=_env(ray_tmp), start_new_session=True)
    try:
        path = _write(tmp_path, _study(tiny_nmnist, dt_ms=[5], models={"RNN": {"family": "rnn"}}, test={}, paper=[]))
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in (tmp_path / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (tmp_path / "head.log").read_text()
            time.sleep(1)
        result = _run_study([str(path), "--address", address, "--out", str(tmp_path / "out")], ray_tmp)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = _accuracies(tmp_path / "out")
        assert [r[0] for r in rows] == ["rnn-dt5-T4-s0"]
        # the cell ran in the cluster's worker, not in the driver: its log is in the study folder
        assert (tmp_path / "out" / "logs" / "rnn-dt5-T4-s0.log").read_text().count("epoch") >= 1
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        head_log.close()


def test_failed_cell_is_retried_and_reported(tmp_path, tiny_nmnist, ray_tmp):
    """A cell that fails every time (an 11-class output on 10-class data) ends up listed on stderr and in
    study.md (after Ray's max_failures retries), and the command exits 1; it is never dropped silently."""
    path = _write(tmp_path, _study(tiny_nmnist, arch="Input-16FC-11", dt_ms=[5], models={"RNN": {"family": "rnn"}},
                                   test={}, paper=[], max_failures=1))
    result = _run_study([str(path), "--num-cpus", "1", "--out", str(tmp_path / "out")], ray_tmp)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "failed cell rnn-dt5-T4-s0" in result.stderr
    markdown = (tmp_path / "out" / "study.md").read_text()
    assert "## Failed cells" in markdown and "rnn-dt5-T4-s0" in markdown
