"""FaissStore writes: upsert and delete on an append-only folder (dead rows in the manifest), the merge of a
long tail of small segments, and a crash between a segment and its manifest."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.errors import ModelMismatchError, UnknownIdError
from hotswap.store.faiss import store as faiss_store
from hotswap.store import create_store, open_store
from hotswap.store.faiss.manifest import read_manifest

MODEL, DIM = "m@1", 8


def rand(n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def exact(live: dict[str, np.ndarray], Q: np.ndarray, k: int) -> list[list[str]]:
    ids = list(live)
    S = Q @ np.stack([live[i] for i in ids]).T
    return [[ids[j] for j in np.argsort(-row, kind="stable")[:k]] for row in S]


@pytest.fixture
def store(tmp_path):
    s = create_store(tmp_path / "s", MODEL, DIM)
    s.add([f"d{j}" for j in range(20)], rand(20, 0), MODEL)
    return s


def test_upsert_replaces_stored_ids_and_appends_new_ones(store):
    X = rand(3, 1)
    assert store.upsert(["d3", "d7", "new"], X, MODEL) == 3
    assert len(store) == 21 and store.ids[-3:] == ["d3", "d7", "new"] and "new" in store
    np.testing.assert_array_equal(store.get(["d7", "d3", "new"]), X[[1, 0, 2]])
    D, I = store.search(X, 1, MODEL)
    assert list(I[:, 0]) == ["d3", "d7", "new"]
    D, I = store.search(rand(20, 0)[[3]], 21, MODEL)  # the replaced vector is gone: d3 is found once
    assert list(I[0]).count("d3") == 1 and None not in I[0]


def test_delete_removes_ids_from_every_read(store):
    assert store.delete(["d1", "d2", "nope", "d1"]) == 2
    assert store.delete("d1") == 0
    assert len(store) == 18 and "d1" not in store and "d1" not in store.ids
    with pytest.raises(UnknownIdError):
        store.get(["d2"])
    D, I = store.search(rand(20, 0), 20, MODEL)
    assert not {"d1", "d2"} & set(I.ravel()) and (I[:, 18:] == None).all()  # noqa: E711
    assert np.isneginf(D[:, 18:]).all()


def test_search_matches_brute_force_after_mixed_writes(tmp_path):
    s = create_store(tmp_path / "s", MODEL, DIM)
    live, rng = {}, np.random.default_rng(5)
    for step in range(40):  # more small writes than MERGE_AT: the tail is merged along the way
        ids = [f"d{j}" for j in rng.choice(30, 4, replace=False)]
        if step % 3 == 2:
            s.delete(ids[:2])
            for i in ids[:2]:
                live.pop(i, None)
        else:
            X = rand(4, 100 + step)
            s.upsert(ids, X, MODEL)
            live.update(zip(ids, X))
    assert len(read_manifest(s.path).segments) < faiss_store.MERGE_AT
    assert sorted(s.ids) == sorted(live) and len(s) == len(live)
    Q = rand(6, 7)
    assert [list(r) for r in s.search(Q, 5, MODEL)[1]] == exact(live, Q, 5)
    again = open_store(s.path, verify=True)
    assert [list(r) for r in again.search(Q, 5, MODEL)[1]] == exact(live, Q, 5)
    np.testing.assert_array_equal(again.get(list(live)), np.stack(list(live.values())))


def test_another_process_view_sees_writes_after_refresh(store):
    other = open_store(store.path)
    other.ids  # noqa: B018 - parse the ids before the writes
    store.delete(["d0"])
    store.upsert(["d5"], rand(1, 9), MODEL)
    other.refresh()
    assert other.ids == store.ids and len(other) == 19
    np.testing.assert_array_equal(other.get(["d5"]), rand(1, 9))


def test_ivf_store_drops_dead_rows(tmp_path):
    s = create_store(tmp_path / "ivf", MODEL, DIM, index_factory="IVF4,Flat")
    X = rand(200, 3)
    s.add([f"d{j}" for j in range(200)], X, MODEL)
    s.search(X[:1], 3, MODEL)  # builds the index before the writes
    s.delete([f"d{j}" for j in range(0, 200, 2)])
    s.upsert(["d1"], -X[1:2], MODEL)
    D, I = s.search(X[:10], 10, MODEL)
    assert not any(i is not None and int(i[1:]) % 2 == 0 for i in I.ravel())
    assert "d1" not in I[1, :1]


def test_bad_writes_change_nothing(store):
    before = read_manifest(store.path)
    with pytest.raises(ModelMismatchError):
        store.upsert(["d1"], rand(1, 0), "other@2")
    with pytest.raises(ValueError):
        store.upsert(["d1"], np.full((1, DIM), np.nan, np.float32), MODEL)
    with pytest.raises(TypeError):
        store.delete([3])
    assert read_manifest(store.path) == before


def test_killed_between_segment_and_manifest_leaves_the_old_state(store, monkeypatch):
    def die(*a, **k):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(faiss_store, "write_manifest", die)
    with pytest.raises(KeyboardInterrupt):
        store.upsert(["d1", "x"], rand(2, 4), MODEL)
    monkeypatch.undo()
    again = open_store(store.path, verify=True)
    assert len(again) == 20 and "x" not in again
    np.testing.assert_array_equal(again.get(["d1"]), rand(20, 0)[[1]])
    again.delete(["d2"])  # the next write clears the orphan segment
    assert len(list(store.path.glob("seg-*"))) == 2


def test_searches_beside_writes_never_see_an_id_twice(tmp_path):
    import threading

    s = create_store(tmp_path / "s", MODEL, DIM)
    s.add([f"d{j}" for j in range(50)], rand(50, 0), MODEL)
    stop, seen, errors = threading.Event(), [], []

    def search():
        Q = rand(8, 1)
        while not stop.is_set():
            try:
                I = s.search(Q, 50, MODEL)[1]
                seen.append(max(len(row) - len(set(row)) for row in I))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

    readers = [threading.Thread(target=search) for _ in range(2)]
    for t in readers:
        t.start()
    for step in range(60):  # upserts move ids to new rows; the tail merges along the way
        s.upsert([f"d{(3 * step + j) % 50}" for j in range(3)], rand(3, 10 + step), MODEL)
    stop.set()
    for t in readers:
        t.join()
    assert not errors and seen and max(seen) == 0 and len(s) == 50
