"""A command deletes or overwrites only what it can prove it made (issue 22, data safety; issue 23, paths).

Each writing command is pointed at a folder holding a user's file: it must exit 2 with one line naming the
folder, and the user's file must survive byte for byte. Folders neurodeploy made are still written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neurodeploy import folders
from neurodeploy.cli import app
from neurodeploy.errors import UserError
from neurodeploy.pipeline.demo import DEMO_TRAINING, clear_demo_run, plan_demo

runner = CliRunner()
USER_BYTES = b"a user's thesis, not backed up\n"


def _user_folder(root: Path, name: str = "mine", file: str = "thesis.txt") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / file).write_bytes(USER_BYTES)
    return folder


def _refused(result, folder: Path) -> None:
    """Exit 2, one line, naming the folder, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(folder) in lines[0] or folder.name in lines[0], result.output
    assert "Traceback" not in result.output and "Warning" not in result.output


def _survives(folder: Path, file: str = "thesis.txt") -> None:
    assert (folder / file).read_bytes() == USER_BYTES
    assert sorted(p.name for p in folder.iterdir()) == [file]


def _copy_run(run: Path, dest: Path) -> Path:
    return Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns("reports")))


# ------------------------------------------------------------------------------------------------- demo


@pytest.mark.parametrize("fresh", [["--fresh"], []])
def test_demo_on_a_users_folder_is_exit_2_and_deletes_nothing(tmp_path, fresh):
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, ["demo", "--out", str(folder), *fresh])
    _refused(result, folder)
    _survives(folder)


def test_demo_fresh_on_a_users_config_json_is_refused(tmp_path):
    """A file named like ours is not ours: a config.json of another tool proves nothing."""
    folder = _user_folder(tmp_path, file="config.json")
    (folder / "config.json").write_bytes(USER_BYTES)
    result = runner.invoke(app, ["demo", "--fresh", "--out", str(folder)])
    _refused(result, folder)
    _survives(folder, "config.json")


def test_demo_fresh_on_a_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(USER_BYTES)
    result = runner.invoke(app, ["demo", "--fresh", "--out", str(path)])
    _refused(result, path)
    assert path.read_bytes() == USER_BYTES


def test_demo_fresh_on_an_imported_run_is_refused(tmp_path):
    folder = tmp_path / "imported"
    folder.mkdir()
    (folder / folders.NIR_RECORD).write_text(json.dumps({"schema_version": 1, "source": "x.nir", "dt_ms": 1.0,
                                                          "layers": []}))
    result = runner.invoke(app, ["demo", "--fresh", "--out", str(folder)])
    _refused(result, folder)
    assert "imported NIR run" in result.output
    assert (folder / folders.NIR_RECORD).exists()


def test_demo_fresh_on_our_run_removes_only_the_files_train_and_export_write(trained_snn_run, tmp_path):
    run = _copy_run(trained_snn_run, tmp_path / "run")
    (run / "notes.txt").write_bytes(USER_BYTES)
    assert plan_demo(run, fresh=True) == "retrain"
    clear_demo_run(run)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "notes.txt"]  # train rewrites the config
    assert (run / "notes.txt").read_bytes() == USER_BYTES
    assert folders.kind_of(run) == folders.TRAIN_RUN
    with pytest.raises(UserError, match="did not finish"):  # no checkpoint, no record, not the demo's settings
        plan_demo(run, fresh=False)


def test_a_finished_training_records_it_and_a_killed_one_is_not_taken_as_trained(trained_snn_run, tmp_path):
    """Issue 23 family 4: after `demo --fresh` is killed mid-training, a plain `demo` must not accept the
    half-trained checkpoint. `train` records completion (training_done.json) after its last epoch."""
    run = _copy_run(trained_snn_run, tmp_path / "run")
    assert folders.training_finished(run)
    assert plan_demo(run, fresh=False) == "use"
    (run / folders.TRAINING_DONE).unlink()  # what a kill before the last epoch leaves: no completion record
    assert not folders.training_finished(run)
    with pytest.raises(UserError, match="did not finish"):  # not the demo's settings: not resumed either
        plan_demo(run, fresh=False)
    config = json.loads((run / "config.json").read_text())
    config.update({k: v for k, v in DEMO_TRAINING.items() if k != "epochs"})
    (run / "config.json").write_text(json.dumps(config))
    assert plan_demo(run, fresh=False) == "resume"
    (run / "checkpoint.pt").unlink()
    assert plan_demo(run, fresh=False) == "train"


