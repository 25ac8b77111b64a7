"""Backfill curves: fractions, skipped past points, and the evaluator's end points (old system, re-index)."""

import numpy as np
import pytest

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.backfill.curve import QrelsEvaluator, backfill_curve, curve_auc, fractions_every, parse_every
from hotswap.encoders.replay import ReplayEncoder
from hotswap.errors import HotswapError
from hotswap.metrics import evaluate_run, run_from_search
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade


@pytest.mark.parametrize("text, step", [("10%", 0.1), ("0.25", 0.25), ("100%", 1.0), (0.5, 0.5)])
def test_parse_every(text, step):
    assert parse_every(text) == pytest.approx(step)


@pytest.mark.parametrize("bad", ["0%", "150%", "ten", "-0.1"])
def test_parse_every_refuses(bad):
    with pytest.raises(HotswapError, match="eval-every"):
        parse_every(bad)


def test_fractions_every_ends_at_one():
    assert fractions_every(0.1) == [round(i / 10, 6) for i in range(11)]
    assert fractions_every(0.3) == [0.0, 0.3, 0.6, 0.9, 1.0]
    assert fractions_every(1.0) == [0.0, 1.0]


def _toy(tmp_path, n=120, nq=30, seed=0):
    """A gallery where the new model is exact (query i's relevant doc is doc i) and the old one noisy."""
    rng = np.random.default_rng(seed)
    ids = [f"d{i}" for i in range(n)]
    base = rng.normal(size=(n, 16)).astype(np.float32)
    new = base / np.linalg.norm(base, axis=1, keepdims=True)
    unit = lambda X: (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    old = unit(base[:, :8] + rng.normal(scale=1.0, size=(n, 8)))
    Q_old = unit(base[:nq, :8] + rng.normal(scale=1.0, size=(nq, 8)))
    store = create_store(tmp_path / "old", model_id="old@t", dim=8)
    store.add(ids, old, model_id="old@t")
    up = create_upgrade(tmp_path / "up", store, "new@t", 16)
    qids = [f"q{i}" for i in range(nq)]
    qrels = {q: {f"d{i}": 1} for i, q in enumerate(qids)}
    evaluator = QrelsEvaluator(qids, qrels, new[:nq].copy(), Q_old, modes=("merged", "cross"), k=10)
    enc = ReplayEncoder("new@t", ids, new)
    plan_backfill(up, "random", enc, lambda x: x)
    return up, BackfillRunner(up, lambda x: x, LocalExecutor(enc), batch_size=16, progress=False), evaluator


def test_curve_end_points_are_the_old_system_and_the_reindex(tmp_path):
    up, runner, evaluator = _toy(tmp_path)
    curves = backfill_curve(runner, evaluator, fractions_every(0.25))
    merged = curves["merged"]
    assert [p["fraction"] for p in merged] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [p["backfilled"] for p in merged] == [0, 30, 60, 90, 120]
    old_run = run_from_search(evaluator.qids, up.old.search(evaluator.Q_old, 10, "old@t")[1])
    assert merged[0]["ndcg@10"] == pytest.approx(evaluate_run(evaluator.qrels, old_run, ("ndcg@10",))["ndcg@10"])
    assert merged[0]["negative_flip_rate"] == 0.0
    assert merged[-1]["ndcg@10"] == pytest.approx(1.0)  # the new model is exact on this toy
    assert merged[-1]["ndcg@10"] > merged[0]["ndcg@10"]
    assert "cross" in evaluator.skipped and "dims differ" in evaluator.skipped["cross"]
    assert curve_auc(merged) == pytest.approx(np.mean([p["ndcg@10"] for p in merged]))


def test_resumed_curve_skips_the_fractions_already_passed(tmp_path):
    up, runner, evaluator = _toy(tmp_path)
    runner.run(until=0.5)
    curves = backfill_curve(runner, evaluator, fractions_every(0.25))
    assert [p["fraction"] for p in curves["merged"]] == [0.5, 0.75, 1.0]
    assert len(up.new) == len(up.old)


def test_blended_curve_starts_at_the_blend_on_the_old_index_and_ends_at_the_reindex(tmp_path):
    from hotswap.adapters import make_adapter
    from hotswap.search import QueryBlend, Searcher

    up, runner, evaluator = _toy(tmp_path)
    rng = np.random.default_rng(1)
    X_new = rng.normal(size=(64, 16)).astype(np.float32)
    adapter = make_adapter("affine").fit(X_new, X_new[:, :8], new_model_id="new@t", old_model_id="old@t")
    blend = QueryBlend(adapter, 0.5)
    evaluator.modes, evaluator.adapter, evaluator.blend = ("blended",), adapter, blend
    curves = backfill_curve(runner, evaluator, [0.0, 1.0])["blended"]
    day0 = Searcher(up.old, adapter=adapter, blend=blend).search((evaluator.Q_new, evaluator.Q_old), 10, "blended",
                                                                 "new@t")[1]
    expected = evaluate_run(evaluator.qrels, run_from_search(evaluator.qids, day0), ("ndcg@10",))["ndcg@10"]
    assert curves[0]["ndcg@10"] == pytest.approx(expected)
    assert curves[-1]["ndcg@10"] == pytest.approx(1.0)  # all backfilled: the new query on the new partition
