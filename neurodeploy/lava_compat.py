"""The one place neurodeploy imports Lava (lava-nc and lava-dl).

lava-nc 0.10.0 and lava-dl 0.6.0 declare Python <3.11. On Python 3.11 two things break at import time,
and this module applies one explicit fix for each, never editing installed files:

1. ``lava/magma/compiler/var_model.py`` gives dataclass fields default values that are instances of
   other (unhashable) dataclasses, e.g. ``x: ByteEncoder = ByteEncoder()``. Python 3.11 rejects such
   defaults as mutable (``ValueError: mutable default ... use default_factory``). Fix: while that one
   module executes, ``dataclasses.dataclass`` is wrapped so that such a default becomes
   ``field(default_factory=<copy of the instance>)``; each instance gets its own copy.
2. ``lava/lib/dl/slayer/__init__.py`` imports its ``object_detection`` subpackage, which imports
   torchvision. When torchvision cannot be imported, that one subpackage is served as a placeholder
   module that raises a clear ImportError on first attribute access.

Both fixes are installed as ``sys.meta_path`` finders, at most once per process (idempotent), and only
when needed (Python >= 3.11 for fix 1; torchvision absent for fix 2).

3. (Any Python.) ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
   ``multiprocessing.set_start_method('fork')`` at import, which raises "context has already been set"
   once anything in the process fixed the start method -- numba's parallel runtime does, so running our
   emulator before importing Lava broke Lava. While a Lava module is imported and the method is already
   'fork', a repeated request for 'fork' is skipped (:func:`_fork_already_set_is_fine`). Any other
   method is a real conflict: Lava's runtime needs fork.
4. (CUDA.) ``lava/lib/dl/slayer/jitconfig.py`` sets ``TORCH_CUDA_ARCH_LIST = '8.0'`` for every GPU of
   compute capability >= 8, and SLAYER's JIT-compiled CUDA kernels (``neuron/dynamics/*.py``,
   ``utils/time/shift.py``, ``utils/filter/conv.py``) copy that value into the environment variable before
   compiling: on Hopper (9.0) and newer the kernels are built for sm_80 only and fail with "no kernel image
   is available for execution on the device". :func:`configure_slayer_jit` sets it to the capabilities of
   the GPUs torch sees (or to the user's own ``TORCH_CUDA_ARCH_LIST``); :func:`slayer` calls it once per
   process, so every path that builds SLAYER blocks has it before the first kernel is compiled.

Every other module must import Lava through :func:`lava_module` or the accessors below.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import multiprocessing
import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import torch

from neurodeploy.errors import UserError

VAR_MODEL_MODULE = "lava.magma.compiler.var_model"
OBJECT_DETECTION_MODULE = "lava.lib.dl.slayer.object_detection"
INSTALL_HINT = "install it with `make setup` (see README: lava-nc 0.10.0 and lava-dl 0.6.0, --no-deps)"


def _needs_dataclass_fix() -> bool:
    return sys.version_info >= (3, 11)


def _torchvision_importable() -> bool:
    try:
        importlib.import_module("torchvision")
    except Exception:  # noqa: BLE001 - a broken torchvision (wrong torch ABI) counts as absent
        return False
    return True


def _hashable_defaults_dataclass(original):
    """Wrap ``dataclasses.dataclass`` so unhashable dataclass-instance defaults become factories."""

    def convert(cls):
        for name in getattr(cls, "__annotations__", {}):
            value = cls.__dict__.get(name, dataclasses.MISSING)
            if (
                dataclasses.is_dataclass(value)
                and not isinstance(value, type)
                and type(value).__hash__ is None
            ):
                setattr(cls, name, dataclasses.field(default_factory=functools.partial(copy.deepcopy, value)))
        return cls

    @functools.wraps(original)
    def wrapper(cls=None, /, **kwargs):
        if cls is None:
            return lambda c: original(convert(c), **kwargs)
        return original(convert(cls), **kwargs)

    return wrapper


class _DataclassDefaultsLoader(importlib.abc.Loader):
    """Executes var_model.py with the wrapped ``dataclass`` (fix 1)."""

    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        original = dataclasses.dataclass
        dataclasses.dataclass = _hashable_defaults_dataclass(original)
        try:
            self.inner.exec_module(module)
        finally:
            dataclasses.dataclass = original


class _PlaceholderModule(types.ModuleType):
    """Stands in for slayer.object_detection when torchvision is missing (fix 2)."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(
            f"{OBJECT_DETECTION_MODULE} needs torchvision, which is not installed; neurodeploy does not "
            "use it. Install a torchvision that matches your torch to use lava-dl object detection."
        )