def test_a_completion_record_of_another_run_or_epoch_count_does_not_count(trained_snn_run, tmp_path):
    run = _copy_run(trained_snn_run, tmp_path / "run")
    done = json.loads((run / folders.TRAINING_DONE).read_text())
    (run / folders.TRAINING_DONE).write_text(json.dumps({**done, "run_id": "someone-else"}))
    assert not folders.training_finished(run)
    config = json.loads((run / "config.json").read_text())
    (run / folders.TRAINING_DONE).write_text(json.dumps(done))
    (run / "config.json").write_text(json.dumps({**config, "epochs": config["epochs"] + 5}))  # resumed, extended
    assert not folders.training_finished(run)


# ------------------------------------------------------------------------------------------------ train

TRAIN = ["train", "nmnist", "--arch", "Input-16FC-10", "--epochs", "1", "--steps", "4", "--dt", "10",
         "--batch-size", "20", "--limit", "20", "--test-limit", "10", "--no-synthetic"]


def test_train_into_a_users_folder_is_refused(tiny_nmnist, tmp_path):
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, [*TRAIN, "--data-dir", str(tiny_nmnist), "--out", str(folder)])
    _refused(result, folder)
    _survives(folder)


def test_train_into_a_folder_with_a_foreign_config_json_is_refused(tiny_nmnist, tmp_path):
    folder = _user_folder(tmp_path, file="config.json")
    result = runner.invoke(app, [*TRAIN, "--data-dir", str(tiny_nmnist), "--out", str(folder)])
    _refused(result, folder)
    _survives(folder, "config.json")


def test_train_into_an_imported_nir_run_is_refused(tiny_nmnist, tmp_path):
    """Issue 23 family 4: two identities (an imported graph and a training run) in one folder."""
    folder = tmp_path / "imported"
    folder.mkdir()
    record = json.dumps({"schema_version": 1, "source": "x.nir", "dt_ms": 1.0, "layers": []})
    (folder / folders.NIR_RECORD).write_text(record)
    result = runner.invoke(app, [*TRAIN, "--data-dir", str(tiny_nmnist), "--out", str(folder)])
    _refused(result, folder)
    assert "imported NIR run" in result.output
    assert sorted(p.name for p in folder.iterdir()) == [folders.NIR_RECORD]


