"""Hostile HDF5 files and out-of-range values through the real command line (issue 23, families 1 and 2).

Each case builds its hostile file in the test: a netx ``model.net`` for ``run`` or a NIR graph for
``import``, in a model folder, with any file it points to in a folder *outside* it. The contract: exit 2,
exactly one line on stderr (no numpy warnings before it), naming the file and what is wrong, no traceback,
nothing written, and the outside file never opened. The outside files are FIFOs: opening one for reading
blocks until a writer comes, so a watcher thread polls each FIFO with a non-blocking writer open, which
succeeds only while a reader holds it: the test fails if that ever happens (and the watcher's open then
unblocks the reader, so a broken reader fails the test instead of hanging it).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from typer.testing import CliRunner

from neurodeploy.cli import app
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer
from neurodeploy.deploy.netx_write import write_netx
from neurodeploy.deploy.nir_read import read_graph
from neurodeploy.errors import UserError
from neurodeploy.safe_hdf5 import open_hdf5

NETX_WEIGHT = "layer/1/weight"  # (3, 4) after the input layer written by write_netx
NIR_WEIGHT = "node/nodes/w/weight"  # (6, 8)
GIB = 1 << 30


# The watcher runs in a child process: h5py holds the GIL while HDF5 sits in open() on a FIFO, so a watcher
# thread in this process could never run to unblock it (the whole test run hung there).
_WATCHER = """
import os, stat, sys, time
folder = sys.argv[1]
while True:
    try:
        names = sorted(e.name for e in os.scandir(folder) if stat.S_ISFIFO(e.stat(follow_symlinks=False).st_mode))
    except FileNotFoundError:
        names = []
    for name in names:
        try:
            fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody reads it
            continue
        print(name, flush=True)
        os.close(fd)
    time.sleep(0.01)
"""


class FifoWatch:
    """Outside files as FIFOs, and a child process that notices (and unblocks) any reader of one."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: list[Path] = []
        self.opened: list[str] = []
        self._child: subprocess.Popen | None = None

    def fifo(self, name: str) -> Path:
        path = self.folder / name
        os.mkfifo(path)
        self.paths.append(path)
        return path

    def __enter__(self) -> FifoWatch:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._child = subprocess.Popen([sys.executable, "-c", _WATCHER, str(self.folder)], stdout=subprocess.PIPE,
                                       text=True)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.05)  # a reader unblocked at the last moment is printed before the watcher stops
        self._child.terminate()
        out, _ = self._child.communicate(timeout=30)
        self.opened.extend(out.split())


# ----------------------------------------------------------------------------------------------- files


def write_small_netx(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    layers = [NetxLayer(index=0, kind="dense", in_shape=(4,), out_shape=(3,), weight=2 * rng.integers(-20, 40, (3, 4)),
                        bias=np.arange(3), neuron=CubaParams(1024, 512, 30)),
              NetxLayer(index=1, kind="dense", in_shape=(3,), out_shape=(2,), weight=2 * rng.integers(-20, 40, (2, 3)),
                        neuron=CubaParams(4096, 256, 20))]
    return write_netx(path, layers, input_shape=(4,))


def small_graph(neuron: str = "IF") -> nir.NIRGraph:
    rng = np.random.default_rng(0)
    weight = rng.integers(-20, 40, size=(6, 8)) * 2 / 64
    if neuron == "IF":
        node = nir.IF(r=np.ones(6), v_threshold=np.ones(6), v_reset=np.zeros(6))
    else:
        node = nir.LIF(tau=np.full(6, 5e-3), r=np.ones(6), v_leak=np.zeros(6), v_threshold=np.ones(6),
                       v_reset=np.zeros(6))
    return nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([8])}), "w": nir.Affine(weight=weight, bias=np.zeros(6)),
               "x": node, "out": nir.Output(output_type={"output": np.array([6])})},
        edges=[("in", "w"), ("w", "x"), ("x", "out")])


def write_small_nir(path: Path, neuron: str = "IF") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(path, small_graph(neuron))
    return path


# ------------------------------------------------------------------------------ structural edits (family 1)

Edit = Callable[[h5py.File, str, FifoWatch], None]


def _shape_dtype(handle: h5py.File, key: str) -> tuple[tuple[int, ...], np.dtype]:
    return tuple(handle[key].shape), handle[key].dtype


def external_link(handle, key, watch) -> None:
    target = watch.fifo("weights.h5")
    del handle[key]
    handle[key] = h5py.ExternalLink(str(target), "/w")


