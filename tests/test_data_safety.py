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
    assert "Traceback" not in result.output


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
