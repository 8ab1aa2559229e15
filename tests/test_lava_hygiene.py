"""A failed or interrupted Lava run leaves no processes behind (SPEC 7, issue 7).

What Lava's CPU runtime (lava-nc 0.10, ``Loihi2SimCfg``) starts, established by watching ``/proc``: a
``fork``-ed OS process for every process model of the network (input RingBuffer, each layer's synapse and
neuron, one sink per recorded layer, resetters when samples are batched with resets), one for the runtime
service and one for its shared-memory manager -- 9 for the two-layer network below -- plus Python's
``multiprocessing`` resource tracker (fork+exec, one per interpreter, ends with it; not counted). No thread
survives a run. The tests count the workers: mid-run there are several, after an exception or Ctrl-C there
must be none, and the command must return, not hang.

``psutil`` is not a dependency, so processes are read from ``/proc`` (Linux).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.lava, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")]

RESOURCE_TRACKER = "multiprocessing.resource_tracker"


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) for every live (not zombie) process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        if fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), int(fields[2]), command)
    return table


def lava_workers(root: int) -> list[str]:
    """Live descendants of ``root``, except Python's resource tracker (one per interpreter, not Lava's)."""
    table = _processes()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, command) in table.items():
            if ppid == parent:
                frontier.append(pid)
                if RESOURCE_TRACKER not in command:
                    found.append(f"{pid} {command}")
    return found


def group_members(pgid: int) -> list[str]:
    return [f"{pid} {command}" for pid, (_, group, command) in _processes().items() if group == pgid]


def _wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture(scope="module")
def small_net(tmp_path_factory) -> Path:
    """A 16-8-4 dense CUBA network in netx format: quick to compile, as many Lava workers as any 2-layer net."""
    from neurodeploy.deploy.netx_records import CubaParams, NetxLayer
    from neurodeploy.deploy.netx_write import write_netx

    rng = np.random.default_rng(0)
    neuron = CubaParams(i_decay=4096, v_decay=1229, v_th_mant=80)
    layers = [NetxLayer(index=1, kind="dense", in_shape=(16,), out_shape=(8,),
                        weight=rng.integers(-64, 128, (8, 16)), neuron=neuron),
              NetxLayer(index=2, kind="dense", in_shape=(8,), out_shape=(4,),
                        weight=rng.integers(-64, 128, (4, 8)), neuron=neuron)]
    return write_netx(tmp_path_factory.mktemp("net") / "small.net", layers, input_shape=(16,))


def _spikes(steps: int, samples: int = 1) -> np.ndarray:
    return (np.random.default_rng(1).random((samples, 16, steps)) < 0.2).astype(np.uint8)


@pytest.mark.parametrize("failure", [RuntimeError("injected failure"), KeyboardInterrupt()],
                         ids=["exception", "ctrl-c"])
def test_a_failure_in_the_parent_mid_run_stops_every_lava_worker(small_net, monkeypatch, failure):
    from neurodeploy import lava_compat
    from neurodeploy.backends.lava_sim import run_lava

    runtime = lava_compat.lava_module("lava.magma.runtime.runtime").Runtime
    seen: list[list[str]] = []

    def fail_while_running(self):
        # called right after the run was started: every worker exists and is stepping
        seen.append(lava_workers(os.getpid()))
        raise failure

    before = lava_workers(os.getpid())
    monkeypatch.setattr(runtime, "_get_resp_for_run", fail_while_running)
    with pytest.raises(type(failure)):
        run_lava(small_net, _spikes(200))
    assert len(seen) == 1 and len(seen[0]) >= 5, f"expected Lava's worker processes mid-run, saw {seen}"
    assert _wait_until(lambda: lava_workers(os.getpid()) == before, 10), lava_workers(os.getpid())


WORKER_FAILURE = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from neurodeploy.backends.lava_sim import run_lava
    sys.path.insert(0, sys.argv[2])
    from test_lava_hygiene import lava_workers

    from neurodeploy.lava_procs.recorder import PySpikeRecorderModel as sink  # records every layer's spikes
    original = sink.run_spk

    def run_spk(self):
        if self.time_step == 5:
            raise ValueError("injected failure inside a Lava worker")
        original(self)

    sink.run_spk = run_spk  # the workers are forked, so they inherit the patch
    spikes = (np.random.default_rng(1).random((1, 16, 200)) < 0.2).astype(np.uint8)
    try:
        run_lava(sys.argv[1], spikes)
        error = None
    except Exception as exc:
        error = type(exc).__name__
    print(json.dumps({"error": error, "workers_after": lava_workers(os.getpid())}))
""")


def test_an_exception_inside_a_lava_worker_fails_the_run_and_stops_every_worker(small_net):
    process = subprocess.Popen([sys.executable, "-c", WORKER_FAILURE, str(small_net), str(Path(__file__).parent)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        pytest.fail("run_lava hung after a worker raised (Lava's stop() waits for the dead worker)")
    assert process.returncode == 0, stderr
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert outcome["error"] is not None, "the worker's exception must fail the run"
    assert outcome["workers_after"] == []
    _wait_until(lambda: not group_members(process.pid), 10)
    left_behind = group_members(process.pid)
    _kill_group(process)
    assert left_behind == []


def start_long_lava_run(net: Path, tmp_path: Path, preexec_fn, env: dict | None = None
                        ) -> tuple[subprocess.Popen, Path]:
    """``neurodeploy run NET --backend lava`` on minutes of input in its own process group, returned once
    Lava's workers are forked and their number is steady (the run is stepping), with its stderr log."""
    spikes = tmp_path / "long.npy"
    np.save(spikes, _spikes(20_000)[0])  # minutes of simulation: a signal always lands mid-run
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "neurodeploy.cli", "run", str(net), "--backend", "lava", "--input",
             str(spikes)], stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
            preexec_fn=preexec_fn, env=env)
    counts = []

    def running() -> bool:
        counts.append(len(lava_workers(process.pid)))
        return len(counts) > 10 and counts[-1] >= 5 and len(set(counts[-10:])) == 1

    if not _wait_until(running, 120):
        _kill_group(process)
        pytest.fail(f"Lava workers never started: {counts[-5:]}\n{log.read_text()}")
    return process, log


def wait_for_exit(process: subprocess.Popen, after: str) -> tuple[int, list[str]]:
    """The exit code of ``process`` and whatever of its process group is still alive shortly after."""
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"neurodeploy run hung after {after}; still running: {group_members(process.pid)}")
    _wait_until(lambda: not group_members(process.pid), 10)
    return code, group_members(process.pid)


def test_ctrl_c_during_neurodeploy_run_lava_exits_and_leaves_no_process(small_net, tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the CLI and Lava's workers."""
    process, log = start_long_lava_run(small_net, tmp_path, _default_sigint)
    try:
        workers = lava_workers(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        code, left_behind = wait_for_exit(process, "Ctrl-C")
    finally:
        _kill_group(process)
    assert code == 130, log.read_text()
    assert "interrupted" in log.read_text()
    assert "Traceback" not in log.read_text(), "Lava's workers must not print KeyboardInterrupt tracebacks"
    assert len(workers) >= 5
    assert left_behind == []


def _default_sigint() -> None:
    """Runs in the child before exec: a shell's background job inherits SIGINT ignored, and Python then never
    raises KeyboardInterrupt; these tests are about what Ctrl-C does, so start from the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_group(process: subprocess.Popen) -> None:
    """Clean up after a failed test: SIGKILL whatever is left of the process group we started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
