"""The cascade protocol on a small real slice: the results shape and what a cascade must do at its end points."""

import pytest

from hotswap_harness.experiments.cascade_demo import CascadeConfig, run_cascade_experiment
from hotswap_harness.experiments.cascade_report import cascade_curve_table, cascade_rows_table, plot_cascade

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def result():
    cfg = CascadeConfig(max_docs=300, max_train_queries=150, max_test_queries=80, fit_docs=150, grid=(10, 30),
                        policies=("random",), eval_every=0.25, batch_size=50, curve_candidates=30)
    return run_cascade_experiment(cfg)


def test_results_shape(result, tmp_path):
    assert {"dataset", "old_model", "new_model", "n_docs", "n_test_queries", "old_ndcg@10", "new_ndcg@10", "rows",
            "curves"} <= set(result)
    assert [(r["candidate_query"], r["candidates"], r["encode_budget"]) for r in result["rows"]] == [
        ("auto", 10, None), ("auto", 10, 8), ("auto", 30, None), ("auto", 30, 8), ("old", 30, None),
        ("adapted", 30, None)]
    for r in result["rows"]:
        assert {"ndcg@10", "recall@10", "recovered_ndcg@10", "encodes_per_query", "negative_flip_rate"} <= set(r)
        if r["encode_budget"] is not None:
            assert r["encodes_per_query"] <= r["encode_budget"]
    assert {(c["policy"], c.get("label")) for c in result["curves"]} == {
        ("random", name) for name in ("merged", "adapted", "cascade", "cascade B=8")}
    cascade_rows_table(result), cascade_curve_table(result)
    assert plot_cascade(result, tmp_path / "c.png").stat().st_size > 0


def test_cascade_reaches_the_new_index_and_never_falls_below_the_old(result):
    curves = {c["label"]: c["points"] for c in result["curves"]}
    assert curves["cascade"][-1]["ndcg@10"] == pytest.approx(result["new_ndcg@10"])  # 100 %: the new index
    assert curves["merged"][0]["ndcg@10"] == pytest.approx(result["old_ndcg@10"])  # 0 %: the old system
    unlimited = [r for r in result["rows"] if r["encode_budget"] is None and r["candidate_query"] == "auto"]
    assert all(r["ndcg@10"] > result["old_ndcg@10"] for r in unlimited)  # minilm re-ranking beats static
