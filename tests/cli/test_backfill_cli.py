"""``hotswap backfill`` end to end on a small real slice: start, status, pause file, resume with a curve."""

import json

import pytest

from hotswap.cli import app
from hotswap.store import open_store
from hotswap.upgrade import open_upgrade

from tests.cli.helpers import ok as _ok, runner

pytestmark = pytest.mark.realmodel


def test_backfill_start_status_resume_with_curve(tmp_path):
    index, up, out = tmp_path / "old", tmp_path / "up", tmp_path / "res"
    _ok(["encode", "--model", "static", "--index", str(index), "--dataset", "debian", "--max-docs", "160"])
    text = _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--new", "minilm", "--until", "0.5",
                "--batch-size", "40", "--order", "random", "--cost-per-hour", "3"])
    assert "80/160 backfilled" in text
    status = _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--status", "--cost-per-hour", "3"])
    assert "80/160" in status and "cost left" in status and "items/s" in status
    assert "no backfill is running" in _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--pause"])
    assert not (up / "PAUSE").exists()  # a request nobody would honour is not left behind
    text = _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--resume", "--batch-size", "40",
                "--until", "0.75"])
    assert "paused: 120/160" in text
    _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--resume", "--batch-size", "40",
         "--eval-every", "25%", "--modes", "merged,calibrated", "--calibration-docs", "40", "--out", str(out)])
    result = json.loads((out / "backfill.json").read_text())
    assert (out / "backfill.png").stat().st_size > 0
    assert [c["mode"] for c in result["curves"]] == ["merged", "calibrated"]
    curve = result["curves"][0]
    assert curve["policy"] == "random" and curve["mode"] == "merged"
    assert [p["fraction"] for p in curve["points"]] == [0.75, 1.0]
    assert set(curve["points"][0]) >= {"fraction", "ndcg@10", "recall@10", "negative_flip_rate"}
    assert result["throughput"]["raw_encode_items_s"] > 0 and result["throughput"]["runner_items_s"] > 0
    done = open_upgrade(up)
    assert len(done.new) == 160 and sorted(done.new.ids) == sorted(open_store(index).ids)


def test_backfill_resume_without_an_upgrade_is_a_clear_error(tmp_path):
    index = tmp_path / "old"
    _ok(["encode", "--model", "static", "--index", str(index), "--dataset", "debian", "--max-docs", "20"])
    res = runner.invoke(app, ["backfill", "--index", str(index), "--upgrade", str(tmp_path / "nope"), "--resume"])
    assert res.exit_code == 2 and "upgrade.json" in res.output


def test_backfill_on_ray_executor(tmp_path):
    pytest.importorskip("ray.data")
    index, up = tmp_path / "old", tmp_path / "up"
    _ok(["encode", "--model", "minilm", "--index", str(index), "--dataset", "debian", "--max-docs", "60"])
    text = _ok(["backfill", "--index", str(index), "--upgrade", str(up), "--new", "static", "--executor", "ray",
                "--num-actors", "1", "--batch-size", "16"])
    assert "complete: 60/60" in text
    done = open_upgrade(up)
    assert done.new_model_id.startswith("static@") and sorted(done.new.ids) == sorted(open_store(index).ids)