class _PlaceholderLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return _PlaceholderModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


class LavaCompatFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder applying the two import-time fixes; installed once per process."""

    def __init__(self, fix_dataclasses: bool, stub_object_detection: bool):
        self.fix_dataclasses = fix_dataclasses
        self.stub_object_detection = stub_object_detection

    def find_spec(self, fullname, path, target=None):
        if fullname == OBJECT_DETECTION_MODULE and self.stub_object_detection:
            return importlib.machinery.ModuleSpec(fullname, _PlaceholderLoader(), is_package=True)
        if fullname == VAR_MODEL_MODULE and self.fix_dataclasses:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _DataclassDefaultsLoader(spec.loader)
            return spec
        return None


@dataclass(frozen=True)
class CompatStatus:
    """Which fixes this process applies."""

    dataclass_defaults_fix: bool
    object_detection_placeholder: bool


def install_fixes() -> CompatStatus:
    """Install the fixes this interpreter needs (idempotent) and say which are active."""
    for finder in sys.meta_path:
        if isinstance(finder, LavaCompatFinder):
            return CompatStatus(finder.fix_dataclasses, finder.stub_object_detection)
    finder = LavaCompatFinder(
        fix_dataclasses=_needs_dataclass_fix(),
        stub_object_detection=not _torchvision_importable(),
    )
    if finder.fix_dataclasses or finder.stub_object_detection:
        sys.meta_path.insert(0, finder)
    return CompatStatus(finder.fix_dataclasses, finder.stub_object_detection)


@contextlib.contextmanager
def _fork_already_set_is_fine() -> Iterator[None]:
    """Fix 3: while Lava imports, ``set_start_method('fork')`` is a no-op when 'fork' is already set."""
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        yield
        return
    original = multiprocessing.set_start_method

    def keep_fork(method: str, force: bool = False) -> None:
        if method != "fork" or force:
            original(method, force=force)

    multiprocessing.set_start_method = keep_fork
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


def _import(module: str) -> types.ModuleType:
    install_fixes()
    try:
        with _fork_already_set_is_fine():
            return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "lava" or exc.name.startswith("lava.")):
            raise UserError(f"Lava is not installed (missing module {exc.name}); {INSTALL_HINT}") from exc
        raise


JITCONFIG_MODULE = "lava.lib.dl.slayer.jitconfig"
_jit_configured = False


def slayer() -> types.ModuleType:
    """``lava.lib.dl.slayer``, with its CUDA JIT set up for this machine's GPUs (fix 4)."""
    global _jit_configured
    module = _import("lava.lib.dl.slayer")
    if not _jit_configured:
        configure_slayer_jit()
        _jit_configured = True
    return module


def configure_slayer_jit() -> str | None:
    """Fix 4: set lava-dl's ``jitconfig.TORCH_CUDA_ARCH_LIST`` to the compute capabilities of the GPUs torch
    sees, e.g. ``"9.0"`` or ``"8.6;9.0"`` (a ``TORCH_CUDA_ARCH_LIST`` in the environment wins); returns the
    value, or None without CUDA (nothing changed). Idempotent."""
    if not torch.cuda.is_available():
        return None
    value = os.environ.get("TORCH_CUDA_ARCH_LIST") or ";".join(sorted(
        {"{}.{}".format(*torch.cuda.get_device_capability(index)) for index in range(torch.cuda.device_count())},
        key=lambda cap: tuple(int(part) for part in cap.split("."))))
    _import(JITCONFIG_MODULE).TORCH_CUDA_ARCH_LIST = value
    return value


def netx() -> types.ModuleType:
    """``lava.lib.dl.netx``."""
    return _import("lava.lib.dl.netx")


def lava_module(name: str) -> types.ModuleType:
    """Any Lava module by dotted name, e.g. ``lava.proc.io.source``."""
    if not name.startswith("lava."):
        raise ValueError(f"not a Lava module: {name}")
    return _import(name)


def versions() -> dict[str, str]:
    """Installed versions of the Lava packages, for provenance."""
    found = {}
    for dist in ("lava-nc", "lava-dl"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "absent"
    return found
