"""SearchService: search modes by state, the upgrade life cycle, refusals, and restart from serving.json."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hotswap.backfill import gallery_checksum
from hotswap.errors import CorruptStoreError, HotswapError, ModelMismatchError
from hotswap.serve import ConflictError, SearchService
from hotswap.serve.adapter_registry import register
from tests.serve.toy import NEW, OLD, V3, Services, corpus, create, loader

N = 120


BACKENDS = ["faiss", "qdrant", "milvus", "pg"]
service = Services(corpus=corpus(N), batch_size=16)


@pytest.fixture(params=BACKENDS)
def backend(request):
    yield request.param
    service.close()  # a database folder admits one client per process: release every service a test made


@pytest.fixture
def collection(tmp_path, backend):
    create(tmp_path / "col", N, backend=backend)
    return tmp_path / "col"


def top1(svc, ids, mode=None):
    texts = [corpus(N)[i] for i in ids]
    used, D, I = svc.search(texts, k=3, mode=mode)
    return used, list(I[:, 0])


def test_idle_serves_old_mode_and_refuses_upgrade_modes(collection):
    svc = service(collection)
    ids = list(corpus(N))[:10]
    assert top1(svc, ids) == ("old", ids)
    with pytest.raises(ConflictError, match="needs an upgrade in progress"):
        svc.search(["x"], 3, "merged")
    with pytest.raises(HotswapError, match="unknown mode"):
        svc.search(["x"], 3, "telepathy")
    assert svc.status()["state"] == "idle"


def test_full_life_cycle_answers_correctly_at_every_step_and_commits(collection, backend):
    svc = service(collection, delay=0.01)
    svc.start_upgrade(NEW, batch_size=8)
    ids = list(corpus(N))
    modes, fractions = set(), set()
    while svc.thread.alive:  # every document's own text finds it at rank 1 while it moves between partitions
        fractions.add(svc.status()["upgrade"]["fraction"])
        used, got = top1(svc, ids[::7])
        assert got == ids[::7]
        modes.add(used)
    svc.thread.join()
    assert "merged" in modes and modes <= {"merged", "new"} and len([f for f in fractions if 0 < f < 1]) >= 3
    assert svc.status()["state"] == "complete" and svc.default_mode == "new"
    assert top1(svc, ids[:20]) == ("new", ids[:20])
    committed = svc.commit()
    assert committed["version"] == 2 and committed["model_id"].startswith(NEW) and committed["state"] == "idle"
    assert top1(svc, ids[:20]) == ("old", ids[:20])  # the new index, searched by the new model alone
    state = json.loads((collection / "serving.json").read_text())
    # FAISS serves the upgrade's own new store; a database keeps both models' vectors in v1/
    assert re.fullmatch(r"upgrade-2-[0-9a-f]{8}/new" if backend == "faiss" else "v1", state["index"])
    assert [h["version"] for h in state["history"]] == [1, 2] and state["backend"] == backend
    # a second upgrade may start once the first is committed, from the committed model
    with pytest.raises(ConflictError, match="already served by"):
        svc.start_upgrade(NEW)


def test_pause_resume_and_commit_only_when_complete(collection):
    svc = service(collection, delay=0.02)
    svc.start_upgrade(NEW, batch_size=8)
    svc.pause()
    s = svc.status()
    assert s["state"] == "paused" and s["upgrade"]["done"] < N and not s["upgrade"]["running"]
    with pytest.raises(ConflictError, match="commit needs every item"):
        svc.commit()
    with pytest.raises(ConflictError, match="in progress"):
        svc.start_upgrade(NEW)
    svc.resume()
    svc.thread.join()
    assert svc.commit()["version"] == 2


def test_rollback_returns_to_the_old_model_with_nothing_lost(collection, backend):
    svc = service(collection, delay=0.02)
    ids = svc.index.ids
    before = svc.index.get(ids)
    svc.start_upgrade(NEW, batch_size=8)
    s = svc.rollback()
    assert s["state"] == "idle" and s["model_id"].startswith(OLD) and s["version"] == 1
    assert not list(collection.glob("upgrade-*"))
    assert svc.index.ids == ids and np.array_equal(svc.index.get(ids), before)
    assert top1(svc, ids[:15]) == ("old", ids[:15])
    with pytest.raises(ConflictError, match="nothing to roll back"):
        svc.rollback()
    if backend != "faiss":  # the new model's vectors left the database: the same upgrade can start again
        svc.start_upgrade(NEW, batch_size=8)
        svc.rollback()


def test_restart_resumes_a_running_upgrade_and_keeps_a_paused_one(collection, tmp_path):
    svc = service(collection, delay=0.02)
    svc.start_upgrade(NEW, batch_size=8)
    svc.close()  # like a shutdown: the recorded intent stays "running"
    done = svc.thread.status.done if svc.thread.status else 0
    again = service(collection)
    assert again.thread.alive or again.status()["upgrade"]["done"] == N
    again.thread.join()
    assert again.status()["upgrade"]["done"] == N > done
    # a clean run to compare with
    clean_path = tmp_path / "clean"
    create(clean_path, N)
    clean = service(clean_path)
    clean.start_upgrade(NEW, batch_size=8)
    clean.thread.join()
    assert gallery_checksum(again.upgrade) == gallery_checksum(clean.upgrade)
    # paused stays paused
    third = service(clean_path, delay=0.02)
    third.rollback()
    third.start_upgrade(NEW, batch_size=8)
    third.pause()
    assert not service(clean_path).thread.alive


def test_refusals_name_the_problem(collection, tmp_path):
    svc = service(collection)
    with pytest.raises(HotswapError, match="unknown model 'no-such-model'; this server offers toy-old"):
        svc.start_upgrade("no-such-model")
    with pytest.raises(HotswapError, match="unknown order 'chaos'; the service plans with .*popularity"):
        svc.start_upgrade(NEW, order="chaos")
    with pytest.raises(ConflictError, match="nothing to commit"):
        svc.commit()
    # a collection opened with a model whose weights changed is refused
    state = json.loads((collection / "serving.json").read_text())
    state["model_id"] = "toy-old@2"
    (collection / "serving.json").write_text(json.dumps(state))
    with pytest.raises(ModelMismatchError, match="toy-old@2"):
        service(collection)
    (collection / "serving.json").write_text('{"format_version": 1, "vers')
    with pytest.raises(CorruptStoreError, match="serving.json"):
        service(collection)
    with pytest.raises(CorruptStoreError, match="missing"):
        service(tmp_path / "nowhere")


def test_truncated_index_file_is_a_clear_startup_error(collection, backend):
    if backend == "pg":  # no index file: the database lost a row behind hotswap's back
        from hotswap.store import open_store

        with open_store(f"pg://{collection / 'v1'}") as store:
            store.client.conn.execute(f"DELETE FROM {store.table} WHERE id = %s", (store.ids[0],))
        with pytest.raises(CorruptStoreError, match="holds .* rows but the store counts"):
            service(collection)
        return
    name = "seg-*.vectors.npy" if backend == "faiss" else "hotswap-store.json"
    victim = sorted((collection / "v1").glob(name))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(CorruptStoreError, match=victim.name):
        service(collection)


def test_upgrade_with_adapter_searches_adapted_with_one_encoding(collection, tmp_path):
    from hotswap.adapters import make_adapter

    svc = service(collection, delay=0.01)
    docs = corpus(N)
    texts = list(docs.values())
    X_new, X_old = loader()(NEW).encode(texts), loader()(OLD).encode(texts)
    adapter = make_adapter("affine").fit(X_new, X_old, new_model_id=loader()(NEW).id,
                                         old_model_id=loader()(OLD).id)
    adapter.save(tmp_path / "ad")
    register(collection, "ad", tmp_path / "ad")
    wrong = make_adapter("affine").fit(X_new, X_old, new_model_id="other@1", old_model_id=loader()(OLD).id)
    wrong.save(tmp_path / "wrong")
    register(collection, "wrong", tmp_path / "wrong")
    with pytest.raises(ModelMismatchError, match="other@1"):
        svc.start_upgrade(NEW, adapter="wrong")
    svc.start_upgrade(NEW, adapter="ad", batch_size=8)
    used, D, I = svc.search(texts[:5], k=2)
    assert used == "adapted" and D.shape == (5, 2) and np.isfinite(D).all()
    svc.rollback()


def fit_saved(collection, tmp_path, src: str, dst: str, name: str) -> str:
    """Fit an affine src -> dst adapter, register it in the collection as ``name``; returns the name."""
    from hotswap.adapters import make_adapter

    texts = list(corpus(N).values())
    a, b = loader()(src), loader()(dst)
    make_adapter("affine").fit(a.encode(texts), b.encode(texts), new_model_id=a.id,
                               old_model_id=b.id).save(tmp_path / name)
    register(collection, name, tmp_path / name)
    return name


def test_query_model_through_a_chain_of_adapters_without_reindexing(collection, tmp_path):
    v3_new = fit_saved(collection, tmp_path, V3, NEW, "v3-new")
    new_old = fit_saved(collection, tmp_path, NEW, OLD, "new-old")
    svc = service(collection)
    with pytest.raises(ModelMismatchError, match="broken chain"):
        svc.set_query_model(V3, [new_old, v3_new])  # wrong order: the links do not chain up
    with pytest.raises(ModelMismatchError, match="must reach"):
        svc.set_query_model(V3, [new_old])  # maps toy-new queries, not toy-v3's
    s = svc.set_query_model(V3, [v3_new, new_old])
    assert s["mode"] == "adapted" and s["query"]["chain"] == ["toy-v3@1", "toy-new@1", "toy-old@1"]
    used, D, I = svc.search(["text of doc 5"], k=3)
    assert used == "adapted" and I.shape == (1, 3) and all(i in corpus(N) for i in I[0])
    assert svc.search(["text of doc 5"], k=1, mode="old")[2][0, 0] == "doc-0005"
    # the chain survives a restart, then a backfill upgrade commits and the new model answers alone
    again = service(collection)
    assert again.default_mode == "adapted" and again.status()["query"]["model_id"] == "toy-v3@1"
    again.start_upgrade(NEW, batch_size=32)
    again.thread.join()
    assert again.commit()["query"] is None and again.default_mode == "old"
    assert again.reset_query_model()["mode"] == "old"


@pytest.mark.realmodel
def test_concurrent_searches_with_a_real_tokenizer_all_succeed(tmp_path):
    """The static model's tokenizer refuses concurrent use; the encoder makes threads take turns."""
    from concurrent.futures import ThreadPoolExecutor

    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.serve import Collection

    ds = load_dataset("debian", max_docs=200)
    Collection.create(tmp_path / "col", "static", load_encoder("static"), ds.corpus)
    svc = SearchService(tmp_path / "col", ds.corpus)
    texts = (list(ds.queries.values()) * 2)[:96]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: svc.search([t], 5)[2], texts))
    assert len(results) == 96 and all(r.shape == (1, 5) for r in results)
    assert [r[0, 0] for r in results] == [svc.search([t], 5)[2][0, 0] for t in texts]


def test_queries_first_backfills_in_a_niced_worker_to_the_same_index(tmp_path):
    paths = [tmp_path / "plain", tmp_path / "niced"]
    done = []
    for path, first in zip(paths, (False, True)):
        create(path, N)
        svc = service(path, queries_first=first)
        svc.start_upgrade(NEW, batch_size=16)
        assert svc.status()["upgrade"]["worker"] == ("niced process" if first else "thread")
        svc.thread.join()
        assert svc.status()["state"] == "complete"
        done.append(gallery_checksum(svc.upgrade))
        service.close(svc)
    assert done[0] == done[1]
