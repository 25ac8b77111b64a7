"""FaissStore: exact search against brute force, refusals that write nothing, corruption and crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hotswap.errors import (CorruptStoreError, DimensionMismatchError, DuplicateIdError, InvalidVectorsError,
                            ModelMismatchError, UnknownIdError)
from hotswap.store import FaissStore, VectorStore, create_store, open_store

MODEL = "minilm@1a2b3c"
DIM = 32


def rand(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def ids_for(start: int, n: int) -> list[str]:
    return [f"doc-{i}" for i in range(start, start + n)]


@pytest.fixture
def filled(tmp_path):
    """A store with three segments (50, 30, 70 rows) and the vectors that went in."""
    store = create_store(tmp_path / "s", model_id=MODEL, dim=DIM)
    X = rand(150, seed=0)
    for a, b in [(0, 50), (50, 80), (80, 150)]:
        store.add(ids_for(a, b - a), X[a:b], model_id=MODEL)
    return store, X


def state(store: FaissStore) -> tuple:
    return len(store), store.manifest.checksum, sorted(os.listdir(store.path))


def test_round_trip_is_exact_across_segments(filled):
    store, X = filled
    reopened = open_store(store.path)
    assert isinstance(reopened, VectorStore) and len(reopened.manifest.segments) == 3
    assert reopened.ids == ids_for(0, 150) and len(reopened) == 150
    Q = rand(12, seed=1)
    D, I = reopened.search(Q, k=7, model_id=MODEL)
    scores = Q @ X.T
    order = np.argsort(-scores, axis=1)[:, :7]
    assert D.dtype == np.float32 and D.shape == I.shape == (12, 7)
    assert I.tolist() == [[f"doc-{j}" for j in row] for row in order]
    np.testing.assert_allclose(D, np.take_along_axis(scores, order, 1), rtol=1e-5, atol=1e-5)


def test_l2_metric_orders_by_squared_distance(tmp_path):
    store = create_store(tmp_path / "s", model_id=MODEL, dim=8, metric="l2")
    X = np.random.default_rng(2).standard_normal((40, 8)).astype(np.float32) * 3
    store.add(ids_for(0, 25), X[:25], MODEL)
    store.add(ids_for(25, 15), X[25:], MODEL)
    Q = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    D, I = open_store(store.path).search(Q, 6, MODEL)
    d2 = ((Q[:, None, :] - X[None]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1)[:, :6]
    assert I.tolist() == [[f"doc-{j}" for j in row] for row in order]
    assert (np.diff(D, axis=1) >= 0).all()
    np.testing.assert_allclose(D, np.take_along_axis(d2, order, 1), rtol=1e-4)


def test_get_contains_and_unknown_ids(filled):
    store, X = filled
    np.testing.assert_array_equal(store.get(["doc-120", "doc-3", "doc-60", "doc-3"]), X[[120, 3, 60, 3]])
    assert store.contains("doc-149") and "doc-0" in store and "doc-150" not in store
    with pytest.raises(UnknownIdError, match="nope-1") as e:
        store.get(["doc-1", "nope-1", "nope-2"])
    assert isinstance(e.value, KeyError) and "2 id(s)" in str(e.value)


@pytest.mark.parametrize("metric, fill", [("ip", -np.inf), ("l2", np.inf)])
def test_padding_when_k_exceeds_count(tmp_path, metric, fill):
    store = create_store(tmp_path / "s", model_id=MODEL, dim=DIM, metric=metric)
    D, I = store.search(rand(2, 4), 3, MODEL)
    assert (I == None).all() and (D == fill).all()  # noqa: E711 - object array comparison
    store.add(["a", "b"], rand(2, 5), MODEL)
    D, I = store.search(rand(2, 6), 5, MODEL)
    assert (I[:, :2] != None).all() and (I[:, 2:] == None).all()  # noqa: E711
    assert np.isfinite(D[:, :2]).all() and (D[:, 2:] == fill).all()
    for bad_k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="k must be"):
            store.search(rand(1, 7), bad_k, MODEL)


REFUSALS = [
    ("dim", lambda: (ids_for(900, 2), rand(2, 9, dim=DIM + 4), MODEL), DimensionMismatchError,
     [f"dimension {DIM + 4}", f"index dimension {DIM}", MODEL, "hotswap fit-adapter"]),
    ("model", lambda: (ids_for(900, 2), rand(2, 9), "e5@9f9f"), ModelMismatchError, ["e5@9f9f", MODEL]),
    ("nan", lambda: (ids_for(900, 2), np.array([[np.nan] * DIM, [0.0] * DIM]), MODEL), InvalidVectorsError,
     ["NaN", "row 0"]),
    ("dup-batch", lambda: (["x-1", "x-2", "x-1"], rand(3, 9), MODEL), DuplicateIdError, ["x-1", "within"]),
    ("dup-stored", lambda: (["new-1", "doc-42"], rand(2, 9), MODEL), DuplicateIdError, ["doc-42", "already"]),
    ("count", lambda: (ids_for(900, 3), rand(2, 9), MODEL), InvalidVectorsError, ["3 ids", "2 rows"]),
    ("no-ids", lambda: ([], np.empty((0, DIM)), MODEL), InvalidVectorsError, ["0 ids"]),
    ("empty-id", lambda: (["ok", ""], rand(2, 9), MODEL), InvalidVectorsError, ["empty id"]),
]


@pytest.mark.parametrize("case, args, exc, words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_add_refusals_write_nothing(filled, case, args, exc, words):
    store, _ = filled
    before = state(store)
    with pytest.raises(exc) as e:
        store.add(*args())
    for w in words:
        assert w in str(e.value)
    assert state(store) == before and state(open_store(store.path)) == before
    store.add(["after-refusal"], rand(1, 10), MODEL)  # the store still works
    assert len(open_store(store.path)) == before[0] + 1


def test_search_refuses_other_model_and_dim(filled):
    store, _ = filled
    with pytest.raises(ModelMismatchError) as e:
        store.search(rand(1, 1), 3, model_id="e5@9f9f")
    assert "e5@9f9f" in str(e.value) and MODEL in str(e.value) and "adapter" in str(e.value)
    with pytest.raises(DimensionMismatchError, match=f"dimension 16.*index dimension {DIM}"):
        store.search(rand(1, 1, dim=16), 3, MODEL)


def test_create_refuses_existing_store_and_bad_args(filled, tmp_path):
    store, _ = filled
    with pytest.raises(FileExistsError, match="open_store"):
        create_store(store.path, model_id=MODEL, dim=DIM)
    with pytest.raises(ValueError, match="metric"):
        create_store(tmp_path / "t", model_id=MODEL, dim=DIM, metric="cosine")
    with pytest.raises(ValueError, match="factory"):
        create_store(tmp_path / "u", model_id=MODEL, dim=DIM, index_factory="NotAnIndex")


def test_truncated_segment_fails_open(filled):
    store, _ = filled
    seg = store.path / "seg-000002.vectors.npy"
    seg.write_bytes(seg.read_bytes()[:-100])
    with pytest.raises(CorruptStoreError, match="seg-000002.vectors.npy.*truncated"):
        open_store(store.path)


def test_flipped_byte_opens_but_fails_verify(filled):
    store, X = filled
    seg = store.path / "seg-000003.vectors.npy"
    raw = bytearray(seg.read_bytes())
    raw[-5] ^= 0x01
    seg.write_bytes(bytes(raw))
    reopened = open_store(store.path)  # sizes match: the fast open accepts it
    with pytest.raises(CorruptStoreError, match="seg-000003.vectors.npy.*sha256"):
        reopened.verify()
    with pytest.raises(CorruptStoreError, match="seg-000003.vectors.npy"):
        open_store(store.path, verify=True)
    np.testing.assert_array_equal(reopened.get(["doc-0"]), X[:1])  # other rows still readable


def test_garbled_ids_file_raises_every_time(filled):
    store, _ = filled
    ids_file = store.path / "seg-000002.ids.json"
    ids_file.write_bytes(b"{" * ids_file.stat().st_size)  # same size: only parsing can tell
    reopened = open_store(store.path)
    for _ in range(2):  # a failed parse must not leave a half-loaded id map behind
        with pytest.raises(CorruptStoreError, match="seg-000002.ids.json"):
            reopened.contains("doc-0")


def test_missing_manifest_or_segment(filled):
    store, _ = filled
    (store.path / "seg-000001.ids.json").unlink()
    with pytest.raises(CorruptStoreError, match="seg-000001.ids.json.*missing"):
        open_store(store.path)
    (store.path / "manifest.json").unlink()
    with pytest.raises(CorruptStoreError, match="manifest.json is missing"):
        open_store(store.path)


def _assert_recovered(path, before, X):
    """The store shows the previous state, then the next add succeeds and removes the orphans."""
    assert any(f.startswith("seg-000004") for f in os.listdir(path))  # the orphan is on disk...
    reopened = open_store(path, verify=True)  # ...but ignored
    assert (len(reopened), reopened.manifest.checksum) == before[:2]
    assert reopened.search(X[:1], 1, MODEL)[1][0, 0] == "doc-0"
    reopened.add(["late-1"], rand(1, 11), MODEL)
    files = os.listdir(path)
    assert not [f for f in files if f.endswith(".tmp")]
    assert sorted(f for f in files if f.startswith("seg-000004")) == ["seg-000004.ids.json", "seg-000004.vectors.npy"]
    final = open_store(path, verify=True)
    assert len(final) == 151 and "late-1" in final and "crash-1" not in final


def test_crash_between_segment_and_manifest_in_process(filled, monkeypatch):
    store, X = filled
    before = state(store)
    real_replace = os.replace

    def dying_replace(src, dst):
        if os.path.basename(dst) == "manifest.json":
            raise KeyboardInterrupt("simulated kill before the manifest rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        store.add(["crash-1", "crash-2"], rand(2, 12), MODEL)
    monkeypatch.undo()
    assert state(store)[:2] == before[:2] and "crash-1" not in store  # in-memory state untouched too
    _assert_recovered(store.path, before, X)


def test_crash_sigkill_subprocess(filled):
    store, X = filled
    before = state(store)
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from hotswap.store import open_store
        real = os.replace
        def kill_at_manifest(src, dst):
            if os.path.basename(dst) == "manifest.json":
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = kill_at_manifest
        store = open_store({str(store.path)!r})
        store.add(["crash-1", "crash-2"], np.ones((2, {DIM}), np.float32), {MODEL!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert any(f.startswith(".manifest.json") and f.endswith(".tmp") for f in os.listdir(store.path))
    _assert_recovered(store.path, before, X)


def test_two_writers_never_lose_segments(filled):
    a, _ = filled
    b = open_store(a.path)
    a.add(["from-a"], rand(1, 13), MODEL)
    assert "from-a" not in b  # b is a snapshot until it refreshes...
    with pytest.raises(DuplicateIdError, match="from-a"):
        b.add(["from-a"], rand(1, 14), MODEL)  # ...but add refreshes under the lock first
    b.add(["from-b"], rand(1, 15), MODEL)
    a.refresh()
    assert a.ids[-2:] == b.ids[-2:] == ["from-a", "from-b"] and len(open_store(a.path, verify=True)) == 152


def test_trained_factory_index_is_built_and_extended(tmp_path):
    store = create_store(tmp_path / "s", model_id=MODEL, dim=DIM, index_factory="IVF4,Flat")
    X = rand(400, 16)
    store.add(ids_for(0, 400), X, MODEL)
    _, I = store.search(X[:20], 3, MODEL)
    assert I[:, 0].tolist() == ids_for(0, 20)  # a stored vector finds itself (same inverted list)
    Y = rand(10, 17)
    store.add(ids_for(400, 10), Y, MODEL)  # extends the cached index in place
    assert store.search(Y, 1, MODEL)[1][:, 0].tolist() == ids_for(400, 10)
    assert open_store(store.path).search(Y, 1, MODEL)[1][:, 0].tolist() == ids_for(400, 10)
