"""benchmarks/backend_scale.py end to end at a tiny size (3,000 real embeddings, 50 queries): the results shape."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"backend": str, "index": str, "insert_per_s": float, "build_s": float, "recall@10": float,
          "p50_ms": float, "p99_ms": float, "filtered_p50_ms": float}


def load_benchmark():
    spec = importlib.util.spec_from_file_location("backend_scale", ROOT / "benchmarks" / "backend_scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_backend_scale_benchmark_writes_sane_rows_at_a_tiny_size(tmp_path):
    out = tmp_path / "backend_scale.json"
    result = load_benchmark().main(["--n", "3000", "--queries", "50", "--flat-queries", "50", "--batch", "1000",
                                    "--dir", str(tmp_path / "work"), "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["n"] == 3000 and result["dim"] in (384, 256)  # 256: the fallback model, recorded as such
    assert {"config", "hardware", "wall_s"} <= set(result)
    rows = {(r["backend"], r["index"]): r for r in result["rows"]}
    assert set(rows) == {("postgres", "hnsw"), ("postgres", "flat"), ("faiss", "hnsw")}
    for key, row in rows.items():
        assert all(isinstance(row[f], t) for f, t in FIELDS.items()), (key, row)
        assert 0.0 <= row["recall@10"] <= 1.0 and 0.0 <= row["filtered_recall@10"] <= 1.0, key
        assert row["insert_per_s"] > 0 and row["build_s"] >= 0, key
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["filtered_p50_ms"] > 0, key
        assert row["fraction_backfilled"] == 0.5 and row["filtered_backfilled_returned"] == 0, key
        assert row["filtered_short_rows"] == 0, key
    assert rows["postgres", "flat"]["recall@10"] == rows["postgres", "flat"]["filtered_recall@10"] == 1.0
    for key in (("postgres", "hnsw"), ("faiss", "hnsw")):
        assert rows[key]["recall@10"] > 0.8 and rows[key]["build_s"] > 0, (key, rows[key])
    assert rows["postgres", "hnsw"]["bulk_build_s"] > 0
