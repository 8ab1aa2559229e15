"""Reading an HDF5 file a user named without letting it read anything else: every HDF5 file neurodeploy
reads (netx ``model.net``, NIR graphs) is opened here.

:func:`open_hdf5` opens the file read-only and audits its whole tree before any dataset is read. It answers
with a one-line :class:`~neurodeploy.errors.UserError` naming the file and the object when the file:

- holds a link other than a hard link: an external link (it names another file, which is never opened), a
  soft link, or a user-defined link;
- holds a virtual dataset (its values come from other datasets, possibly in other files) or a dataset with
  external raw storage (its bytes live in another file);
- holds a dataset whose type is not a number or a string (references, compound, variable-length arrays);
- declares a dataset larger than ``MAX_DATASET_BYTES`` or more than ``MAX_TOTAL_BYTES`` in all, or one
  larger than the bytes the file stores for it allow (stored bytes x ``MAX_COMPRESSION_RATIO`` when it is
  compressed with gzip / lzf, the stored bytes themselves otherwise): a 9 KB file cannot declare a 1.5 GiB
  weight and make the reader allocate it;
- uses a filter that can inflate without bound (scale-offset, n-bit, szip, or a plugin);
- nests groups deeper than ``MAX_DEPTH`` or holds more than ``MAX_OBJECTS`` objects.

:func:`read_dataset` then reads one audited dataset, refusing it first when it holds more elements than the
caller's declared shape allows, and turning h5py's errors on a damaged file into the same one-line error.
The checks run before the file is handed to anything else (lava-dl's ``netx.hdf5.Network`` opens the file
by name again when Lava runs it; by then this reader has accepted it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodeploy.errors import UserError
from neurodeploy.safe_files import check_regular_file

MAX_DATASET_BYTES = 1 << 30  # 1 GiB: a 20M-weight dense matrix in float64 is 160 MB
MAX_TOTAL_BYTES = 1 << 31
MAX_COMPRESSION_RATIO = 1100  # deflate cannot exceed ~1032:1
SMALL_DATASET_BYTES = 1 << 16  # below this a dataset may be unallocated (fill value) without harm
MAX_DEPTH = 32
MAX_OBJECTS = 100_000
MAX_STRING_ELEMENTS = 4096
# filters that expand at most by deflate's ratio (or not at all)
SAFE_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                h5py.h5z.FILTER_FLETCHER32: "fletcher32", 32000: "lzf"}
NUMERIC_KINDS = "biuf"


def _refuse(path: Path, name: str, what: str, fix: str) -> UserError:
    return UserError(f"{path}: '{name}' {what}; {fix}")


def _link_problem(link: Any) -> str | None:
    if isinstance(link, h5py.HardLink):
        return None
    if isinstance(link, h5py.ExternalLink):
        return f"is an external link to '{link.filename}:{link.path}' (another file, not read)"
    if isinstance(link, h5py.SoftLink):
        return f"is a soft link to '{link.path}' (netx and NIR files hold none)"
    return "is a user-defined link (netx and NIR files hold none)"


def _dtype_problem(dtype: np.dtype) -> str | None:
    if h5py.check_string_dtype(dtype) is not None:
        return None
    if h5py.check_ref_dtype(dtype) is not None:
        return "holds object references"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "holds variable-length arrays"
    if dtype.kind in NUMERIC_KINDS or dtype.kind == "S":
        return None
    return f"has type {dtype} (neither numbers nor strings)"


def declared_bytes(dataset: h5py.Dataset) -> int:
    """Bytes the dataset's values take once read (exact integers: no overflow for hostile shapes)."""
    if dataset.shape is None:  # a null dataspace holds nothing
        return 0
    return math.prod(int(s) for s in dataset.shape) * int(dataset.dtype.itemsize)


def _dataset_problem(dataset: h5py.Dataset) -> tuple[str, str] | None:
    """(what is wrong, what to do) for a dataset that reads another file or declares too much."""
    if dataset.is_virtual:
        return "is a virtual dataset (its values come from other datasets or files)", \
            "store the values in the file itself"
    if dataset.external:
        files = ", ".join(sorted({str(entry[0]) for entry in dataset.external}))
        return f"keeps its bytes in external files ({files}, not read)", "store the values in the file itself"
    problem = _dtype_problem(dataset.dtype)
    if problem:
        return problem, "store numbers (or a string for a type name)"
    nbytes = declared_bytes(dataset)
    if nbytes > MAX_DATASET_BYTES:
        return (f"declares {dataset.shape} x {dataset.dtype} = {nbytes:,} bytes, more than the "
                f"{MAX_DATASET_BYTES:,} a network file may hold in one dataset"), "check the file"
    if h5py.check_string_dtype(dataset.dtype) is not None and dataset.size > MAX_STRING_ELEMENTS:
        return f"holds {dataset.size:,} strings", "check the file"
    plist = dataset.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unsafe = [code for code in filters if code not in SAFE_FILTERS]
    if unsafe:
        return f"uses HDF5 filter {unsafe[0]} (only gzip, lzf, shuffle and fletcher32 are read)", \
            "write the file again without that filter"
    stored = dataset.id.get_storage_size()
    ratio = MAX_COMPRESSION_RATIO if filters else 1
    if nbytes > SMALL_DATASET_BYTES and nbytes > stored * ratio:
        return (f"declares {nbytes:,} bytes but the file stores {stored:,} for it"
                + (" (beyond any gzip ratio)" if filters else "")), "the file is damaged or forged; export it again"
    return None


