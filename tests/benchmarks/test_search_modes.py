"""benchmarks/search_modes.py at a tiny size: queries per second of every search mode on one index."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import number, ok, table_rows

MODES = ["old", "new", "adapted (procrustes)", "adapted (affine)", "adapted (low_rank)", "adapted (residual_mlp)",
         "blended (procrustes)"]


def test_search_modes_measures_every_mode_against_old(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("search_modes.py", "--n", 1000, "--dim-old", 16, "--dim-new", 24, "--queries", 256,
                          "--min-seconds", 0.02, "--rounds", 1, "--out", out))
    result = json.loads(out.read_text())
    rows = {r["mode"]: r for r in result["rows"]}
    assert list(rows) == MODES
    assert all(r["qps_batch_1"] > 0 and r["qps_batch_256"] > 0 for r in rows.values())
    assert rows["old"]["vs_old_batch_256"] == 1.0
    for r in rows.values():
        assert r["vs_old_batch_256"] == r["qps_batch_256"] / rows["old"]["qps_batch_256"]
    assert "search modes: 1,000 docs, old 16-d / new 24-d, k=10" in stdout
    table = table_rows(stdout)
    assert list(table) == MODES
    assert number(table["new"][2]) == round(rows["new"]["vs_old_batch_256"], 2)
