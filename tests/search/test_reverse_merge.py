"""One new-model encoding through psi (adapter ``reverse``) equals the two-encoding distance rank merge when
psi is exact (Seo et al.'s reverse query transform), and a fitted psi comes close to it."""

from __future__ import annotations

import numpy as np
import torch

from hotswap.adapters import Reverse, load_adapter, make_adapter
from hotswap.search import Searcher
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade
from hotswap.adapters.reverse_transform import ReverseTransform
from tests.conftest import unit_rows

OLD, NEW, D_OLD, D_NEW = "old@1", "new@2", 16, 24


def _upgrade(tmp_path, rng):
    """Old vectors X_old, new vectors X_new = X_old Q (Q: orthonormal rows), so psi(x) = x Q^T is exact."""
    n = 80
    X_old = unit_rows(rng, n, D_OLD)
    Q = np.linalg.qr(rng.standard_normal((D_NEW, D_NEW)))[0][:D_OLD].astype(np.float32)   # [16, 24]
    X_new = (X_old @ Q).astype(np.float32)
    ids = [f"img-{i}" for i in range(n)]
    old = create_store(tmp_path / "old", model_id=OLD, dim=D_OLD)
    old.add(ids, X_old, OLD)
    up = create_upgrade(tmp_path / "up", old, NEW, D_NEW)
    done = np.arange(0, n, 3)
    up.add_backfilled([ids[i] for i in done], X_new[done], NEW)
    return up, Q, X_old, X_new


def test_exact_psi_equals_merge_with_two_encodings(tmp_path, rng):
    up, Q, _, X_new = _upgrade(tmp_path, rng)
    psi = ReverseTransform(D_NEW, D_OLD)
    with torch.no_grad():
        psi.linear.weight.copy_(torch.from_numpy(Q))
        psi.linear.bias.zero_()
    adapter = Reverse.from_module(psi, new_model_id=NEW, old_model_id=OLD)
    Q_new = X_new[5:25] + 0.05 * rng.standard_normal((20, D_NEW)).astype(np.float32)
    Q_new /= np.linalg.norm(Q_new, axis=1, keepdims=True)   # encoders emit unit rows
    Q_old = Q_new @ Q.T
    Q_old /= np.linalg.norm(Q_old, axis=1, keepdims=True)   # what the old model would have encoded
    searcher = Searcher.for_upgrade(up, adapter=adapter)
    D1, I1 = searcher.search(Q_new, 10, "adapted", NEW)   # one encoding
    D2, I2 = searcher.search((Q_new, Q_old), 10, "merged", NEW)
    assert I1.tolist() == I2.tolist()
    np.testing.assert_allclose(D1, D2, atol=1e-5)


def test_fitted_psi_recovers_the_old_space_and_saves(tmp_path, rng):
    up, Q, X_old, X_new = _upgrade(tmp_path, rng)
    adapter = make_adapter("reverse", epochs=300).fit(X_new, X_old, new_model_id=NEW, old_model_id=OLD)
    err = np.mean(np.sum((adapter.transform(X_new) - X_old) ** 2, axis=1))
    assert err < 0.01 * np.mean(np.sum(X_old ** 2, axis=1))
    _, I = Searcher.for_upgrade(up, adapter=adapter).search(X_new, 1, "adapted", NEW)
    assert np.mean([i == f"img-{k}" for k, i in enumerate(I[:, 0])]) > 0.95
    adapter.save(tmp_path / "psi")
    back = load_adapter(tmp_path / "psi")
    np.testing.assert_array_equal(back.transform(X_new[:7]), adapter.transform(X_new[:7]))
