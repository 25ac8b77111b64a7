"""Writes during an upgrade, on every backend: ``write`` (dual-write upsert) and ``delete`` keep the new
partition inside the old index, searches see the latest vectors on both sides, and a backfilled batch read
before a write never overwrites it nor resurrects a deleted item."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.errors import UnknownIdError
from hotswap.upgrade import open_upgrade
from tests.store.test_upgrade_contract import (D_NEW, D_OLD, IDS, NEW, OLD, X_NEW, X_OLD, backend, brute,  # noqa: F401
                                               close, make)


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def model(up):
    """What the upgrade should hold: id -> old vector, and id -> new vector of the backfilled ids."""
    return dict(zip(IDS, X_OLD)), {}


def check(up, old: dict, new: dict) -> None:
    """Ids, counts, stored vectors and both partitions' searches equal brute force over ``old`` / ``new``."""
    assert sorted(up.old.ids) == sorted(old) and sorted(up.backfilled_ids()) == sorted(new)
    assert up.counts() == {"old": len(old) - len(new), "new": len(new)}
    np.testing.assert_allclose(up.old.get(list(old)), np.stack(list(old.values())), atol=1e-6)
    if new:
        np.testing.assert_allclose(up.new.get(list(new)), np.stack(list(new.values())), atol=1e-6)
    pending = [i for i in old if i not in new]
    Q_old, Q_new, k = unit(3, D_OLD, 7), unit(3, D_NEW, 8), 8
    for side, Q, ids, X, mid in (("old", Q_old, pending, [old[i] for i in pending], OLD),
                                 ("new", Q_new, list(new), list(new.values()), NEW)):
        want = brute(Q, np.stack(X) if X else np.empty((0, Q.shape[1]), np.float32), ids, k, up.metric)
        got = up.search_partition(side, Q, k, mid)
        assert got[1].tolist() == want[1].tolist(), side


def test_writes_during_an_upgrade_keep_both_sides_right(make):
    _, up = make()
    old, new = model(up)
    up.search_partition("old", unit(1, D_OLD, 1), 3, OLD)  # partitions built before the writes (FAISS)
    up.add_backfilled(IDS[:10], X_NEW[:10], NEW)
    new.update(zip(IDS[:10], X_NEW[:10]))
    check(up, old, new)
    # an upsert of a backfilled, a pending and a brand-new item: all three are backfilled at once
    ids, Xo, Xn = [IDS[2], IDS[30], "fresh"], unit(3, D_OLD, 3), unit(3, D_NEW, 4)
    assert up.write(ids, Xo, Xn) == 3
    old.update(zip(ids, Xo))
    new.update(zip(ids, Xn))
    check(up, old, new)
    # deletes of a backfilled, a pending and an unknown item
    assert up.delete([IDS[3], IDS[40], "nope"]) == 2
    for i in (IDS[3], IDS[40]):
        old.pop(i)
        new.pop(i, None)
    check(up, old, new)
    # a batch encoded before those writes: stale texts are skipped, deleted items are not resurrected
    stale = [IDS[2], IDS[30], IDS[3], IDS[40], IDS[41]]
    assert up.add_backfilled(stale, unit(5, D_NEW, 9), NEW, skip_stored=True) == 1
    new[IDS[41]] = unit(5, D_NEW, 9)[4]
    check(up, old, new)
    with pytest.raises(UnknownIdError):  # without skip_stored a deleted id is still an error
        up.add_backfilled([IDS[40]], unit(1, D_NEW, 9), NEW)
    close(up)
    again = open_upgrade(up.path)
    make.opened.append(again)
    check(again, old, new)


def test_a_bad_write_changes_neither_side(make):
    _, up = make()
    before = (sorted(up.old.ids), sorted(up.backfilled_ids()))
    with pytest.raises(ValueError):
        up.write([IDS[0]], unit(1, D_OLD, 1), np.full((1, D_NEW), np.nan, np.float32))
    with pytest.raises(ValueError):
        up.write([IDS[0], IDS[1]], unit(2, D_OLD, 1), unit(1, D_NEW, 1))
    assert (sorted(up.old.ids), sorted(up.backfilled_ids())) == before
    np.testing.assert_allclose(up.old.get([IDS[0]]), X_OLD[:1], atol=1e-6)
