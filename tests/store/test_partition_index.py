"""PartitionIndex: add/remove by item number, exact search, and staged training for IVF factories."""

import faiss
import numpy as np
import pytest

from hotswap.store import create_store
from hotswap.upgrade import create_upgrade
from hotswap.store.faiss.partition_index import PartitionIndex


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



def test_hnsw_partition_masks_removed_items_and_keeps_recall():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rows = np.arange(2000, dtype=np.int64) * 2 + 5  # item numbers need not be dense
    part = PartitionIndex(16, "ip", "HNSW32")
    part.add(rows, X)
    gone = rows[rng.permutation(2000)[:1500]]  # three quarters leave, as in a late backfill
    assert part.remove(np.concatenate([gone, gone[:10], [1]])) == 1500 and len(part) == 500
    assert part.remove(gone[:3]) == 0
    Q = rng.standard_normal((50, 16)).astype(np.float32)
    D, P = part.search(Q, 10)
    assert not np.isin(P, gone).any() and (P >= 0).all()
    keep = ~np.isin(rows, gone)
    exact = rows[keep][np.argsort(-(Q @ X[keep].T), axis=1)[:, :10]]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(P, exact)])
    assert recall >= 0.95


def test_an_hnsw_store_can_be_upgraded_and_written_during_the_upgrade(tmp_path):
    rng = np.random.default_rng(4)

    def unit(n, d):
        X = rng.standard_normal((n, d)).astype(np.float32)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    ids, X_old, X_new = [f"d{j}" for j in range(400)], unit(400, 8), unit(400, 12)
    old = create_store(tmp_path / "old", "old@1", 8, index_factory="HNSW32")
    old.add(ids, X_old, "old@1")
    up = create_upgrade(tmp_path / "up", old, "new@1", 12)
    up.search_partition("old", X_old[:1], 5, "old@1")  # the partitions exist before the moves below
    up.add_backfilled(ids[:300], X_new[:300], "new@1")
    up.write(["d5", "d350", "fresh"], unit(3, 8), unit(3, 12))
    up.delete(["d6", "d351"])
    pending = set(ids[300:]) - {"d350", "d351"}
    done = (set(ids[:300]) | {"d350", "fresh"}) - {"d6"}
    assert up.counts() == {"old": len(pending), "new": len(done)}
    Q_old, Q_new = unit(30, 8), unit(30, 12)
    got_old = up.search_partition("old", Q_old, 10, "old@1")[1]
    got_new = up.search_partition("new", Q_new, 10, "new@1")[1]
    assert set(got_old.ravel()) <= pending and set(got_new.ravel()) <= done
    order = sorted(pending)
    exact = np.array(order)[np.argsort(-(Q_old @ up.old.get(order).T), axis=1)[:, :10]]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got_old, exact)]) >= 0.95
