"""benchmarks/merged_search.py at a tiny size: merged search mid-backfill against one index, and its upkeep."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.helpers import ok


def test_merged_search_compares_merged_with_single_indexes(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("merged_search.py", "--n", 2000, "--dim-old", 16, "--dim-new", 24, "--queries", 256,
                          "--min-seconds", 0.01, "--rounds", 1, "--refresh-batch", 64, "--out", out))
    result = json.loads(out.read_text())
    assert [(r["fraction"], r["batch"]) for r in result["results"]] == [
        (f, b) for f in (0.1, 0.5, 0.9) for b in (1, 256)]
    for r in result["results"]:
        parts = ("merged", "single_new", "single_old", "old_part", "new_part", "merge")
        assert all(r[f"{p}_ms"] > 0 for p in parts), r
        assert r["merged_over_new"] == pytest.approx(r["merged_ms"] / r["single_new_ms"])
        assert r["pass"] == (r["merged_over_new"] <= 1.15)
    assert result["pass"] == all(r["pass"] for r in result["results"])
    assert len(result["add_s"]) == len(result["refresh_s"]) == 3 and min(result["refresh_s"]) > 0
    assert set(result["build_s"]) == {"0.1", "0.5", "0.9"}
    verdict = "PASS" if result["pass"] else "FAIL"
    assert f"target merged <= 1.15x the new model's single index: {verdict}" in stdout
    assert "writer add_backfilled(64) at 50%, median of 3" in stdout
