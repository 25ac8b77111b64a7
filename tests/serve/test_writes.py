"""SearchService writes on every backend: upserts and deletes when idle, during an upgrade (dual-write, the
backfill never resurrecting or overwriting), through commit and rollback, and a write cut short by a kill
(replayed from the docstore's journal at the next start)."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.serve import ConflictError, SearchService
from hotswap.serve.docstore import DocStore
from hotswap.serve.service import NotFoundError
from tests.serve.toy import MODELS, NEW, OLD, corpus, create, loader

N = 60
OPEN: list[SearchService] = []


@pytest.fixture(params=["faiss", "qdrant", "milvus", "pg"])
def collection(request, tmp_path):
    create(tmp_path / "col", N, backend=request.param)
    yield tmp_path / "col"
    while OPEN:
        OPEN.pop().close()


def service(path, delay: float = 0.0, **kw) -> SearchService:
    svc = SearchService(path, models=MODELS, encoder_loader=loader(delay), batch_size=4, **kw)
    OPEN.append(svc)
    return svc


def reopen(svc: SearchService, **kw) -> SearchService:
    OPEN.remove(svc)
    svc.close()
    return service(svc.collection.path, **kw)


def top1(svc, texts, mode=None) -> list[str]:
    return list(svc.search(texts, k=3, mode=mode)[2][:, 0])


def expect_index(svc, live: dict[str, str]) -> None:
    """The served index holds exactly ``live``'s ids, each with the vector of its latest text."""
    index = svc.upgrade.old if svc.upgrade is not None else svc.index
    assert sorted(index.ids) == sorted(live) and svc.items == len(live)
    model = loader()(svc.collection.state["model"])
    np.testing.assert_allclose(index.get(list(live)), model.encode(list(live.values())), atol=1e-5)
    assert top1(svc, list(live.values())[:12], mode="old") == list(live)[:12]


def expect_new(svc, live: dict[str, str]) -> None:
    """The upgrade's new index holds ``live``'s ids once each, with the new model's vectors of their texts."""
    new = svc.upgrade.new
    assert sorted(new.ids) == sorted(live) and len(new.ids) == len(set(new.ids))
    np.testing.assert_allclose(new.get(list(live)), loader()(NEW).encode(list(live.values())), atol=1e-5)


def test_idle_writes_are_served_and_survive_a_restart(collection):
    svc = service(collection)
    live = corpus(N)
    out = svc.upsert_documents([("doc-0003", "a brand new text for three"), ("new-1", "an added document"),
                                ("new-1", "the added document, second version")])
    assert out == {"upserted": 2, "items": N + 1}
    live.update({"doc-0003": "a brand new text for three", "new-1": "the added document, second version"})
    assert svc.delete_documents(["doc-0005", "doc-0005", "nope"]) == {"deleted": 1, "items": N}
    del live["doc-0005"]
    assert svc.get_document("new-1")["text"] == live["new-1"]
    with pytest.raises(NotFoundError, match="doc-0005"):
        svc.get_document("doc-0005")
    assert top1(svc, ["text of doc 3"]) != ["doc-0003"]  # the old text no longer finds it
    expect_index(svc, live)
    expect_index(reopen(svc), live)


def test_writes_during_an_upgrade_reach_both_models_and_commit(collection):
    svc = service(collection, delay=0.02)
    svc.start_upgrade(NEW, batch_size=4)
    live, step = corpus(N), 0
    while svc.thread.alive or step < 6:  # writes land before, between and after backfilled batches
        doc = f"doc-{(7 * step) % N:04d}"
        if step % 3 == 2:
            svc.delete_documents([doc])
            live.pop(doc, None)
        else:
            svc.upsert_documents([(doc, f"rewritten {step} of {doc}"), (f"added-{step}", f"added text {step}")])
            live.update({doc: f"rewritten {step} of {doc}", f"added-{step}": f"added text {step}"})
        step += 1
    svc.thread.join()
    assert svc.status()["state"] == "complete"
    expect_index(svc, live)
    expect_new(svc, live)
    svc.commit()
    again = reopen(svc)
    assert again.collection.state["model"] == NEW
    expect_index(again, live)


def test_rollback_keeps_the_writes_made_during_the_upgrade(collection):
    svc = service(collection, delay=0.05)
    svc.start_upgrade(NEW, batch_size=4)
    live = corpus(N)
    svc.upsert_documents([("doc-0001", "written while upgrading")])
    svc.delete_documents(["doc-0002"])
    live["doc-0001"] = "written while upgrading"
    del live["doc-0002"]
    svc.rollback()
    expect_index(svc, live)
    expect_index(reopen(svc), live)


@pytest.mark.parametrize("upgrading", [False, True])
def test_a_write_killed_after_its_journal_is_finished_at_the_next_start(collection, upgrading):
    svc = service(collection, delay=0.05)
    if upgrading:
        svc.start_upgrade(NEW, batch_size=4)
        svc.pause()
    OPEN.remove(svc)
    svc.close()
    docs = DocStore(collection / "texts.sqlite")  # what a write did before the kill: texts staged, no index
    docs.stage(upserts=[("doc-0004", "staged text"), ("staged-new", "a staged document")], deletes=["doc-0006"])
    docs.close()
    again = service(collection)
    live = corpus(N)
    live.update({"doc-0004": "staged text", "staged-new": "a staged document"})
    del live["doc-0006"]
    expect_index(again, live)
    assert again._own_texts.pending() == []
    if upgrading:
        backfilled = again.upgrade.backfilled_ids()
        expect_new(again, {i: t for i, t in live.items() if i in backfilled})
        assert {"doc-0004", "staged-new"} <= backfilled


def test_writes_need_the_collections_own_texts(collection):
    svc = SearchService(collection, corpus(N), models=MODELS, encoder_loader=loader())
    OPEN.append(svc)
    with pytest.raises(ConflictError, match="--dataset"):
        svc.upsert_documents([("x", "y")])
    assert OLD in svc.encoder.id
