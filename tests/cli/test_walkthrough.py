"""The README's walkthrough for your own data, run from the CLI on a small real BEIR folder the test writes
(Python's library reference, as the bundled ``pydoc`` set holds it): encode -> fit-adapter auto -> eval ->
backfill with curves (a trial: status, search, eval, rollback) -> serve the index in place -> a live upgrade
through the service -> commit. No ``--dataset`` after the first command, and no traceback anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotswap.data import load_dataset
from tests.cli.helpers import ok, ok_json

pytestmark = pytest.mark.realmodel


def write_beir_folder(folder: Path, max_docs: int = 200) -> dict[str, int]:
    """A BEIR folder (corpus.jsonl with titles, queries.jsonl, qrels/train.tsv, qrels/test.tsv) of a seeded
    sample of the ``pydoc`` set; returns how many documents and queries of each split it holds."""
    ds = load_dataset("pydoc").subset(max_docs=max_docs, seed=3)
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for did, text in ds.corpus.items():
            f.write(json.dumps({"_id": did, "title": ds.titles.get(did, ""), "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for qid, text in {**ds.train_queries, **ds.queries}.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    for split, qrels in (("train", ds.train_qrels), ("test", ds.qrels)):
        rows = [f"{q}\t{d}\t{g}" for q, rel in qrels.items() for d, g in rel.items()]
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
    return {"documents": len(ds.corpus), "train": len(ds.train_queries), "test": len(ds.queries)}



def test_walkthrough_for_your_own_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sizes = write_beir_folder(tmp_path / "mydata")
    assert sizes["train"] >= 40 and sizes["test"] >= 20

    # 1. index the corpus with the model in production today (the only command that names the dataset)
    out = ok(["encode", "--dataset", "mydata", "--model", "static", "--index", "indexes/mine"])
    assert f"indexed {sizes['documents']:,} documents of mydata" in out

    # 2. fit every query adapter on train queries, keep the one that beats the old model on held-out ones
    out = ok(["fit-adapter", "--index", "indexes/mine", "--new", "minilm", "--kind", "auto", "--out", "adapters/auto"])
    assert "validation ndcg@10" in out and "Traceback" not in out
    saved = Path("adapters/auto/adapter.json").is_file()
    again = ok_json(["fit-adapter", "--index", "indexes/mine", "--new", "minilm", "--kind", "auto",
                   "--out", "adapters/again"])
    assert again["cached"], again  # the second fit reads every encoding from the cache

    # 3. what new-model queries on the old index would score, before anything is re-embedded
    mode = ["--mode", "adapted", "--adapter", "adapters/auto"] if saved else ["--mode", "old"]
    out = ok(["eval", "--index", "indexes/mine", "--model", "minilm", *mode])
    assert "nDCG@10" in out and "R@100" in out and "NFR" in out
    assert max(len(line) for line in out.splitlines()) <= 80

    # 4. re-embed half the corpus online, measuring quality along the way
    ok(["backfill", "--index", "indexes/mine", "--upgrade", "indexes/mine-up", "--new", "minilm",
        "--order", "uncertainty", "--until", "0.5", "--eval-every", "25%", "--modes", "merged",
        "--out", "results", "--batch-size", "50"])
    curve = json.loads(Path("results/backfill.json").read_text())["curves"][0]
    assert curve["mode"] == "merged" and [p["fraction"] for p in curve["points"]] == [0.0, 0.25, 0.5]
    status = ok_json(["upgrade", "status", "--index", "indexes/mine"])
    assert status["state"] == "paused" and status["done"] * 2 == status["total"] == sizes["documents"]
    hits = ok_json(["search", "raised when an attribute reference fails", "--upgrade", "indexes/mine-up", "--k", "3"])
    assert hits["mode"] == "merged" and len(hits["results"]) == 3 and hits["results"][0]["title"]

    # 5. a trial: look at it, then roll it back (or: upgrade resume, then upgrade commit)
    ok(["eval", "--upgrade", "indexes/mine-up", "--mode", "calibrated"])
    rolled = ok_json(["upgrade", "rollback", "--index", "indexes/mine"])
    assert rolled["model_id"].startswith("static@") and not Path("indexes/mine-up").exists()

    # 6. serve the index as it is (a collection in place, nothing re-encoded) and upgrade it live
    served = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.update(app=app))
    out = ok(["serve", "--store", "indexes/mine"])
    assert f"{sizes['documents']:,} items" in out
    out = ok(["fit-adapter", "--index", "indexes/mine", "--new", "minilm", "--kind", "auto",
              "--into", "indexes/mine", "minilm-auto"])
    from fastapi.testclient import TestClient

    from hotswap.serve.adapter_registry import registered

    with TestClient(served["app"]) as client:
        hit = client.post("/search", json={"query": "raised when an attribute reference fails", "k": 3}).json()
        assert hit["results"][0][0]["text"] and hit["mode"] == "old"
        kept = "minilm-auto" in registered(Path("indexes/mine"))  # auto registers only what beats the old model
        assert kept == saved  # the same validated choice as step 2
        body = {"model": "minilm", "order": "uncertainty", **({"adapter": "minilm-auto"} if kept else {})}
        started = client.post("/upgrade", json=body)
        assert started.status_code == 200, started.text
        served["app"].state.service.thread.join(timeout=300)
        assert client.get("/status").json()["state"] == "complete"
        assert client.post("/upgrade/commit").status_code == 200
        final = client.get("/status").json()
        assert final["state"] == "idle" and final["model_id"].startswith("minilm@")
