"""The Lava import fixes: each one is needed on this interpreter, works, and is idempotent."""

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from neurodeploy import lava_compat
from neurodeploy.errors import UserError


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the dataclass fix is only needed on Python >= 3.11")
def test_var_model_fails_without_the_fix_and_imports_with_it():
    plain = _run("import lava.magma.compiler.var_model")
    assert plain.returncode != 0 and "mutable default" in plain.stderr
    fixed = _run("""
        from neurodeploy import lava_compat
        lava_compat.install_fixes()
        import lava.magma.compiler.var_model as vm
        a, b = vm.CoreEncoder(), vm.CoreEncoder()
        assert a.x == vm.ByteEncoder() and a.x is not b.x
        print("ok")
    """)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == "ok"


def test_slayer_imports_without_torchvision_and_obd_says_why():
    result = _run("""
        from neurodeploy import lava_compat
        slayer = lava_compat.slayer()
        assert hasattr(slayer.block.cuba, "Dense")
        try:
            slayer.obd.models
        except ImportError as exc:
            assert "torchvision" in str(exc)
            print("placeholder")
        else:
            print("real")
    """)
    assert result.returncode == 0, result.stderr
    status = lava_compat.install_fixes()
    assert result.stdout.strip() == ("placeholder" if status.object_detection_placeholder else "real")


def test_lava_imports_after_the_start_method_was_set_to_fork_and_fails_plainly_without_the_fix():
    """numba's parallel runtime fixes the start method ('fork' on Linux); Lava's message infrastructure
    then set it again at import and failed with "context has already been set" (fix 3)."""
    module = "lava.magma.runtime.message_infrastructure.multiprocessing"
    plain = _run(f"""
        import multiprocessing
        multiprocessing.set_start_method("fork")
        from neurodeploy import lava_compat
        lava_compat.install_fixes()
        import {module}
    """)
    assert plain.returncode != 0 and "context has already been set" in plain.stderr
    fixed = _run(f"""
        import multiprocessing
        multiprocessing.set_start_method("fork")
        original = multiprocessing.set_start_method
        from neurodeploy import lava_compat
        lava_compat.lava_module("{module}")
        lava_compat.netx()
        assert multiprocessing.set_start_method is original and multiprocessing.get_start_method() == "fork"
        print("ok")
    """)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == "ok"


def test_install_is_idempotent():
    first = lava_compat.install_fixes()
    second = lava_compat.install_fixes()
    assert first == second
    finders = [f for f in sys.meta_path if isinstance(f, lava_compat.LavaCompatFinder)]
    assert len(finders) <= 1
    lava_compat.netx()
    assert lava_compat.install_fixes() == first


def test_dataclass_wrapper_converts_only_unhashable_dataclass_defaults():
    @dataclasses.dataclass
    class Inner:
        a: int = 0

    wrapped = lava_compat._hashable_defaults_dataclass(dataclasses.dataclass)

    @wrapped
    class Outer:
        inner: Inner = Inner(3)
        plain: int = 5

    one, two = Outer(), Outer()
    assert one.inner == Inner(3) and one.inner is not two.inner and one.plain == 5


def test_missing_lava_is_a_user_error(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name.startswith("lava"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(lava_compat.importlib, "import_module", fake)
    with pytest.raises(UserError, match="Lava is not installed"):
        lava_compat.lava_module("lava.proc.io.source")


# ---- fix 4: SLAYER's CUDA JIT builds for the GPU's own compute capability (issue 25)

def _fake_gpus(monkeypatch, *capabilities):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: bool(capabilities))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capabilities[index])


def _arch_list_lava_dl_compiles_for(monkeypatch) -> str | None:
    """Drive lava-dl's own JIT path (Accelerated.leaky_integrator) with the compiler replaced by a recorder:
    the TORCH_CUDA_ARCH_LIST it would compile SLAYER's CUDA kernels for."""
    import os

    leaky = lava_compat.lava_module("lava.lib.dl.slayer.neuron.dynamics.leaky_integrator")
    seen = {}

    def record_load(**_kwargs):
        seen["arch"] = os.environ.get("TORCH_CUDA_ARCH_LIST")
        return object()

    monkeypatch.setattr(leaky, "load", record_load)
    monkeypatch.setattr(leaky.Accelerated, "module", None)
    leaky.Accelerated.leaky_integrator  # noqa: B018 - the property compiles (here: records) the module
    return seen["arch"]


