"""The backfill protocol on a small real slice: the shape of results/backfill.json and the curves' end points."""

import pytest

from hotswap.backfill.curve import summarise_curve
from hotswap_harness.experiments.backfill_demo import BackfillConfig, run_backfill_experiment

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def result():
    cfg = BackfillConfig(max_docs=300, max_train_queries=150, max_test_queries=80, fit_docs=150, calibration_docs=100,
                         policies=("random", "uncertainty"), probe_size=64, throughput_docs=32, batch_size=32)
    return run_backfill_experiment(cfg)


def test_results_shape(result):
    assert {"dataset", "old_model", "new_model", "curves", "throughput"} <= set(result)
    assert result["old_model"].startswith("static@") and result["new_model"].startswith("minilm@")
    assert {(c["policy"], c["mode"]) for c in result["curves"]} == {
        (p, m) for p in ("random", "uncertainty") for m in ("merged", "calibrated", "adapted")}
    assert "cross" in result["skipped_modes"]  # static (256-d) and minilm (384-d) are not compatible
    for c in result["curves"]:
        assert [p["fraction"] for p in c["points"]] == [round(i / 10, 6) for i in range(11)]
        assert set(c["points"][0]) >= {"fraction", "ndcg@10", "recall@10", "negative_flip_rate"}
        assert c["auc_ndcg@10"] == pytest.approx(summarise_curve(c["points"])["auc_ndcg@10"])
    tp = result["throughput"]
    assert tp["runner_items_s"] > 0 and tp["raw_encode_items_s"] > 0


def test_end_points_are_the_old_system_and_the_full_reindex(result):
    merged = {c["policy"]: c["points"] for c in result["curves"] if c["mode"] == "merged"}
    adapted = {c["policy"]: c["points"] for c in result["curves"] if c["mode"] == "adapted"}
    for policy, points in merged.items():
        assert points[0]["negative_flip_rate"] == 0.0  # 0 %: old queries on the old index, nothing else
        assert points[-1]["ndcg@10"] == pytest.approx(adapted[policy][-1]["ndcg@10"])  # 100 %: only new vectors
    # the start and the end do not depend on the order; the middle does
    assert merged["random"][0]["ndcg@10"] == pytest.approx(merged["uncertainty"][0]["ndcg@10"])
    assert merged["random"][-1]["ndcg@10"] == pytest.approx(merged["uncertainty"][-1]["ndcg@10"])
    assert merged["random"][-1]["ndcg@10"] > merged["random"][0]["ndcg@10"]  # minilm beats static here
