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
