"""benchmarks/load.py at a tiny size: a served collection under load, idle, with an upgrade paused and running.

The upgrade goes to a folder model derived from ``static`` (``--allow-model``): it loads at once where minilm takes
seconds. One document per batch keeps the backfill running through both loaded levels."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import committed, committed_keys, ok


def test_load_measures_latency_idle_paused_and_mid_backfill(run_bench, tmp_path, variant_models):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("load.py", "--backends", "faiss", "--n-docs", 2000, "--clients", "1,2", "--requests", 20,
                          "--time-cap", 20, "--unloaded-s", 0.3, "--batch-size", 1, "--new", "variant",
                          "--allow-model", f"variant={variant_models[0]}", "--out", out))
    result = json.loads(out.read_text())
    assert set(result) == committed_keys("load.json")
    rows = result["rows"]
    idle = next(r for r in committed("load.json")["rows"] if r["state"] == "idle")
    assert set(rows[0]) == set(idle)
    assert [(r["state"], r["clients"]) for r in rows] == [(s, c) for s in ("idle", "paused", "running") for c in (1, 2)]
    for r in rows:
        assert r["backend"] == "faiss" and r["mode"] == ("old" if r["state"] == "idle" else "merged")
        assert r["requests"] == 20 and r["errors"] == 0 and r["writes"] == 2 and r["statuses"] == {"200": 20}
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] and r["search_p99_ms"] > 0
        assert r["backfill_running"] == (r["state"] == "running")
    for r in rows[4:]:
        assert r["backfill_still_running_at_end"] and 0 < r["backfill_fraction_at_end"] < 1
        assert r["backfill_items_per_s"] > 0 and r["backfill_worker"] == "thread"
    assert set(result["p99_ratio_backfill_vs_idle"]) == set(result["p99_ratio_backfill_vs_paused"]) == {
        "faiss/1", "faiss/2"}
    assert all(v > 0 for v in result["p99_ratio_backfill_vs_paused"].values())
    assert f"target met: {result['met']}" in stdout and f"target met: {result['met_vs_paused']}" in stdout
