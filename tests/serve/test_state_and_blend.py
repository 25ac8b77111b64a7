"""One upgrade state in /status (``hotswap.upgrade.lifecycle``), controls refused where it forbids them (409), a
registered blend served in mode ``blended`` with the library's numbers, and hits that carry their text."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hotswap.errors import CorruptStoreError, HotswapError
from hotswap.search import QueryBlend, Searcher
from hotswap.serve import ConflictError, create_app
from hotswap.serve.adapter_registry import register
from hotswap.store import open_store
from hotswap.upgrade.lifecycle import STATES
from tests.serve.toy import NEW, OLD, V3, Services, corpus, create, loader

N = 96
service = Services(batch_size=8)


@pytest.fixture
def collection(tmp_path):
    create(tmp_path / "col", N)
    yield tmp_path / "col"
    service.close()


def no_other_state(status: dict) -> None:
    """``state`` is the only field naming a state: nothing in the upgrade part says another one."""
    assert status["state"] == "idle" or status["state"] in STATES
    if status["upgrade"] is not None:
        assert "state" not in status["upgrade"]
        assert status["upgrade"]["requested"] in ("running", "paused")


# ---- one state --------------------------------------------------------------------------------------------
def test_status_has_one_state_and_controls_follow_the_lifecycle(collection):
    svc = service(collection, delay=0.02)
    assert svc.status()["state"] == "idle"
    s = svc.start_upgrade(NEW, batch_size=8)
    no_other_state(s)
    assert s["state"] == "backfilling" and s["upgrade"]["requested"] == "running"
    with pytest.raises(ConflictError, match="cannot resume an upgrade that is backfilling"):
        svc.resume()
    s = svc.pause()
    no_other_state(s)
    assert s["state"] == "paused" and s["upgrade"]["requested"] == "paused"
    with pytest.raises(ConflictError, match=r"cannot pause an upgrade that is paused.*items re-embedded"):
        svc.pause()
    with pytest.raises(ConflictError, match="cannot commit an upgrade that is paused; commit needs every item"):
        svc.commit()
    svc.resume()
    svc.thread.join()
    s = svc.status()
    no_other_state(s)
    assert s["state"] == "complete"
    with pytest.raises(ConflictError, match="cannot pause an upgrade that is complete"):
        svc.pause()
    assert svc.commit()["state"] == "idle"


def test_a_run_stopped_without_resuming_is_interrupted_and_resumes(collection):
    svc = service(collection, delay=0.02)
    svc.start_upgrade(NEW, batch_size=8)
    service.close(svc)  # the recorded intent stays "running"
    again = service(collection, resume=False)
    s = again.status()
    no_other_state(s)
    assert s["state"] == "interrupted" and s["upgrade"]["requested"] == "running"
    with pytest.raises(ConflictError, match="cannot pause an upgrade that is interrupted"):
        again.pause()
    assert again.resume()["state"] in ("backfilling", "complete")
    again.thread.join()
    assert again.status()["state"] == "complete"


def test_controls_over_http_answer_409_with_the_message(collection):
    svc = service(collection, delay=0.02)
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        assert c.post("/upgrade/pause").status_code == 409  # no upgrade at all
        assert c.post("/upgrade", json={"model": NEW, "batch_size": 8}).json()["state"] == "backfilling"
        r = c.post("/upgrade/resume")
        assert r.status_code == 409 and "cannot resume an upgrade that is backfilling" in r.json()["detail"]
        assert c.post("/upgrade/pause").json()["state"] == "paused"
        r = c.post("/upgrade/pause")
        assert r.status_code == 409 and "only a running backfill can be paused" in r.json()["detail"]
        r = c.post("/upgrade/commit")
        assert r.status_code == 409 and "commit needs every item re-embedded" in r.json()["detail"]
        status = c.get("/status").json()
        assert status["state"] == "paused" and "state" not in status["upgrade"]
        assert c.post("/upgrade/rollback").json()["state"] == "idle"


# ---- blends -------------------------------------------------------------------------------------------------
def save_blend(collection, tmp_path, name: str = "bl", weight: float = 0.4, src: str = NEW) -> QueryBlend:
    """Fit an affine ``src`` -> old adapter, save it as a blend of ``weight`` and register it as ``name``."""
    from hotswap.adapters import make_adapter

    texts = list(corpus(N).values())
    new, old = loader()(src), loader()(OLD)
    adapter = make_adapter("affine").fit(new.encode(texts), old.encode(texts), new_model_id=new.id,
                                         old_model_id=old.id)
    blend = QueryBlend(adapter, weight)
    blend.save(tmp_path / name)
    register(collection, name, tmp_path / name)
    return blend


QUERIES = ["text of doc 3", "doc 41 text", "something else entirely", "text of doc 77"]


def test_a_registered_blend_is_served_blended_on_an_idle_collection(collection, tmp_path):
    save_blend(collection, tmp_path)
    assert (collection / "adapters" / "bl" / "blend.json").is_file()  # registered with the adapter's files
    svc = service(collection)
    s = svc.set_query_model(NEW, ["bl"])
    assert s["mode"] == "blended"
    mode, D, I = svc.search(QUERIES, 5)
    # the library's blended search on the same index, with the blend as saved
    enc_old, enc_new = loader()(OLD), loader()(NEW)
    with open_store(f"faiss://{collection / 'v1'}") as store:
        lib = Searcher(store, blend=QueryBlend.load(tmp_path / "bl"), old_encoder=enc_old, new_encoder=enc_new)
        D_lib, I_lib = lib.search_texts(QUERIES, 5, "blended")
        adapted = Searcher(store, adapter=QueryBlend.load(tmp_path / "bl").adapter, new_encoder=enc_new)
        D_ad, _ = adapted.search_texts(QUERIES, 5, "adapted")
    assert mode == "blended" and np.array_equal(I, I_lib) and np.allclose(D, D_lib, atol=1e-6)
    assert not np.allclose(D, D_ad, atol=1e-4)  # truly blended: the old query is mixed in
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        body = c.post("/search", json={"queries": QUERIES, "k": 5}).json()
    assert body["mode"] == "blended" and body["model_id"] == enc_new.id
    assert [[h["id"] for h in row] for row in body["results"]] == I_lib.tolist()
    assert np.allclose([[h["score"] for h in row] for row in body["results"]], D_lib, atol=1e-5)
    # it survives a restart, and a blend cannot be a link of a chain
    assert service(collection).default_mode == "blended"
    from hotswap.adapters import make_adapter

    texts = list(corpus(N).values())
    v3, new = loader()(V3), loader()(NEW)
    make_adapter("affine").fit(v3.encode(texts), new.encode(texts), new_model_id=v3.id,
                               old_model_id=new.id).save(tmp_path / "v3-new")
    register(collection, "v3-new", tmp_path / "v3-new")
    with pytest.raises(HotswapError, match="bl is a blend"):
        svc.set_query_model(V3, ["v3-new", "bl"])


def test_an_upgrade_with_a_blend_serves_blended_with_the_librarys_numbers(collection, tmp_path):
    save_blend(collection, tmp_path)
    svc = service(collection, delay=0.03)
    s = svc.start_upgrade(NEW, adapter="bl", batch_size=8)
    assert s["mode"] == "blended" and s["upgrade"]["blend_weight"] == pytest.approx(0.4)
    while len(svc.upgrade.new) < 24 and svc.thread.alive:
        svc.thread.join(0.01)
    svc.pause()
    assert 0 < len(svc.upgrade.new) < N  # both partitions hold items
    mode, D, I = svc.search(QUERIES, 6)
    enc_old, enc_new = loader()(OLD), loader()(NEW)
    blend = QueryBlend.load(tmp_path / "bl")
    lib = Searcher.for_upgrade(svc.upgrade, adapter=blend.adapter, blend=blend, old_encoder=enc_old,
                               new_encoder=enc_new)
    D_lib, I_lib = lib.search_texts(QUERIES, 6, "blended")
    assert mode == "blended" and np.array_equal(I, I_lib) and np.allclose(D, D_lib, atol=1e-6)
    # the new partition answers with the new model's query: a backfilled doc's own text finds it
    moved = svc.upgrade.new.ids[0]
    assert svc.search([corpus(N)[moved]], 1)[2][0, 0] == moved
    # adapted (the blend's adapter alone) is there too, and differs
    assert svc.search(QUERIES, 6, "adapted")[0] == "adapted"
    svc.rollback()


def test_a_blend_edited_after_registration_is_refused(collection, tmp_path):
    save_blend(collection, tmp_path)
    (collection / "adapters" / "bl" / "blend.json").write_text('{"weight": 1.0}')
    svc = service(collection)
    with pytest.raises(CorruptStoreError, match="blend.json changed"):
        svc.start_upgrade(NEW, adapter="bl")


# ---- hits with text -------------------------------------------------------------------------------------------
def test_hits_carry_the_first_200_characters_of_their_text(collection):
    svc = service(collection)
    long = "a long document " + "x" * 400
    svc.upsert_documents([("long-1", long)])
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        body = c.post("/search", json={"queries": ["text of doc 7", long], "k": 2}).json()
    first, second = body["results"]
    assert first[0] == {"id": "doc-0007", "score": pytest.approx(first[0]["score"]), "text": "text of doc 7"}
    assert second[0]["id"] == "long-1" and second[0]["text"] == long[:200]
    assert all(h["text"] == corpus(N)[h["id"]] for h in first)


def test_hits_without_a_text_in_the_served_corpus_have_text_null(collection):
    partial = {i: t for i, t in corpus(N).items() if i != "doc-0007"}
    service.close(service(collection, corpus=corpus(N)))
    svc = service(collection, corpus=partial)
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        hits = c.post("/search", json={"query": "text of doc 7", "k": 3}).json()["results"][0]
    assert hits[0]["id"] == "doc-0007" and hits[0]["text"] is None
    assert all(h["text"] == partial[h["id"]] for h in hits[1:])
