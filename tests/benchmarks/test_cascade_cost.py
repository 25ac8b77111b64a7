"""benchmarks/cascade_cost.py at a tiny size: cascade search on a live stream, per encode budget, and at 100 %.

The upgrade goes to a folder model derived from ``static``, which loads and encodes far faster than minilm."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import committed_keys, ok, table_rows


def test_cascade_cost_serves_a_stream_per_budget_and_merges_into_cascade_json(run_bench, tmp_path, variant_models):
    (tmp_path / "cascade.json").write_text(json.dumps({"rows": [], "dataset": "kept"}))
    out = tmp_path / "x.json"
    stdout = ok(run_bench("cascade_cost.py", "--n-docs", 300, "--queries", 12, "--pool", 6, "--slice-docs", 200,
                          "--full-queries", 4, "--new", variant_models[0], "--out", out,
                          "--into", tmp_path / "cascade.json", "--plot", tmp_path / "cost.png"))
    cost = json.loads(out.read_text())
    assert set(cost) == committed_keys("cascade_cost.json")
    assert cost["n_docs"] == 300 and cost["queries"] == 12 and cost["distinct_queries"] <= 6
    assert cost["old_model"].startswith("static@") and cost["new_model"].startswith("custom@")
    assert [(s["mode"], s["budget"]) for s in cost["streams"]] == [("cascade", None), ("cascade", 8),
                                                                   ("adapted", None), ("merged", None)]
    for s in cost["streams"]:
        (p,) = s["points"]  # 12 queries: one checkpoint
        assert p["queries"] == 12 and 0 <= p["ndcg@10"] <= 1 and 0 < p["p50_ms"] <= p["p99_ms"], s["mode"]
        assert (p["encodes_per_query"] > 0) == (s["mode"] == "cascade"), s
    assert cost["streams"][1]["points"][-1]["encodes_per_query"] <= 8
    full = cost["full_backfill"]
    assert full["encodes"] == 0 and full["n_queries"] == 4 and full["search_ms"]["ratio"] > 0
    merged = json.loads((tmp_path / "cascade.json").read_text())
    assert merged["dataset"] == "kept" and [s["budget"] for s in merged["streams"]] == [None, 8]
    assert merged["stream"] == merged["streams"][0]
    assert [s["mode"] for s in merged["stream_baselines"]] == ["adapted", "merged"]
    assert (tmp_path / "cost.png").stat().st_size > 0
    assert list(table_rows(stdout)) == ["cascade B=inf", "cascade B=8", "adapted", "merged"]
