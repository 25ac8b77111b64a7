"""``upsert`` and ``delete`` on the database stores with a store file (qdrant, milvus): what each view and every other open view
of the model sees, what survives a reopen, what a refused batch leaves, and how a delete that died is finished."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotswap.errors import (DimensionMismatchError, DuplicateIdError, InvalidVectorsError, ModelMismatchError,
                            UnknownIdError)
from hotswap.store import create_store, open_store

pytest.importorskip("qdrant_client")
pytest.importorskip("milvus_lite")

MODEL, OTHER = "minilm@1a2b3c", "e5@9f9f"
DIM = 8
IDS = [f"doc-{j}" for j in (7, 2, 9, 0, 5, 3, 8, 1, 6, 4)]  # insertion order != sort order


def rand(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(params=["qdrant", "milvus"])  # pg: one transaction per write, tests/store/test_pg_store.py
def backend(request) -> str:
    return request.param


@pytest.fixture
def make(tmp_path, backend):
    """``make()`` creates a store holding IDS (returns it and the vectors); ``make.open()`` opens another view
    of it; ``make.reopen(store)`` closes every view and opens the store again."""
    opened = []
    uri = f"{backend}://{tmp_path / 's'}"

    def _make():
        store, X = create_store(uri, MODEL, DIM), rand(len(IDS), seed=0)
        opened.append(store)
        store.add(IDS, X, MODEL)
        return store, X

    def _open(model_id: str | None = None):
        opened.append(open_store(uri, model_id))
        return opened[-1]

    def _reopen(store):
        for s in opened:
            s.close()
        return _open(store.model_id)

    _make.open, _make.reopen = _open, _reopen
    yield _make
    for s in opened:
        s.close()


def search_all(store, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row of the store, best first, for each query (plus 3 padding columns)."""
    return store.search(Q, len(store) + 3, store.model_id)


def store_entry(store) -> dict:
    return json.loads((store.path / "hotswap-store.json").read_text())["models"][0]


def assert_holds(store, ids: list[str], vectors: np.ndarray) -> None:
    """``store`` holds exactly ``ids`` (in this order) with ``vectors``, by every reading method."""
    assert store.ids == ids and len(store) == len(ids)
    assert all(i in store and store.contains(i) for i in ids)
    np.testing.assert_array_equal(store.get(ids), vectors)
    D, I = search_all(store, vectors)
    assert I[:, 0].tolist() == ids  # each vector finds its own id first, with score 1 (unit vectors, "ip")
    np.testing.assert_allclose(D[:, 0], 1.0, atol=1e-5)
    assert (np.sort(I[:, :len(ids)].astype(str), axis=1) == sorted(ids)).all()  # all stored ids, no others
    assert (I[:, len(ids):] == None).all() and (D[:, len(ids):] == -np.inf).all()  # noqa: E711


# ---- upsert ------------------------------------------------------------------------------------------------
def test_upsert_of_new_ids_appends_them(make):
    store, X = make()
    Y = rand(3, seed=1)
    assert store.upsert(["new-a", "new-b", "new-c"], Y, MODEL) == 3
    assert_holds(store, [*IDS, "new-a", "new-b", "new-c"], np.vstack([X, Y]))
    assert [store._id_map()[i] for i in ("new-a", "new-b", "new-c")] == [10, 11, 12]
    assert store_entry(store)["count"] == 13


def test_upsert_of_a_stored_id_replaces_its_vector_in_place(make):
    store, X = make()
    seq = store._id_map()[IDS[4]]
    new = rand(1, seed=2)
    assert store.upsert([IDS[4]], new, MODEL) == 1
    assert store.ids == IDS and len(store) == 10 and store._id_map()[IDS[4]] == seq
    np.testing.assert_array_equal(store.get([IDS[4]]), new)
    D, I = search_all(store, np.vstack([new, X[4:5]]))
    assert I[0, 0] == IDS[4] and D[0, 0] == pytest.approx(1.0, abs=1e-5)  # found by its new vector ...
    hit = I[1].tolist().index(IDS[4])  # ... and by the old one only as far as the new vector is like it
    assert D[1, hit] == pytest.approx(float(X[4] @ new[0]), abs=1e-5) and D[1, hit] < 0.99
    assert (I[:, :10] != None).all() and (I[:, 10:] == None).all()  # noqa: E711 - no second row for it
    expected = X.copy()
    expected[4] = new
    assert_holds(store, IDS, expected)


