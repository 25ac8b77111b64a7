"""benchmarks/cascade_cost.py runs end to end at a tiny size and writes the stream shape results/cascade.json needs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.realmodel
def test_cascade_cost_benchmark_runs_at_a_tiny_size(tmp_path):
    (tmp_path / "cascade.json").write_text(json.dumps({"rows": [], "dataset": "kept"}))
    cmd = [sys.executable, "benchmarks/cascade_cost.py", "--n-docs", "300", "--queries", "12", "--pool", "6",
           "--slice-docs", "200", "--full-queries", "4", "--out", str(tmp_path / "cost.json"),
           "--into", str(tmp_path / "cascade.json"), "--plot", str(tmp_path / "cost.png")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert [(s["mode"], s["budget"]) for s in cost["streams"]] == [("cascade", None), ("cascade", 8),
                                                                   ("adapted", None), ("merged", None)]
    capped = cost["streams"][1]["points"][-1]
    assert capped["queries"] == 12 and capped["encodes_per_query"] <= 8
    merged = json.loads((tmp_path / "cascade.json").read_text())
    assert merged["dataset"] == "kept" and {"budget", "points"} <= set(merged["streams"][0])
    assert [s["budget"] for s in merged["streams"]] == [None, 8] and merged["stream"] == merged["streams"][0]
    assert [s["mode"] for s in merged["stream_baselines"]] == ["adapted", "merged"]
    assert {"queries", "ndcg@10", "encodes_per_query", "p50_ms", "p99_ms"} <= set(merged["streams"][0]["points"][0])
    assert cost["full_backfill"]["encodes"] == 0 and (tmp_path / "cost.png").stat().st_size > 0
