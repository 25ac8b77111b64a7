"""benchmarks/store_scale.py at a tiny size: the memory-mapped store and a flat index in RAM find the same ids."""

from __future__ import annotations

import json

from tests.benchmarks.helpers import ok, table_rows


def test_store_scale_compares_the_store_with_a_flat_index(run_bench, tmp_path):
    out = tmp_path / "x.json"
    stdout = ok(run_bench("store_scale.py", "--n", 3000, "--dim", 16, "--queries", 10, "--chunk", 1000,
                          "--dir", tmp_path / "store", "--out", out))
    result = json.loads(out.read_text())
    assert result["ids_identical"] is True
    assert result["write"]["segments"] == 3 and result["write"]["bytes"] >= 3000 * 16 * 4
    for side in ("store", "flat"):
        assert result[side]["open"]["s"] >= 0 and result[side]["search1"]["s"] > 0, side
        assert result[side]["end"]["VmHWM"] >= result[side]["end"]["VmRSS"] > 0, side
    table = table_rows(stdout)
    assert table["top-k ids identical"][0] == "yes"
    assert "write (3 adds of 1,000; 0 MiB on disk)" in table
    assert "FaissStore vs IndexFlatIP: 3,000 x 16 float32, 10 queries, k=10" in stdout
