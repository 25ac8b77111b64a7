"""Residual MLP: beats affine on a nonlinear map, starts at the affine fit, deterministic, numpy == torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotswap.adapters import make_adapter

SMALL = {"hidden": 64, "max_epochs": 60}


def nonlinear_pairs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((16, 8)) / 4
    B, C = rng.standard_normal((16, 3)) * 1.5 / 4, rng.standard_normal((3, 8))
    X = rng.standard_normal((n, 16))
    return X.astype(np.float32), (X @ A + np.tanh(X @ B) ** 2 @ C).astype(np.float32)


def test_beats_affine_on_held_out_pairs():
    X, Y = nonlinear_pairs(2500)
    X_fit, Y_fit, X_test, Y_test = X[:2000], Y[:2000], X[2000:], Y[2000:]
    mlp = make_adapter("residual_mlp", **SMALL).fit(X_fit, Y_fit)
    affine = make_adapter("affine").fit(X_fit, Y_fit)

    def err(a):
        return np.mean(np.sum((a.transform(X_test) - Y_test) ** 2, axis=1))

    assert err(mlp) < 0.5 * err(affine)
    assert 0 < mlp.best_epoch_ <= mlp.epochs_run_ <= 60


def test_deterministic_given_seed():
    X, Y = nonlinear_pairs(600, seed=1)
    a, b = (make_adapter("residual_mlp", hidden=32, max_epochs=5, seed=7).fit(X, Y) for _ in range(2))
    c = make_adapter("residual_mlp", hidden=32, max_epochs=5, seed=8).fit(X, Y)
    for key in ("W_", "b_", "W1_", "b1_", "W2_", "b2_"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.array_equal(a.W1_, c.W1_)


def test_starts_at_the_affine_fit_with_a_zero_mlp():
    X, Y = nonlinear_pairs(300, seed=2)
    adapter = make_adapter("residual_mlp", hidden=16, max_epochs=0).fit(X, Y)
    assert not adapter.W2_.any() and not adapter.b2_.any() and adapter.best_epoch_ == 0
    np.testing.assert_allclose(adapter.transform(X), X @ adapter.W_ + adapter.b_, atol=1e-5)


def test_numpy_transform_matches_the_torch_module():
    X, Y = nonlinear_pairs(400, seed=3)
    a = make_adapter("residual_mlp", hidden=32, max_epochs=5).fit(X, Y)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(32, 8))
    with torch.no_grad():
        for layer, (W, b) in zip((mlp[0], mlp[2]), ((a.W1_, a.b1_), (a.W2_, a.b2_))):
            layer.weight.copy_(torch.from_numpy(W.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
        expected = (torch.from_numpy(X) @ torch.from_numpy(a.W_) + torch.from_numpy(a.b_) + mlp(torch.from_numpy(X)))
    np.testing.assert_allclose(a.transform(X), expected.numpy(), atol=1e-5)
    assert np.abs(a.W2_).max() > 0


def test_procrustes_init_starts_at_the_orthogonal_map():
    X, Y = nonlinear_pairs(300, seed=4)
    a = make_adapter("residual_mlp", hidden=16, max_epochs=0, init="procrustes").fit(X, Y)
    p = make_adapter("procrustes").fit(X, Y)
    np.testing.assert_allclose(a.W_.T @ a.W_, np.eye(8), atol=1e-5)  # semi-orthogonal, 16 -> 8
    assert not a.b_.any()
    # the same map up to the 10% of pairs held out for early stopping: close to the full-data Procrustes fit
    assert np.abs(a.W_ - p.W_).max() < 0.2


def test_contrastive_term_changes_the_fit_and_is_validated():
    X, Y = nonlinear_pairs(600, seed=5)
    plain = make_adapter("residual_mlp", hidden=32, max_epochs=5).fit(X, Y)
    nce = make_adapter("residual_mlp", hidden=32, max_epochs=5, contrastive_weight=5.0).fit(X, Y)
    assert not np.allclose(plain.transform(X), nce.transform(X))
    with pytest.raises(ValueError, match="init"):
        make_adapter("residual_mlp", init="random")
