"""`neurodeploy study` with Deng et al.'s families (ann, converted, tcnn) and the mnist dataset: the study file's
new keys, and tiny cells trained and evaluated through the same library functions as `train`, `convert` and
`run` (no Ray: :func:`neurodeploy.study.cell.run_cell` directly). Tiny: 1 epoch, tens of samples, T <= 8.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from neurodeploy.errors import UserError
from neurodeploy.study.cell import ANN_SUFFIX, run_cell
from neurodeploy.study.results import study_markdown
from neurodeploy.study.runner import StudyOutcome, resolve_data_dir
from neurodeploy.study.spec import DEFAULT_CONVERT_STEPS, parse_study

STUDIES = Path(__file__).resolve().parent.parent / "studies"


def _mnist(**changes) -> dict:
    raw = {"name": "tiny-mnist", "dataset": "mnist", "arch": "Input-16FC-10", "scale": "quick",
           "scales": {"quick": {"epochs": 1, "lr": 0.003, "batch_size": 10, "limit": 60, "test_limit": 20}},
           "seeds": [0], "dt_ms": [1], "steps": 4,
           "models": {"ANN": {"family": "ann"}, "Converted": {"family": "converted", "convert_steps": 8},
                      "SNN": {"family": "snn"}},
           "tables": ["accuracy"],
           "paper": {"source": "hand-made", "numbers": [{"model": "ANN", "dt_ms": 1, "accuracy": 0.99},
                                                        {"model": "Converted", "dt_ms": 1, "accuracy": 0.98}],
                     "rules": [{"claim": "the ANN beats the converted SNN", "left": {"model": "ANN", "dt_ms": 1},
                                "op": ">", "right": {"model": "Converted", "dt_ms": 1}}]}}
    raw.update(changes)
    return raw


def _nmnist(data_dir: Path, **changes) -> dict:
    raw = {"name": "tiny-nmnist", "dataset": "nmnist", "arch": "Input-16FC-10", "data_dir": str(data_dir),
           "scale": "quick",
           "scales": {"quick": {"epochs": 1, "lr": 0.003, "batch_size": 10, "limit": 20, "test_limit": 10}},
           "seeds": [0], "dt_ms": [10], "steps": 4,
           "models": {"Binary ANN": {"family": "ann", "frames": "binary"},
                      "Intensity ANN": {"family": "ann", "frames": "intensity"},
                      "TCNN": {"family": "tcnn", "arch": "Input-4C3-AP2-10"}},
           "tables": ["accuracy"]}
    raw.update(changes)
    return raw


# ---------------------------------------------------------------- the study file

def test_new_families_and_keys_parse():
    spec = parse_study(_mnist(models={"ANN": {"family": "ann"}, "Model-2": {"family": "converted"},
                                      "Model-2 p": {"family": "converted", "convert_steps": 300, "norm": "p99.9"},
                                      "SNN T=20": {"family": "snn", "steps": 20}}, paper=[]), "inline.yaml")
    steps = {cell.model.name: cell.steps for cell in spec.cells()}
    assert steps == {"ANN": 4, "Model-2": DEFAULT_CONVERT_STEPS, "Model-2 p": 300, "SNN T=20": 20}
    models = {m.name: m for m in spec.models}
    assert models["Model-2"].norm == "max" and models["Model-2 p"].norm == "p99.9"
    assert models["Model-2"].train_family == "ann" and models["Model-2"].run_family == "snn"
    assert spec.cells()[1].cell_id == "model-2-dt1-T500-s0"


@pytest.mark.parametrize("models, key", [
    ({"A": {"family": "ann", "loss": "last"}}, "models.A.loss"),
    ({"A": {"family": "tcnn", "loss": "rate"}}, "models.A.loss"),
    ({"A": {"family": "snn", "frames": "binary"}}, "models.A.frames"),
    ({"A": {"family": "ann", "frames": "gray"}}, "models.A.frames"),
    ({"A": {"family": "ann", "frames": "binary"}}, "models.A.frames"),  # mnist: static images
    ({"A": {"family": "ann", "norm": "max"}}, "models.A.norm"),
    ({"A": {"family": "converted", "norm": "mean"}}, "models.A.norm"),
    ({"A": {"family": "converted", "steps": 500}}, "models.A.steps"),
    ({"A": {"family": "snn", "convert_steps": 500}}, "models.A.convert_steps"),
    ({"A": {"family": "converted", "convert_steps": 0}}, "models.A.convert_steps"),
    ({"A": {"family": "snn", "steps": 200_000}}, "models.A.steps"),
    ({"A": {"family": "tcnn"}}, "models.A.family"),  # mnist: no events to convolve over time
    ({"A": {"family": "ann", "leak": False}}, "models.A"),
    ({"A": {"family": "anne"}}, "models.A.family"),
    ({"A": {"family": "snn", "aggregation": "sum"}}, "models.A.aggregation"),
])
def test_bad_model_keys_name_the_key(models, key):
    with pytest.raises(UserError) as error:
        parse_study(_mnist(models=models, paper=[]), "bad.yaml")
    message = str(error.value)
    assert "\n" not in message and message.startswith("bad.yaml: ") and f"'{key}'" in message


@pytest.mark.parametrize("models, key", [
    ({"A": {"family": "converted"}}, "models.A.family"),
    ({"A": {"family": "ann"}}, "models.A.frames"),  # events need frames
])
def test_event_data_refuses_static_only_families(tmp_path, models, key):
    with pytest.raises(UserError, match=f"'{key}'"):
        parse_study(_nmnist(tmp_path, models=models), "bad.yaml")


def test_shipped_deng_and_rsnn_studies_parse_with_their_families():
    families = {stem: {m.name: (m.family, m.frames) for m in parse_study_file(stem).models}
                for stem in ("deng_table4", "deng_table5", "deng_table7", "rsnn_table3")}
    assert ("converted", None) in families["deng_table4"].values()
    assert {("ann", "binary"), ("ann", "intensity"), ("snn", None)} <= set(families["deng_table5"].values())
    assert {("rnn", None), ("lstm", None), ("snn", None), ("tcnn", None)} <= set(families["deng_table7"].values())
    assert ("rsnn", None) in families["rsnn_table3"].values()
    converted = next(c for c in parse_study_file("deng_table4").cells() if c.model.family == "converted")
    enforced = next(c for c in parse_study_file("deng_table4").cells() if c.model.family == "snn")
    assert (converted.steps, enforced.steps) == (500, 20)  # Deng Table 2: Model-2 T = 500, Model-3 T = 20


def parse_study_file(stem: str):
    from neurodeploy.study.spec import load_study

    return load_study(STUDIES / f"{stem}.yaml")


# ---------------------------------------------------------------- tiny cells, end to end

def _quiet() -> Console:
    return Console(file=open(os.devnull, "w"))


def test_mnist_ann_converted_and_snn_cells_run_and_the_study_has_verdicts(tmp_path):
    spec = parse_study(_mnist(), "inline.yaml")
    data_dir = resolve_data_dir(spec)
    rows = [row for cell in spec.cells() for row in run_cell(spec, cell, tmp_path, data_dir, _quiet())]
    modes = {row.model: (row.report.family, row.report.mode, row.test_steps) for row in rows}
    assert modes == {"ANN": ("ann", "float", 4), "Converted": ("snn", "emulated", 8), "SNN": ("snn", "emulated", 4)}
    converted = next(row for row in rows if row.model == "Converted")
    cell_dir = tmp_path / "cells" / converted.cell
    assert (cell_dir / "conversion.json").is_file()
    ann = json.loads((cell_dir.with_name(converted.cell + ANN_SUFFIX) / "config.json").read_text())
    assert ann["family"] == "ann" and ann["seed"] == 0 and ann["arch"] == spec.arch
    assert all(row.report.accuracy is not None and row.test_samples == 20 for row in rows)
    assert run_cell(spec, spec.cells()[1], tmp_path, data_dir, _quiet()) == [converted]  # a finished cell is read
    text = study_markdown(spec, StudyOutcome(rows, wall_s=1.0))
    assert "## The paper's findings: verdicts" in text
    assert "hand-made" in text and "He et al." not in text  # the paper block's own source
    assert "| Converted | IF neurons, T=8, norm max | emulated |" in text
    assert any(line.startswith("- **") and "the ANN beats the converted SNN." in line for line in text.splitlines())


def test_frame_anns_and_tcnn_cells_run_in_float(tmp_path, tiny_nmnist):
    spec = parse_study(_nmnist(tiny_nmnist), "inline.yaml")
    rows = [row for cell in spec.cells() for row in run_cell(spec, cell, tmp_path, str(tiny_nmnist), _quiet())]
    assert {row.model: (row.report.family, row.report.mode) for row in rows} == {
        "Binary ANN": ("ann", "float"), "Intensity ANN": ("ann", "float"), "TCNN": ("tcnn", "float")}
    frames = {row.model: json.loads((tmp_path / "cells" / row.cell / "config.json").read_text())["frames"]
              for row in rows}
    assert frames == {"Binary ANN": "binary", "Intensity ANN": "intensity", "TCNN": None}
