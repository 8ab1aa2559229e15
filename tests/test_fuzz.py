"""Fuzzing the event-file readers and the netx loading path with hypothesis (SPEC 7, issue 7).

Property: whatever bytes or arrays a file holds, a reader either returns a valid result or raises
:class:`~neurodeploy.errors.UserError` (the CLI's one-line exit 2); any other exception is a crash.

Two settings profiles: ``neurodeploy-fuzz`` (the default suite, ``FUZZ_EXAMPLES`` per target, a few hundred
cases in all) and ``neurodeploy-fuzz-long`` (``LONG_EXAMPLES`` per target, run with ``pytest -m slow
tests/test_fuzz.py -s``; it prints the number of cases per target and asserts at least 10,000 in all).
Set ``NEURODEPLOY_FUZZ_LONG_EXAMPLES`` to change the long count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurodeploy.data.dvsgesture import (
    DVSGESTURE_SENSOR,
    read_ibm_labels,
    read_ibm_recording,
    read_tonic_gesture_file,
)
from neurodeploy.data.events import EVENT_DTYPE
from neurodeploy.data.nmnist import NMNIST_SENSOR, read_nmnist_file
from neurodeploy.deploy.netx_read import load_netx
from neurodeploy.deploy.netx_records import CubaParams, NetxLayer, NetxNetwork
from neurodeploy.deploy.netx_write import write_netx
from neurodeploy.deploy.run_folder import load_run_config
from neurodeploy.errors import UserError
from neurodeploy.metrics.hardware import HardwareProfile, load_profile
from neurodeploy.models.arch import ModelFile, load_model_file
from neurodeploy.models.training import TrainConfig
from neurodeploy.pipeline.run import load_spike_input
from neurodeploy.safe_files import load_npy

FUZZ_EXAMPLES = 50
LONG_EXAMPLES = int(os.environ.get("NEURODEPLOY_FUZZ_LONG_EXAMPLES", "2000"))
_COMMON = {"deadline": None, "database": None, "derandomize": False,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("neurodeploy-fuzz", max_examples=FUZZ_EXAMPLES, **_COMMON)
settings.register_profile("neurodeploy-fuzz-long", max_examples=LONG_EXAMPLES, **_COMMON)

CASES_RUN: Counter[str] = Counter()


# ------------------------------------------------------------------------------------------ files under test


@dataclass(frozen=True)
class Target:
    """One reader: how to generate a file's content, and how to read it back and check the result."""

    strategy: st.SearchStrategy
    check: Callable[[object, Path], None]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _expect_user_error_or(check_result: Callable[[], None]) -> None:
    """Run the reader; a UserError is a valid answer, any other exception fails the property."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy casts of hostile values warn; that is not a crash
        try:
            check_result()
        except UserError as exc:
            assert str(exc) and "\n" not in str(exc), f"a UserError must be one line: {exc!r}"


def _check_events(events: np.ndarray, sensor: tuple[int, int, int]) -> None:
    assert events.dtype == EVENT_DTYPE
    width, height, _ = sensor
    if len(events):
        assert events["x"].min() >= 0 and events["x"].max() < width
        assert events["y"].min() >= 0 and events["y"].max() < height


# N-MNIST .bin: 5-byte records; random bytes and streams of well-formed-looking records (any size)
_nmnist_records = st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**24 - 1)),
                           max_size=40).map(lambda rs: b"".join(bytes([x, y, (r >> 16) & 0xFF, (r >> 8) & 0xFF,
                                                                         r & 0xFF]) for x, y, r in rs))
_nmnist_bytes = st.one_of(st.binary(max_size=300), _nmnist_records,
                          st.tuples(_nmnist_records, st.binary(max_size=4)).map(lambda t: t[0] + t[1]))


def _check_nmnist(content: bytes, folder: Path) -> None:
    path = _write(folder / "sample.bin", content)
    _expect_user_error_or(lambda: _check_events(read_nmnist_file(path), NMNIST_SENSOR))


# DVS Gesture, tonic layout: any numpy array (dtype, shape, values) saved as .npy, or raw bytes
_dtypes = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64, np.float16,
                           np.float32, np.float64, np.bool_, np.complex64])
_arrays = hnp.arrays(_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8))
_gesture_tables = st.integers(0, 12).flatmap(lambda n: hnp.arrays(
    st.sampled_from([np.int32, np.int64, np.float64, np.uint8]), (n, 4)))


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


_gesture_bytes = st.one_of(
    _gesture_tables.map(_npy), _arrays.map(_npy), st.binary(max_size=200),
    st.tuples(_gesture_tables.map(_npy), st.integers(1, 60)).map(lambda t: t[0][:-t[1]]),  # truncated .npy
)


def _check_gesture(content: bytes, folder: Path) -> None:
    path = _write(folder / "0.npy", content)
    _expect_user_error_or(lambda: _check_events(read_tonic_gesture_file(path), DVSGESTURE_SENSOR))


# DVS Gesture, IBM release: the *_labels.csv table and the AEDAT 3.1 recording
_csv_cell = st.one_of(st.integers(-5, 20).map(str), st.integers(-2**70, 2**70).map(str), st.text(max_size=6),
                      st.floats(allow_nan=True).map(str))
_labels_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.lists(_csv_cell, min_size=1, max_size=4).map(",".join), max_size=6).map(
        lambda rows: "\n".join(["class,startTime_usec,endTime_usec", *rows])),
)


def _check_labels(text: str, folder: Path) -> None:
    path = folder / "user01_fluorescent_labels.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")

    def read() -> None:
        table = read_ibm_labels(path)
        assert table.ndim == 2 and table.shape[1] == 3
        assert table[:, 0].min() >= 0 and table[:, 0].max() <= 10

    _expect_user_error_or(read)


_AEDAT_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#End Of ASCII Header\r\n"
_aedat_bytes = st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: _AEDAT_HEADER + b),
                         st.binary(max_size=60).map(lambda b: b"#!AER-DAT" + b))


def _check_aedat(content: bytes, folder: Path) -> None:
    # a fresh name per case: the decoder caches recordings by path
    path = _write(folder / f"user01_{CASES_RUN['ibm aedat recording']}.aedat", content)
    _expect_user_error_or(lambda: _check_events(read_ibm_recording(path), DVSGESTURE_SENSOR))
    path.unlink()


# netx HDF5: raw bytes, byte flips in a valid file, and structural edits of a valid file


def _valid_networks(folder: Path) -> list[bytes]:
    """A dense 16-8-4 network and a conv -> flatten -> dense network, as netx files (their bytes)."""
    rng = np.random.default_rng(0)
    neuron = CubaParams(i_decay=1024, v_decay=512, v_th_mant=80)
    dense = [NetxLayer(index=1, kind="dense", in_shape=(16,), out_shape=(8,), weight=rng.integers(-9, 9, (8, 16)),
                       neuron=neuron, delay=rng.integers(0, 3, (8, 16))),
             NetxLayer(index=2, kind="dense_rec", in_shape=(8,), out_shape=(4,), weight=rng.integers(-9, 9, (4, 8)),
                       weight_rec=rng.integers(-9, 9, (4, 4)), bias=rng.integers(-3, 3, 4), neuron=neuron)]
    conv = [NetxLayer(index=1, kind="conv", in_shape=(2, 6, 6), out_shape=(3, 6, 6),
                      weight=rng.integers(-9, 9, (3, 2, 3, 3)), neuron=neuron, kernel=(3, 3), stride=(1, 1),
                      padding=(1, 1), dilation=(1, 1)),
            NetxLayer(index=3, kind="dense", in_shape=(108,), out_shape=(5,), weight=rng.integers(-9, 9, (5, 108)),
                      neuron=neuron, flatten_before=True)]
    files = []
    for name, layers, shape in (("dense", dense, (16,)), ("conv", conv, (2, 6, 6))):
        path = write_netx(folder / f"{name}.net", layers, input_shape=shape)
        load_netx(path)  # the seeds themselves are valid
        files.append(path.read_bytes())
    return files


_hostile_values = st.one_of(
    _arrays,
    st.sampled_from([np.nan, np.inf, -np.inf, 0, -1, 2**40, 4097, 1e30]).map(np.asarray),
    st.sampled_from([b"dense", b"conv", b"input", b"flatten", b"pool", b"dense_rec", b"CUBA", b"LOIHI", b"",
                     b"spiral", "ünï".encode()]).map(lambda s: np.asarray([s])),
    st.text(max_size=8).map(lambda s: np.asarray(s.encode("utf-8", "surrogatepass"))),
)
_edit = st.tuples(st.sampled_from(["replace", "delete", "to_group"]), st.integers(0, 10_000), _hostile_values)
_netx_mutation = st.tuples(st.integers(0, 1), st.lists(_edit, min_size=1, max_size=3))
_byte_flips = st.tuples(st.integers(0, 1), st.lists(st.tuples(st.integers(0, 10**7), st.integers(1, 255)),
                                                    min_size=1, max_size=8))


def _apply_edits(path: Path, edits) -> None:
    with h5py.File(path, "r+") as handle:
        for action, pick, value in edits:
            names: list[str] = []
            handle.visit(names.append)
            if not names:
                return
            name = sorted(names)[pick % len(names)]
            del handle[name]
            if action == "replace":
                handle.create_dataset(name, data=value)
            elif action == "to_group":
                handle.create_group(name)


def _check_netx_file(path: Path) -> None:
    from neurodeploy.backends.emulator import compile_network

    def load() -> None:
        net = load_netx(path)
        assert isinstance(net, NetxNetwork) and net.layers
        [layer.to_dict() for layer in net.layers]
        compile_network(net)

    _expect_user_error_or(load)


def _check_netx_bytes(content: bytes, folder: Path) -> None:
    _check_netx_file(_write(folder / "raw.net", content))


def _check_netx_mutation(mutation, folder: Path) -> None:
    seed, edits = mutation
    path = _write(folder / "mutated.net", NETX_SEEDS[seed])
    try:
        _apply_edits(path, edits)
    except (ValueError, TypeError, OSError):
        return  # h5py cannot store this value (e.g. complex or unicode arrays of some shapes): nothing to read
    _check_netx_file(path)


def _check_netx_flips(flips, folder: Path) -> None:
    seed, changes = flips
    content = bytearray(NETX_SEEDS[seed])
    for offset, xor in changes:
        content[offset % len(content)] ^= xor
    _check_netx_file(_write(folder / "flipped.net", bytes(content)))


NETX_SEEDS: list[bytes] = []
LOIHI2_YAML = (Path(__file__).resolve().parent.parent / "hw_configs" / "loihi2.yaml").read_text()
NMNIST_MLP_YAML = (Path(__file__).resolve().parent.parent / "models" / "nmnist_mlp.yaml").read_text()


# untrusted YAML, config.json and .npy headers (issue 12): random text, random documents, mutated real files
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["pJ", "W", "bit", "neurons", "dense", "Input-16FC-10",
                                                           "nmnist", "cpu", "snn", "rate", 10.0, 4, 1e400, 10**400,
                                                           -(10**400)]))
_documents = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(
        ["name", "kind", "energy", "limits", "bits", "value", "unit", "source", "arch", "datasets", "dt_ms",
         "steps", "batch_size", "synop", "neurons_per_core", "weight"])), inner, max_size=5)), max_leaves=20)
_yaml_specials = st.sampled_from(["&a [1]", "*a", "<<: *a", "!!python/object:os.system ls", "!!binary AAAA",
                                  "[" * 50, "{a: " * 40, "? [1, 2]\n: 3", "a: !!float nan", "%YAML 1.1\n---",
                                  "\t", "--- !!set {a, b}", "a: 1e400", "a: 0x" + "f" * 400])


def _mutated_yaml(text: str):
    """Lines of a real file with some replaced by random documents or YAML syntax."""
    lines = text.splitlines()
    return st.lists(st.tuples(st.integers(0, len(lines) - 1), st.one_of(
        _yaml_specials, _scalars.map(lambda v: f"  value: {v!r}"), _documents.map(
            lambda d: yaml.safe_dump(d, default_flow_style=True).strip()))), min_size=1, max_size=4).map(
        lambda edits: "\n".join(_apply_line_edits(lines, edits)))


def _apply_line_edits(lines: list[str], edits) -> list[str]:
    lines = list(lines)
    for index, replacement in edits:
        lines[index] = replacement
    return lines


def _yaml_text(seed_text: str) -> st.SearchStrategy:
    return st.one_of(st.text(max_size=300), _documents.map(yaml.safe_dump), _yaml_specials, _mutated_yaml(seed_text))


def _check_hw_profile(text: str, folder: Path) -> None:
    path = folder / "profile.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _expect_user_error_or(lambda: isinstance(load_profile(path), HardwareProfile) or pytest.fail("not a profile"))


def _check_model_file(text: str, folder: Path) -> None:
    path = folder / "model.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")

    def read() -> None:
        model = load_model_file(path)
        assert isinstance(model, ModelFile) and model.arch.layers
        for defaults in model.datasets.values():
            assert defaults.dt_ms > 0 and defaults.steps >= 1 and defaults.batch_size >= 1

    _expect_user_error_or(read)


_VALID_CONFIG = {"dataset": "nmnist", "family": "snn", "arch": "Input-16FC-10", "loss": "rate", "epochs": 2,
                 "batch_size": 8, "lr": 0.001, "dt_ms": 10.0, "steps": 4, "limit": None, "test_limit": None,
                 "data_dir": None, "allow_synthetic": True, "seed": 0, "device": "cpu", "surrogate_width": 0.25,
                 "schema_version": 1, "resolved": {"sensor_size": [34, 34, 2], "num_classes": 10}}
_config_text = st.one_of(
    st.text(max_size=200),
    _documents.map(lambda d: json.dumps(d, default=str)),
    st.lists(st.tuples(st.sampled_from(sorted(_VALID_CONFIG)), _documents), min_size=1, max_size=3).map(
        lambda edits: json.dumps({**_VALID_CONFIG, **dict(edits)}, default=str)),
    st.sampled_from(["[" * 100_000, '{"lr": NaN}', '{"epochs": 1e999}', "\ud800", '{"a": 1, "a": 2}']),
)


def _check_config_json(text: str, folder: Path) -> None:
    (folder / "config.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    _expect_user_error_or(lambda: isinstance(load_run_config(folder), TrainConfig) or pytest.fail("not a config"))


_descr = st.one_of(st.sampled_from(["<u1", "|u1", "<f8", ">i4", "|b1", "<U3", "|O", "<c8", "|V4", "<M8[s]",
                                    "[('a', '<u1')]", "xyz", "", "<u0", "|S0"]), st.text(max_size=6).map(repr))
_shape = st.one_of(st.lists(st.integers(-3, 2**40), max_size=4).map(tuple), st.text(max_size=8))
_npy_header = st.tuples(st.sampled_from([1, 2, 3, 9]), _descr, st.sampled_from(["False", "True", "1", "'no'"]),
                        _shape, st.binary(max_size=80), st.sampled_from(["", "'extra': 1, ", "}{"]))


def _npy_bytes(parts) -> bytes:
    major, descr, fortran, shape, data, extra = parts
    header = f"{{'descr': {descr if descr.startswith(('[', chr(39))) else repr(descr)}, 'fortran_order': " \
             f"{fortran}, 'shape': {shape!r}, {extra}}}".encode("latin1", "replace")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    length = len(header).to_bytes(2 if major == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([major, 0]) + length + header + data


def _check_npy(content: bytes, folder: Path) -> None:
    path = _write(folder / "x.npy", content)

    def read() -> None:
        array = load_npy(path, "--input", "save it with numpy.save", max_bytes=1 << 20)
        assert isinstance(array, np.ndarray) and not array.dtype.hasobject and array.nbytes <= 1 << 20
        load_spike_input(path, 16)

    _expect_user_error_or(read)


HOSTILE_READERS = ("hardware profile yaml", "model file yaml", "run config.json", "npy header")

TARGETS = {
    "nmnist .bin": Target(_nmnist_bytes, _check_nmnist),
    "dvsgesture tonic .npy": Target(_gesture_bytes, _check_gesture),
    "ibm labels.csv": Target(_labels_text, _check_labels),
    "ibm aedat recording": Target(_aedat_bytes, _check_aedat),
    "netx raw bytes": Target(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(
        lambda b: b"\x89HDF\r\n\x1a\n" + b)), _check_netx_bytes),
    "netx structural edits": Target(_netx_mutation, _check_netx_mutation),
    "netx byte flips": Target(_byte_flips, _check_netx_flips),
    "hardware profile yaml": Target(st.deferred(lambda: _yaml_text(LOIHI2_YAML)), _check_hw_profile),
    "model file yaml": Target(st.deferred(lambda: _yaml_text(NMNIST_MLP_YAML)), _check_model_file),
    "run config.json": Target(_config_text, _check_config_json),
    "npy header": Target(st.one_of(_npy_header.map(_npy_bytes), _arrays.map(_npy), st.binary(max_size=200)),
                         _check_npy),
}


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    NETX_SEEDS[:] = _valid_networks(folder)
    return folder


def _fuzz(name: str, folder: Path, profile: str) -> int:
    target = TARGETS[name]
    before = CASES_RUN[name]

    @settings(settings.get_profile(profile))
    @given(target.strategy)
    def property_holds(value) -> None:
        CASES_RUN[name] += 1
        target.check(value, folder)

    property_holds()
    return CASES_RUN[name] - before


@pytest.mark.parametrize("name", TARGETS)
def test_reader_returns_a_valid_result_or_a_user_error(name, fuzz_dir):
    assert _fuzz(name, fuzz_dir, "neurodeploy-fuzz") >= FUZZ_EXAMPLES // 2


@pytest.mark.slow
def test_long_fuzz_run(fuzz_dir):
    total, started = 0, time.perf_counter()
    for name in TARGETS:
        target_started = time.perf_counter()
        count = _fuzz(name, fuzz_dir, "neurodeploy-fuzz-long")
        total += count
        print(f"fuzz {name}: {count} cases in {time.perf_counter() - target_started:.1f} s")
    print(f"fuzz total: {total} cases in {time.perf_counter() - started:.1f} s")
    assert total >= 10_000 or LONG_EXAMPLES * len(TARGETS) < 10_000


@pytest.mark.slow
def test_long_fuzz_run_of_the_hostile_file_readers(fuzz_dir):
    """Only the readers of untrusted YAML, config.json and .npy headers: at least 10,000 cases among them
    with ``NEURODEPLOY_FUZZ_LONG_EXAMPLES`` >= 2500."""
    total, started = 0, time.perf_counter()
    for name in HOSTILE_READERS:
        target_started = time.perf_counter()
        count = _fuzz(name, fuzz_dir, "neurodeploy-fuzz-long")
        total += count
        print(f"fuzz {name}: {count} cases in {time.perf_counter() - target_started:.1f} s")
    print(f"fuzz hostile readers total: {total} cases in {time.perf_counter() - started:.1f} s")
    assert total >= 10_000 or LONG_EXAMPLES * len(HOSTILE_READERS) < 10_000


def test_a_labels_file_with_a_non_bmp_character_is_a_user_error_not_a_segfault(tmp_path):
    """Found by the fuzzer: numpy 1.26's loadtxt segfaults (about one run in two) on such a field."""
    path = tmp_path / "user01_fluorescent_labels.csv"
    path.write_text("class,startTime_usec,endTime_usec\n1,\U0006ab28,3\n", encoding="utf-8")
    script = ("import sys\nfrom neurodeploy.data.dvsgesture import read_ibm_labels\nfrom neurodeploy.errors import "
              "UserError\nfor _ in range(100):\n    try:\n        read_ibm_labels(sys.argv[1])\n"
              "    except UserError:\n        pass\n    else:\n        sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-500:]}"
