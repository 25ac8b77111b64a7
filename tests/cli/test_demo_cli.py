"""``hotswap demo``: the table fits 80 columns, the real corpus size is said, ``--json`` prints only the JSON."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from tests.cli.helpers import runner


def _fake_result() -> dict:
    from hotswap_harness.cli.demo import _label

    rows = []
    for mode, adapter, extra in [("old", None, {}), ("new", None, {}), ("adapted", "procrustes", {}),
                                 ("adapted", "residual_mlp+infonce", {}),
                                 ("adapted", "residual_mlp+infonce+blend", {"blend_weight": 0.75}),
                                 ("adapted", "auto", {"auto_choice": "residual_mlp+infonce+blend"})]:
        row = {"mode": mode, "adapter": adapter, "ndcg@10": 0.41234, "recall@10": 0.5, "mrr@10": 0.33,
               "recall@100": 0.9, "negative_flip_rate": 0.0123, "recovered_recall@10": -0.1234,
               "ratio_recall@10": 0.87, **extra}
        rows.append({**row, "label": _label(row)})
    return {"rows": rows, "n_docs": 2559, "n_test_queries": 1500, "n_fit_pairs": 5559, "dataset": "mydata",
            "old_model": "static@e79551e309c0", "new_model": "minilm@53aa51172d14"}


def test_demo_table_fits_80_columns_without_truncated_headers():
    from hotswap_harness.cli.demo import COLUMNS, rows_table

    console = Console(width=80, record=True)
    console.print(rows_table(_fake_result()))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "nDCG@10" in line)
    assert all(h in header for _, h in COLUMNS)
    assert "0.412" in text and "w=0.75" in text


def test_corpus_size_is_the_real_one():
    from hotswap_harness.cli.demo import corpus_phrase

    assert corpus_phrase(2559, 6000) == "the whole corpus, 2,559 docs"
    assert "6,000" in corpus_phrase(6000, 6000) and "--full" in corpus_phrase(6000, 6000)
    assert "full corpus, 2,559" in corpus_phrase(2559, None)


@pytest.mark.realmodel
def test_demo_json_prints_only_the_result(tmp_path):
    from hotswap.cli import app

    res = runner.invoke(app, ["demo", "--max-docs", "200", "--no-backfill", "--no-cascade", "--json", "--out",
                              str(tmp_path)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    result = json.loads(res.stdout)
    assert result == json.loads((tmp_path / "demo.json").read_text())
    assert result["n_docs"] == 200 and result["rows"][0]["label"] == "old/old"
    notes = " ".join(res.stderr.split())
    assert "a seeded subset of 200 docs" in notes and "rec R@10" in notes
