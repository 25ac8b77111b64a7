"""``hotswap train continual`` end to end on the tiny scale: one task, then a rerun that resumes (no retraining)."""

import json

import pytest

from tests.cli.helpers import ok

pytestmark = pytest.mark.realmodel


def test_train_continual_then_resume(tmp_path):
    out = tmp_path / "run"
    text = ok(["train", "continual", "--out", str(out), "--tasks", "games", "--scale", "tiny", "--batch-size", "16"])
    assert "games:" in text and "drift |delta|" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tasks"]] == ["games"] and manifest["tasks"][0]["steps"] == 3
    assert (out / "task-01-games" / "model.safetensors").is_file()
    assert (out / "task-01-games" / "delta.safetensors").is_file()
    again = ok(["train", "continual", "--out", str(out), "--tasks", "games", "--scale", "tiny", "--batch-size", "16"])
    assert json.loads((out / "manifest.json").read_text()) == manifest and "games:" in again


def test_unknown_task_is_refused(tmp_path):
    from hotswap.cli import app
    from tests.cli.helpers import runner

    res = runner.invoke(app, ["train", "continual", "--out", str(tmp_path / "r"), "--tasks", "cooking"])
    assert res.exit_code != 0 and "cooking" in res.output


def test_unknown_scale_is_refused_before_any_training(tmp_path):
    from hotswap.cli import app
    from tests.cli.helpers import runner

    res = runner.invoke(app, ["train", "continual", "--out", str(tmp_path / "r"), "--scale", "huge"])
    assert res.exit_code == 2 and "huge" in res.output and "tiny" in res.output
    assert not (tmp_path / "r").exists()