def test_train_into_a_new_or_empty_folder_still_works_and_records_completion(tiny_nmnist, tmp_path):
    for out in (tmp_path / "new" / "run", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        result = runner.invoke(app, [*TRAIN, "--data-dir", str(tiny_nmnist), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert folders.kind_of(out) == folders.TRAIN_RUN and folders.training_finished(out)


# ------------------------------------------------------------------------------------- run, export, compare


def _report(backend: str = "emulator") -> dict:
    return {"schema_version": 1, "tool": {"name": "neurodeploy", "version": "0.1.0"},
            "model": {"family": "snn", "arch": "Input-512FC-10", "params": 10},
            "data": {"dataset": "nmnist", "source": "synthetic", "split": "test", "samples": 1, "dt_ms": 10,
                     "steps": 15},
            "backend": {"name": backend, "mode": "emulated", "hw_config": "loihi2", "device": "cpu"},
            "accuracy": 0.5,
            "per_sample": {"synops": 1.0, "neuron_updates": 1, "spikes": 1, "macs": 0.0, "adds": 0, "muls": 0,
                           "energy_j": 1e-6, "latency_s": 1e-3},
            "energy": {"kind": "estimated", "profile": "loihi1"},
            "memory_bits": {"weights": 1, "state": 1, "spikes": 1, "total": 3}, "layers": []}


@pytest.mark.parametrize("backend", ["emulator", "torch"])
def test_run_out_into_a_users_folder_is_refused(trained_snn_run, tmp_path, backend):
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, ["run", str(trained_snn_run), "--backend", backend, "--samples", "2",
                                 "--out", str(folder)])
    _refused(result, folder)
    _survives(folder)


def test_run_out_into_a_training_run_is_refused(trained_snn_run, tmp_path):
    other = _copy_run(trained_snn_run, tmp_path / "other")
    before = sorted(p.name for p in other.iterdir())
    result = runner.invoke(app, ["run", str(trained_snn_run), "--backend", "emulator", "--out", str(other)])
    _refused(result, other)
    assert "training run" in result.output
    assert sorted(p.name for p in other.iterdir()) == before


def test_run_default_report_folder_holding_a_users_files_is_refused(trained_snn_run, tmp_path):
    run = _copy_run(trained_snn_run, tmp_path / "run")
    folder = _user_folder(run / "reports", "emulator")
    result = runner.invoke(app, ["run", str(run), "--backend", "emulator", "--samples", "2"])
    _refused(result, folder)
    _survives(folder)


def test_run_save_output_never_replaces_a_users_file(trained_snn_run, tmp_path):
    import numpy as np

    spikes = tmp_path / "x.npy"
    np.save(spikes, np.zeros((2312, 4), np.uint8))
    folder = _user_folder(tmp_path, file="y.npy")
    result = runner.invoke(app, ["run", str(trained_snn_run), "--backend", "emulator", "--input", str(spikes),
                                 "--save-output", str(folder / "y.npy")])
    _refused(result, folder / "y.npy")
    _survives(folder, "y.npy")


def test_two_runs_with_one_out_folder_do_not_replace_each_other(trained_snn_run, tmp_path):
    """Issue 23 family 4: the lock covered the target, not --out; a run holding --out now keeps it."""
    from neurodeploy import run_lock

    out = tmp_path / "shared-report"
    with run_lock.hold_output(out):  # another `run` writing its report there
        result = runner.invoke(app, ["run", str(trained_snn_run), "--backend", "emulator", "--samples", "2",
                                     "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "in use by another neurodeploy command" in result.output
    assert not out.exists() or folders.is_empty(out)


def test_a_failed_run_leaves_no_report_folder_behind(tmp_path, trained_snn_run):
    from neurodeploy import run_lock

    out = tmp_path / "deep" / "report"
    with pytest.raises(RuntimeError), run_lock.hold_output(out):
        raise RuntimeError("the run failed")
    assert not (tmp_path / "deep").exists()


def test_run_rewrites_its_own_report_folder(trained_snn_run, tmp_path):
    out = tmp_path / "report"
    for _ in range(2):
        result = runner.invoke(app, ["run", str(trained_snn_run), "--backend", "emulator", "--samples", "2",
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert folders.kind_of(out) == folders.RUN_REPORT


@pytest.mark.parametrize("fmt", ["netx", "nir"])
def test_export_out_never_replaces_a_users_file(trained_snn_run, tmp_path, fmt):
    folder = _user_folder(tmp_path, file="model.net")
    result = runner.invoke(app, ["export", str(trained_snn_run), "--format", fmt, "--out", str(folder / "model.net")])
    _refused(result, folder / "model.net")
    _survives(folder, "model.net")


def test_export_into_a_new_file_and_over_its_own_model_still_work(trained_snn_run, tmp_path):
    run = _copy_run(trained_snn_run, tmp_path / "run")
    for args in ([str(run)], [str(run)], [str(run), "--out", str(tmp_path / "new" / "m.net")]):
        result = runner.invoke(app, ["export", *args])
        assert result.exit_code == 0, result.output


def test_compare_never_writes_over_a_folder_it_did_not_make(tmp_path):
    """Issue 24 item 7 and issue 22: compare's --out is refused unless new, empty or an earlier comparison."""
    report = tmp_path / "run" / "reports" / "emulator" / "run_report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps(_report()))
    folder = _user_folder(tmp_path, file="comparison.md")
    result = runner.invoke(app, ["compare", str(tmp_path / "run"), "--out", str(folder)])
    _refused(result, folder)
    _survives(folder, "comparison.md")
    out = tmp_path / "cmp"
    for _ in range(2):  # its own comparison folder is rewritten
        result = runner.invoke(app, ["compare", str(tmp_path / "run"), "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert folders.kind_of(out) == folders.COMPARISON
    result = runner.invoke(app, ["compare", str(tmp_path / "run"), "--out", str(report.parent)])
    _refused(result, report.parent)  # a run report folder is not a comparison folder


# ----------------------------------------------------------------------------- import, study, data commands


def test_import_into_a_users_folder_or_a_training_run_is_refused(trained_snn_run, tmp_path):
    graph = tmp_path / "g.nir"
    graph.write_bytes(b"not read: the folder is refused first")
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, ["import", str(graph), "--out", str(folder)])
    _refused(result, folder)
    _survives(folder)
    run = _copy_run(trained_snn_run, tmp_path / "run")
    result = runner.invoke(app, ["import", str(graph), "--out", str(run)])
    _refused(result, run)
    assert "training run" in result.output


def test_study_into_a_users_folder_is_refused(tmp_path):
    study = Path(__file__).parent.parent / "studies" / "table9.yaml"
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, ["study", str(study), "--out", str(folder)])
    _refused(result, folder)
    _survives(folder)


@pytest.mark.parametrize("dataset", ["nmnist", "dvsgesture"])
def test_data_generate_into_a_users_folder_is_refused(tmp_path, dataset):
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, ["data", "generate", dataset, "--out", str(folder), "--train-per-class", "1",
                                 "--test-per-class", "1"])
    _refused(result, folder)
    _survives(folder)


def test_data_info_into_a_users_folder_is_refused(tiny_nmnist, tmp_path):
    folder = _user_folder(tmp_path)
    result = runner.invoke(app, ["data", "info", "nmnist", "--data-dir", str(tiny_nmnist), "--no-synthetic",
                                 "--limit", "4", "--out", str(folder)])
    _refused(result, folder)
    _survives(folder)


# ------------------------------------------------------------------------------------------ long names

LONG = "x" * 300


@pytest.mark.parametrize("command", [
    ["data", "generate", "nmnist", "--out", f"{{tmp}}/{LONG}"],
    ["data", "info", "nmnist", "--out", f"{{tmp}}/{LONG}"],
    ["train", "nmnist", "--epochs", "1", "--out", f"{{tmp}}/{LONG}"],
    ["run", f"{{tmp}}/{LONG}", "--backend", "emulator"],
    ["run", "{run}", "--backend", "emulator", "--out", f"{{tmp}}/{LONG}/r"],
    ["export", "{run}", "--out", f"{{tmp}}/{LONG}.net"],
    ["export", f"{{tmp}}/{LONG}"],
    ["import", f"{{tmp}}/{LONG}.nir", "--out", "{tmp}/imp"],
    ["import", "{tmp}/g.nir", "--out", f"{{tmp}}/{LONG}"],
    ["compare", "{tmp}/run", "--out", f"{{tmp}}/{LONG}"],
    ["demo", "--out", f"{{tmp}}/{LONG}"],
    ["study", "{tmp}/s.yaml", "--out", f"{{tmp}}/{LONG}"],
    ["run", "{run}", "--backend", "emulator", "--out", "{tmp}/" + "/".join(["y" * 250] * 17)],
], ids=lambda c: " ".join(c[:2]) + ("-" + c[-1][-12:].replace("/", "_")))
def test_a_name_too_long_is_exit_2_one_line(trained_snn_run, tmp_path, command):
    """Issue 23 family 4: a 300-byte --out gave an OSError traceback from atomic.py."""
    (tmp_path / "g.nir").write_bytes(b"x")
    (tmp_path / "s.yaml").write_text((Path(__file__).parent.parent / "studies" / "table9.yaml").read_text())
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_report.json").write_text(json.dumps(_report()))
    args = [a.replace("{tmp}", str(tmp_path)).replace("{run}", str(trained_snn_run)) for a in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "long" in lines[0], result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nir", "run", "s.yaml"]


# ------------------------------------------------------------------- study files (issue 23, family 3)


def _study_raw(**changes) -> dict:
    raw = {"name": "tiny", "title": "tiny", "dataset": "nmnist", "arch": "Input-16FC-10", "scale": "quick",
           "scales": {"quick": {"epochs": 1, "lr": 0.003, "batch_size": 10, "limit": 20, "test_limit": 10}},
           "seeds": [0], "dt_ms": [5, 10], "steps": 4,
           "models": {"SNN": {"family": "snn"}, "RNN": {"family": "rnn", "loss": "last"}},
           "test": {"dt_ms": [2.5]}}
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return raw


def _quick(**changes) -> dict:
    raw = _study_raw()
    raw["scales"]["quick"].update(changes)
    return raw


def _nested(depth: int) -> str:
    return "name: tiny\ntitle: " + "[" * depth + "]" * depth + "\n"


def _laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 8):
        lines.append(f"{chr(97 + level)}: &{chr(97 + level)} [" + ",".join([f"*{chr(96 + level)}"] * 10) + "]")
    return "\n".join(lines) + "\nname: tiny\ntitle: *h\n"


STUDY_CASES = [  # (id, study file content: a dict to dump or raw text, what the one error line must say)
    ("nesting 10000 deep", _nested(10_000), "nesting deeper than"),
    ("nesting 40 deep", _nested(40), "nesting deeper than"),
    ("billion laughs alias", _laughs(), "anchors and aliases"),
    ("one harmless alias", "x: &x 5\nname: tiny\nsteps: *x\n", "anchors and aliases"),
    ("name with ../", _study_raw(name="../../escaped"), "'name'"),
    ("name that is a path", _study_raw(name="/tmp/elsewhere"), "'name'"),
    ("name with a slash", _study_raw(name="a/b"), "'name'"),
    ("name ..", _study_raw(name=".."), "'name'"),
    ("name of 300 characters", _study_raw(name="n" * 300), "'name'"),
    ("name with a NUL byte", _study_raw(name="a\x00b"), "'name'"),
    ("two models with one id", _study_raw(models={"SNN": {"family": "snn"}, "snn": {"family": "snn"}}),
     "'models.snn'"),
    ("two models whose punctuation differs", _study_raw(models={"S N N": {"family": "snn"},
                                                                "s-n-n!": {"family": "snn"}}), "also the id"),
    ("two unnamed-looking models", _study_raw(models={"!!": {"family": "snn"}, "??": {"family": "rnn",
                                                                                      "loss": "last"}}), "also the id"),
    ("a model name of 200 characters", _study_raw(models={"m" * 200: {"family": "snn"}}), "1 to 64 characters"),
    ("two dt values with one folder name", _study_raw(dt_ms=[1, 1.0000001]), "share the folder name"),
    ("a test dt sharing a train dt's folder", _study_raw(dt_ms=[1], test={"dt_ms": [1.0000001]}),
     "share the folder name"),
    ("steps: 1.0e9", _study_raw(steps=1.0e9), "give T from 1 to 100000"),
    ("steps: 1e9 (YAML reads a string)", "PLACEHOLDER_STEPS_1E9", "'steps'"),
    ("steps: .inf", "PLACEHOLDER_STEPS_INF", "'steps'"),
    ("dt_ms: .nan", "PLACEHOLDER_DT_NAN", "'dt_ms'"),
    ("dt_ms: 1e-300 with a window", _study_raw(steps=None, window_ms=40, dt_ms=[1e-300]), "'dt_ms'"),
    ("window_ms making T > 100000", _study_raw(steps=None, window_ms=1000, dt_ms=[0.001]), "'window_ms'"),
    ("window_ms: 1e308", _study_raw(steps=None, window_ms=1e308, dt_ms=[1]), "'window_ms'"),
    ("dt_ms above the CLI's maximum", _study_raw(dt_ms=[1e7]), "'dt_ms'"),
    ("unknown key under test", _study_raw(test={"dt_ms": [2.5], "dtms": [1]}), "'test.dtms'"),
    ("unknown key under test only", _study_raw(test={"steps": 3}), "'test.steps'"),
    ("a negative seed", _study_raw(seeds=[-1]), "'seeds'"),
    ("a seed above 2**32", _study_raw(seeds=[2**40]), "'seeds'"),
    ("10**4 seeds", _study_raw(seeds=list(range(10_000))), "'seeds'"),
    ("epochs 10**7", _quick(epochs=10**7), "'scales.quick.epochs'"),
    ("lr 5", _quick(lr=5), "'scales.quick.lr'"),
    ("lr .nan", "PLACEHOLDER_LR_NAN", "'scales.quick.lr'"),
    ("batch_size 10**7", _quick(batch_size=10**7), "'scales.quick.batch_size'"),
    ("limit 10**12", _quick(limit=10**12), "'scales.quick.limit'"),
    ("a title of 100 000 characters", _study_raw(title="t" * 100_000), "'title'"),
]


def _study_text(content) -> str:
    import yaml

    if isinstance(content, dict):
        return yaml.safe_dump(content)
    base = yaml.safe_dump(_study_raw(steps=None, dt_ms=None))
    placeholders = {"PLACEHOLDER_STEPS_1E9": base + "steps: 1e9\ndt_ms: [5]\n",
                    "PLACEHOLDER_STEPS_INF": base + "steps: .inf\ndt_ms: [5]\n",
                    "PLACEHOLDER_DT_NAN": base + "steps: 4\ndt_ms: [.nan]\n",
                    "PLACEHOLDER_LR_NAN": yaml.safe_dump(_quick()).replace("lr: 0.003", "lr: .nan")}
    return placeholders.get(content, content)


@pytest.mark.parametrize("content, says", [case[1:] for case in STUDY_CASES], ids=[c[0] for c in STUDY_CASES])
def test_a_hostile_study_file_is_exit_2_one_line_and_writes_nothing(tmp_path, monkeypatch, content, says):
    path = tmp_path / "study.yaml"
    path.write_text(_study_text(content))
    monkeypatch.chdir(tmp_path)  # the default --out is runs/study-<name>, relative to here
    for args in (["--dry-run"], []):
        result = runner.invoke(app, ["study", str(path), *args])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and str(path) in lines[0] and says in lines[0], result.output
        assert "Traceback" not in result.output and "Warning" not in result.output
        assert len(lines[0]) < 1000  # an alias expansion never reaches the message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]
    assert not (tmp_path.parent / "escaped").exists()


def test_study_files_over_the_size_cap_are_refused(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("# padding\n" * 200_000 + "name: tiny\n")
    result = runner.invoke(app, ["study", str(path), "--dry-run"])
    assert result.exit_code == 2 and "more than" in result.output, result.output


def test_the_shipped_studies_still_load_and_their_cell_ids_are_distinct():
    from neurodeploy.study.spec import load_study

    for path in sorted((Path(__file__).parent.parent / "studies").glob("*.yaml")):
        cells = load_study(path).cells()
        assert len({cell.cell_id for cell in cells}) == len(cells), path


def test_a_training_killed_mid_run_leaves_no_completion_record(tiny_nmnist, tmp_path):
    """Issue 23 family 4 with a real SIGKILL: the checkpoint of the last finished epoch stays, the record of
    completion does not exist, so `demo` does not take the run as trained (and train --resume finishes it)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = ["train", "nmnist", "--arch", "Input-16FC-10", "--epochs", "500", "--steps", "4", "--dt", "10",
            "--batch-size", "20", "--limit", "20", "--test-limit", "10", "--no-synthetic",
            "--data-dir", str(tiny_nmnist), "--out", str(out)]
    process = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint.pt").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert (out / "checkpoint.pt").exists() and folders.kind_of(out) == folders.TRAIN_RUN
    assert not folders.training_finished(out)
    with pytest.raises(UserError, match="did not finish"):
        plan_demo(out, fresh=False)
