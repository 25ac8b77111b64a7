"""The plan validation's bookkeeping, and the shape of the committed ``results/plan.json`` (read by checks
outside the suite): ``{"pairs": [{"dataset", "old_model", "new_model", "sample", "paths": [{"path", "arr@10",
"ndcg@10"}], "recommendation", "best_by_qrels", "spearman", "backfill_hours", "wall_s"}]}``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotswap_harness.experiments.plan_validation import assemble, path_of

RESULTS = Path(__file__).resolve().parents[2] / "results" / "plan.json"


def _row(**over):
    paths = [{"path": "old", "kind": "stay", "arr@10": 0.3, "ndcg@10": 0.40},
             {"path": "procrustes", "kind": "adapter", "arr@10": 0.5, "ndcg@10": 0.45},
             {"path": "procrustes+blend", "kind": "blend", "arr@10": 0.45, "ndcg@10": 0.47},
             {"path": "new", "kind": "backfill", "arr@10": 1.0, "ndcg@10": 0.60}]
    return {"dataset": "toy", "old_model": "a@1", "new_model": "b@1", "sample": 10, "paths": paths,
            "recommendation": "backfill:uncertainty", "best_by_qrels": "new", "spearman": 0.9,
            "backfill_hours": 0.1, "wall_s": 1.0, "within_tolerance": True, "no_path_beats_old": False, **over}


def test_recommendations_name_their_paths():
    assert [path_of(r) for r in ("stay", "backfill:popularity", "cascade:50", "adapter:procrustes",
                                 "blend:procrustes+blend")] == ["old", "new", "cascade@50", "procrustes",
                                                                "procrustes+blend"]


def test_bridge_share_of_the_reindex_gain():
    result = assemble([_row(), _row(spearman=0.5, within_tolerance=False)])
    row = result["pairs"][0]
    assert row["best_bridge"] == "procrustes+blend" and row["best_bridge_share_of_reindex"] == pytest.approx(0.35)
    s = result["summary"]
    assert s["pairs"] == 2 and s["mean_spearman"] == pytest.approx(0.7) and s["pairs_spearman_at_least_0.8"] == 1
    assert s["share_within_0.01"] == 0.5 and s["bridge_share_of_reindex"] == pytest.approx([0.35, 0.35])


@pytest.mark.skipif(not RESULTS.is_file(), reason="results/plan.json is written by 'hotswap experiment plan'")
def test_committed_results_have_the_documented_shape():
    result = json.loads(RESULTS.read_text())
    assert result["pairs"]
    for pair in result["pairs"]:
        assert isinstance(pair["dataset"], str) and isinstance(pair["sample"], int)
        assert "@" in pair["old_model"] and "@" in pair["new_model"]
        assert isinstance(pair["recommendation"], str) and isinstance(pair["backfill_hours"], float)
        assert pair["best_by_qrels"] is None or isinstance(pair["best_by_qrels"], str)
        assert pair["spearman"] is None or -1.0 <= pair["spearman"] <= 1.0
        assert isinstance(pair["wall_s"], float) and pair["paths"]
        for path in pair["paths"]:
            assert isinstance(path["path"], str) and 0.0 <= path["arr@10"] <= 1.0
            assert path["ndcg@10"] is None or 0.0 <= path["ndcg@10"] <= 1.0
