"""examples/quickstart.ipynb runs top to bottom in a fresh kernel (nbclient), so the quick start cannot rot.

The kernel is this interpreter (a kernel spec written for the test), working in a temporary folder; the
notebook is stored without outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_stored_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(not cell["outputs"] and cell["execution_count"] is None for cell in code)


def test_the_quickstart_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    kernel_dir = tmp_path / "jupyter" / "kernels" / "neurodeploy-test"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "neurodeploy test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # searched before the user's kernels
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[1]))  # this checkout's neurodeploy
    work = tmp_path / "work"
    work.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="neurodeploy-test",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError with the cell and traceback when a cell fails

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = [set(o.get("data", {})) for o in outputs if o.output_type in ("execute_result", "display_data")]
    tables = [m for m in mimes if "text/html" in m and "text/markdown" in m]
    assert len(tables) == 2  # the emulator's report and the comparison render as tables
    assert sum("image/png" in m for m in mimes) == 2  # the energy breakdown and accuracy vs energy
    html = next(o["data"]["text/html"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "emulated" in html and "synthetic" in html and "<table>" in html
    assert (work / "runs" / "quickstart-snn" / "reports" / "lava" / "run_report.json").is_file()
    assert (work / "runs" / "quickstart-lstm" / "reports" / "torch" / "run_report.json").is_file()
