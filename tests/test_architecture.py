"""The package's import graph: layers only import downwards, no cycles, no function-local imports that hide
one (docs/architecture.md).

Read with ``ast`` from the source files, so the test sees every import, also those inside functions, and
needs none of the heavy dependencies installed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neurodeploy"

# lowest first; a module may import from its own layer and the layers before it
LAYERS = (
    ("neurodeploy", "neurodeploy.errors", "neurodeploy.atomic", "neurodeploy.lava_compat", "neurodeploy.safe_files",
     "neurodeploy.safe_hdf5",
     "neurodeploy.options", "neurodeploy.signals", "neurodeploy.run_lock", "neurodeploy.folders",
     "neurodeploy.devices", "neurodeploy.watchdog"),
    ("neurodeploy.kernels",),
    ("neurodeploy.data",),
    ("neurodeploy.models",),
    ("neurodeploy.metrics",),
    ("neurodeploy.deploy",),
    ("neurodeploy.backends", "neurodeploy.lava_procs"),
    ("neurodeploy.reports",),
    ("neurodeploy.pipeline",),
    ("neurodeploy.study",),
    ("neurodeploy.api",),
    ("neurodeploy.cli", "neurodeploy.__main__"),
)

# Optional, heavy or platform-bound dependencies that may be imported inside a function (each such import
# carries a comment saying why): Lava / lava-dl, our Lava processes (their module imports Lava), CUDA's NVML,
# plotting, numba, and two slow imports used by one data path each (tonic's readers, scikit-learn's digits),
# POSIX file locks, and Ray (the optional `study` extra, needed only to run a study).
LAZY_ALLOWED = ("lava", "neurodeploy.lava_procs", "pynvml", "matplotlib", "numba", "tonic", "sklearn", "fcntl",
                "ray")


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, package: Path) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) for every import statement of ``path``."""
    module = _module_name(path, package)
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, path, child)
                for alias in child.names:
                    # `from package import submodule` imports the submodule
                    candidate = f"{base}.{alias.name}"
                    file = package.parent / candidate.replace(".", "/")
                    target = candidate if file.with_suffix(".py").exists() or file.is_dir() else base
                    found.append((target, in_function, child.lineno))
            else:
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text()), False)
    return found


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if module in prefixes:
            return rank
    for rank, prefixes in enumerate(LAYERS):
        if any(module.startswith(prefix + ".") for prefix in prefixes if prefix != "neurodeploy"):
            return rank
    raise AssertionError(f"{module}: not in any layer of tests/test_architecture.py; add it to LAYERS")


def _graph(package: Path = PACKAGE) -> dict[str, list[tuple[str, bool, int]]]:
    return {_module_name(path, package): _imports(path, package) for path in sorted(package.rglob("*.py"))}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in edges.get(node, ()):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def _own(target: str, modules: set[str]) -> str | None:
    """The package module that ``target`` names (a module, or a package's __init__)."""
    return target if target in modules else None


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    graph = _graph()
    upward = []
    for module, imports in graph.items():
        for target, _, line in imports:
            if target.startswith("neurodeploy") and _layer(target) > _layer(module):
                upward.append(f"{module}:{line} imports {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = _graph()
    modules = set(graph)
    edges = {module: {_own(t, modules) for t, _, _ in imports if _own(t, modules) and _own(t, modules) != module}
             for module, imports in graph.items()}
    assert _cycles(edges) == []


def test_function_local_imports_are_only_of_optional_heavy_dependencies():
    graph = _graph()
    local = [f"{module}:{line} imports {target}" for module, imports in graph.items()
             for target, inside, line in imports
             if inside and not any(target == name or target.startswith(name + ".") for name in LAZY_ALLOWED)]
    assert not local, "function-local imports of light or own modules:\n" + "\n".join(local)


def test_the_checks_catch_a_cycle_and_an_upward_import(tmp_path):
    """The graph walk sees a cycle hidden behind a function-local import, and an import from a higher layer."""
    package = tmp_path / "neurodeploy"
    (package / "models").mkdir(parents=True)
    (package / "reports").mkdir()
    (package / "models" / "a.py").write_text("def f():\n    from neurodeploy.reports import b\n")
    (package / "reports" / "b.py").write_text("from neurodeploy.models import a\n")
    graph = _graph(package)
    edges = {m: {t for t, _, _ in imports if t in graph} for m, imports in graph.items()}
    assert _cycles(edges) == [["neurodeploy.models.a", "neurodeploy.reports.b"]]
    assert _layer("neurodeploy.reports.b") > _layer("neurodeploy.models.a")
    assert graph["neurodeploy.models.a"] == [("neurodeploy.reports.b", True, 2)]


@pytest.mark.parametrize("module", ["neurodeploy.pipeline.baseline", "neurodeploy.backends.torch_float"])
def test_torch_only_paths_do_not_import_lava_at_load(module):
    """RNN/LSTM runs and the torch backend work on a machine without Lava (a GPU box)."""
    script = ("import sys, importlib; importlib.import_module(sys.argv[1]); "
              "print(sorted(m for m in sys.modules if m == 'lava' or m.startswith('lava.')))")
    done = subprocess.run([sys.executable, "-c", script, module], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_code_and_profiles_cite_only_docs_that_ship_with_the_repo():
    """Docstrings, help texts and hardware profiles cite docs/*.md (which must exist), not the team's notes."""
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *(root / "hw_configs").glob("*.yaml"), root / "README.md"]
    foreign, missing = [], []
    for path in files:
        text = path.read_text()
        foreign += [f"{path.name}: {m.group(0)}" for m in re.finditer(r"\bSPEC\b|\bREFERENCE\b|shared/", text)]
        missing += [f"{path.name}: {doc}" for doc in re.findall(r"docs/[\w.-]+\.md", text) if not (root / doc).exists()]
    assert not foreign, f"citations of notes outside the repo: {foreign}"
    assert not missing, f"citations of docs that do not exist: {missing}"


def test_reports_only_render():
    """``reports/`` turns records into tables, JSON and plots: it imports no backend (no simulator, no chip model)
    and no pipeline module (no computation of a report's numbers)."""
    graph = _graph()
    found = [f"{module}:{line} imports {target}" for module, imports in graph.items()
             if module.startswith("neurodeploy.reports") for target, _, line in imports
             if target.startswith(("neurodeploy.backends", "neurodeploy.pipeline"))]
    assert not found, "reports/ must only render:\n" + "\n".join(found)


def test_the_render_check_catches_a_report_that_runs_a_backend(tmp_path):
    package = tmp_path / "neurodeploy"
    (package / "backends").mkdir(parents=True)
    (package / "reports").mkdir()
    (package / "backends" / "sim.py").write_text("")
    (package / "reports" / "r.py").write_text("from neurodeploy.backends import sim\n")
    assert ("neurodeploy.backends.sim", False, 1) in _graph(package)["neurodeploy.reports.r"]


# the CLI's own process plumbing, besides the public API: SIGTERM / SIGHUP as KeyboardInterrupt
CLI_INFRASTRUCTURE = ("neurodeploy.signals",)


def test_the_cli_calls_only_the_public_api():
    """cli.py imports the package (its public names, docs/api.md) and nothing else of neurodeploy, and every
    ``nd.<name>`` it uses is public: the CLI and the Python API cannot drift apart."""
    import neurodeploy

    cli = PACKAGE / "cli.py"
    imported = {target for target, _, _ in _imports(cli, PACKAGE) if target.startswith("neurodeploy")}
    assert imported - {"neurodeploy", *CLI_INFRASTRUCTURE} == set()
    tree = ast.parse(cli.read_text())
    froms = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "neurodeploy"
             for alias in node.names]
    assert set(froms) <= {name.rsplit(".", 1)[-1] for name in CLI_INFRASTRUCTURE}
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "nd"}
    assert used and used <= set(neurodeploy.__all__), f"not public: {sorted(used - set(neurodeploy.__all__))}"


