"""The HTTP API: endpoints, the upgrade over HTTP, metrics, and malformed requests (4xx with a message, never 5xx)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from hotswap.serve import SearchService, create_app
from tests.serve.toy import MODELS, NEW, corpus, create, loader

N = 80


@pytest.fixture
def client(tmp_path):
    create(tmp_path / "col", N)
    service = SearchService(tmp_path / "col", corpus(N), models=MODELS, encoder_loader=loader(0.005), batch_size=8)
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c


def test_search_status_health_docs(client):
    r = client.post("/search", json={"query": "text of doc 3", "k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "old" and body["results"][0][0]["id"] == "doc-0003" and len(body["results"][0]) == 2
    r = client.post("/search", json={"queries": ["text of doc 1", "text of doc 2"], "k": 1})
    assert [row[0]["id"] for row in r.json()["results"]] == ["doc-0001", "doc-0002"]
    assert client.get("/healthz").json()["items"] == N
    assert client.get("/status").json()["state"] == "idle"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/upgrade", "/upgrade/pause", "/upgrade/resume", "/upgrade/rollback", "/upgrade/commit",
            "/status", "/healthz", "/metrics"} <= set(paths)
    assert paths["/upgrade/commit"]["post"].get("parameters", []) == []  # control calls take no parameters


def test_upgrade_over_http_then_commit(client):
    assert client.post("/upgrade/commit").status_code == 409
    r = client.post("/upgrade", json={"model": NEW, "batch_size": 8})
    assert r.status_code == 200 and r.json()["state"] in ("backfilling", "complete")
    assert client.post("/upgrade", json={"model": NEW}).status_code == 409
    deadline = time.monotonic() + 60
    while client.get("/status").json()["state"] != "complete" and time.monotonic() < deadline:
        hit = client.post("/search", json={"query": "text of doc 7", "k": 1}).json()
        assert hit["results"][0][0]["id"] == "doc-0007"
        time.sleep(0.02)
    status = client.get("/status").json()
    assert status["state"] == "complete" and status["upgrade"]["fraction"] == 1.0 and status["mode"] == "new"
    assert client.post("/upgrade/commit").json()["version"] == 2
    r = client.post("/search", json={"query": "text of doc 7", "k": 1}).json()
    assert r["model_id"].startswith(NEW) and r["results"][0][0]["id"] == "doc-0007"
    metrics = client.get("/metrics").text
    assert 'hotswap_requests_total{endpoint="/search",status="200"}' in metrics
    assert "hotswap_collection_version 2.0" in metrics and "hotswap_search_seconds_bucket" in metrics


@pytest.mark.parametrize("body, status, words", [
    ({"query": ""}, 422, "empty"),
    ({"query": "   "}, 422, "blank"),
    ({"query": 5}, 422, "string"),
    ({"query": "x", "k": "10"}, 422, "integer"),
    ({"query": "x", "k": 0}, 422, "greater than or equal"),
    ({"query": "x", "k": 10 ** 9}, 422, "less than or equal"),
    ({"query": "x", "mode": "telepathy"}, 422, "mode"),
    ({"query": "x", "queries": ["y"]}, 422, "exactly one"),
    ({}, 422, "exactly one"),
    ({"queries": []}, 422, "at least 1"),
    ({"queries": ["x"] * 65}, 422, "at most 64"),
    ({"query": "x" * 5000}, 422, "at most 4096"),
    ({"query": "x", "colour": "red"}, 422, "extra"),
    ({"query": "x", "mode": "merged"}, 409, "needs an upgrade"),
])
def test_malformed_search_requests_get_4xx_with_a_message(client, body, status, words):
    r = client.post("/search", json=body)
    assert r.status_code == status, r.text
    assert words.lower() in r.text.lower()


def test_other_bad_requests(client):
    r = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/search", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert client.get("/search").status_code == 405
    assert client.get("/no/such/path/123").status_code == 404
    metrics = client.get("/metrics").text
    assert 'endpoint="unmatched",status="404"' in metrics and "/no/such/path" not in metrics
    assert client.post("/upgrade", json={"model": "no-such-model"}).status_code == 400
    assert client.post("/upgrade", json={"model": NEW, "order": "chaos"}).status_code == 422
    assert client.post("/upgrade/pause").status_code == 409
    assert client.post("/upgrade/rollback").status_code == 409
    assert client.post("/query-model", json={"model": NEW, "adapters": []}).status_code == 422
    r = client.post("/query-model", json={"model": NEW, "adapters": ["/no/such/adapter"]})
    assert r.status_code in (400, 404) and "adapter" in r.text.lower()
