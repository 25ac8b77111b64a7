"""QDC: the mean drift is subtracted; continual steps add up."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.adapters import DriftCompensation, load_adapter, make_adapter
from hotswap.errors import NotFittedError


def test_recovers_a_known_translation():
    rng = np.random.default_rng(0)
    X_old, shift = rng.standard_normal((300, 32)), rng.standard_normal(32)
    adapter = make_adapter("drift").fit(X_old + shift, X_old, new_model_id="f2", old_model_id="f1")
    assert np.abs(adapter.delta_ - shift).max() < 1e-5 and adapter.deltas_.shape == (1, 32)
    assert np.abs(adapter.transform(X_old + shift) - X_old).max() < 1e-5


def test_from_deltas_and_add_delta_sum_the_steps(tmp_path):
    rng = np.random.default_rng(1)
    d2, d3, d4 = (rng.standard_normal(16).astype(np.float32) for _ in range(3))
    q = rng.standard_normal((4, 16)).astype(np.float32)
    adapter = DriftCompensation.from_deltas([d2, d3], new_model_id="f3", old_model_id="f1")
    np.testing.assert_allclose(adapter.transform(q, model_id="f3"), q - d2 - d3, atol=1e-6)
    adapter.add_delta(d4, new_model_id="f4")
    np.testing.assert_allclose(adapter.transform(q, model_id="f4"), q - (d2 + d3 + d4), atol=1e-6)
    assert adapter.deltas_.shape == (3, 16) and adapter.new_model_id_ == "f4"
    loaded = load_adapter(adapter.save(tmp_path / "qdc"))
    np.testing.assert_array_equal(loaded.deltas_, adapter.deltas_)
    np.testing.assert_array_equal(loaded.transform(q), adapter.transform(q))
    with pytest.raises(ValueError, match="at least one"):
        DriftCompensation.from_deltas([])
    with pytest.raises(NotFittedError):
        DriftCompensation().add_delta(d2)


def test_not_renormalising_keeps_each_querys_ranking():
    rng = np.random.default_rng(2)
    index = rng.standard_normal((200, 24))
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    q_hat = make_adapter("drift").fit(rng.standard_normal((50, 24)) + 0.3, rng.standard_normal((50, 24))).transform(
        rng.standard_normal((5, 24)))
    unit = q_hat / np.linalg.norm(q_hat, axis=1, keepdims=True)
    np.testing.assert_array_equal(np.argsort(-q_hat @ index.T, axis=1), np.argsort(-unit @ index.T, axis=1))
