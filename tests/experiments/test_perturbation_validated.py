"""The validated prototype-perturbation setting: the validation split comes from the training images only and
never overlaps the training pool, the choice is the best validation cross-test mAP, results merge without
dropping rows or fields, and ``--settings validated-30-100`` runs at tiny scale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotswap_harness.experiments.prototype_perturbation import (GRIDS, choose, merge_results, option_label,
                                                        split_validation, validation_split)
from tests.cli.helpers import ok


def test_validation_split_is_per_class_seeded_and_outside_the_pool():
    y = np.repeat(np.arange(4), 50)
    pool = np.sort(np.concatenate([np.flatnonzero(y == c)[:20] for c in range(4)]))
    val, kept = validation_split(y, pool, 10, seed=3)
    assert np.array_equal(kept, pool) and not set(val) & set(pool)
    assert all(int((y[val] == c).sum()) == 10 for c in range(4))
    assert np.array_equal(val, validation_split(y, pool, 10, seed=3)[0])
    assert not np.array_equal(val, validation_split(y, pool, 10, seed=4)[0])
    q, g = split_validation(y, val, seed=3)
    assert not set(q) & set(g) and set(q) | set(g) == set(val)
    assert all(int((y[q] == c).sum()) == 2 for c in range(4))


def test_validation_split_carves_from_the_pool_when_it_holds_everything():
    y = np.repeat(np.arange(3), 12)
    pool = np.arange(len(y))
    val, kept = validation_split(y, pool, 4, seed=0)
    assert len(val) == 12 and len(kept) == 24 and not set(val) & set(kept)
    assert set(val) | set(kept) == set(pool)


def test_choose_takes_the_best_validation_cross_map_first_on_ties():
    cands = [{"val_cross_map": 40.0}, {"val_cross_map": 45.0}, {"val_cross_map": 45.0}]
    assert choose(cands) == 1
    assert option_label({"strength": 1.0, "normalise": True}) == "normalise=True,strength=1.0"
    assert all(2 <= len(GRIDS[m]) <= 3 for m in ("ndpp", "odpp"))


def test_merge_keeps_old_rows_and_fields_and_files_the_setting():
    existing = {"dataset": "d", "wall_s": 5.0, "extra": 1,
                "rows": [{"method": "bct", "setting": "30-100", "cross_map": 1.0},
                         {"method": "bct", "setting": "30-60-100", "cross_map": 2.0}]}
    run = {"setting": "validated-30-100", "wall_s": 9.0, "grids": {"ndpp": []},
           "rows": [{"method": "ndpp", "setting": "validated-30-100", "cross_map": 3.0}]}
    merged = merge_results(existing, run)
    assert merged["rows"][:2] == existing["rows"] and merged["rows"][2]["setting"] == "validated-30-100"
    assert merged["dataset"] == "d" and merged["wall_s"] == 5.0 and merged["extra"] == 1
    assert merged["settings"]["validated-30-100"]["grids"] == {"ndpp": []}
    again = merge_results(merged, {**run, "rows": [dict(run["rows"][0], cross_map=4.0)]})
    assert [r["cross_map"] for r in again["rows"]] == [1.0, 2.0, 4.0]
    classic = merge_results(again, {"wall_s": 7.0, "rows": [{"method": "bct", "setting": "30-100", "cross_map": 5.0}]})
    assert [r["cross_map"] for r in classic["rows"]] == [2.0, 4.0, 5.0]
    assert classic["wall_s"] == 7.0 and classic["extra"] == 1 and "validated-30-100" in classic["settings"]


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("validated")
    (tmp / "results").mkdir()
    old = {"dataset": "old run", "rows": [{"method": "bct", "setting": "30-100", "self_map": 1.0, "cross_map": 2.0,
                                           "self_top1": 1.0, "cross_top1": 1.0, "old_self_map": 1.0,
                                           "negative_flip_rate": 0.1}]}
    (tmp / "results" / "perturbation.json").write_text(json.dumps(old))
    out = ok(["experiment", "perturbation", "--scale", "tiny", "--settings", "validated-30-100",
              "--methods", "bct,ndpp,odpp", "--workdir", str(tmp / "runs"), "--out", str(tmp / "results")])
    return tmp, out, json.loads((tmp / "results" / "perturbation.json").read_text())


def test_tiny_validated_run_chooses_from_the_grid_and_keeps_old_rows(validated_run):
    tmp, out, r = validated_run
    assert r["dataset"] == "old run" and r["rows"][0]["cross_map"] == 2.0
    new = {row["method"]: row for row in r["rows"] if row["setting"] == "validated-30-100"}
    assert set(new) == {"bct", "ndpp", "odpp"}
    for m in ("ndpp", "odpp"):
        grid = [c["options"] for c in new[m]["validation"]]
        assert grid == GRIDS[m] and new[m]["chosen"] in grid
        best = max(c["val_cross_map"] for c in new[m]["validation"])
        assert new[m]["val_cross_map"] == best
        assert 0 <= new[m]["cross_map"] <= 100 and len(new[m]["perturbation_norms"]) == 1
    assert new["bct"]["chosen"] == {} and len(new["bct"]["validation"]) == 1
    meta = r["settings"]["validated-30-100"]
    assert meta["validation"]["images_per_class"] == 8 and set(meta["grids"]) == {"ndpp", "odpp"}
    assert "chose" in out and (tmp / "results" / "perturbation.png").is_file()


def test_ndpp_bounded_shift_holds_in_training(validated_run):
    _, _, r = validated_run
    ndpp = next(row for row in r["rows"] if row["setting"] == "validated-30-100" and row["method"] == "ndpp")
    assert max(ndpp["perturbation_norms"]) <= 0.1 + 1e-5


def test_extended_data_steps_are_nested_seeded_and_skip_the_heldout_classes():
    from hotswap.data.image_splits import class_order, heldout_classes
    from hotswap_harness.experiments.prototype_perturbation import _step_indices
    y = np.repeat(np.arange(20), 20)
    order = class_order(20, 42)
    held = heldout_classes(order)
    old, new = _step_indices("data", order, held, np.arange(len(y)), y, seed=1)
    assert set(old) <= set(new) and not set(y[new]) & set(held) and len(set(y[new])) == 14
    assert all(int((y[old] == c).sum()) == 6 for c in set(y[new]))


def test_tiny_extended_data_run_scores_only_heldout_classes(tmp_path):
    out = ok(["experiment", "perturbation", "--scale", "tiny", "--settings", "validated-data-30-100",
              "--methods", "independent,ndpp", "--workdir", str(tmp_path / "runs"), "--out", str(tmp_path / "res")])
    r = json.loads((tmp_path / "res" / "perturbation.json").read_text())
    meta = r["settings"]["validated-data-30-100"]
    assert len(meta["heldout_classes"]) == 6 and meta["growth"] == "data"
    assert meta["queries"] == 6 * 5 and {row["method"] for row in r["rows"]} == {"independent", "ndpp"}
    assert "chose" in out