def external_group(handle, key, watch) -> None:
    """The whole layer (or node) group lives in another file."""
    target = watch.fifo("layer.h5")
    group = key.rsplit("/", 1)[0]
    del handle[group]
    handle[group] = h5py.ExternalLink(str(target), "/")


def virtual_dataset(handle, key, watch) -> None:
    shape, dtype = _shape_dtype(handle, key)
    target = watch.fifo("source.h5")
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    layout[...] = h5py.VirtualSource(str(target), "w", shape=shape, dtype=dtype)
    del handle[key]
    handle.create_virtual_dataset(key, layout)


def external_storage(handle, key, watch) -> None:
    shape, dtype = _shape_dtype(handle, key)
    target = watch.fifo("weights.bin")
    del handle[key]
    handle.create_dataset(key, shape=shape, dtype=dtype,
                          external=[(str(target), 0, int(np.prod(shape)) * dtype.itemsize)])


def soft_link(handle, key, watch) -> None:
    values = handle[key][()]
    del handle[key]
    handle.create_dataset("elsewhere", data=values)
    handle[key] = h5py.SoftLink("/elsewhere")


def dangling_soft_link(handle, key, watch) -> None:
    del handle[key]
    handle[key] = h5py.SoftLink("/nowhere/at/all")


def declared_1_5_gib(handle, key, watch) -> None:
    """A dataset that declares 1.5 GiB and stores nothing: the file stays a few KB."""
    shape, _ = _shape_dtype(handle, key)
    del handle[key]
    handle.create_dataset(key, shape=(shape[0], int(1.5 * GIB) // 8 // shape[0]), dtype="f8")


def declared_1_5_gib_chunked(handle, key, watch) -> None:
    shape, _ = _shape_dtype(handle, key)
    del handle[key]
    handle.create_dataset(key, shape=(shape[0], int(1.5 * GIB) // 8 // shape[0]), dtype="f8", chunks=(1, 1024),
                          compression="gzip")


def scale_offset_filter(handle, key, watch) -> None:
    values = handle[key][()].astype(np.int64)
    del handle[key]
    handle.create_dataset(key, data=values, scaleoffset=0, chunks=values.shape)


def object_references(handle, key, watch) -> None:
    refs = handle.create_dataset(key.rsplit("/", 1)[0] + "/refs", shape=(1,), dtype=h5py.ref_dtype)
    refs[0] = handle[key].ref


def compound_weight(handle, key, watch) -> None:
    shape, _ = _shape_dtype(handle, key)
    del handle[key]
    handle.create_dataset(key, shape=shape, dtype=[("a", "i8"), ("b", "f4")])


STRUCTURAL: dict[str, tuple[Edit, str]] = {
    "external link": (external_link, "is an external link to"),
    "external group": (external_group, "is an external link to"),
    "virtual dataset": (virtual_dataset, "is a virtual dataset"),
    "external storage": (external_storage, "keeps its bytes in external files"),
    "soft link": (soft_link, "is a soft link"),
    "dangling soft link": (dangling_soft_link, "is a soft link"),
    "1.5 GiB declared, nothing stored": (declared_1_5_gib, "more than the"),
    "1.5 GiB declared, gzip chunks": (declared_1_5_gib_chunked, "more than the"),
    "scale-offset filter": (scale_offset_filter, "uses HDF5 filter 6"),
    "object references": (object_references, "holds object references"),
    "compound weight": (compound_weight, "neither numbers nor strings"),
}


@dataclass
class Case:
    folder: Path  # the model folder: the only place the command may read
    outside: Path  # where hostile files point
    watch: FifoWatch


@pytest.fixture
def case(tmp_path) -> Case:
    (tmp_path / "model").mkdir()
    (tmp_path / "outside").mkdir()
    return Case(tmp_path / "model", tmp_path / "outside", FifoWatch(tmp_path / "outside"))


def _invoke(args: list[str], watch: FifoWatch):
    with watch:
        result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        pytest.fail("".join(traceback.format_exception(result.exception)))
    return result


def assert_refused(result, names: str, what: str, watch: FifoWatch) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Warning" not in output, output
    assert result.exit_code == 2, output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), f"expected one error line:\n{result.stderr}"
    assert names in lines[0], f"error line does not name {names!r}: {lines[0]}"
    assert what in lines[0], f"error line does not say {what!r}: {lines[0]}"
    assert watch.opened == [], f"a file outside the model folder was opened: {watch.opened}"
    return lines[0]


def _run_net(case: Case, net: Path) -> list[str]:
    np.save(case.outside.parent / "x.npy", np.zeros((4, 6), np.uint8))
    return ["run", str(net), "--backend", "emulator", "--input", str(case.outside.parent / "x.npy"),
            "--out", str(case.outside.parent / "report")]


def _edit(path: Path, edit: Edit, key: str, watch: FifoWatch) -> None:
    with h5py.File(path, "r+") as handle:
        edit(handle, key, watch)


@pytest.mark.parametrize("name", list(STRUCTURAL))
def test_netx_file_that_reads_other_files_or_declares_too_much_is_refused(case, name):
    edit, what = STRUCTURAL[name]
    net = write_small_netx(case.folder / "model.net")
    _edit(net, edit, NETX_WEIGHT, case.watch)
    result = _invoke(_run_net(case, net), case.watch)
    assert_refused(result, "model.net", what, case.watch)
    assert not (case.outside.parent / "report").exists()


@pytest.mark.parametrize("name", list(STRUCTURAL))
def test_nir_graph_that_reads_other_files_or_declares_too_much_is_refused(case, name):
    edit, what = STRUCTURAL[name]
    graph = write_small_nir(case.folder / "g.nir")
    _edit(graph, edit, NIR_WEIGHT, case.watch)
    out = case.outside.parent / "imported"
    result = _invoke(["import", str(graph), "--out", str(out)], case.watch)
    assert_refused(result, "g.nir", what, case.watch)
    assert not out.exists()


def test_the_fifo_watch_sees_a_reader_that_follows_the_link(case):
    """The control: plain h5py follows the external link, and the watch notices it opening the outside file."""
    net = write_small_netx(case.folder / "model.net")
    _edit(net, external_link, NETX_WEIGHT, case.watch)
    with case.watch, h5py.File(net, "r") as handle:
        with pytest.raises(KeyError):  # the watcher's writer closes at once: the FIFO reads as an empty file
            handle[NETX_WEIGHT]
    assert case.watch.opened == ["weights.h5"]


def test_a_9_kb_file_declaring_1_5_gib_allocates_nothing(case):
    net = write_small_netx(case.folder / "model.net")
    _edit(net, declared_1_5_gib, NETX_WEIGHT, case.watch)
    assert net.stat().st_size < 64_000
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="1,610,612,736 bytes|more than the"):
            load_netx(net)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, f"peak {peak / 2**20:.0f} MiB while refusing"


def test_gzip_weight_beyond_the_layer_shape_is_refused_before_reading(case):
    """40 MB of gzip zeros (about 40 KB stored) passes the file audit; the layer's shapes refuse it unread."""
    net = write_small_netx(case.folder / "model.net")
    with h5py.File(net, "r+") as handle:
        del handle[NETX_WEIGHT]
        handle.create_dataset(NETX_WEIGHT, data=np.zeros((2, 2_500_000)), chunks=(1, 1 << 17), compression="gzip")
    assert net.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match=r"'layer/1/weight' holds 5,000,000 values .* at most 12"):
            load_netx(net)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20


