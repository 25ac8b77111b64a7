"""The d-Simplex protocol's heldout-classes setting (the paper's code evaluates on classes no model trains on):
the held-out classes never reach a training index, the results file merges rows by setting, and the
training-status split of the compatibility matrix is right on a hand-made case."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import hotswap_harness.experiments.dsimplex as dsx
import hotswap.training.chain as chain_module
from hotswap.data.image_splits import class_order, heldout_classes, without_classes
from hotswap_harness.experiments.dsimplex import (DSimplexConfig, chain_trained_classes, merge_results,
                                          run_dsimplex_experiment)
from hotswap.metrics.model_compatibility import compatibility_matrix, status_split_matrix
from tests.cli.helpers import ok


def test_heldout_classes_are_three_digits_and_three_garments_in_order_and_deterministic():
    order = class_order(20, 42)
    held = heldout_classes(order)
    assert held == heldout_classes(class_order(20, 42))
    assert sum(c < 10 for c in held) == 3 and sum(c >= 10 for c in held) == 3
    assert held == [c for c in order if c in held]
    rest = without_classes(order, held)
    assert len(rest) == 14 and not set(rest) & set(held)


@pytest.fixture(scope="module")
def spied_run(tmp_path_factory):
    """A tiny heldout-classes run with every call of train_step (replacements and chain) recorded."""
    tmp = tmp_path_factory.mktemp("heldout")
    calls: list[dict] = []
    real = chain_module.train_step

    def spy(config, images, labels, train_idx, memory_idx=None, **kwargs):
        calls.append({"name": kwargs.get("name"), "train": np.asarray(train_idx),
                      "memory": None if memory_idx is None else np.asarray(memory_idx), "labels": labels})
        return real(config, images, labels, train_idx, memory_idx, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(chain_module, "train_step", spy)
    mp.setattr(dsx, "train_step", spy)
    try:
        result = run_dsimplex_experiment(DSimplexConfig(scale="tiny", tasks=3, setting="heldout-classes",
                                                        workdir=str(tmp / "runs")), progress=False)
    finally:
        mp.undo()
    return result, calls


def test_heldout_classes_never_reach_a_training_index(spied_run):
    result, calls = spied_run
    held = set(result["heldout_classes"])
    assert len(held) == 6
    names = [c["name"] for c in calls]
    assert sum(n.startswith("replacement") for n in names) == 6          # 3 replacements x 2 heads
    assert sum(not n.startswith("replacement") for n in names) == 9      # 3 methods x 3 tasks
    for call in calls:
        for part in ("train", "memory"):
            if call[part] is not None:
                assert not set(np.unique(call["labels"][call[part]]).tolist()) & held, (call["name"], part)
    trained = {c for task in result["task_classes"] for c in task}
    assert trained == set(result["trained_classes"]) and len(trained) == 14 and not trained & held
    assert [len(t) for t in result["task_classes"]] == [2, 6, 6]


def test_heldout_rows_evaluate_only_held_out_classes(spied_run):
    result, _ = spied_run
    assert result["queries"] == 6 * 10 and result["gallery_images"] == 6 * 20   # tiny: 10 / 20 per class
    for row in result["rows"]:
        assert row["setting"] == "heldout-classes" and row["heldout_classes"] == result["heldout_classes"]
        assert row["lr"] == 1e-3 and row["epochs"] == 1
        changed = np.array(row["status_split"]["changed"], dtype=float)
        assert np.isnan(changed).all(), "no held-out class is ever trained, so none changes status"
        same = np.array(row["status_split"]["same"], dtype=float)
        M = np.array(row["matrix"], dtype=float)
        assert np.allclose(same, M, equal_nan=True)
    for recs in result["replacements"].values():
        for rec in recs:
            assert not set(rec["classes"]) & set(result["heldout_classes"]) and len(rec["history"]) == 1


def test_status_split_on_a_hand_made_case():
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    yg = np.array([0, 1, 2])
    gallery = [np.stack([e1, e2, -e1])] * 2
    yq = np.array([0, 1, 2])
    queries = [np.stack([e1, e1, -e1]),   # model 0: class 1 wrong
               np.stack([e1, e2, e2])]    # model 1: class 2 wrong
    split = status_split_matrix(queries, gallery, yq, yg, trained=[[0], [0, 1]])   # class 1 changes status
    same, changed = split["same"], split["changed"]
    assert same[0, 0] == pytest.approx(2 / 3) and math.isnan(changed[0, 0])
    assert same[1, 1] == pytest.approx(2 / 3) and math.isnan(changed[1, 1])
    assert same[1, 0] == pytest.approx(1 / 2) and changed[1, 0] == pytest.approx(1.0)   # classes {0, 2} vs {1}
    assert math.isnan(same[0, 1]) and math.isnan(changed[0, 1])
    C = compatibility_matrix(queries, gallery, yq, yg)
    assert C[1, 0] == pytest.approx((2 * same[1, 0] + changed[1, 0]) / 3)


def test_chain_trained_classes_accumulate_tasks():
    assert chain_trained_classes([[3, 1], [0], [2]]) == [[1, 3], [0, 1, 3], [0, 1, 2, 3]]


def _row(method: str, setting: str | None, value: float) -> dict:
    row = {"method": method, "AC": value, "AM": value, "matrix": [[value]]}
    return row if setting is None else {**row, "setting": setting}


def test_merge_replaces_rows_of_the_run_setting_and_keeps_the_others():
    seen_file = {"dataset": "seen", "tasks": 7, "custom": 1, "rows": [_row("bct", None, 1.0), _row("dsimplex", None, 2.0)]}
    held = {"dataset": "held", "tasks": 7, "setting": "heldout-classes", "rows": [_row("dsimplex", "heldout-classes", 3.0)]}
    merged = merge_results(seen_file, held)
    assert merged["dataset"] == "seen" and merged["custom"] == 1             # top level stays the seen run's
    assert [(r["method"], r["setting"], r["AC"]) for r in merged["rows"]] == [
        ("bct", "seen-classes", 1.0), ("dsimplex", "seen-classes", 2.0), ("dsimplex", "heldout-classes", 3.0)]
    assert merged["settings"]["heldout-classes"]["dataset"] == "held"
    again = merge_results(merged, {**held, "rows": [_row("bct", "heldout-classes", 4.0)]})
    assert [(r["method"], r["setting"]) for r in again["rows"]] == [
        ("bct", "seen-classes"), ("dsimplex", "seen-classes"), ("bct", "heldout-classes")]
    seen_again = merge_results(again, {"dataset": "seen2", "tasks": 7, "setting": "seen-classes",
                                       "rows": [_row("independent", "seen-classes", 5.0)]})
    assert seen_again["dataset"] == "seen2" and "heldout-classes" in seen_again["settings"]
    assert [(r["method"], r["setting"]) for r in seen_again["rows"]] == [
        ("independent", "seen-classes"), ("bct", "heldout-classes")]


def test_cli_heldout_run_merges_into_an_existing_file(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    old = {"dataset": "seen", "tasks": 7, "rows": [_row("dsimplex", None, 0.5)], "wall_s": 1.0}
    (out / "dsimplex.json").write_text(json.dumps(old))
    args = ["experiment", "dsimplex", "--scale", "tiny", "--tasks", "3", "--setting", "heldout-classes",
            "--methods", "dsimplex", "--workdir", str(tmp_path / "runs"), "--out", str(out)]
    text = ok(args)
    assert "status split" in text
    for _ in range(2):   # a second run replaces its rows instead of adding to them
        r = json.loads((out / "dsimplex.json").read_text())
        assert r["dataset"] == "seen" and r["wall_s"] == 1.0
        assert [(row["method"], row["setting"]) for row in r["rows"]] == [
            ("dsimplex", "seen-classes"), ("dsimplex", "heldout-classes")]
        assert r["rows"][0]["AC"] == 0.5
        ok(args)
    assert (out / "dsimplex-heldout-classes.png").is_file()
