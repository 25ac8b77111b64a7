"""The ``VectorStore`` contract, run against every backend (faiss, qdrant, milvus, pg in a folder, postgres on a
server) through the URI functions,
plus what only the database backends do: qdrant named vectors, the milvus alias, recovery from a failed add."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.errors import (DimensionMismatchError, DuplicateIdError, InvalidVectorsError, ModelMismatchError,
                            UnknownIdError)
from hotswap.store import VectorStore, create_store, open_store
from tests.conftest import postgres_uri

pytest.importorskip("qdrant_client")
pytest.importorskip("milvus_lite")

MODEL, OTHER = "minilm@1a2b3c", "e5@9f9f"
DIM = 16
BACKENDS = ["faiss", "qdrant", "milvus", "pg", "postgres"]
IDS = [f"doc-{j}" for j in np.random.default_rng(99).permutation(40)]  # insertion order != any sort order


def rand(n: int, seed: int, dim: int = DIM, scale: float = 1.0) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True) * scale


def close(store) -> None:
    getattr(store, "close", lambda: None)()  # FaissStore holds no client


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def make(tmp_path, backend, request):
    """``make(metric)`` creates a store via its URI; ``make.reopen(store)`` closes it and opens it again;
    ``make.uri(name)`` is the URI of a store ``name`` (postgres: a table on a server started for the session)."""
    opened = []

    def _uri(name: str) -> str:
        if backend == "postgres":
            return postgres_uri(request.getfixturevalue("pg_server_uri"), tmp_path / name)
        return f"{backend}://{tmp_path / name}"

    def _make(metric: str = "ip", name: str = "s"):
        opened.append(create_store(_uri(name), MODEL, DIM, metric))
        return opened[-1]

    def _reopen(store, model_id: str | None = None):
        close(store)
        opened.append(open_store(store.uri, model_id))
        return opened[-1]

    _make.reopen, _make.uri = _reopen, _uri
    yield _make
    for s in opened:
        close(s)


@pytest.fixture
def filled(make):
    """An "ip" store holding IDS in two adds (28 + 12 rows), and the vectors that went in."""
    store, X = make(), rand(40, seed=0)
    store.add(IDS[:28], X[:28], MODEL)
    store.add(IDS[28:], X[28:], MODEL)
    return store, X


def brute_force(Q, X, k, metric):
    S = Q @ X.T if metric == "ip" else ((Q[:, None, :] - X[None]) ** 2).sum(-1)
    order = np.argsort(-S if metric == "ip" else S, axis=1)[:, :k]
    return np.take_along_axis(S, order, 1), [[IDS[j] for j in row] for row in order]


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_search_matches_brute_force(make, metric):
    store = make(metric)
    assert isinstance(store, VectorStore) and store.metric == metric and store.dim == DIM
    X = rand(40, seed=1, scale=3.0 if metric == "l2" else 1.0)
    store.add(IDS[:25], X[:25], MODEL)
    store.add(IDS[25:], X[25:], MODEL)
    Q = rand(7, seed=2)
    D, I = store.search(Q, 5, MODEL)
    S, expected = brute_force(Q, X, 5, metric)
    assert D.dtype == np.float32 and D.shape == I.shape == (7, 5)
    assert I.tolist() == expected
    np.testing.assert_allclose(D, S, rtol=1e-4, atol=1e-4)


def test_ids_len_contains(filled):
    store, _ = filled
    assert store.ids == IDS and len(store) == 40
    assert IDS[0] in store and store.contains(IDS[39]) and "doc-40" not in store and not store.contains("x")


def test_get_in_asked_order_and_unknown_ids(filled):
    store, X = filled
    asked = [IDS[35], IDS[3], IDS[20], IDS[3]]
    np.testing.assert_array_equal(store.get(asked), X[[35, 3, 20, 3]])
    assert store.get(IDS[7]).shape == (1, DIM)
    with pytest.raises(UnknownIdError, match="nope-1") as e:
        store.get([IDS[1], "nope-1", "nope-2"])
    assert isinstance(e.value, KeyError) and "2 id(s)" in str(e.value)


REFUSALS = [
    ("model", lambda: (["n-1", "n-2"], rand(2, 9), OTHER), ModelMismatchError, [OTHER, MODEL]),
    ("dim", lambda: (["n-1", "n-2"], rand(2, 9, dim=DIM + 4), MODEL), DimensionMismatchError,
     [f"dimension {DIM + 4}", f"index dimension {DIM}"]),
    ("nan", lambda: (["n-1", "n-2"], np.array([[0.0] * DIM, [np.nan] * DIM]), MODEL), InvalidVectorsError,
     ["NaN", "row 1"]),
    ("inf", lambda: (["n-1"], np.full((1, DIM), np.inf), MODEL), InvalidVectorsError, ["inf", "row 0"]),
    ("dup-batch", lambda: (["x-1", "x-2", "x-1"], rand(3, 9), MODEL), DuplicateIdError, ["x-1", "within"]),
    ("dup-stored", lambda: (["new-1", IDS[33]], rand(2, 9), MODEL), DuplicateIdError, [IDS[33], "already"]),
]


@pytest.mark.parametrize("case, args, exc, words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_add_refusals_write_nothing(filled, make, case, args, exc, words):
    store, _ = filled
    with pytest.raises(exc) as e:
        store.add(*args())
    assert all(w in str(e.value) for w in words), str(e.value)
    assert len(store) == 40 and store.ids == IDS and "n-1" not in store and "new-1" not in store
    store = make.reopen(store)
    assert len(store) == 40 and store.ids == IDS
    store.add(["after-refusal"], rand(1, 10), MODEL)  # the store still works
    assert len(store) == 41 and store.ids[-1] == "after-refusal"


def test_search_refuses_other_model_and_dim(filled):
    store, _ = filled
    with pytest.raises(ModelMismatchError, match="adapter") as e:
        store.search(rand(1, 1), 3, model_id=OTHER)
    assert OTHER in str(e.value) and MODEL in str(e.value)
    with pytest.raises(DimensionMismatchError, match=f"dimension 8.*index dimension {DIM}"):
        store.search(rand(1, 1, dim=8), 3, MODEL)
    for bad_k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="k must be"):
            store.search(rand(1, 1), bad_k, MODEL)


@pytest.mark.parametrize("metric, fill", [("ip", -np.inf), ("l2", np.inf)])
def test_empty_store_and_padding(make, metric, fill):
    store = make(metric)
    D, I = store.search(rand(2, 4), 3, MODEL)
    assert len(store) == 0 and store.ids == [] and D.dtype == np.float32 and I.dtype == object
    assert (I == None).all() and (D == fill).all()  # noqa: E711 - object array comparison
    store = make.reopen(store)
    assert len(store) == 0 and (store.search(rand(1, 4), 2, MODEL)[1] == None).all()  # noqa: E711
    store.add(["a", "b"], rand(2, 5), MODEL)
    D, I = store.search(rand(2, 6), 5, MODEL)
    assert D.shape == I.shape == (2, 5) and I.dtype == object and D.dtype == np.float32
    assert (I[:, :2] != None).all() and (I[:, 2:] == None).all()  # noqa: E711
    assert np.isfinite(D[:, :2]).all() and (D[:, 2:] == fill).all()


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_reopen_gives_identical_results(make, metric):
    store = make(metric)
    X = rand(40, seed=11, scale=2.0)
    store.add(IDS, X, MODEL)
    Q = rand(5, seed=12)
    D, I = store.search(Q, 8, MODEL)
    store = make.reopen(store)
    D2, I2 = store.search(Q, 8, MODEL)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_array_equal(D2, D)
    assert store.ids == IDS and store.metric == metric
    np.testing.assert_array_equal(store.get(IDS[::7]), X[::7])


def test_create_refuses_existing_folder_and_bad_args(filled, make, backend, tmp_path):
    store, _ = filled
    with pytest.raises(FileExistsError, match="open"):
        create_store(store.uri, MODEL, DIM)
    with pytest.raises(ValueError, match="metric"):
        create_store(make.uri("t"), MODEL, DIM, metric="cosine")
    with pytest.raises(ModelMismatchError, match=OTHER):
        open_store(store.uri, OTHER)


def test_uri_schemes(tmp_path):
    with pytest.raises(ValueError) as e:
        create_store(f"pinecone://{tmp_path}", MODEL, DIM)
    assert all(w in str(e.value) for w in ("'pinecone'", "faiss://", "qdrant://", "milvus://"))
    with pytest.raises(ValueError, match="unknown store scheme 'redis'"):
        open_store("redis://x")
    plain = create_store(tmp_path / "plain", MODEL, DIM)  # no scheme: faiss
    assert type(plain).__name__ == "FaissStore"
    assert open_store(str(tmp_path / "plain")).model_id == MODEL


# ---- what only the database backends do ------------------------------------------------------------------
def test_qdrant_two_models_share_points(tmp_path):
    from hotswap.store.qdrant import add_model_vector
    from hotswap.store.qdrant.store import COLLECTION, point_id

    uri = f"qdrant://{tmp_path / 'q'}"
    a = create_store(uri, MODEL, DIM)
    XA, XB = rand(30, seed=20), rand(25, seed=21, dim=8)
    a.add(IDS[:30], XA, MODEL)
    b = add_model_vector(tmp_path / "q", OTHER, 8)  # a is still open: both views share one client
    try:
        b.add(IDS[5:30][::-1], XB, OTHER)  # the same items, another order, another width
        b_only = rand(1, seed=22, dim=8)
        b.add(["only-b"], b_only, OTHER)
        stored = a.client.retrieve(COLLECTION, [point_id(IDS[10])], with_vectors=True, with_payload=True)[0]
        assert set(stored.vector) == {a.key, b.key} and stored.payload["seq"] == {a.key: 10, b.key: 19}
        assert a.ids == IDS[:30] and b.ids == [*IDS[5:30][::-1], "only-b"] and len(a) == 30 and len(b) == 26
        assert "only-b" not in a and IDS[0] not in b
        assert a.search(XA[:4], 1, MODEL)[1][:, 0].tolist() == IDS[:4]
        assert b.search(b_only, 1, OTHER)[1][0, 0] == "only-b"
        np.testing.assert_array_equal(b.get([IDS[29], IDS[5]]), XB[[0, 24]])
        with pytest.raises(ModelMismatchError):
            a.search(XB[:1], 1, OTHER)
    finally:
        a.close()
        b.close()
    with open_store(uri) as first, open_store(uri, OTHER) as second:  # None = the first model
        assert first.model_id == MODEL and second.ids == [*IDS[5:30][::-1], "only-b"]
        assert second.search(XB[:3], 1, OTHER)[1][:, 0].tolist() == IDS[5:30][::-1][:3]


def test_milvus_alias_moves_between_collections(tmp_path):
    from hotswap.store.milvus import add_model_collection, set_serving
    from hotswap.store.milvus.store import ALIAS

    uri = f"milvus://{tmp_path / 'm'}"
    with create_store(uri, MODEL, DIM) as a:
        a.add(IDS[:10], rand(10, seed=30), MODEL)
    with add_model_collection(tmp_path / "m", OTHER, 8) as b:
        b.add(IDS[:4], rand(4, seed=31, dim=8), OTHER)
    with open_store(uri) as serving:
        assert serving.model_id == MODEL and len(serving) == 10
    set_serving(tmp_path / "m", OTHER)
    with open_store(uri) as serving:
        assert serving.model_id == OTHER and serving.ids == IDS[:4]
        assert serving.client.describe_alias(ALIAS)["collection_name"] == serving.key
        with open_store(uri, MODEL) as old:  # the old collection is still there, by model id
            assert len(old) == 10
    set_serving(tmp_path / "m", MODEL)
    with open_store(uri) as serving:
        assert serving.model_id == MODEL
    with pytest.raises(ModelMismatchError, match="add_model_collection"):
        set_serving(tmp_path / "m", "unknown@0")


@pytest.mark.parametrize("backend", ["qdrant", "milvus"])  # pg: one transaction, tests/store/test_pg_store.py
@pytest.mark.parametrize("dies", ["in-process", "killed"])
def test_failed_add_leaves_no_rows(filled, make, monkeypatch, dies):
    """Rows written before the store file is replaced are removed: at once, or at the next open after a kill."""
    import hotswap.store.db.store as db_store

    store, X = filled

    def crash(*args):
        raise KeyboardInterrupt("simulated kill before the store file is replaced")

    monkeypatch.setattr(db_store, "write_store_file", crash)
    if dies == "killed":  # a dead process cleans up nothing
        monkeypatch.setattr(db_store.DbStore, "_recover", lambda self: None)
    with pytest.raises(KeyboardInterrupt):
        store.add(["crash-1", "crash-2"], rand(2, seed=40), MODEL)
    monkeypatch.undo()
    if dies == "in-process":
        assert len(store) == 40 and "crash-1" not in store
    store = make.reopen(store)
    assert len(store) == 40 and store.ids == IDS and "crash-1" not in store
    assert not np.isin(store.search(rand(2, seed=40), 3, MODEL)[1], ["crash-1", "crash-2"]).any()
    store.add(["crash-1"], rand(1, seed=41), MODEL)
    assert len(make.reopen(store)) == 41


def test_failed_add_of_a_second_model_keeps_the_first_models_vectors(tmp_path, monkeypatch):
    """qdrant: a point both models share loses only the dead add's vector; one only it wrote is deleted."""
    import hotswap.store.db.store as db_store
    from hotswap.store.qdrant import add_model_vector

    a = create_store(f"qdrant://{tmp_path / 'q'}", MODEL, DIM)
    XA = rand(10, seed=50)
    a.add(IDS[:10], XA, MODEL)
    b = add_model_vector(tmp_path / "q", OTHER, 8)
    b.add([IDS[0]], rand(1, seed=51, dim=8), OTHER)
    monkeypatch.setattr(db_store, "write_store_file", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt()))
    monkeypatch.setattr(db_store.DbStore, "_recover", lambda self: None)  # killed: nothing cleans up
    with pytest.raises(KeyboardInterrupt):
        b.add([IDS[1], "b-only"], rand(2, seed=52, dim=8), OTHER)
    monkeypatch.undo()
    a.close()
    b.close()
    with open_store(f"qdrant://{tmp_path / 'q'}", OTHER) as b, open_store(f"qdrant://{tmp_path / 'q'}") as a:
        assert b.ids == [IDS[0]] and a.ids == IDS[:10] and "b-only" not in a
        np.testing.assert_array_equal(a.get(IDS[:2]), XA[:2])
        assert (b.search(rand(1, seed=52, dim=8), 3, OTHER)[1][0] == [IDS[0], None, None]).all()
        b.add([IDS[1], "b-only"], rand(2, seed=52, dim=8), OTHER)
        assert len(b) == 3 and len(a) == 10


