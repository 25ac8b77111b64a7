"""``hotswap plan`` from the CLI on a small real BEIR folder (``pydoc`` texts, static index, minilm as the new
model): label-free, then with the folder's queries and qrels; JSON, plot, and the index left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotswap.cli import app
from tests.cli.helpers import ok, ok_json, runner
from tests.cli.test_walkthrough import write_beir_folder

pytestmark = pytest.mark.realmodel


def test_plan_with_and_without_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_beir_folder(tmp_path / "mydata", max_docs=160)
    ok(["encode", "--dataset", "mydata", "--model", "static", "--index", "indexes/mine"])
    manifest = Path("indexes/mine/manifest.json").read_bytes()

    free = ok_json(["plan", "--store", "indexes/mine", "--new", "minilm", "--sample", "120"])
    assert free["queries"] == "known-item spans" and free["sample"] == 120 and free["collection_size"] == 160
    assert free["best_by_qrels"] is None and free["spearman"] is None
    assert {"old", "procrustes", "cascade@20", "cascade@50", "cascade@100", "new"} <= {p["path"] for p in free["paths"]}
    assert free["recommendation"].split(":")[0] in ("adapter", "blend", "cascade", "backfill")
    assert free["next_command"].startswith("hotswap ") and "indexes/mine" in free["next_command"]

    out = ok(["plan", "--store", "indexes/mine", "--new", "minilm", "--sample", "120", "--queries",
              "mydata/queries.jsonl", "--qrels", "mydata/qrels/test.tsv", "--cost-per-hour", "2", "--out", "planned"])
    assert "recommendation:" in out and "nDCG@10" in out and "Spearman" in out and "next: hotswap" in out
    labelled = ok_json(["plan", "--store", "indexes/mine", "--new", "minilm", "--sample", "120", "--queries",
                        "mydata/queries.jsonl", "--qrels", "mydata/qrels/test.tsv"])
    assert labelled["queries"] == "log" and labelled["best_by_qrels"] is not None
    assert all(p["ndcg@10"] is not None for p in labelled["paths"])
    assert Path("planned/plan.json").is_file() and Path("planned/plan.png").stat().st_size > 0
    assert Path("indexes/mine/manifest.json").read_bytes() == manifest  # plan never writes to the index

    res = runner.invoke(app, ["plan", "--store", "indexes/mine", "--new", "minilm", "--qrels", "mydata/qrels/test.tsv"])
    assert res.exit_code == 2 and "--queries" in res.output
    res = runner.invoke(app, ["plan", "--store", "indexes/mine", "--new", "static"])
    assert res.exit_code == 2 and "nothing to plan" in res.output
