"""benchmarks/upgrade_chain.py at a tiny size: a v1 -> v2 -> v3 chain served from the v1 index, composed vs direct.

The chain runs over ``static`` and two folder models derived from it (256-d, 128-d), which load at once."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import committed_keys, ok, table_rows

METHODS = ["old", "v2 adapted", "v3 composed", "v3 direct", "v2 re-index", "v3 re-index"]


def test_upgrade_chain_scores_composed_and_direct_paths(run_bench, tmp_path, variant_models):
    b, c = variant_models
    out = tmp_path / "x.json"
    stdout = ok(run_bench("upgrade_chain.py", "--max-docs", 300, "--max-train-queries", 60, "--max-test-queries", 30,
                          "--fit-docs", 100, "--repeats", 20, "--models", f"static,{b},{c}", "--out", out))
    result = json.loads(out.read_text())
    assert set(result) == committed_keys("upgrade_chain.json")
    assert result["dims"] == {"v1": 256, "v2": 256, "v3": 128} and result["n_docs"] == 300
    assert result["composed_chain"] == [result["models"][v] for v in ("v3", "v2", "v1")]
    assert result["n_test_queries"] == 30 and result["n_fit_pairs"] == result["n_train_queries"] + 100
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == METHODS
    for m, r in rows.items():
        assert 0 <= r["ndcg@10"] <= 1 and 0 <= r["recall@10"] <= 1, m
    assert rows["old"]["cos_to_v1"] == 1.0 and rows["old"]["path"] == "static -> static index"
    assert rows["v3 composed"]["path"] == "static-c -> static-b -> static index"
    for m in ("v2 adapted", "v3 composed", "v3 direct"):
        assert -1 <= rows[m]["cos_to_v1"] <= 1 and rows[m]["us_per_query"] > 0 < rows[m]["us_per_query_batch"], m
    assert "upgrade chain static -> static-b -> static-c served from the static index (procrustes)" in stdout
    assert list(table_rows(stdout)) == METHODS and f"wrote {out}" in stdout
