"""PartitionIndex: add/remove by item number, exact search, and staged training for IVF factories."""

import faiss
import numpy as np
import pytest

from hotswap.store import create_store, create_upgrade
from hotswap.store.partition_index import PartitionIndex


def _brute(X, rows, Q, k):
    S = Q @ X.T
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return rows[order]


def test_flat_add_remove_search_is_exact():
    rng = np.random.default_rng(0)
    X, Q = rng.normal(size=(200, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    p = PartitionIndex(8, "ip")
    p.add(np.arange(100, 300), X)
    assert p.remove(np.array([100, 101, 999])) == 2 and len(p) == 198
    D, P = p.search(Q, 7)
    assert (P == _brute(X[2:], np.arange(102, 300), Q, 7)).all()
    assert np.all(np.diff(D, axis=1) <= 0)


def test_ivf_partition_stages_small_batches_until_it_can_train():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1200, 8)).astype(np.float32)
    p = PartitionIndex(8, "ip", "IVF4,Flat", min_train=500)
    p.add(np.arange(2), X[:2])  # far too few to train 4 clusters: staged, still searchable
    D, P = p.search(X[:1], 3)
    assert P.tolist() == [[0, 1, -1]] and D[0, 2] == -np.inf
    p.add(np.arange(2, 600), X[2:600])  # now trained; everything moves into the IVF index
    assert p._staged is None and len(p) == 600
    assert p.remove(np.arange(10)) == 10 and len(p) == 590
    faiss.extract_index_ivf(p._index).nprobe = 4  # all lists: exact
    assert (p.search(X[10:13], 5)[1] == _brute(X[10:600], np.arange(10, 600), X[10:13], 5)).all()


def test_ivf_store_upgrade_with_a_tiny_first_batch(tmp_path):
    rng = np.random.default_rng(2)
    ids = [f"d{i}" for i in range(400)]
    old = create_store(tmp_path / "old", "old@1", 8, index_factory="IVF4,Flat")
    old.add(ids, rng.normal(size=(400, 8)).astype(np.float32), "old@1")
    up = create_upgrade(tmp_path / "up", old, "new@1", 8)
    up.add_backfilled(ids[:2], rng.normal(size=(2, 8)).astype(np.float32), "new@1")
    D, I = up.new_part.search(rng.normal(size=(1, 8)).astype(np.float32), 3, "new@1")
    assert sorted(i for i in I[0] if i is not None) == ["d0", "d1"]
    assert len(up.old_part) == 398
    with pytest.raises(ValueError):
        up.new_part.search(np.zeros((1, 8), np.float32), 0, "new@1")

