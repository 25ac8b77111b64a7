"""The documents API: POST / DELETE /documents and GET /documents/{id}, with keys, limits and error codes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hotswap.serve import SearchService, create_app
from hotswap.serve.schemas import MAX_WRITE_BATCH
from tests.serve.toy import MODELS, NEW, create, loader

N = 40
ADMIN, READ = {"Authorization": "Bearer admin-secret"}, {"Authorization": "Bearer read-secret"}


@pytest.fixture
def client(tmp_path):
    create(tmp_path / "col", N)
    service = SearchService(tmp_path / "col", models=MODELS, encoder_loader=loader(0.01), batch_size=4)
    with TestClient(create_app(service, api_key="admin-secret", read_key="read-secret"),
                    raise_server_exceptions=False) as c:
        yield c


def top1(c, text: str) -> str:
    return c.post("/search", json={"query": text, "k": 1}, headers=READ).json()["results"][0][0]["id"]


def test_write_read_and_delete_with_keys(client):
    c, body = client, {"documents": [{"id": "doc-0001", "text": "new words"}, {"id": "x/y", "text": "slashed id"}]}
    assert c.post("/documents", json=body).status_code == 401
    assert c.post("/documents", json=body, headers=READ).status_code == 403
    r = c.post("/documents", json=body, headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"upserted": 2, "items": N + 1}
    assert c.get("/documents/x/y", headers=READ).json() == {"id": "x/y", "text": "slashed id"}
    assert top1(c, "new words") == "doc-0001" and top1(c, "slashed id") == "x/y"
    assert c.request("DELETE", "/documents", json={"ids": ["x/y"]}, headers=READ).status_code == 403
    r = c.request("DELETE", "/documents", json={"ids": ["x/y", "nope"]}, headers=ADMIN)
    assert r.json() == {"deleted": 1, "items": N}
    r = c.get("/documents/x/y", headers=READ)
    assert r.status_code == 404 and "x/y" in r.json()["detail"]
    assert c.get("/healthz").json()["items"] == N


def test_writes_during_an_upgrade_over_http(client):
    c = client
    assert c.post("/upgrade", json={"model": NEW, "batch_size": 4}, headers=ADMIN).status_code == 200
    r = c.post("/documents", json={"documents": [{"id": "during", "text": "written while upgrading"}]},
               headers=ADMIN)
    assert r.status_code == 200 and r.json()["items"] == N + 1
    assert top1(c, "written while upgrading") == "during"
    c.request("DELETE", "/documents", json={"ids": ["doc-0002"]}, headers=ADMIN)
    assert c.get("/status", headers=READ).json()["items"] == N


@pytest.mark.parametrize("body, words", [
    ({"documents": []}, "at least 1"),
    ({"documents": [{"id": "a", "text": "   "}]}, "blank"),
    ({"documents": [{"id": "", "text": "t"}]}, "at least 1"),
    ({"documents": [{"id": 5, "text": "t"}]}, "string"),
    ({"documents": [{"id": "a", "text": "t", "extra": 1}]}, "Extra inputs"),
    ({"documents": [{"id": f"d{j}", "text": "t"} for j in range(MAX_WRITE_BATCH + 1)]}, f"at most {MAX_WRITE_BATCH}"),
])
def test_bad_writes_are_422_and_change_nothing(client, body, words):
    r = client.post("/documents", json=body, headers=ADMIN)
    assert r.status_code == 422 and words in r.text
    assert client.get("/healthz").json()["items"] == N
    r = client.request("DELETE", "/documents", json={"ids": []}, headers=ADMIN)
    assert r.status_code == 422
