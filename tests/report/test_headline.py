"""The README's headline table is read from the demo's results files."""

import json

import pytest

from hotswap.errors import HotswapError
from hotswap_harness.report.headline import headline_markdown, headline_rows


def _metrics(ndcg, **extra):
    return {"ndcg@10": ndcg, "recall@10": ndcg + 0.1, "negative_flip_rate": 0.05, **extra}


def _write(tmp_path, cascade_rows):
    demo = {"old_model": "static@aaa", "new_model": "minilm@bbb", "selection": {"choice": "procrustes+blend"},
            "rows": [{"label": "old/old", "mode": "old", "adapter": None, **_metrics(0.5)},
                     {"label": "new/new", "mode": "new", "adapter": None, **_metrics(0.8)},
                     {"label": "auto", "mode": "adapted", "adapter": "auto", **_metrics(0.6)}]}
    backfill = {"curves": [{"mode": "merged", "policy": "random", "auc_ndcg@10": 0.62, "auc_recall@10": 0.7},
                           {"mode": "merged", "policy": "uncertainty", "auc_ndcg@10": 0.66}]}
    for name, data in (("demo", demo), ("cascade", {"rows": cascade_rows}), ("backfill", backfill)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))


def test_rows_follow_the_results(tmp_path):
    _write(tmp_path, [{"candidates": 50, "encode_budget": None, "candidate_query": "auto", "encodes_per_query": 50.0,
                       **_metrics(0.75)},
                      {"candidates": 50, "encode_budget": 8, "candidate_query": "auto", "encodes_per_query": 8.0,
                       **_metrics(0.7)},
                      {"candidates": 20, "encode_budget": None, "candidate_query": "auto", "encodes_per_query": 20.0,
                       **_metrics(0.9)}])
    rows = headline_rows(tmp_path)
    assert [r["nDCG@10"] for r in rows] == [0.5, 0.6, 0.75, 0.7, 0.66, 0.8]
    assert rows[0]["path"] == "stay: static queries" and "procrustes+blend" in rows[1]["path"]
    assert rows[3]["new-model encodes / query"] == "8" and "uncertainty" in rows[4]["path"]
    assert rows[4]["R@10"] is None  # the best curve has no recall AUC: shown as "-", never made up
    table = headline_markdown(tmp_path)
    assert table.count("\n") == 8 and "| 0.660 | - | - |" in table


def test_a_missing_cascade_row_is_left_out(tmp_path):
    _write(tmp_path, [])
    assert [r["nDCG@10"] for r in headline_rows(tmp_path)] == [0.5, 0.6, 0.66, 0.8]


def test_missing_results_name_the_file(tmp_path):
    with pytest.raises(HotswapError, match="demo.json"):
        headline_rows(tmp_path)