def test_upsert_of_stored_and_new_ids_in_one_batch(make):
    store, X = make()
    Y = rand(3, seed=3)
    assert store.upsert(["new-a", IDS[0], "new-b"], Y, MODEL) == 3
    expected = np.vstack([Y[1:2], X[1:], Y[[0, 2]]])
    assert_holds(store, [*IDS, "new-a", "new-b"], expected)
    assert store_entry(store)["count"] == 12  # one row per new id, none for the replaced one
    store = make.reopen(store)
    assert_holds(store, [*IDS, "new-a", "new-b"], expected)


REFUSALS = [
    ("model", lambda: ([IDS[0], "n-1"], rand(2, 9), OTHER), ModelMismatchError, [OTHER, MODEL]),
    ("dim", lambda: ([IDS[0], "n-1"], rand(2, 9, dim=DIM + 2), MODEL), DimensionMismatchError,
     [f"dimension {DIM + 2}"]),
    ("nan", lambda: ([IDS[0], "n-1"], np.array([[0.5] * DIM, [np.nan] * DIM]), MODEL), InvalidVectorsError,
     ["NaN", "row 1"]),
    ("dup-batch", lambda: ([IDS[0], "n-1", IDS[0]], rand(3, 9), MODEL), DuplicateIdError, [IDS[0], "within"]),
    ("empty-id", lambda: ([IDS[0], ""], rand(2, 9), MODEL), InvalidVectorsError, ["empty"]),
    ("count", lambda: ([IDS[0], "n-1"], rand(3, 9), MODEL), InvalidVectorsError, ["2 ids", "3 rows"]),
]


