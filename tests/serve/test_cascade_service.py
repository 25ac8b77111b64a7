"""The service's cascade mode: default during an upgrade that asks for it, write-back into the running backfill
(every item stored once), demand order, status and metrics counts, and HTTP validation of its options."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from hotswap.errors import HotswapError
from hotswap.serve import ConflictError, SearchService, create_app
from tests.serve.toy import MODELS, NEW, Services, corpus, create, loader

N = 120
service = Services(corpus=corpus(N), batch_size=8)


@pytest.fixture(params=["faiss", "qdrant", "milvus", "pg"])
def collection(tmp_path, request):
    create(tmp_path / "col", N, backend=request.param)
    yield tmp_path / "col"
    service.close()


def test_cascade_serves_an_upgrade_and_feeds_its_backfill(collection):
    svc = service(collection, delay=0.02)
    svc.start_upgrade(NEW, batch_size=8, order="demand", cascade={"candidates": 10})
    ids, texts = list(corpus(N)), list(corpus(N).values())
    assert svc.default_mode == "cascade"
    seen, modes = 0, set()
    while svc.thread.alive:  # each document's own text finds it first, wherever it is in the upgrade
        used, _, I = svc.search(texts[seen % N: seen % N + 5], k=3)
        assert list(I[:, 0]) == ids[seen % N: seen % N + 5]
        modes.add(used)
        seen += 5
    assert "cascade" in modes and modes <= {"cascade", "new"}
    used, _, I = svc.search(texts[:4], k=3, mode="cascade", encode_budget=0)
    assert list(I[:, 0]) == ids[:4]
    status = svc.status()
    assert status["state"] == "complete" and status["cascade"]["queries"] >= 10
    assert status["cascade"]["settings"] == {"candidates": 10, "encode_budget": None, "candidate_query": "auto"}
    assert status["cascade"]["encoded"] > 0 and 0 <= status["cascade"]["share_already_encoded"] <= 1
    assert json.loads((collection / "serving.json").read_text())["upgrade"]["cascade"]["candidates"] == 10
    new_ids = svc.upgrade.new.ids
    assert len(new_ids) == len(set(new_ids)) == N  # write-back and backfill: every item once
    assert svc.commit()["version"] == 2


def test_cascade_write_back_is_kept_at_pause(collection):
    svc = service(collection, delay=0.05)
    svc.start_upgrade(NEW, batch_size=8, cascade={})
    svc.pause()
    before = len(svc.upgrade.new)
    texts = list(corpus(N).values())
    svc.search(texts[:4], k=5, candidates=5)  # the default mode: cascade (no adapter: old candidate queries)
    assert svc.status()["cascade"]["written"] == 0  # buffered: fewer than WRITE_BACK_EVERY encodings
    with pytest.raises(ConflictError, match="cannot pause an upgrade that is paused"):
        svc.pause()  # one state machine: only a running backfill can be paused
    svc.resume()
    svc.pause()  # flushes what the searches encoded
    written = svc.status()["cascade"]["written"]
    assert written > 0 and len(svc.upgrade.new) >= before + written
    with pytest.raises(HotswapError, match="options of mode 'cascade'"):
        svc.search(texts[:1], k=3, mode="merged", candidates=5)
    svc.resume()
    svc.thread.join()
    assert len(set(svc.upgrade.new.ids)) == N and svc.status()["state"] == "complete"


def test_http_cascade_options_and_metrics(tmp_path):
    create(tmp_path / "col", 80)
    svc = SearchService(tmp_path / "col", corpus(80), models=MODELS, encoder_loader=loader(0.01), batch_size=8)
    with TestClient(create_app(svc), raise_server_exceptions=False) as client:
        assert client.post("/upgrade", json={"model": NEW, "batch_size": 8,
                                             "cascade": {"candidates": 12, "encode_budget": 4}}).status_code == 200
        r = client.post("/search", json={"query": "text of doc 7", "k": 2})
        assert r.status_code == 200 and r.json()["mode"] == "cascade", r.text
        assert r.json()["results"][0][0]["id"] == "doc-0007" and r.json()["model_id"].startswith(NEW)
        r = client.post("/search", json={"query": "text of doc 9", "k": 2, "mode": "cascade", "candidates": 30,
                                         "encode_budget": None, "candidate_query": "old"})
        assert r.status_code == 200 and r.json()["results"][0][0]["id"] == "doc-0009"
        for body, words in [({"candidates": 0}, "candidates"), ({"encode_budget": -1}, "encode_budget"),
                            ({"candidate_query": "best"}, "candidate_query"), ({"candidates": "5"}, "candidates")]:
            r = client.post("/search", json={"query": "x", "mode": "cascade", **body})
            assert r.status_code == 422 and words in r.text
        r = client.post("/search", json={"query": "x", "mode": "merged", "candidates": 5})
        assert r.status_code == 400 and "options of mode 'cascade'" in r.json()["detail"]
        r = client.post("/search", json={"query": "x", "mode": "cascade", "candidate_query": "adapted"})
        assert r.status_code == 400 and "needs a fitted adapter" in r.json()["detail"]
        status = client.get("/status").json()
        assert status["cascade"]["settings"]["candidates"] == 12 and status["cascade"]["queries"] >= 2
        metrics = client.get("/metrics").text
        assert "hotswap_cascade_encodes_per_query" in metrics and "hotswap_cascade_share_already_encoded" in metrics
