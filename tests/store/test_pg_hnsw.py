"""pgvector's HNSW index behind the pg store: searches agree with exact search, and an upgrade's old partition
(filtered in SQL) returns full rows of pending items only, at every backfilled fraction."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.store import create_store, open_store
from hotswap.upgrade import create_upgrade

pytest.importorskip("pgserver")

OLD, NEW, D, N = "old@1", "new@1", 16, 400


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture
def gallery(tmp_path):
    rng = np.random.default_rng(0)
    ids, X = [f"d{i}" for i in range(N)], _unit(rng, N, D)
    store = create_store(f"pg://{tmp_path / 'g'}", OLD, D, "ip", index="hnsw")
    store.add(ids, X, OLD)
    yield store, ids, X, _unit(rng, 20, D)
    store.close()


def _recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want)]))


def test_hnsw_search_matches_exact_search(gallery, tmp_path):
    store, ids, X, Q = gallery
    assert store.index == "hnsw"
    D_, I = store.search(Q, 10, OLD)
    want = np.asarray(ids)[np.argsort(-Q @ X.T, axis=1)[:, :10]]
    assert _recall(I, want) >= 0.95
    top = np.array([[X[ids.index(i)] @ q for i in row] for q, row in zip(Q, I)])
    np.testing.assert_allclose(D_, top, rtol=1e-5, atol=1e-5)
    assert all(np.all(np.diff(row) <= 1e-6) for row in D_)  # best first
    store.close()
    with open_store(f"pg://{tmp_path / 'g'}") as again:
        assert again.index == "hnsw"  # the setting is kept


@pytest.mark.parametrize("fraction", [0.5, 0.95, 0.99])
def test_filtered_old_partition_is_full_and_exact_enough(gallery, tmp_path, fraction):
    store, ids, X, Q = gallery
    up = create_upgrade(tmp_path / "up", store, NEW, D)
    try:
        done = int(fraction * N)
        up.add_backfilled(ids[:done], X[:done], NEW)
        k = 10
        D_, I = up.search_partition("old", Q, k, OLD)
        pending = np.asarray(ids[done:])
        want = pending[np.argsort(-Q @ X[done:].T, axis=1)[:, :k]]
        assert all(i is not None for row in I[:, :min(k, len(pending))] for i in row)  # never short
        assert not set(I.ravel()) & set(ids[:done])  # backfilled items never come back from the old side
        assert _recall(I[:, :want.shape[1]], want) >= 0.95
    finally:
        up.close()


def test_set_index_builds_and_drops_the_hnsw_index(tmp_path):
    rng = np.random.default_rng(1)
    ids, X, Q = [f"d{i}" for i in range(N)], _unit(rng, N, D), _unit(rng, 5, D)
    store = create_store(f"pg://{tmp_path / 'g'}", OLD, D, "ip")
    try:
        store.add(ids, X, OLD)
        exact = store.search(Q, 10, OLD)[1]
        store.set_index("hnsw")  # a bulk build over the rows there
        with open_store(f"pg://{tmp_path / 'g'}") as again:
            assert store.index == again.index == "hnsw"
        plan = " ".join(r[0] for r in store.client.conn.execute(
            f"EXPLAIN SELECT id FROM {store.table} ORDER BY vec <#> %s LIMIT 10", (Q[0],)).fetchall())
        assert "hnsw" in plan
        assert _recall(store.search(Q, 10, OLD)[1], exact) >= 0.95
        store.set_index("flat")
        assert store.index == "flat" and (store.search(Q, 10, OLD)[1] == exact).all()
        with pytest.raises(ValueError, match="unknown pg index"):
            store.set_index("ivfflat")
    finally:
        store.close()