MAX_MODULE_LINES = 600
REGISTRY = PACKAGE / "backends" / "registry.py"


def _registered_backend_names(registry: Path = REGISTRY) -> set[str]:
    """The ``name=`` of every ``Backend(...)`` the registry builds (read with ``ast``, nothing imported)."""
    return {keyword.value.value for node in ast.walk(ast.parse(registry.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Backend"
            for keyword in node.keywords
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant)}


def _spelled_out_backend_lists(package: Path, names: set[str], owner: str = "backends/registry.py") -> list[str]:
    """Every list, tuple, set or dict literal outside ``owner`` that writes out two or more of ``names``, and
    every string that lists them (``"lava | emulator"``, ``"lava, loihi2 or emulator"``)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).as_posix() == owner:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                elements = node.keys if isinstance(node, ast.Dict) else node.elts
                written = [e.value for e in elements if isinstance(e, ast.Constant) and e.value in names]
                if len(written) >= 2:
                    found.append(f"{path.relative_to(package.parent)}:{node.lineno} {written}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = re.findall(r"\w+", node.value)
                listed = {w for a, sep, b in zip(words, re.findall(r"\W+", node.value), words[1:])
                          for w in (a, b) if a in names and b in names and sep.strip() in ("|", ",", "/")}
                if len(listed) >= 2:
                    found.append(f"{path.relative_to(package.parent)}:{node.lineno} {sorted(listed)}")
    return found


def test_backend_names_are_listed_only_by_the_registry():
    """Adding a backend is one file plus one registry line: no other module writes out a list of backend names
    (ask ``neurodeploy.backends.registry.names``)."""
    names = _registered_backend_names()
    assert {"lava", "emulator", "torch", "loihi2"} <= names
    found = _spelled_out_backend_lists(PACKAGE, names)
    assert not found, "backend names listed outside backends/registry.py:\n" + "\n".join(found)


def test_the_backend_list_check_catches_a_tuple_and_a_help_text(tmp_path):
    package = tmp_path / "neurodeploy"
    (package / "study").mkdir(parents=True)
    (package / "study" / "spec.py").write_text('SNN = ("emulator", "lava")\nHELP = "lava | loihi2 | torch"\n'
                                               'ONE = ("emulator", "sanafe")\n')
    found = _spelled_out_backend_lists(package, {"lava", "emulator", "torch", "loihi2"})
    assert [line.split(" ")[0] for line in found] == ["neurodeploy/study/spec.py:1", "neurodeploy/study/spec.py:2"]


def test_modules_stay_under_600_lines():
    """One responsibility per module; a module past 600 lines is split along its seams."""
    long = {str(path.relative_to(PACKAGE.parent)): n for path in sorted(PACKAGE.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_per_dataset_defaults_have_one_table():
    """dt, T, batch size, input shape, classes and the default model of a dataset live in ``DATASETS``
    (neurodeploy/data/datasets.py); no other module keys a table by dataset names."""
    tree = ast.parse((PACKAGE / "data" / "datasets.py").read_text())
    table = next(node.value for node in ast.walk(tree) if isinstance(node, ast.AnnAssign)
                 and getattr(node.target, "id", None) == "DATASETS")
    names = {key.value for key in table.keys}
    assert {"nmnist", "dvsgesture"} <= names
    found = _spelled_out_backend_lists(PACKAGE, names, owner="data/datasets.py")
    assert not found, "per-dataset tables outside data/datasets.py:\n" + "\n".join(found)