def test_hard_link_cycle_is_audited_once(case):
    """A group hard-linked into itself: the audit visits each object once and ends (the file still loads)."""
    net = write_small_netx(case.folder / "model.net")
    with h5py.File(net, "r+") as handle:
        handle["layer/1/again"] = handle["layer/1"]
    assert [layer.neurons for layer in load_netx(net).layers] == [3, 2]


# ------------------------------------------------------------------------------------- values (family 2)


def _replace(key: str, value) -> Edit:
    def edit(handle, _key, watch) -> None:
        if key in handle:
            del handle[key]
        handle.create_dataset(key, data=value)
    return edit


def _weight_with(value) -> Edit:
    def edit(handle, key, watch) -> None:
        weight = handle[key][()].astype(np.float64)
        weight[0, 0] = value
        del handle[key]
        handle.create_dataset(key, data=weight)
    return edit


NETX_VALUES: dict[str, tuple[Edit, str, str]] = {
    "vThMant 2**62": (_replace("layer/1/neuron/vThMant", 2**62), "vThMant", "outside Loihi's range [0, 262143]"),
    "vThMant -1": (_replace("layer/1/neuron/vThMant", -1), "vThMant", "outside Loihi's range"),
    "float weight 1e30": (_weight_with(1e30), "'weight'", "outside Loihi's range [-32768, 32640]"),
    "float weight -1e300": (_weight_with(-1e300), "'weight'", "outside Loihi's range"),
    "integer weight 2**40": (_replace(NETX_WEIGHT, np.full((3, 4), 2**40)), "'weight'", "outside Loihi's range"),
    "weight inf": (_weight_with(np.inf), "'weight'", "NaN or inf"),
    "byte-string weights": (_replace(NETX_WEIGHT, np.full((3, 4), b"12")), "'weight'", "not numbers"),
    "bias 1e6": (_replace("layer/1/bias", np.full(3, 1e6)), "'bias'", "outside Loihi's range [-4096, 4095]"),
    "iDecay 5000": (_replace("layer/1/neuron/iDecay", 5000), "iDecay", "outside Loihi's range [0, 4096]"),
    "vDecay -1": (_replace("layer/1/neuron/vDecay", -1), "vDecay", "outside Loihi's range"),
    "refDelay 10**9": (_replace("layer/1/neuron/refDelay", 10**9), "refDelay", "outside Loihi's range"),
    "shape 2**40": (_replace("layer/1/shape", np.array([2**40])), "layer 1", "shape"),
    "negative delay": (_replace("layer/1/delay", -np.ones(3)), "layer 1", "negative delays"),
    "byte-string delay": (_replace("layer/1/delay", np.full(3, b"1")), "'delay'", "not numbers"),
    "input shape 2**62": (_replace("layer/0/shape", np.array([2**62])), "layer 0", "shape"),
}


