"""Registry: names, construction, unknown names/params, adding a method with one register line."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.adapters import Adapter, AdapterConfig, available_adapters, make_adapter, register_adapter
from hotswap.adapters import registry


def test_builtin_adapters_are_registered():
    assert available_adapters() == ["affine", "compatible", "drift", "low_rank", "procrustes", "residual_mlp", "reverse"]
    for name in available_adapters():
        adapter = make_adapter(name)
        assert isinstance(adapter, Adapter) and adapter.name == name and not adapter.is_fitted


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown adapter 'nope'") as err:
        make_adapter("nope")
    for name in available_adapters():
        assert name in str(err.value)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(TypeError, match="valid parameters: center, scale"):
        make_adapter("procrustes", centre=True)


@pytest.mark.parametrize("name, params", [("affine", {"alpha": -1.0}), ("low_rank", {"rank": 0}),
                                          ("residual_mlp", {"val_fraction": 1.5}), ("affine", {"alpha": "gcv"})])
def test_bad_hyper_parameters_are_refused(name, params):
    with pytest.raises(ValueError):
        make_adapter(name, **params)


def test_params_round_trip_like_scikit_learn():
    adapter = make_adapter("low_rank", rank=8)
    assert adapter.get_params() == {"rank": 8, "alpha": "auto"}
    assert adapter.set_params(rank=4).config.rank == 4
    assert "rank=4" in repr(adapter)


def test_a_new_method_is_one_register_line(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class Identity(Adapter):
        config_class = AdapterConfig
        equal_dims = True

        def _fit(self, X_new, X_old):
            self.seen_ = np.zeros(X_new.shape[1], dtype=np.float32)

        def _transform(self, X):
            return X + self.seen_

    register_adapter("identity", Identity)
    assert "identity" in available_adapters()
    X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    make_adapter("identity").fit(X, X).save(tmp_path / "a")
    np.testing.assert_array_equal(Adapter.load(tmp_path / "a").transform(X), X)


def test_a_name_cannot_be_taken_twice(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class Other(Adapter):
        def _fit(self, X_new, X_old): ...
        def _transform(self, X): return X

    with pytest.raises(ValueError, match="already taken"):
        register_adapter("affine", Other)