@pytest.mark.parametrize("case, args, exc, words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_upsert_writes_nothing(make, case, args, exc, words):
    store, X = make()
    with pytest.raises(exc) as e:
        store.upsert(*args())
    assert all(w in str(e.value) for w in words), str(e.value)
    assert_holds(store, IDS, X)
    assert "n-1" not in store and store_entry(store)["count"] == 10
    assert_holds(make.reopen(store), IDS, X)


@pytest.mark.parametrize("backend", ["milvus"])  # only milvus limits id length
def test_refused_upsert_of_a_too_long_milvus_id_writes_nothing(make):
    store, X = make()
    with pytest.raises(InvalidVectorsError, match="65535 UTF-8 bytes"):
        store.upsert([IDS[0], "x" * 65_536], rand(2, seed=4), MODEL)
    assert_holds(store, IDS, X)


# ---- delete ------------------------------------------------------------------------------------------------
def test_delete_removes_ids_from_every_reading(make):
    store, X = make()
    assert store.delete([IDS[3], "unknown", IDS[7], IDS[3]]) == 2  # unknown ids ignored, repeats counted once
    keep = [r for r in range(10) if r not in (3, 7)]
    assert_holds(store, [IDS[r] for r in keep], X[keep])
    for gone in (IDS[3], IDS[7]):
        assert gone not in store and not store.contains(gone)
        with pytest.raises(UnknownIdError, match=gone):
            store.get([gone])
    I = search_all(store, X[[3, 7]])[1]
    assert not np.isin(I, [IDS[3], IDS[7]]).any() and (I[:, :8] != None).all()  # noqa: E711
    assert store.delete(IDS[0]) == 1 and IDS[0] not in store and len(store) == 7  # one id as a str
    assert store.delete([IDS[0], "unknown"]) == 0 and store.delete([]) == 0 and len(store) == 7
    entry = store_entry(store)
    assert (entry["count"], entry["deleted"]) == (10, 3) and "deleting" not in entry
    with pytest.raises(TypeError, match="strings"):
        store.delete([IDS[1], 5])
    assert len(store) == 7


def test_delete_everything_then_search_pads(make):
    store, X = make()
    assert store.delete(IDS) == 10
    D, I = store.search(X[:2], 3, MODEL)
    assert len(store) == 0 and store.ids == [] and (I == None).all() and (D == -np.inf).all()  # noqa: E711
    store = make.reopen(store)
    assert len(store) == 0 and (store.search(X[:1], 2, MODEL)[1] == None).all()  # noqa: E711


def test_add_after_delete_numbers_from_the_count_and_re_adds_a_deleted_id(make):
    store, X = make()
    store.delete([IDS[2], IDS[9]])
    Y = rand(2, seed=5)
    assert store.add(["new-a", IDS[2]], Y, MODEL) == 2  # a deleted id can come back (as a new row)
    assert store._id_map()["new-a"] == 10 and store._id_map()[IDS[2]] == 11
    ids = [*IDS[:2], *IDS[3:9], "new-a", IDS[2]]
    expected = np.vstack([X[:2], X[3:9], Y])
    assert_holds(store, ids, expected)
    with pytest.raises(DuplicateIdError, match=IDS[2]):
        store.add([IDS[2]], Y[:1], MODEL)
    assert store.upsert([IDS[9]], X[9:10], MODEL) == 1 and store._id_map()[IDS[9]] == 12  # upsert re-adds too
    store = make.reopen(store)
    assert_holds(store, [*ids, IDS[9]], np.vstack([expected, X[9:10]]))
    entry = store_entry(store)
    assert (entry["count"], entry["deleted"]) == (13, 2)


def test_writes_persist_across_reopen(make):
    store, X = make()
    new = rand(2, seed=6)
    store.upsert([IDS[1], "new-a"], new, MODEL)
    store.delete([IDS[5], IDS[6]])
    ids = [IDS[r] for r in range(10) if r not in (5, 6)] + ["new-a"]
    expected = np.vstack([X[[0]], new[:1], X[[2, 3, 4, 7, 8, 9]], new[1:]])
    assert_holds(store, ids, expected)
    store = make.reopen(store)
    assert_holds(store, ids, expected)
    assert IDS[5] not in store and not np.isin(search_all(store, X[[5, 6]])[1], [IDS[5], IDS[6]]).any()


def test_other_open_views_see_each_write(make):
    a, X = make()
    b = make.open(MODEL)
    assert b.ids == IDS  # b's id map is read before a writes
    new = rand(1, seed=7)
    a.upsert([IDS[0]], new, MODEL)  # in place: ids unchanged, vectors read from the database
    np.testing.assert_array_equal(b.get([IDS[0]]), new)
    assert b.search(new, 1, MODEL)[1][0, 0] == IDS[0]
    a.delete([IDS[8]])
    assert IDS[8] not in b and len(b) == 9 and IDS[8] not in b.ids
    with pytest.raises(UnknownIdError):
        b.get([IDS[8]])
    b.upsert(["new-b", IDS[1]], rand(2, seed=8), MODEL)
    assert a.ids == b.ids == [*IDS[:8], IDS[9], "new-b"] and len(a) == 10
    np.testing.assert_array_equal(a.get([IDS[1], "new-b"]), rand(2, seed=8)[[1, 0]])
    b.delete(["new-b"])
    a.add(["new-c"], rand(1, seed=9), MODEL)  # after a delete in b, a numbers from the count
    assert b.ids == [*IDS[:8], IDS[9], "new-c"] and a._id_map()["new-c"] == b._id_map()["new-c"] == 11
    a.delete([IDS[2]])  # one out, one in: b's id map has the right length but the wrong ids
    a.add(["new-d"], rand(1, seed=13), MODEL)
    assert b.ids == a.ids == [*IDS[:2], *IDS[3:8], IDS[9], "new-c", "new-d"]
    assert IDS[2] not in b and "new-d" in b and b.search(rand(1, seed=13), 1, MODEL)[1][0, 0] == "new-d"


# ---- qdrant: points shared by two models -------------------------------------------------------------------
def test_qdrant_delete_keeps_the_other_models_vector(tmp_path):
    from hotswap.store.qdrant import add_model_vector
    from hotswap.store.qdrant.store import COLLECTION, point_id

    a = create_store(f"qdrant://{tmp_path / 'q'}", MODEL, DIM)
    b = add_model_vector(tmp_path / "q", OTHER, 4)
    try:
        XA, XB = rand(4, seed=10), rand(2, seed=11, dim=4)
        a.add(IDS[:4], XA, MODEL)
        b.add(IDS[:2], XB, OTHER)  # IDS[0], IDS[1]: on both models; IDS[2], IDS[3]: a only

        def point(i: str):
            found = a.client.retrieve(COLLECTION, [point_id(i)], with_vectors=True, with_payload=True)
            return found[0] if found else None

        new = rand(1, seed=12)
        a.upsert([IDS[0]], new, MODEL)  # replaces a's vector only
        assert point(IDS[0]).payload["seq"] == {a.key: 0, b.key: 0}
        np.testing.assert_array_equal(b.get([IDS[0]]), XB[:1])
        assert a.delete([IDS[0], IDS[2]]) == 2
        assert point(IDS[2]) is None  # no model left on it: the point is gone
        shared = point(IDS[0])
        assert set(shared.vector) == {b.key} and shared.payload["seq"] == {b.key: 0}
        assert a.ids == [IDS[1], IDS[3]] and b.ids == IDS[:2] and len(b) == 2
        np.testing.assert_array_equal(b.get(IDS[:2]), XB)
        assert b.search(XB[:1], 1, OTHER)[1][0, 0] == IDS[0]
        assert IDS[0] not in a.search(new, 2, MODEL)[1][0]
        a.add([IDS[0]], XA[:1], MODEL)  # back on the shared point, next to b's vector
        assert set(point(IDS[0]).vector) == {a.key, b.key} and point(IDS[0]).payload["seq"] == {a.key: 4, b.key: 0}
        assert b.delete([IDS[0], IDS[1]]) == 2
        assert all(set(point(i).vector) == {a.key} and point(i).payload["seq"].keys() == {a.key} for i in IDS[:2])
        assert a.ids == [IDS[1], IDS[3], IDS[0]] and b.ids == []
    finally:
        a.close()
        b.close()
    with open_store(f"qdrant://{tmp_path / 'q'}") as a, open_store(f"qdrant://{tmp_path / 'q'}", OTHER) as b:
        assert a.ids == [IDS[1], IDS[3], IDS[0]] and len(b) == 0
        np.testing.assert_array_equal(a.get([IDS[0], IDS[3]]), XA[[0, 3]])


# ---- a delete that dies ------------------------------------------------------------------------------------
def fail_store_file_writes(monkeypatch, first_failing: int, last_failing: int | None = None) -> list[int]:
    """Make the ``first_failing``-th to ``last_failing``-th store-file writes of ``DbStore`` raise (1-based)."""
    import hotswap.store.db.store as db_store

    real, calls = db_store.write_store_file, []

    def write(*args):
        calls.append(1)
        if first_failing <= len(calls) <= (last_failing or len(calls)):
            raise KeyboardInterrupt("simulated kill before the store file is replaced")
        real(*args)

    monkeypatch.setattr(db_store, "write_store_file", write)
    return calls


@pytest.mark.parametrize("dies", ["in-process", "killed"])
def test_delete_dying_before_its_commit_is_finished(make, monkeypatch, dies):
    """Killed after removing rows but before committing ``deleted``: the recorded intent finishes the delete
    (at once in-process; at the next open after a kill)."""
    import hotswap.store.db.store as db_store

    store, X = make()
    seqs = sorted(store._id_map()[i] for i in (IDS[1], IDS[4]))
    if dies == "killed":  # a dead process cleans up nothing
        fail_store_file_writes(monkeypatch, 2)
        monkeypatch.setattr(db_store.DbStore, "_recover", lambda self: None)
    else:
        fail_store_file_writes(monkeypatch, 2, 2)  # the commit fails; the recovery's write works
    with pytest.raises(KeyboardInterrupt):
        store.delete([IDS[1], IDS[4]])
    keep = [r for r in range(10) if r not in (1, 4)]
    if dies == "killed":
        assert store_entry(store)["deleting"] == seqs
    monkeypatch.undo()
    if dies == "in-process":
        assert_holds(store, [IDS[r] for r in keep], X[keep])
    store = make.reopen(store)
    assert_holds(store, [IDS[r] for r in keep], X[keep])
    entry = store_entry(store)
    assert (entry["count"], entry["deleted"]) == (10, 2) and "deleting" not in entry
    store.add([IDS[1]], X[1:2], MODEL)
    assert len(make.reopen(store)) == 9


def test_delete_killed_midway_through_removing_rows_is_finished_at_open(make, monkeypatch):
    """Killed after removing some rows: the next open removes the rest and commits the count."""
    import hotswap.store.db.store as db_store

    store, X = make()
    real = type(store)._remove

    def remove_one_then_die(self, seqs):
        real(self, seqs[:1])
        raise KeyboardInterrupt("simulated kill while removing rows")

    monkeypatch.setattr(type(store), "_remove", remove_one_then_die)
    monkeypatch.setattr(db_store.DbStore, "_recover", lambda self: None)  # a dead process cleans up nothing
    with pytest.raises(KeyboardInterrupt):
        store.delete([IDS[6], IDS[0], IDS[8]])
    monkeypatch.undo()
    store = make.reopen(store)
    keep = [r for r in range(10) if r not in (0, 6, 8)]
    assert_holds(store, [IDS[r] for r in keep], X[keep])
    assert store_entry(store)["deleted"] == 3


def test_delete_dying_before_its_intent_deletes_nothing(make, monkeypatch):
    store, X = make()
    fail_store_file_writes(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        store.delete([IDS[1]])
    monkeypatch.undo()
    assert_holds(store, IDS, X)
    assert_holds(make.reopen(store), IDS, X)


def test_sigkill_during_delete_is_finished_at_open(make, backend):
    """A process killed between removing rows and committing: the next open finishes the delete."""
    import signal
    import subprocess
    import sys
    import textwrap

    store, X = make()
    store.close()  # the folder admits one process at a time
    script = textwrap.dedent(f"""
        import os, signal
        import hotswap.store.db.store as db_store
        from hotswap.store import open_store
        real, calls = db_store.write_store_file, []
        def write(*args):  # the intent is written, the commit kills the process
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            real(*args)
        db_store.write_store_file = write
        open_store("{backend}://{store.path}").delete({IDS[:3]!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "deleting" in store_entry(store)
    store = make.reopen(store)
    assert_holds(store, IDS[3:], X[3:])
    assert store_entry(store)["deleted"] == 3


def test_miscounted_store_file_without_a_delete_intent_stays_an_error(make):
    """Fewer rows than counted, with no delete recorded, is not explained by a delete: still an error."""
    from hotswap.errors import CorruptStoreError

    store, _ = make()
    store._remove([store._id_map()[IDS[0]]])  # a row lost behind the store's back
    store = make.reopen(store)
    with pytest.raises(CorruptStoreError, match="holds 9 rows .* counts 10 .10 added, 0 deleted"):
        store.ids
    assert "deleted" not in store_entry(store)  # nothing rewritten