@pytest.mark.parametrize("name", list(NETX_VALUES))
def test_netx_value_out_of_range_is_refused_in_one_line_without_warnings(case, name):
    edit, field, what = NETX_VALUES[name]
    net = write_small_netx(case.folder / "model.net")
    _edit(net, edit, NETX_WEIGHT, case.watch)
    line = assert_refused(_invoke(_run_net(case, net), case.watch), "model.net", what, case.watch)
    assert field in line


def _nir_replace(key: str, value) -> Edit:
    def edit(handle, _key, watch) -> None:
        del handle[key]
        handle.create_dataset(key, data=value)
    return edit


def _nir_weight_with(value) -> Edit:
    def edit(handle, key, watch) -> None:
        weight = handle[key][()].astype(np.float64)
        weight[1, 2] = value
        del handle[key]
        handle.create_dataset(key, data=weight)
    return edit


NIR_VALUES: dict[str, tuple[str, Edit, str]] = {
    "weight NaN": ("IF", _nir_weight_with(np.nan), "'node/nodes/w/weight' holds NaN or inf"),
    "weight inf": ("IF", _nir_weight_with(np.inf), "'node/nodes/w/weight' holds NaN or inf"),
    "weight -inf": ("IF", _nir_weight_with(-np.inf), "'node/nodes/w/weight' holds NaN or inf"),
    "weight 1e300": ("IF", _nir_weight_with(1e300), "'node/nodes/w/weight' holds values up to 1e+300"),
    "byte-string weights": ("IF", _nir_replace(NIR_WEIGHT, np.full((6, 8), b"0.5")),
                            "'node/nodes/w/weight' holds |S3 values, not numbers"),
    "text bias": ("IF", _nir_replace("node/nodes/w/bias", "zero"), "'node/nodes/w/bias' holds text"),
    "NaN tau": ("LIF", _nir_replace("node/nodes/x/tau", np.full(6, np.nan)), "'node/nodes/x/tau' holds NaN"),
    "inf threshold": ("IF", _nir_replace("node/nodes/x/v_threshold", np.full(6, np.inf)),
                      "'node/nodes/x/v_threshold' holds NaN or inf"),
    "NaN input shape": ("IF", _nir_replace("node/nodes/in/shape", np.array([np.nan])),
                        "'node/nodes/in/shape' holds NaN or inf"),
    "bias beyond 13 bits": ("IF", _nir_replace("node/nodes/w/bias", np.full(6, 1e6)),
                            "beyond Loihi's 13-bit bias [-4096, 4095]"),
}