def audit(handle: h5py.File, path: Path) -> None:
    """UserError for the first link, dataset or structure of ``handle`` that :func:`open_hdf5` refuses."""
    seen: set[int] = set()
    total = 0
    stack: list[tuple[h5py.Group, str, int]] = [(handle, "", 0)]
    while stack:
        group, prefix, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _refuse(path, prefix or "/", f"nests groups deeper than {MAX_DEPTH}", "check the file")
        for key in group:
            name = f"{prefix}/{key}" if prefix else str(key)
            link = group.get(key, getlink=True)
            problem = _link_problem(link)
            if problem:
                raise _refuse(path, name, problem, "store the values in the file itself")
            item = group.get(key)
            if item is None:
                raise _refuse(path, name, "cannot be opened", "the file is damaged; export it again")
            ident = hash(item.id)
            if ident in seen:  # a second hard link to an object already audited
                continue
            seen.add(ident)
            if len(seen) > MAX_OBJECTS:
                raise _refuse(path, name, f"is past the {MAX_OBJECTS:,}th object", "check the file")
            if isinstance(item, h5py.Group):
                stack.append((item, name, depth + 1))
            elif isinstance(item, h5py.Dataset):
                problem_fix = _dataset_problem(item)
                if problem_fix:
                    raise _refuse(path, name, *problem_fix)
                total += declared_bytes(item)
                if total > MAX_TOTAL_BYTES:
                    raise _refuse(path, name, f"brings the declared data past {MAX_TOTAL_BYTES:,} bytes",
                                  "check the file")
            else:
                raise _refuse(path, name, f"is a {type(item).__name__}, not a group or dataset", "check the file")


@contextmanager
def open_hdf5(path: Path | str, what: str, fix: str) -> Iterator[h5py.File]:
    """The audited, read-only h5py file at ``path`` (``what`` names its role, ``fix`` what to do when it is
    not HDF5); UserError before anything is read from a file that reads other files or declares too much."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; {fix}")
    check_regular_file(path, what)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not an HDF5 file ({_first_line(exc)}); {fix}") from exc
    with handle:
        try:
            audit(handle, path)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:  # h5py on damaged structures
            raise UserError(f"{path}: damaged HDF5 file ({type(exc).__name__}: {_first_line(exc)}); export it "
                            "again or re-copy the file") from exc
        yield handle


def read_dataset(path: Path, name: str, dataset: h5py.Dataset, max_elements: int | None = None) -> np.ndarray:
    """The values of an audited dataset, or UserError: more than ``max_elements`` values (checked before
    reading), or h5py cannot read it."""
    if max_elements is not None and dataset.shape is not None and dataset.size > max_elements:
        raise _refuse(path, name, f"holds {dataset.size:,} values {tuple(dataset.shape)} where the declared "
                      f"shapes allow at most {max_elements:,}", "export the network again")
    try:
        return np.asarray(dataset[()])
    except (OSError, RuntimeError, TypeError, ValueError) as exc:  # h5py on a damaged datatype or layout
        raise _refuse(path, name, f"cannot be read ({type(exc).__name__}: {_first_line(exc)})",
                      "the file is damaged; export it again") from exc


def read_tree(path: Path, group: h5py.Group, prefix: str = "") -> dict[str, Any]:
    """Every dataset under an audited ``group`` as nested dicts (byte strings decoded), like
    ``nir.serialization.hdf2dict`` but through :func:`read_dataset`."""
    out: dict[str, Any] = {}
    for key in group:
        name = f"{prefix}/{key}" if prefix else str(key)
        item = group[key]
        if isinstance(item, h5py.Group):
            out[str(key)] = read_tree(path, item, name)
        else:
            value = read_dataset(path, name, item)
            if value.ndim == 0:
                value = value[()]
            out[str(key)] = value.decode("utf8", errors="replace") if isinstance(value, bytes) else value
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
