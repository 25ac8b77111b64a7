"""benchmarks/backfill_throughput.py at a tiny size: raw encoding against the runner, locally and on Ray."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.helpers import ok, table_rows

KEYS = {"args", "model_id", "target", "ray_start_s", "rounds", "best", "ratio_vs_raw", "ratio_vs_raw_same_batches",
        "pass", "ray_checksum_equal", "cpu_count", "loadavg_before", "loadavg_after"}
ARGS = ("--model", "static", "--n", 300, "--rounds", 1, "--batch-size", 64)


def test_backfill_throughput_compares_the_runner_with_raw_encoding(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("backfill_throughput.py", *ARGS, "--no-ray", "--out", out))
    result = json.loads(out.read_text())
    assert set(result) == KEYS and result["model_id"].startswith("static@")
    assert set(result["best"]) == {"raw", "raw_batches", "local"} and len(result["rounds"]) == 1
    assert all(v["items_per_s"] > 0 and v["s"] > 0 for v in result["best"].values())
    assert result["ratio_vs_raw"]["raw"] == 1.0 and result["ratio_vs_raw_same_batches"]["raw_batches"] == 1.0
    local = result["best"]["local"]
    assert 0 < local["first_batch_s"] <= local["s"] and local["steady_items_per_s"] > 0
    assert result["pass"] == {"local": result["ratio_vs_raw"]["local"] >= result["target"]}
    assert result["ray_start_s"] is None and result["ray_checksum_equal"] is None
    assert "round 1: raw " in stdout
    assert table_rows(stdout)["runner + LocalExecutor"][-1] == ("PASS" if result["pass"]["local"] else "FAIL")


@pytest.mark.slow
def test_backfill_throughput_on_ray_stores_what_the_local_runner_stores(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("backfill_throughput.py", *ARGS, "--num-actors", 1, "--out", out, timeout=300))
    result = json.loads(out.read_text())
    assert set(result["best"]) == {"raw", "raw_batches", "local", "ray"}
    assert result["ray_checksum_equal"] is True and result["ray_start_s"] > 0
    assert result["best"]["ray"]["items_per_s"] > 0 and set(result["pass"]) == {"local", "ray"}
    assert "Ray gallery_checksum equal to local: yes" in stdout
