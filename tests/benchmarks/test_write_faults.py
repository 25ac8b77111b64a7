"""benchmarks/write_faults.py at a tiny size (FAISS, one kill per phase): every acknowledged write survives.

The upgrade goes to a folder model derived from ``static`` (``--allow-model``), which loads at once."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import committed, committed_keys, ok

COUNTERS = ("lost", "duplicated", "resurrected_deletes", "stale_texts", "responses_5xx", "phantom_ids")


def test_write_faults_loses_no_acknowledged_write_across_kills(run_bench, tmp_path, variant_models):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("write_faults.py", "--backends", "faiss", "--kills", 3, "--min-kills", 3, "--n-docs", 100,
                          "--burst", 10, "--max-delay", 0.3, "--vector-sample", 10, "--search-sample", 8,
                          "--upgrade-batch", 4, "--new", "variant", "--allow-model", f"variant={variant_models[0]}",
                          "--out", out, timeout=300))
    result = json.loads(out.read_text())
    assert set(result) == committed_keys("writes.json")
    assert result["met"] is True and result["target"].startswith("per backend: >= 3 kills")
    (run,) = result["runs"]
    assert set(run) == set(committed("writes.json")["runs"][0])
    assert run["error"] is None, run["error"]
    assert run["backend"] == "faiss" and run["kills"] == run["recovered"] == 3 and run["met"]
    assert run["kills_by_phase"] == {"before": 1, "during": 1, "after": 1}
    assert run["upgrade_committed"] and run["acknowledged_writes"] > 0
    assert not any(run[k] for k in COUNTERS), {k: run[k] for k in COUNTERS}
    assert [d["where"] for d in run["deep_checks"]] == ["end of before", "during the upgrade (before commit)", "final"]
    assert run["deep_checks"][-1]["model"] == "variant" and run["deep_checks"][0]["model"] == "static"
    assert "| faiss | 3 | 3 |" in stdout and "NOT RECOVERED" not in stdout
