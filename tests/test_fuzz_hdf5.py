"""Fuzzing the netx and NIR readers with structural HDF5 mutations (issue 23, family 1).

Each case copies a valid seed file (two netx networks, three NIR graphs) and applies one to three
mutations to the objects in it: external links (to a file or to a whole group), virtual datasets, external
raw storage, soft links (valid and dangling), extra hard links, shape changes (flatten, transpose, truncate,
extend, scalar, huge declared shapes stored or unallocated), dtype changes (every integer and float width,
bool, complex, fixed and variable-length strings, compound), unsafe filters, object references, deleted
keys and groups turned into datasets. Then the reader runs as ``run`` and ``import`` run it: the netx file
through ``load_netx`` and the emulator's ``compile_network``, the NIR graph through ``read_graph`` and
``plan_import``.

Property: the reader returns a valid result or raises :class:`~neurodeploy.errors.UserError` (one line);
any other exception, any numpy ``RuntimeWarning``, or any open of the files outside the seed's folder (FIFOs
watched by a child process, see ``tests/test_hostile_hdf5.py``) fails it.

``FUZZ_EXAMPLES`` cases per reader run in the default suite; ``pytest -m slow tests/test_fuzz_hdf5.py -s``
runs ``LONG_EXAMPLES`` (10,000, or ``NEURODEPLOY_FUZZ_HDF5_EXAMPLES``) per reader and prints the counts.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_hostile_hdf5 import FifoWatch, small_graph, write_small_netx

from neurodeploy.backends.emulator import compile_network
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer, NetxNetwork
from neurodeploy.deploy.netx_write import write_netx
from neurodeploy.deploy.nir_import import plan_import
from neurodeploy.deploy.nir_read import read_graph
from neurodeploy.errors import UserError

FUZZ_EXAMPLES = 100
LONG_EXAMPLES = int(os.environ.get("NEURODEPLOY_FUZZ_HDF5_EXAMPLES", "10000"))
# no shrinking: a case is at most three edits of a small seed, and shrinking one replays slow HDF5 writes for
# minutes; the failing case is reported as generated
_COMMON = {"deadline": None, "database": None, "derandomize": False,
           "phases": [Phase.explicit, Phase.reuse, Phase.generate],
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("hdf5-fuzz", max_examples=FUZZ_EXAMPLES, **_COMMON)
settings.register_profile("hdf5-fuzz-long", max_examples=LONG_EXAMPLES, **_COMMON)

CASES_RUN: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()
OUTSIDE = ("ext.h5", "vds.h5", "raw.bin")

KINDS = ("external_link", "external_group", "virtual", "external_storage", "soft_link", "dangling_soft_link",
         "hard_link", "reshape", "retype", "delete", "huge_declared", "huge_gzip", "to_group", "scaleoffset",
         "reference")
_edit = st.tuples(st.sampled_from(KINDS), st.integers(0, 10_000), st.integers(0, 2**31))
_mutation = st.tuples(st.integers(0, 10), st.lists(_edit, min_size=1, max_size=3))
DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float16, np.float32,
          np.float64, np.bool_, np.complex64, "S4", "vlen", "compound")


# ------------------------------------------------------------------------------------------------ seeds


def _netx_seeds(folder: Path) -> list[bytes]:
    rng = np.random.default_rng(0)
    neuron = CubaParams(i_decay=1024, v_decay=512, v_th_mant=80)
    conv = [NetxLayer(index=1, kind="conv", in_shape=(2, 6, 6), out_shape=(3, 6, 6),
                      weight=rng.integers(-9, 9, (3, 2, 3, 3)), bias=rng.integers(-3, 3, 3), neuron=neuron,
                      kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1)),
            NetxLayer(index=3, kind="dense_rec", in_shape=(108,), out_shape=(5,), weight=rng.integers(-9, 9, (5, 108)),
                      weight_rec=rng.integers(-9, 9, (5, 5)), neuron=neuron, flatten_before=True,
                      delay=rng.integers(0, 3, (5, 1)))]
    seeds = [write_small_netx(folder / "small.net"), write_netx(folder / "conv.net", conv, input_shape=(2, 6, 6))]
    for path in seeds:
        assert isinstance(load_netx(path), NetxNetwork)
    return [path.read_bytes() for path in seeds]


def _conv_graph() -> nir.NIRGraph:
    rng = np.random.default_rng(1)
    return nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([1, 6, 6])}),
               "c": nir.Conv2d(input_shape=(6, 6), weight=rng.integers(-9, 9, (2, 1, 3, 3)) / 32, stride=1, padding=1,
                               dilation=1, groups=1, bias=np.zeros(2)),
               "x": nir.IF(r=np.ones((2, 6, 6)), v_threshold=np.ones((2, 6, 6)), v_reset=np.zeros((2, 6, 6))),
               "out": nir.Output(output_type={"output": np.array([2, 6, 6])})},
        edges=[("in", "c"), ("c", "x"), ("x", "out")])


def _nir_seeds(folder: Path) -> list[bytes]:
    seeds = []
    for name, graph in (("if", small_graph("IF")), ("lif", small_graph("LIF")), ("conv", _conv_graph())):
        path = folder / f"{name}.nir"
        nir.write(path, graph)
        plan_import(read_graph(path), 1.0)
        seeds.append(path.read_bytes())
    return seeds


# -------------------------------------------------------------------------------------------- mutations


def _objects(handle: h5py.File) -> tuple[list[str], list[str]]:
    """(every object name, the dataset names) reachable through hard links."""
    names: list[str] = []
    handle.visit(names.append)
    names = sorted(n for n in names if isinstance(handle.get(n, getlink=True), h5py.HardLink) or "/" not in n)
    datasets = [n for n in names if isinstance(handle.get(n), h5py.Dataset)]
    return names, datasets


def _retyped(values: np.ndarray, choice) -> tuple[np.ndarray, object]:
    if choice == "S4":
        return np.asarray(values).astype("S4"), None
    if choice == "vlen":
        return np.asarray([str(v) for v in np.asarray(values).reshape(-1)], dtype=object), h5py.string_dtype()
    if choice == "compound":
        return np.zeros(np.shape(values), dtype=[("a", "i8"), ("b", "f4")]), None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mutator's own casts (complex -> real) may warn
        array = np.asarray(values)
        if array.dtype.kind in "SUO":
            return np.zeros(array.shape, dtype=choice), None
        return array.astype(choice), None


def _reshaped(values: np.ndarray, param: int) -> np.ndarray:
    flat = np.asarray(values).reshape(-1)
    option = param % 7
    if option == 0:
        return flat
    if option == 1:
        return np.asarray(values).T
    if option == 2:
        return flat[: param % (flat.size + 1)]
    if option == 3:
        return np.concatenate([flat, np.zeros(1 + param % 50, dtype=flat.dtype)]) if flat.size else flat
    if option == 4:
        return flat[:1].reshape(()) if flat.size else flat
    if option == 5:
        return np.asarray(values)[None]
    return np.tile(flat, 1 + param % 5).reshape(1 + param % 5, -1)


def _replace(handle: h5py.File, name: str, **kwargs) -> None:
    del handle[name]
    handle.create_dataset(name, **kwargs)


def _readable(dataset: h5py.Dataset) -> bool:
    """The mutator itself reads only small datasets stored in the file (never one it made hostile)."""
    return (not dataset.is_virtual and not dataset.external and dataset.shape is not None
            and dataset.size * dataset.dtype.itemsize <= 1 << 20 and dataset.id.get_storage_size() > 0)


def _mutate(handle: h5py.File, kind: str, pick: int, param: int, outside: Path) -> None:
    names, datasets = _objects(handle)
    if not names:
        return
    name = names[pick % len(names)]
    data_name = datasets[pick % len(datasets)] if datasets else None
    if kind in ("reshape", "retype", "scaleoffset") and data_name and not _readable(handle[data_name]):
        return
    if kind == "external_link":
        del handle[name]
        handle[name] = h5py.ExternalLink(str(outside / "ext.h5"), "/w")
    elif kind == "external_group":
        group = name.rsplit("/", 1)[0] if "/" in name else name
        del handle[group]
        handle[group] = h5py.ExternalLink(str(outside / "ext.h5"), "/")
    elif kind == "virtual" and data_name and handle[data_name].shape:
        shape, dtype = handle[data_name].shape, handle[data_name].dtype
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(str(outside / "vds.h5"), "w", shape=shape, dtype=dtype)
        del handle[data_name]
        handle.create_virtual_dataset(data_name, layout)
    elif kind == "external_storage" and data_name and handle[data_name].dtype.kind in "biuf":
        shape, dtype = handle[data_name].shape, handle[data_name].dtype
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        _replace(handle, data_name, shape=shape, dtype=dtype, external=[(str(outside / "raw.bin"), 0, nbytes)])
    elif kind == "soft_link":
        target = names[param % len(names)]
        del handle[name]
        if target != name and not target.startswith(name + "/"):
            handle[name] = h5py.SoftLink("/" + target)
    elif kind == "dangling_soft_link":
        del handle[name]
        handle[name] = h5py.SoftLink(f"/missing/{param}")
    elif kind == "hard_link":
        target = names[param % len(names)]
        if target != name and not target.startswith(name + "/"):
            del handle[name]
            handle[name] = handle[target]
    elif kind == "reshape" and data_name:
        _replace(handle, data_name, data=_reshaped(handle[data_name][()], param))
    elif kind == "retype" and data_name:
        values, dtype = _retyped(handle[data_name][()], DTYPES[param % len(DTYPES)])
        _replace(handle, data_name, data=values, dtype=dtype)
    elif kind == "delete":
        del handle[name]
    elif kind == "huge_declared" and data_name:
        rows = 1 + param % (1 << 20)
        _replace(handle, data_name, shape=(rows, 1 << (10 + param % 20)), dtype="f8")
    elif kind == "huge_gzip" and data_name:
        _replace(handle, data_name, data=np.zeros((1 + param % 4, 1 << 16)), compression="gzip", chunks=True)
    elif kind == "to_group":
        del handle[name]
        handle.create_group(name)
    elif kind == "scaleoffset" and data_name and handle[data_name].dtype.kind in "iu" and handle[data_name].shape:
        values = handle[data_name][()]
        _replace(handle, data_name, data=values, scaleoffset=0, chunks=values.shape)
    elif kind == "reference" and data_name:
        target = handle[names[param % len(names)]]
        _replace(handle, data_name, data=np.array([target.ref]), dtype=h5py.ref_dtype)


def _mutated_file(seed: bytes, edits, path: Path, outside: Path) -> bool:
    path.write_bytes(seed)
    try:
        with h5py.File(path, "r+") as handle:
            for kind, pick, param in edits:
                _mutate(handle, kind, pick, param, outside)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError):
        return False  # h5py cannot build this edit: nothing to read
    return True


def _expect_user_error_or(read, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a numpy warning before the answer is a failure too
        try:
            read()
            OUTCOMES[f"{name}: accepted"] += 1
        except UserError as exc:
            assert str(exc) and "\n" not in str(exc), f"a UserError must be one line: {exc!r}"
            OUTCOMES[f"{name}: refused"] += 1


def _check_netx(mutation, folder: Path, seeds: list[bytes]) -> None:
    seed, edits = mutation
    path = folder / "model" / "mutated.net"
    if not _mutated_file(seeds[seed % len(seeds)], edits, path, folder / "outside"):
        return

    def read() -> None:
        net = load_netx(path)
        [layer.to_dict() for layer in net.layers]
        compile_network(net)

    _expect_user_error_or(read, "netx")


def _check_nir(mutation, folder: Path, seeds: list[bytes]) -> None:
    seed, edits = mutation
    path = folder / "model" / "mutated.nir"
    if not _mutated_file(seeds[seed % len(seeds)], edits, path, folder / "outside"):
        return
    _expect_user_error_or(lambda: plan_import(read_graph(path), 1.0), "nir")


@pytest.fixture(scope="module")
def fuzz_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hdf5fuzz")
    (folder / "model").mkdir()
    (folder / "outside").mkdir()
    watch = FifoWatch(folder / "outside")
    for name in OUTSIDE:
        watch.fifo(name)
    return folder, watch, {"netx": _netx_seeds(folder), "nir": _nir_seeds(folder)}


CHECKS = {"netx": _check_netx, "nir": _check_nir}


def _fuzz(reader: str, fuzz_setup, profile: str) -> int:
    folder, watch, seeds = fuzz_setup
    before = CASES_RUN[reader]

    @settings(settings.get_profile(profile))
    @given(_mutation)
    def property_holds(mutation) -> None:
        CASES_RUN[reader] += 1
        CHECKS[reader](mutation, folder, seeds[reader])

    with watch:
        property_holds()
    assert watch.opened == [], f"the {reader} reader opened files outside the model folder: {watch.opened}"
    return CASES_RUN[reader] - before


@pytest.mark.parametrize("reader", CHECKS)
def test_structural_mutations_give_a_valid_result_or_a_user_error(reader, fuzz_setup):
    assert _fuzz(reader, fuzz_setup, "hdf5-fuzz") >= FUZZ_EXAMPLES // 2


@pytest.mark.slow
@pytest.mark.parametrize("reader", CHECKS)
def test_long_structural_fuzz(reader, fuzz_setup):
    started = time.perf_counter()
    count = _fuzz(reader, fuzz_setup, "hdf5-fuzz-long")
    outcomes = {k: v for k, v in OUTCOMES.items() if k.startswith(reader)}
    print(f"fuzz {reader} structural: {count} cases in {time.perf_counter() - started:.1f} s; {outcomes}")
    assert count >= 10_000 or LONG_EXAMPLES < 10_000
