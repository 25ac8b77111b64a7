"""``hotswap train bcl``: an old model on 30% of the classes, then an NDPP model compatible with it."""

from __future__ import annotations

import json

import pytest
import typer

from hotswap.cli.train import parse_classes
from tests.cli.helpers import ok, runner
from hotswap.cli import app

TINY = ["--epochs", "1", "--per-class", "20", "--width", "8", "--embed-dim", "16", "--batch-size", "32"]


def test_train_old_then_compatible_new(tmp_path):
    out = ok(["train", "bcl", "--out", str(tmp_path / "old"), "--classes", "30%", "--head", "cosine", *TINY])
    assert "self" in out
    old = json.loads((tmp_path / "old" / "eval.json").read_text())
    assert len(old["classes"]) == 6 and old["train_images"] == 120 and "cross" not in old
    out = ok(["train", "bcl", "--out", str(tmp_path / "new"), "--method", "ndpp", "--old", str(tmp_path / "old"),
              *TINY])
    new = json.loads((tmp_path / "new" / "eval.json").read_text())
    assert new["method"] == "ndpp" and len(new["classes"]) == 20 and "cross" in out
    assert "starts from seed 43" in out   # never the old model's random init
    for key in ("self", "cross", "old_self"):
        assert 0 <= new[key]["map"] <= 100 and 0 <= new[key]["top1"] <= 100
    assert new["old_self"] == old["self"]


def test_compatible_method_needs_old_and_a_known_method(tmp_path):
    res = runner.invoke(app, ["train", "bcl", "--out", str(tmp_path / "x"), "--method", "bct", *TINY])
    assert res.exit_code != 0 and "--old" in res.output
    res = runner.invoke(app, ["train", "bcl", "--out", str(tmp_path / "x"), "--method", "lwf", *TINY])
    assert res.exit_code != 0 and "unknown method" in res.output


def test_parse_classes():
    order = list(range(19, -1, -1))
    assert parse_classes("0-2,5", 20, order) == [0, 1, 2, 5]
    assert parse_classes("30%", 20, order) == [14, 15, 16, 17, 18, 19]
    for bad in ("0-25", "abc", "0%", ""):
        with pytest.raises(typer.BadParameter):
            parse_classes(bad, 20, order)


def test_train_cmcl_saves_psi_and_reports_the_backward_system(tmp_path):
    ok(["train", "bcl", "--out", str(tmp_path / "old"), "--classes", "50%", "--head", "cosine", *TINY])
    out = ok(["train", "cmcl", "--out", str(tmp_path / "new"), "--old", str(tmp_path / "old"), "--epochs", "1",
              "--per-class", "20", "--width", "8", "--batch-size", "32"])
    new = json.loads((tmp_path / "new" / "eval.json").read_text())
    assert new["method"] == "cmcl" and "cross_reverse" in new and "cross_reverse" in out
    assert (tmp_path / "new" / "reverse_transform.safetensors").is_file()