@pytest.mark.parametrize("backend", ["qdrant", "milvus"])  # pg: one transaction, tests/store/test_pg_store.py
def test_wrong_backend_and_miscounted_store_file(make, backend, tmp_path):
    import json

    from hotswap.errors import CorruptStoreError

    create_store(f"faiss://{tmp_path / 'f'}", MODEL, DIM)
    with pytest.raises(CorruptStoreError, match="FAISS store.*faiss://"):
        open_store(f"{backend}://{tmp_path / 'f'}")
    store = make()
    store.add(IDS[:3], rand(3, seed=60), MODEL)
    store.close()
    other = "milvus" if backend == "qdrant" else "qdrant"
    with pytest.raises(CorruptStoreError, match=f"'{backend}' store, not '{other}'; open it with {backend}://"):
        open_store(f"{other}://{store.path}")
    meta = store.path / "hotswap-store.json"
    data = json.loads(meta.read_text())
    data["models"][0]["count"] = 5  # says more rows than the database holds
    meta.write_text(json.dumps(data))
    with open_store(f"{backend}://{store.path}") as store, pytest.raises(CorruptStoreError, match="counts 5"):
        store.ids


@pytest.mark.parametrize("backend", ["qdrant", "milvus"])  # pg: one transaction, tests/store/test_pg_store.py
def test_sigkill_before_commit_leaves_old_state(filled, make, backend):
    """A process killed after writing its rows but before replacing the store file: the next open drops them."""
    import signal
    import subprocess
    import sys
    import textwrap

    store, X = filled
    store.close()  # the folder admits one process at a time
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        import hotswap.store.db.store as db_store
        from hotswap.store import open_store
        db_store.write_store_file = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        store = open_store("{backend}://{store.path}")
        store.add(["crash-1", "crash-2"], np.ones((2, {DIM}), np.float32), {MODEL!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = make.reopen(store)
    assert len(store) == 40 and store.ids == IDS and "crash-1" not in store
    assert not np.isin(store.search(np.ones((1, DIM)), 5, MODEL)[1], ["crash-1", "crash-2"]).any()
    store.add(["crash-1"], rand(1, seed=70), MODEL)
    assert len(make.reopen(store)) == 41
