"""The service as a hostile client finds it: keys, hosts, origins, body size (chunked too), strict JSON, no echo,
cost and concurrency limits, and failure order (commit verifies first, rollback waits for the backfill)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hotswap.errors import CorruptStoreError
from hotswap.serve import ConflictError, SearchService, create_app
from hotswap.serve.guard import RejectedJSON, check_json, host_name
from tests.serve.toy import MODELS, NEW, corpus, create, loader

N = 60
ADMIN, READ = {"Authorization": "Bearer admin-secret"}, {"Authorization": "Bearer read-secret"}


@pytest.fixture
def collection(tmp_path):
    create(tmp_path / "col", N)
    return tmp_path / "col"


def client_for(collection, delay=0.0, **kw) -> TestClient:
    service = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(delay), batch_size=8)
    return TestClient(create_app(service, **kw), raise_server_exceptions=False)


def test_keys_separate_readers_from_admins(collection):
    with client_for(collection, api_key="admin-secret", read_key="read-secret") as c:
        assert c.get("/healthz").status_code == 200  # open, for probes
        for path in ("/status", "/metrics"):
            assert c.get(path).status_code == 401
            assert c.get(path, headers=READ).status_code == 200
        r = c.post("/search", json={"query": "text of doc 3"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/search", json={"query": "text of doc 3"}, headers={"Authorization": "Bearer nope"}
                      ).status_code == 403
        assert c.post("/search", json={"query": "text of doc 3"}, headers=READ).json()["results"][0][0]["id"] == \
            "doc-0003"
        assert c.post("/search", json={"query": "text of doc 3"}, headers=ADMIN).status_code == 200
        for path, body in (("/upgrade", {"model": NEW}), ("/upgrade/rollback", None), ("/query-model/reset", None)):
            assert c.post(path, json=body).status_code == 401
            r = c.post(path, json=body, headers=READ)
            assert r.status_code == 403 and "admin key" in r.json()["detail"]
        assert c.post("/upgrade", json={"model": NEW, "batch_size": 8}, headers=ADMIN).status_code == 200
        assert c.post("/upgrade/rollback", headers=ADMIN).json()["state"] == "idle"


def test_hosts_and_origins(collection):
    with client_for(collection) as c:
        r = c.post("/search", json={"query": "x"}, headers={"Host": "evil.example:8000"})
        assert r.status_code == 400 and "Host" in r.json()["detail"]
        # a form POST from a foreign page: refused before it can touch the upgrade
        c.post("/upgrade", json={"model": NEW, "batch_size": 8})
        r = c.post("/upgrade/rollback", data={"a": "b"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
        assert c.get("/status").json()["state"] != "idle"  # still upgrading
        assert c.post("/upgrade/rollback", headers={"Origin": "http://localhost:8000"}).status_code == 200
    assert host_name("[::1]:8000") == "::1" and host_name("Example.org:80") == "example.org"


def test_bodies_are_counted_as_they_arrive_and_never_echoed(collection):
    with client_for(collection) as c:
        def chunks():
            for _ in range(64):
                yield b"x" * 65536  # 4 MiB, no Content-Length
        r = c.post("/search", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and len(r.content) < 300
        big = "y" * 500_000
        r = c.post("/search", json={"query": 5, "k": big})
        assert r.status_code == 422 and big[:100] not in r.text and len(r.content) < 2000
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize("raw, words", [
    (b'{"query": "x", "k": NaN}', "NaN"), (b'{"query": "x", "k": Infinity}', "Infinity"),
    (b'{"query": "x", "k": 1e400}', "overflows"), (b'{"query": "\\ud800"}', "surrogate"),
    (b'{"query": "\xff"}', "UTF-8")])
def test_non_standard_json_is_a_400(collection, raw, words):
    with client_for(collection) as c:
        r = c.post("/search", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 400 and words in r.json()["detail"]
    with pytest.raises(RejectedJSON):
        check_json(raw)


def test_negative_seed_and_cost_limit(collection):
    with client_for(collection) as c:
        r = c.post("/upgrade", json={"model": NEW, "seed": -1})
        assert r.status_code == 422 and "seed" in r.text
        r = c.post("/search", json={"queries": ["a" * 4096] * 64, "k": 1000})
        assert r.status_code == 422 and "costs" in r.json()["detail"]


def test_concurrent_searches_beyond_the_limit_get_429(collection):
    service = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(), batch_size=8)
    real = service.search

    def slow(*a, **kw):
        time.sleep(0.4)
        return real(*a, **kw)
    service.search = slow
    with TestClient(create_app(service, max_searches=1, queue_wait_s=0.05)) as c:
        out = []
        threads = [threading.Thread(target=lambda: out.append(c.post("/search", json={"query": "text of doc 1"})))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    codes = sorted(r.status_code for r in out)
    assert codes == [200, 429]
    busy = next(r for r in out if r.status_code == 429)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["detail"]


def test_commit_verifies_the_new_index_before_switching(collection):
    svc = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(), batch_size=8)
    svc.start_upgrade(NEW, batch_size=8)
    svc.thread.join()
    seg = sorted(svc.upgrade.new.path.glob("seg-*.vectors.npy"))[0]
    data = bytearray(seg.read_bytes())
    data[-8:] = b"\x00\x00\xc0\x7f" * 2  # NaN bits, same size: only the checksum can tell
    seg.write_bytes(bytes(data))
    before = (collection / "serving.json").read_text()
    with pytest.raises(CorruptStoreError, match=seg.name):
        svc.commit()
    assert (collection / "serving.json").read_text() == before  # still the old index, still upgrading
    assert svc.search(["text of doc 4"], 1, "old")[2][0, 0] == "doc-0004"
    svc.close()
    again = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(), batch_size=8)  # restarts
    assert again.status()["version"] == 1
    again.close()


def test_start_up_verifies_checksums(collection):
    seg = sorted((collection / "v1").glob("seg-*.vectors.npy"))[0]
    data = bytearray(seg.read_bytes())
    data[-4:] = b"\x00\x00\xc0\x7f"
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="sha256|checksum"):
        SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(), batch_size=8)


def test_rollback_waits_for_the_backfill_and_each_upgrade_gets_its_own_folder(collection):
    svc = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(0.05), batch_size=8)
    svc.start_upgrade(NEW, batch_size=8)
    first = json.loads((collection / "serving.json").read_text())["upgrade"]["folder"]
    svc.thread.pause = lambda timeout=600.0: None  # a batch that does not end in time
    with pytest.raises(ConflictError, match="still finishing"):
        svc.rollback()
    assert svc.status()["upgrade"] is not None and (collection / first).is_dir()
    del svc.thread.pause
    svc.rollback()
    svc.start_upgrade(NEW, batch_size=8)
    second = json.loads((collection / "serving.json").read_text())["upgrade"]["folder"]
    assert second != first and second.startswith("upgrade-2-")
    svc.thread.join()
    assert np.isfinite(svc.upgrade.new.get(svc.upgrade.new.ids)).all()
    svc.close()


def test_serve_refuses_a_public_address_without_keys(tmp_path):
    from typer.testing import CliRunner

    from hotswap.cli import app

    res = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "c"), "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "without keys" in res.output
    res = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "c"), "--read-key", "r"])
    assert res.exit_code == 2 and "--api-key" in res.output


def test_verify_verb_finds_a_flipped_byte(collection):
    from typer.testing import CliRunner

    from hotswap.cli import app

    res = CliRunner().invoke(app, ["verify", str(collection)])
    assert res.exit_code == 0 and "ok:" in res.output
    seg = sorted((collection / "v1").glob("seg-*.vectors.npy"))[0]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 1
    seg.write_bytes(bytes(data))
    res = CliRunner().invoke(app, ["verify", str(collection)])
    assert res.exit_code == 2 and "sha256" in res.output


def test_clients_name_registered_adapters_and_offered_models_never_paths(collection, tmp_path):
    from hotswap.adapters import make_adapter
    from hotswap.errors import HotswapError
    from hotswap.serve.adapter_registry import register
    from tests.serve.toy import OLD

    texts = list(corpus(N).values())
    new, old = loader()(NEW), loader()(OLD)
    # the reproduction: zero weights + a bias equal to one document's vector makes that document win every search
    planted = make_adapter("affine").fit(new.encode(texts), old.encode(texts), new_model_id=new.id,
                                         old_model_id=old.id)
    planted.save(tmp_path / "planted")
    svc = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(), batch_size=8)
    with pytest.raises(HotswapError, match="not a path"):
        svc.start_upgrade(NEW, adapter=str(tmp_path / "planted"))
    with pytest.raises(HotswapError, match="no adapter 'planted' is registered"):
        svc.set_query_model(NEW, ["planted"])
    with pytest.raises(HotswapError, match="unknown model '/tmp/evil'"):
        svc.start_upgrade("/tmp/evil")
    register(collection, "fine", tmp_path / "planted")
    with pytest.raises(FileExistsError, match="already registered"):
        register(collection, "fine", tmp_path / "planted")
    weights = next(p for p in (collection / "adapters" / "fine").iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # swapped after registration
    with pytest.raises(CorruptStoreError, match="changed since it was registered"):
        svc.set_query_model(NEW, ["fine"])
    svc.close()
    # a state file naming a path outside the collection is refused at start-up
    state = json.loads((collection / "serving.json").read_text())
    state["index"] = "../../elsewhere"
    (collection / "serving.json").write_text(json.dumps(state))
    with pytest.raises(CorruptStoreError, match="outside the collection"):
        SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader(), batch_size=8)
