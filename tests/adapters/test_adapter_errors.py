"""Every adapter refuses bad input with the right error class and a message that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.adapters import available_adapters, get_adapter_class, make_adapter
from hotswap.errors import DimensionMismatchError, InvalidVectorsError, ModelMismatchError, NotFittedError

FAST = {"residual_mlp": {"hidden": 8, "max_epochs": 1}, "low_rank": {"rank": 3}, "reverse": {"epochs": 30}}


def pairs(name: str, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d_old = 10 if get_adapter_class(name).equal_dims else 6
    return rng.standard_normal((n, 10)).astype(np.float32), rng.standard_normal((n, d_old)).astype(np.float32)


@pytest.fixture(params=available_adapters())
def name(request) -> str:
    return request.param


def test_transform_before_fit(name):
    with pytest.raises(NotFittedError, match="not fitted"):
        make_adapter(name).transform(np.zeros((1, 10), np.float32))


def test_wrong_width_names_the_new_model_and_the_dims(name):
    adapter = make_adapter(name, **FAST.get(name, {})).fit(*pairs(name), new_model_id="mini-v2", old_model_id="v1")
    with pytest.raises(DimensionMismatchError) as err:
        adapter.transform(np.zeros((2, 7), np.float32))
    msg = str(err.value)
    assert "mini-v2" in msg and "7" in msg and "10" in msg and str(adapter.dim_out_) in msg


def test_other_model_id_names_both(name):
    adapter = make_adapter(name, **FAST.get(name, {})).fit(*pairs(name), new_model_id="mini-v2", old_model_id="v1")
    X = pairs(name)[0][:3]
    assert adapter.transform(X, model_id="mini-v2").shape == (3, adapter.dim_out_)
    with pytest.raises(ModelMismatchError) as err:
        adapter.transform(X, model_id="mpnet-v3")
    assert "mpnet-v3" in str(err.value) and "mini-v2" in str(err.value)


def test_rows_must_be_aligned_pairs(name):
    X_new, X_old = pairs(name)
    with pytest.raises(InvalidVectorsError, match="60 rows but X_old has 59"):
        make_adapter(name).fit(X_new, X_old[:59])


def test_nan_is_refused_at_fit_and_transform(name):
    X_new, X_old = pairs(name)
    X_bad = X_old.copy()
    X_bad[4, 1] = np.nan
    with pytest.raises(InvalidVectorsError, match="NaN"):
        make_adapter(name).fit(X_new, X_bad)
    adapter = make_adapter(name, **FAST.get(name, {})).fit(X_new, X_old)
    with pytest.raises(InvalidVectorsError, match="row 0"):
        adapter.transform(np.full((1, 10), np.inf, np.float32))


@pytest.mark.parametrize("name", [n for n in available_adapters() if n != "drift"])  # drift: 1 pair is enough
def test_too_few_pairs(name):
    X_new, X_old = pairs(name)
    need = make_adapter(name, **FAST.get(name, {})).min_pairs(10, X_old.shape[1])
    with pytest.raises(InvalidVectorsError, match=f"at least {need} aligned pairs"):
        make_adapter(name, **FAST.get(name, {})).fit(X_new[:need - 1], X_old[:need - 1])


def test_drift_needs_equal_dims():
    rng = np.random.default_rng(0)
    with pytest.raises(DimensionMismatchError, match="equal dimensions.*384.*256"):
        make_adapter("drift").fit(rng.standard_normal((5, 384)), rng.standard_normal((5, 256)))


def test_compatible_is_the_identity_and_records_agreement():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 8)).astype(np.float32)
    same = make_adapter("compatible").fit(X, X, new_model_id="bc@1", old_model_id="old@1")
    assert same.agreement_ == pytest.approx(1.0) and np.array_equal(same.transform(X), X)
    other = make_adapter("compatible").fit(X, rng.standard_normal((20, 8)))
    assert abs(other.agreement_) < 0.3
    with pytest.raises(DimensionMismatchError, match="equal dimensions"):
        make_adapter("compatible").fit(X, X[:, :4])