@pytest.mark.parametrize("name", list(NIR_VALUES))
def test_nir_value_out_of_range_is_refused_in_one_line_without_warnings(case, name):
    neuron, edit, what = NIR_VALUES[name]
    graph = write_small_nir(case.folder / "g.nir", neuron)
    _edit(graph, edit, NIR_WEIGHT, case.watch)
    out = case.outside.parent / "imported"
    result = _invoke(["import", str(graph), "--out", str(out)], case.watch)
    names = "NIR node 'x'" if "13-bit" in what else "g.nir"
    assert_refused(result, names, what, case.watch)
    assert not out.exists()


@pytest.mark.parametrize("dt", ["nan", "inf", "-inf", "-1", "0", "1e300"])
def test_import_dt_that_is_not_a_usable_number_is_refused(case, dt):
    graph = write_small_nir(case.folder / "g.nir")
    out = case.outside.parent / "imported"
    result = _invoke(["import", str(graph), "--out", str(out), "--dt", dt], case.watch)
    assert_refused(result, "--dt", "out of range", case.watch)
    assert not out.exists()


def test_records_refuse_what_the_chip_cannot_hold():
    """The emulator, the Lava runner and the writer take records as they are: a record out of range never exists."""
    neuron = CubaParams(1024, 512, 30)
    for kwargs, message in (
        (dict(weight=np.full((2, 3), 1 << 20)), "weight spans"),
        (dict(weight=np.ones((2, 3), np.int64), bias=np.full(2, 1 << 20)), "bias spans"),
        (dict(weight=np.ones((2, 3), np.int64), delay=np.full((2, 1), 63)), "delays must lie in"),
    ):
        with pytest.raises(ValueError, match=message):
            NetxLayer(index=0, kind="dense", in_shape=(3,), out_shape=(2,), neuron=neuron, **kwargs)
    for args, message in (((1024, 512, 2**62), "vThMant"), ((5000, 0, 1), "iDecay"), ((0, 0, 1, -3), "refDelay")):
        with pytest.raises(ValueError, match=message):
            CubaParams(*args)


def test_good_files_still_load_and_import(case):
    net = write_small_netx(case.folder / "model.net")
    assert [layer.neurons for layer in load_netx(net).layers] == [3, 2]
    graph = read_graph(write_small_nir(case.folder / "g.nir", "LIF"))
    assert set(graph.nodes) == {"in", "w", "x", "out"}


# ----------------------------------------------------------------------------------- lava-dl's own files

def test_lava_dl_shipped_netx_files_pass_the_safe_reader(lava_dl_netx_dir):
    files = sorted(glob.glob(str(lava_dl_netx_dir / "**" / "*.net"), recursive=True))
    assert {"mnist.net", "tiny.net", "network.net", "ntidigits.net"} <= {Path(f).name for f in files}
    for path in files:
        with open_hdf5(path, "netx network", "-") as handle:
            assert "layer" in handle
    loaded = [path for path in files if "sdnn" not in path and "ntidigits" not in path]
    assert len(loaded) >= 3  # mnist, tiny, pilotnet_lif; SDNN and 'average' layers are refused for their type
    for path in loaded:
        assert load_netx(path).layers, path


@pytest.mark.parametrize("field, value", [("dt_ms", 1e300), ("dt_ms", -1.0), ("steps", 10**12),
                                          ("input_shape", [0]), ("dt_ms", "NaN")])
def test_an_import_record_with_numbers_out_of_range_is_refused(case, field, value):
    from neurodeploy.deploy.nir_import import import_nir

    out = case.outside.parent / "imported"
    import_nir(write_small_nir(case.folder / "g.nir"), out)
    record = out / "nir_import.json"
    text = record.read_text()
    data = json.loads(text)
    data[field] = value
    record.write_text(json.dumps(data).replace('"NaN"', "NaN"))
    np.save(case.outside.parent / "x.npy", np.zeros((8, 6), np.uint8))
    result = _invoke(["run", str(out), "--backend", "emulator", "--input", str(case.outside.parent / "x.npy"),
                      "--out", str(case.outside.parent / "report")], case.watch)
    assert_refused(result, "nir_import.json", "import the graph again", case.watch)


def test_a_nir_graph_with_a_hard_link_cycle_is_refused(case):
    """Found by the fuzzer: a node group hard-linked into itself made the tree reader recurse forever."""
    graph = write_small_nir(case.folder / "g.nir")
    with h5py.File(graph, "r+") as handle:
        handle["node/nodes/w/loop"] = handle["node/nodes/w"]
    result = _invoke(["import", str(graph), "--out", str(case.outside.parent / "imported")], case.watch)
    assert_refused(result, "g.nir", "links back to a group that contains it", case.watch)
