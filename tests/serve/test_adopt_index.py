"""``Collection.adopt_index``: a FAISS index folder becomes a collection in place, its vectors kept (not
re-encoded); refusals change nothing, and a process killed at any step leaves the plain index (restored at the
next start) or a working collection."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hotswap.errors import HotswapError
from hotswap.serve import Collection, SearchService
from hotswap.serve import collection as collection_module
from hotswap.serve.collection import ADOPT_MARK
from hotswap.store import create_store, open_store
from tests.serve.toy import MODELS, NEW, OLD, corpus, loader

N = 60


def plain_index(path, n: int = N) -> None:
    """What 'hotswap encode' leaves: a FAISS store folder (manifest + segments), no serving.json."""
    enc = loader()(OLD)
    docs = corpus(n)
    store = create_store(f"faiss://{path}", model_id=enc.id, dim=enc.dim)
    with store:
        ids = list(docs)
        store.add(ids[: n // 2], enc.encode([docs[i] for i in ids[: n // 2]]), model_id=enc.id)
        store.add(ids[n // 2:], enc.encode([docs[i] for i in ids[n // 2:]]), model_id=enc.id)  # two segments


def snapshot(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and p.name != ".serve.lock"}


def vectors(uri: str) -> tuple[list[str], np.ndarray]:
    with open_store(uri) as store:
        return list(store.ids), store.get(store.ids)


def test_adopt_keeps_the_vectors_and_serves_and_upgrades(tmp_path):
    path = tmp_path / "idx"
    plain_index(path)
    ids, X = vectors(f"faiss://{path}")
    assert Collection.is_plain_index(path)
    col = Collection.adopt_index(path, OLD, loader()(OLD).id, corpus(N))
    assert col.state["index"] == "v1" and col.state["model"] == OLD and not (path / ADOPT_MARK).exists()
    assert not (path / "manifest.json").exists() and (path / "v1" / "manifest.json").is_file()
    assert not Collection.is_plain_index(path)
    ids2, X2 = vectors(f"faiss://{path / 'v1'}")
    assert ids2 == ids and np.array_equal(X2, X)  # moved, not re-encoded
    load = loader()
    encoder = load(OLD)
    svc = SearchService(path, models=MODELS, encoder_loader=load, batch_size=16)
    calls = len(encoder.calls)
    try:
        assert svc.search(["text of doc 12"], 1)[2][0, 0] == "doc-0012"
        assert len(encoder.calls) == calls + 1  # the query's encoding: serving encoded no document
        svc.start_upgrade(NEW, batch_size=16)
        svc.thread.join()
        assert svc.commit()["version"] == 2
    finally:
        svc.close()


def test_refusals_leave_the_index_as_it_was(tmp_path):
    path = tmp_path / "idx"
    plain_index(path)
    before = snapshot(path)
    partial = {i: t for i, t in corpus(N).items() if i not in ("doc-0003", "doc-0004")}
    with pytest.raises(HotswapError, match=r"2 of the 60 vectors .* have no text .*--dataset"):
        Collection.adopt_index(path, OLD, loader()(OLD).id, partial)
    with pytest.raises(HotswapError, match="holds vectors of toy-old@1, not toy-new@1"):
        Collection.adopt_index(path, NEW, loader()(NEW).id, corpus(N))
    assert snapshot(path) == before and not (path / "v1").exists()
    with pytest.raises(HotswapError, match="not a FAISS index folder"):
        Collection.adopt_index(tmp_path / "empty", OLD, loader()(OLD).id, corpus(N))


def kill_at(monkeypatch, step: str, after: int = 0) -> None:
    """Make the adoption die (``KeyboardInterrupt``: no clean-up of its own runs) right after writing the texts
    (``texts``), before the ``after``-th move of a store file (``move``), or at serving.json's write."""
    def killed(*_: object) -> None:
        raise KeyboardInterrupt("killed")

    if step == "texts":
        write_texts = collection_module._write_texts
        monkeypatch.setattr(collection_module, "_write_texts", lambda *a: (write_texts(*a), killed()))
    elif step == "move":
        real, count = os.replace, {"n": 0}

        def replace(src, dst):
            if Path(dst).parent.name == "v1":  # a move of the store's files, not an atomic write's rename
                if count["n"] == after:
                    killed()
                count["n"] += 1
            return real(src, dst)
        monkeypatch.setattr(collection_module.os, "replace", replace)
    else:
        write_json = collection_module.atomic_write_json
        monkeypatch.setattr(collection_module, "atomic_write_json",
                            lambda path, obj: killed() if path.name == "serving.json" else write_json(path, obj))


@pytest.mark.parametrize("step, after", [("texts", 0), ("move", 0), ("move", 1), ("move", 3), ("serving", 0)])
def test_a_killed_adoption_is_undone_at_the_next_start_then_succeeds(tmp_path, monkeypatch, step, after):
    path = tmp_path / "idx"
    plain_index(path)
    ids, X = vectors(f"faiss://{path}")
    before = snapshot(path)
    with monkeypatch.context() as m:
        kill_at(m, step, after)
        with pytest.raises(KeyboardInterrupt):
            Collection.adopt_index(path, OLD, loader()(OLD).id, corpus(N))
    assert (path / ADOPT_MARK).exists() and not (path / "serving.json").exists()
    assert Collection.is_plain_index(path)  # the next start sees an adoption to undo
    assert Collection.recover_adoption(path)
    assert snapshot(path) == before and not (path / "v1").exists()  # the plain index, byte for byte
    assert vectors(f"faiss://{path}")[0] == ids
    Collection.adopt_index(path, OLD, loader()(OLD).id, corpus(N))  # and adopting again works
    ids2, X2 = vectors(f"faiss://{path / 'v1'}")
    assert ids2 == ids and np.array_equal(X2, X)


def test_a_stale_marker_after_serving_json_is_just_removed(tmp_path):
    path = tmp_path / "idx"
    plain_index(path)
    Collection.adopt_index(path, OLD, loader()(OLD).id, corpus(N))
    (path / ADOPT_MARK).write_text("{}")  # killed after serving.json, before the marker went
    assert not Collection.is_plain_index(path)
    svc = SearchService(path, models=MODELS, encoder_loader=loader())
    try:
        assert not (path / ADOPT_MARK).exists() and svc.search(["text of doc 2"], 1)[2][0, 0] == "doc-0002"
    finally:
        svc.close()
