"""Procrustes recovers known orthogonal and semi-orthogonal maps."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.adapters import Procrustes, make_adapter


def semi_orthogonal(rng: np.random.Generator, d_in: int, d_out: int) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((max(d_in, d_out), max(d_in, d_out))))
    return Q[:d_in, :d_out] if d_in <= d_out else Q[:, :d_out][:d_in]


def test_recovers_a_rotation_exactly():
    rng = np.random.default_rng(0)
    Q = semi_orthogonal(rng, 64, 64)
    X = rng.standard_normal((500, 64))
    adapter = make_adapter("procrustes").fit(X, X @ Q)
    assert isinstance(adapter, Procrustes)
    assert np.abs(adapter.W_ - Q).max() < 1e-5
    assert np.abs(adapter.transform(X[:20]) - X[:20] @ Q).max() < 1e-4
    np.testing.assert_allclose(adapter.W_.T @ adapter.W_, np.eye(64), atol=1e-5)


@pytest.mark.parametrize("d_new, d_old", [(48, 32), (32, 48)])
def test_recovers_a_semi_orthogonal_map_for_unequal_dims(d_new, d_old):
    rng = np.random.default_rng(1)
    W = semi_orthogonal(rng, d_new, d_old)
    small = min(d_new, d_old)
    np.testing.assert_allclose(W.T @ W if d_new >= d_old else W @ W.T, np.eye(small), atol=1e-12)
    X = rng.standard_normal((400, d_new))
    if d_new > d_old:  # dropping directions: exact only for isotropic X_new (see the Procrustes docstring)
        X = np.linalg.qr(X)[0] * 20.0
    adapter = make_adapter("procrustes").fit(X, X @ W)
    assert adapter.W_.shape == (d_new, d_old)
    assert np.abs(adapter.W_ - W).max() < 1e-5
    WtW = adapter.W_.T @ adapter.W_ if d_new >= d_old else adapter.W_ @ adapter.W_.T
    np.testing.assert_allclose(WtW, np.eye(small), atol=1e-5)


def test_center_and_scale_recover_a_similarity_transform():
    rng = np.random.default_rng(2)
    Q, t = semi_orthogonal(rng, 24, 24), rng.standard_normal(24)
    X = rng.standard_normal((300, 24)) + 3.0
    Y = 0.5 * X @ Q + t
    plain = make_adapter("procrustes").fit(X, Y)
    full = make_adapter("procrustes", center=True, scale=True).fit(X, Y)
    assert abs(full.scale_ - 0.5) < 1e-6 and plain.scale_ == 1.0
    assert np.abs(full.transform(X) - Y).max() < 1e-4
    assert np.abs(plain.transform(X) - Y).max() > 0.1


def test_d_new_above_d_old_keeps_orthonormal_columns_for_anisotropic_data():
    rng = np.random.default_rng(4)
    W = semi_orthogonal(rng, 40, 24)
    X = rng.standard_normal((300, 40)) * np.linspace(2.0, 0.2, 40)
    adapter = make_adapter("procrustes").fit(X, X @ W)
    np.testing.assert_allclose(adapter.W_.T @ adapter.W_, np.eye(24), atol=1e-5)
    rel = np.linalg.norm(adapter.transform(X) - X @ W) / np.linalg.norm(X @ W)
    assert 0 < rel < 0.5  # close, not exact: the unbalanced problem has no closed form


def test_is_the_best_orthogonal_map_under_noise():
    rng = np.random.default_rng(3)
    Q = semi_orthogonal(rng, 16, 16)
    X = rng.standard_normal((200, 16))
    Y = X @ Q + 0.3 * rng.standard_normal((200, 16))
    W = make_adapter("procrustes").fit(X, Y).W_.astype(np.float64)
    loss = np.linalg.norm(X @ W - Y)
    for _ in range(20):  # nearby orthogonal maps (polar factor of a perturbed W) do worse
        U, _s, Vt = np.linalg.svd(W + 0.05 * rng.standard_normal((16, 16)))
        assert loss < np.linalg.norm(X @ (U @ Vt) - Y)
