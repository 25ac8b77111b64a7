"""The online-backfill protocol: the merged curve equals per-partition search + rank merge, its ends are the
old and new systems, and the CLI writes results/online_backfill.json in its documented shape: fixed-new rows share
the independent new model, every relative gain is also given against it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotswap_harness.experiments.online_backfill import curve_summary, merged_curve, new_kind, row_specs
from hotswap.metrics.model_compatibility import retrieval_scores
from hotswap.search.rank_merge import rank_merge
from tests.cli.helpers import ok
from tests.conftest import unit_rows


@pytest.fixture
def systems(rng):
    n_g, n_q, d = 120, 30, 12
    yg, yq = rng.integers(0, 5, n_g), rng.integers(0, 5, n_q)
    centres = unit_rows(rng, 5, d)
    noisy = lambda y, s: (centres[y] + s * unit_rows(rng, len(y), d)).astype(np.float32)
    g_old, q_old = noisy(yg, 1.0), noisy(yq, 1.0)           # a weak old model
    g_new, q_new = noisy(yg, 0.4), noisy(yq, 0.4)           # a better new model, in its own space
    norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    return norm(q_new), norm(g_new), norm(q_old), norm(g_old), yq, yg


def test_curve_ends_are_the_old_and_the_new_system(systems, rng):
    q_new, g_new, q_old, g_old, yq, yg = systems
    curve = merged_curve(q_new, g_new, q_old, g_old, yq, yg, rng.permutation(len(yg)), steps=10)
    assert [c["fraction"] for c in curve] == pytest.approx([i / 10 for i in range(11)])
    assert curve[0]["map"] == pytest.approx(100 * retrieval_scores(q_old, yq, g_old, yg)["map"])
    assert curve[-1]["map"] == pytest.approx(100 * retrieval_scores(q_new, yq, g_new, yg)["map"])
    assert curve[0]["negative_flips"] == 0 and curve[-1]["map"] > curve[0]["map"]


def test_curve_top1_is_the_rank_merge_of_the_two_partitions(systems, rng):
    q_new, g_new, q_old, g_old, yq, yg = systems
    order = rng.permutation(len(yg))
    curve = merged_curve(q_new, g_new, q_old, g_old, yq, yg, order, steps=4)
    for point in curve:
        done = np.zeros(len(yg), dtype=bool)
        done[order[: int(round(point["fraction"] * len(yg)))]] = True
        old_ids, new_ids = np.flatnonzero(~done), np.flatnonzero(done)

        def part(Q, G, ids):
            if len(ids) == 0:
                return np.full((len(Q), 1), -np.inf, np.float32), np.full((len(Q), 1), -1)
            S = Q @ G[ids].T
            top = np.argsort(-S, axis=1)[:, :1]
            return np.take_along_axis(S, top, 1), ids[top]

        D, I = rank_merge(*part(q_old, g_old, old_ids), *part(q_new, g_new, new_ids), 1)
        top1 = 100 * np.mean(yg[I[:, 0]] == yq)
        assert point["top1"] == pytest.approx(top1)


def test_cli_writes_the_results_file(tmp_path):
    out = ok(["experiment", "online-backfill", "--scale", "tiny", "--workdir", str(tmp_path / "runs"),
              "--out", str(tmp_path / "results")])
    r = json.loads((tmp_path / "results" / "online_backfill.json").read_text())
    assert isinstance(r["dataset"], str) and "AUC mAP" in out
    cmcl = ("merge+reverse+cmcl", "merge+reverse+cmcl+rho")
    expected = {("merge", "fixed-new"), ("bct", "retrained-new"), ("merge+reverse", "fixed-new")} | {
        (m, s) for m in cmcl for s in ("fixed-new", "retrained-new")}
    assert {(row["method"], row["setting"], row["order"]) for row in r["rows"]} == {
        (m, s, o) for m, s in expected for o in ("random", "uncertainty")}
    shared = r["shared_new_model_map"]
    merge_map = {row["new_model_map"] for row in r["rows"] if row["method"] == "merge"}
    assert merge_map == {shared}
    for row in r["rows"]:
        gain = (row["auc_map"] - r["old_model_map"]) / (shared - r["old_model_map"])
        assert row["relative_gain_shared_map"] == pytest.approx(gain)
        own = (row["auc_map"] - r["old_model_map"]) / (row["new_model_map"] - r["old_model_map"])
        assert row["relative_gain_map"] == pytest.approx(own)
        if row["setting"] == "fixed-new":
            assert row["new_model_map"] == shared and row["relative_gain_map"] == pytest.approx(gain)
        assert row["stored_new_map"] == pytest.approx(row["curve"][-1]["map"])
    fixed_rho = [row for row in r["rows"] if row["method"] == cmcl[1] and row["setting"] == "fixed-new"]
    assert set(r["fixed_new_training"]) == set(cmcl) and len(fixed_rho) == 2
    for row in r["rows"]:
        assert [c["fraction"] for c in row["curve"]] == pytest.approx([i / 10 for i in range(11)])
        for c in row["curve"]:
            assert set(c) >= {"fraction", "map", "top1", "negative_flips"} and isinstance(c["negative_flips"], int)
        assert row["auc_map"] == pytest.approx(np.mean([c["map"] for c in row["curve"]]))
        assert row["auc_cmc"] == pytest.approx(np.mean([c["top1"] for c in row["curve"]]))
    assert (tmp_path / "results" / "online_backfill.png").stat().st_size > 10_000


def test_rows_per_setting_and_the_model_each_runs_on():
    specs = row_specs(("merge", "bct", "merge+reverse+cmcl+rho"), ("fixed-new",))
    assert specs == [("merge", "fixed-new"), ("merge+reverse+cmcl+rho", "fixed-new")]
    assert row_specs(("merge+reverse+cmcl",), ("fixed-new", "retrained-new")) == [
        ("merge+reverse+cmcl", "retrained-new"), ("merge+reverse+cmcl", "fixed-new")]
    assert {new_kind(m, s) for m, s in specs} == {"independent"}
    assert new_kind("merge+reverse+cmcl+rho", "retrained-new") == "cmcl+rho"
    assert new_kind("bct", "retrained-new") == "bct"


def test_summary_gains_against_the_row_model_and_the_shared_one():
    curve = [{"fraction": f, "map": m, "top1": m, "negative_flips": k}
             for f, m, k in ((0.0, 60.0, 0), (0.5, 70.0, 3), (1.0, 85.0, 1))]
    s = curve_summary(curve, m_old=60.0, m_new=85.0, m_new_shared=80.0)
    assert s["auc_map"] == pytest.approx(215 / 3) and s["monotone_map"] and s["max_negative_flips"] == 3
    assert s["relative_gain_map"] == pytest.approx((215 / 3 - 60) / 25)
    assert s["relative_gain_shared_map"] == pytest.approx((215 / 3 - 60) / 20)
    assert s["new_model_map"] == 85.0 and s["stored_new_map"] == 85.0
    assert curve_summary(curve, 60.0, 60.0, 80.0)["relative_gain_map"] is None
