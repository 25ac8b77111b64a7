import math

import numpy as np
import pytest

from hotswap.metrics import compare_per_query, evaluate_run, negative_flips, per_query_metrics, run_from_search

QRELS = {"q1": {"a": 1}, "q2": {"b": 1, "c": 1}, "q3": {"z": 1}}


def test_metrics_match_hand_computed_example():
    # q1: relevant at rank 2; q2: relevant at ranks 1 and 3; q3: relevant nowhere.
    I = np.array([["x", "a", "y"], ["b", "x", "c"], ["x", "y", "w"]], dtype=object)
    run = run_from_search(["q1", "q2", "q3"], I)
    m = evaluate_run(QRELS, run, ("ndcg@10", "recall@10", "mrr@10"))
    ndcg_q1 = 1 / math.log2(3)
    ndcg_q2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2 + 0) / 3, abs=1e-4)
    assert m["recall@10"] == pytest.approx((1 + 1 + 0) / 3, abs=1e-6)
    assert m["mrr@10"] == pytest.approx((0.5 + 1 + 0) / 3, abs=1e-6)


def test_rank_order_is_kept_and_missing_queries_count_as_zero():
    run = {"q1": {"a": 1.0, "x": 2.0}}  # a ranked second by score
    pq = per_query_metrics(QRELS, run, ("mrr@10",))["mrr@10"]
    assert pq == {"q1": 0.5, "q2": 0.0, "q3": 0.0}


def test_mrr_is_cut_at_10():
    docs = [f"n{i}" for i in range(10)] + ["a"]
    run = run_from_search(["q1"], np.array([docs], dtype=object))
    assert per_query_metrics({"q1": {"a": 1}}, run, ("mrr@10",))["mrr@10"]["q1"] == 0.0


def test_padding_ids_are_skipped():
    run = run_from_search(["q1"], np.array([["a", None, None]], dtype=object))
    assert run == {"q1": {"a": 3.0}}


def test_negative_flips():
    old = run_from_search(["q1", "q2", "q3"], np.array([["a", "x"], ["x", "b"], ["x", "y"]], dtype=object))
    new = run_from_search(["q1", "q2", "q3"], np.array([["x", "a"], ["b", "x"], ["z", "y"]], dtype=object))
    rep = negative_flips(QRELS, old, new, k=2)
    assert rep.flipped == ("q1",)  # rank 1 -> 2 is a flip; q2 improved; q3 was a miss before
    assert rep.negative_flip_rate == pytest.approx(1 / 3)
    assert rep.positive_flip_rate == pytest.approx(2 / 3)
    assert rep.hit_flip_rate == 0.0
    gone = run_from_search(["q1"], np.array([["x", "y"]], dtype=object))
    assert negative_flips({"q1": {"a": 1}}, old, gone, k=2).hit_flip_rate == 1.0


def test_compare_per_query():
    out = compare_per_query({"a": 0.5, "b": 1.0, "c": 0.2}, {"a": 0.7, "b": 0.5, "c": 0.2})
    assert (out["wins"], out["losses"], out["ties"]) == (1, 1, 1)
    assert out["mean_diff"] == pytest.approx((0.2 - 0.5) / 3)


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_run(QRELS, {}, ("map@7",))
