"""benchmarks/backend_scale.py at a tiny size: PostgreSQL (pgvector, on an embedded server) against FAISS HNSW.

``--model static`` encodes with the 256-d static model (no distillation to 384 dimensions first)."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.helpers import committed_keys, ok, table_lines

FIELDS = {"backend": str, "index": str, "insert_per_s": float, "build_s": float, "recall@10": float,
          "p50_ms": float, "p99_ms": float, "filtered_p50_ms": float}


def test_backend_scale_writes_sane_rows_for_every_backend(run_bench, tmp_path):
    pytest.importorskip("pgserver")
    out = tmp_path / "x.json"
    stdout = ok(run_bench("backend_scale.py", "--n", 1000, "--queries", 30, "--flat-queries", 30, "--batch", 500,
                          "--model", "static", "--dir", tmp_path / "work", "--out", out, timeout=300))
    result = json.loads(out.read_text())
    assert set(result) == committed_keys("backend_scale.json")
    assert result["n"] == 1000 and result["dim"] == 256 and result["data"]["model"] == "static-minilm-pca256"
    rows = {(r["backend"], r["index"]): r for r in result["rows"]}
    assert list(rows) == [("postgres", "hnsw"), ("postgres", "flat"), ("faiss", "hnsw")]
    for key, row in rows.items():
        assert all(isinstance(row[f], t) for f, t in FIELDS.items()), (key, row)
        assert 0.0 <= row["recall@10"] <= 1.0 and 0.0 <= row["filtered_recall@10"] <= 1.0, key
        assert row["insert_per_s"] > 0 and row["build_s"] >= 0 and row["queries"] == 30, key
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["filtered_p50_ms"] > 0, key
        assert row["fraction_backfilled"] == 0.5 and row["filtered_backfilled_returned"] == 0, key
        assert row["filtered_short_rows"] == 0, key
    assert rows["postgres", "flat"]["recall@10"] == rows["postgres", "flat"]["filtered_recall@10"] == 1.0
    for key in (("postgres", "hnsw"), ("faiss", "hnsw")):
        assert rows[key]["recall@10"] > 0.8 and rows[key]["build_s"] > 0, (key, rows[key])
    assert rows["postgres", "hnsw"]["bulk_build_s"] > 0
    assert [cells[:2] for cells in table_lines(stdout)] == [["postgres", "hnsw"], ["postgres", "flat"],
                                                            ["faiss", "hnsw"]]
