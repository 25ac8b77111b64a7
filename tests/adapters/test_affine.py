"""Affine (ridge) adapter: exact recovery with small alpha, sensible alpha chosen by GCV."""

from __future__ import annotations

import numpy as np

from hotswap.adapters import make_adapter
from hotswap.linalg import ALPHA_GRID, ridge_fit


def test_recovers_a_known_affine_map_and_bias():
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((40, 24)) / 6, rng.standard_normal(24)
    X = rng.standard_normal((600, 40))
    adapter = make_adapter("affine", alpha=1e-8).fit(X, X @ W + b)
    assert np.abs(adapter.W_ - W).max() < 1e-4 and np.abs(adapter.b_ - b).max() < 1e-4
    assert adapter.alpha_ == 1e-8
    assert np.abs(adapter.transform(X[:10]) - (X[:10] @ W + b)).max() < 1e-4


def test_matches_the_textbook_formula():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((80, 30)), rng.standard_normal((80, 5))
    fit = ridge_fit(X, Y, 2.5)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    W = np.linalg.solve(Xc.T @ Xc + 2.5 * np.eye(30), Xc.T @ Yc)
    np.testing.assert_allclose(fit.W, W, atol=1e-10)
    np.testing.assert_allclose(fit.b, Y.mean(0) - X.mean(0) @ W, atol=1e-10)


def test_auto_alpha_uses_only_fit_data_and_beats_too_little_regularisation():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((60, 10))
    X, X_test = rng.standard_normal((90, 60)), rng.standard_normal((1000, 60))
    Y, Y_test = X @ W + 6 * rng.standard_normal((90, 10)), X_test @ W
    auto = make_adapter("affine").fit(X, Y)
    tiny = make_adapter("affine", alpha=1e-9).fit(X, Y)
    mean_eig = np.square(X - X.mean(0)).sum() / 60
    assert ALPHA_GRID[0] * mean_eig * 0.999 <= auto.alpha_ <= ALPHA_GRID[-1] * mean_eig * 1.001
    assert auto.alpha_ > 1.0

    def err(a):
        return np.mean((a.transform(X_test) - Y_test) ** 2)

    assert err(auto) < 0.7 * err(tiny)


def test_auto_alpha_is_small_for_clean_data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 20))
    adapter = make_adapter("affine").fit(X, X @ rng.standard_normal((20, 7)))
    assert adapter.alpha_ <= 1e-5 * np.square(X - X.mean(0)).sum() / 20
