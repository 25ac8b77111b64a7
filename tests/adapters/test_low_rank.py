"""Low-rank adapter: reduced-rank ridge recovers a rank-r map; too small a rank does worse."""

from __future__ import annotations

import numpy as np

from hotswap.adapters import make_adapter


def rank_r_pairs(r: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A, B, b = rng.standard_normal((48, r)), rng.standard_normal((r, 32)), rng.standard_normal(32)
    X = rng.standard_normal((800, 48))
    return X, X @ A @ B / 8 + b, A @ B / 8, b


def test_recovers_a_rank_r_map_exactly():
    X, Y, W, b = rank_r_pairs(6)
    adapter = make_adapter("low_rank", rank=6, alpha=1e-9).fit(X, Y)
    assert adapter.A_.shape == (48, 6) and adapter.B_.shape == (6, 32) and adapter.rank_ == 6
    assert np.abs(adapter.A_ @ adapter.B_ - W).max() < 1e-4 and np.abs(adapter.b_ - b).max() < 1e-4
    assert np.abs(adapter.transform(X[:20]) - Y[:20]).max() < 1e-4
    np.testing.assert_allclose(adapter.B_ @ adapter.B_.T, np.eye(6), atol=1e-5)


def test_too_small_a_rank_fits_worse_and_auto_alpha_still_recovers():
    X, Y, _, _ = rank_r_pairs(8, seed=1)
    err = {r: np.mean((make_adapter("low_rank", rank=r).fit(X, Y).transform(X) - Y) ** 2) for r in (4, 8)}
    assert err[8] < 1e-8 < err[4] and err[4] > 1e3 * err[8]


def test_rank_is_clipped_to_the_smaller_dim():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((100, 20)), rng.standard_normal((100, 12))
    adapter = make_adapter("low_rank", rank=64).fit(X, Y)
    full = make_adapter("affine", alpha=adapter.alpha_).fit(X, Y)
    assert adapter.rank_ == 12
    np.testing.assert_allclose(adapter.transform(X), full.transform(X), atol=1e-5)