def test_slayer_jit_targets_a_capability_9_gpu(monkeypatch):
    """lava-dl alone compiles for sm_80 on a 9.0 GPU ("no kernel image is available"); after the fix for 9.0."""
    import importlib

    _fake_gpus(monkeypatch, (9, 0))
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    jitconfig = lava_compat.lava_module(lava_compat.JITCONFIG_MODULE)
    monkeypatch.setattr(jitconfig, "TORCH_CUDA_ARCH_LIST", jitconfig.TORCH_CUDA_ARCH_LIST)  # restored afterwards
    importlib.reload(jitconfig)  # the unpatched module, as lava-dl sets it on this (fake) machine
    assert jitconfig.TORCH_CUDA_ARCH_LIST == "8.0"
    assert _arch_list_lava_dl_compiles_for(monkeypatch) == "8.0"
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)

    assert lava_compat.configure_slayer_jit() == "9.0"
    assert lava_compat.configure_slayer_jit() == "9.0"  # idempotent
    assert jitconfig.TORCH_CUDA_ARCH_LIST == "9.0"
    assert _arch_list_lava_dl_compiles_for(monkeypatch) == "9.0"


def test_slayer_jit_lists_every_gpu_and_keeps_the_users_choice(monkeypatch):
    _fake_gpus(monkeypatch, (9, 0), (8, 6), (9, 0), (10, 0))
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    jitconfig = lava_compat.lava_module(lava_compat.JITCONFIG_MODULE)
    monkeypatch.setattr(jitconfig, "TORCH_CUDA_ARCH_LIST", None)
    assert lava_compat.configure_slayer_jit() == "8.6;9.0;10.0"
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0+PTX")
    assert lava_compat.configure_slayer_jit() == "9.0+PTX" == jitconfig.TORCH_CUDA_ARCH_LIST


def test_slayer_jit_is_a_no_op_without_cuda(monkeypatch):
    _fake_gpus(monkeypatch)
    jitconfig = lava_compat.lava_module(lava_compat.JITCONFIG_MODULE)
    monkeypatch.setattr(jitconfig, "TORCH_CUDA_ARCH_LIST", None)
    assert lava_compat.configure_slayer_jit() is None and jitconfig.TORCH_CUDA_ARCH_LIST is None


def test_the_slayer_accessor_configures_the_jit_once(monkeypatch):
    """Every path builds SLAYER blocks through lava_compat.slayer(): the first call sets the arch list."""
    _fake_gpus(monkeypatch, (9, 0))
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    jitconfig = lava_compat.lava_module(lava_compat.JITCONFIG_MODULE)
    monkeypatch.setattr(jitconfig, "TORCH_CUDA_ARCH_LIST", "8.0")
    monkeypatch.setattr(lava_compat, "_jit_configured", False)
    lava_compat.slayer()
    assert jitconfig.TORCH_CUDA_ARCH_LIST == "9.0"


# ---- numpy 2 (issue 25: GPU boxes run numpy 2.x): lava-nc 0.10 / lava-dl 0.6 use none of the names numpy 2
# removed, so lava_compat needs no shim for them. This guards that finding (the suites for Lava, netx and
# this module also passed under numpy 2.3.5, see docs/gpu.md); it fails if a Lava upgrade brings one back.
NUMPY2_REMOVED = ("float_", "complex_", "product", "cumproduct", "sometrue", "alltrue", "bool8", "int0", "uint0",
                  "string_", "unicode_", "NaN", "NAN", "Inf", "Infinity", "PINF", "NINF", "infty", "asfarray",
                  "find_common_type", "round_", "msort", "obj2sctype", "sctypes", "longfloat", "singlecomplex",
                  "cfloat", "clongfloat", "longcomplex", "mat", "issubclass_", "set_string_function", "cast",
                  "safe_eval", "source", "lookfor", "deprecate", "trapz")


def test_lava_uses_no_name_numpy_2_removed():
    import re
    from pathlib import Path

    lava = lava_compat.lava_module("lava.magma")
    root = Path(next(iter(lava.__path__))).resolve().parent  # site-packages/lava (a namespace package)
    pattern = re.compile(r"\b(?:np|numpy)\.(" + "|".join(NUMPY2_REMOVED) + r")\b")
    found = []
    for path in root.rglob("*.py"):
        if "object_detection" in path.parts or "tests" in path.parts:  # neither is imported by neurodeploy
            continue
        found += [f"{path.relative_to(root)}: np.{name}" for name in pattern.findall(path.read_text(errors="replace"))]
    assert len(list(root.rglob("*.py"))) > 100, "the scan must see Lava's sources"
    assert found == []
