"""Composed adapters (v3 -> v2 -> v1) and a store's recorded model chain, on synthetic data."""

from __future__ import annotations

import importlib
import json
from types import ModuleType

import numpy as np
import pytest

from hotswap.adapters import Affine, Procrustes, load_adapter, make_adapter, registry
from hotswap.errors import DimensionMismatchError, ModelMismatchError, NotFittedError
from hotswap.store import create_store
from hotswap.store.chain import read_chain, record_chain

V1, V2, V3 = "static@111", "minilm@222", "mpnet@333"


@pytest.fixture
def chain(monkeypatch) -> ModuleType:
    """``hotswap.adapters.chain`` with ``chain`` registered in a throw-away copy of the registry
    (test_adapter_registry.py pins the package's exact list of registered adapters)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    module = importlib.import_module("hotswap.adapters.chain")
    registry.register_adapter("chain", module.ComposedAdapter)
    return module


def spaces(n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """The same n items seen by three models (dims 12, 8, 6) related by noisy linear maps."""
    rng = np.random.default_rng(seed)
    x3 = rng.standard_normal((n, 12)).astype(np.float32)
    x2 = np.tanh(x3 @ rng.standard_normal((12, 8))) + 0.05 * rng.standard_normal((n, 8))
    x1 = x2 @ rng.standard_normal((8, 6)) + 0.05 * rng.standard_normal((n, 6))
    return {V3: x3, V2: x2.astype(np.float32), V1: x1.astype(np.float32)}


def fitted(kind: str, X: dict[str, np.ndarray], new: str, old: str):
    return make_adapter(kind).fit(X[new], X[old], new_model_id=new, old_model_id=old)


def exact_linear(W: np.ndarray, new: str, old: str) -> Affine:
    """An affine adapter set to exactly ``q -> q W`` (no bias)."""
    a = Affine()
    a.W_, a.b_, a.alpha_ = W.astype(np.float32), np.zeros(W.shape[1], np.float32), 0.0
    a.dim_in_, a.dim_out_, a.n_fit_pairs_, a.new_model_id_, a.old_model_id_ = *W.shape, 0, new, old
    return a


def test_composition_applies_the_adapters_in_order(chain):
    X = spaces()
    a32, a21 = fitted("procrustes", X, V3, V2), fitted("affine", X, V2, V1)
    a31 = chain.ComposedAdapter([a32, a21])
    q = X[V3][:17]
    np.testing.assert_array_equal(a31.transform(q, model_id=V3), a21.transform(a32.transform(q)))
    assert (a31.source_model_id, a31.target_model_id, a31.model_chain) == (V3, V1, [V3, V2, V1])
    assert (a31.dim_in_, a31.dim_out_, a31.new_model_id_, a31.old_model_id_) == (12, 6, V3, V1)
    with pytest.raises(ModelMismatchError, match=V2):
        a31.transform(q, model_id=V2)  # only v3 queries go in
    with pytest.raises(DimensionMismatchError):
        a31.transform(X[V2][:3])
    nested = chain.ComposedAdapter([chain.ComposedAdapter([a32]), a21])
    assert nested.adapters == (a32, a21)


def test_exact_linear_maps_compose_to_the_exact_product(chain):
    rng = np.random.default_rng(1)
    W32, W21 = rng.standard_normal((12, 8)), rng.standard_normal((8, 6))
    a31 = chain.ComposedAdapter([exact_linear(W32, V3, V2), exact_linear(W21, V2, V1)])
    q = rng.standard_normal((50, 12)).astype(np.float32)
    np.testing.assert_allclose(a31.transform(q), q.astype(np.float64) @ (W32 @ W21), rtol=1e-4, atol=1e-4)


def test_a_broken_chain_is_refused_naming_both_models(chain):
    X = spaces()
    a32, a21 = fitted("procrustes", X, V3, V2), fitted("procrustes", X, V2, V1)
    other = fitted("procrustes", X, V3, V1)  # maps into v1, but a21 maps from v2
    with pytest.raises(ModelMismatchError) as err:
        chain.ComposedAdapter([other, a21])
    assert V1 in str(err.value) and V2 in str(err.value)
    with pytest.raises(ModelMismatchError) as err:
        chain.ComposedAdapter([a21, a32])  # wrong order: v2 -> v1 then v3 -> v2
    assert f"maps into model '{V1}'" in str(err.value) and f"maps from model '{V3}'" in str(err.value)
    wide = make_adapter("procrustes").fit(X[V3], X[V3], new_model_id=V3, old_model_id=V2)  # v2 side 12-d
    with pytest.raises(DimensionMismatchError) as err:
        chain.ComposedAdapter([wide, a21])
    assert V2 in str(err.value) and "12" in str(err.value) and "8" in str(err.value)
    with pytest.raises(NotFittedError):
        chain.ComposedAdapter([make_adapter("procrustes"), a21])
    with pytest.raises(ModelMismatchError, match="model ids"):
        chain.ComposedAdapter([make_adapter("procrustes").fit(X[V3], X[V2]), a21])
    with pytest.raises(ValueError, match="at least one"):
        chain.ComposedAdapter([])
    with pytest.raises(NotImplementedError, match="fit each link"):
        chain.ComposedAdapter([a32]).fit(X[V3], X[V2])


def test_save_load_round_trip_and_load_adapter_dispatch(chain, tmp_path):
    X = spaces()
    a31 = chain.ComposedAdapter([fitted("procrustes", X, V3, V2), fitted("affine", X, V2, V1)])
    folder = a31.save(tmp_path / "v3-to-v1")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["0-mpnet-to-minilm", "1-minilm-to-static", "adapter.json", "adapter.safetensors"]
    meta = json.loads((folder / "adapter.json").read_text())
    assert meta["name"] == "chain" and meta["fitted"]["chain_"] == [V3, V2, V1]
    assert (meta["new_model_id"], meta["old_model_id"], meta["dim_in"], meta["dim_out"]) == (V3, V1, 12, 6)
    assert [link["folder"] for link in meta["fitted"]["links_"]] == ["0-mpnet-to-minilm", "1-minilm-to-static"]
    assert not [k for k in vars(a31) if k.startswith("link")]  # the serialised form does not linger

    q = X[V3][:23]
    for loaded in (load_adapter(folder), chain.ComposedAdapter.load(folder)):
        assert type(loaded) is chain.ComposedAdapter and loaded.model_chain == [V3, V2, V1]
        assert [type(a) for a in loaded.adapters] == [Procrustes, Affine]
        assert loaded.transform(q, model_id=V3).tobytes() == a31.transform(q).tobytes()
    # each link is also a complete adapter of its own
    alone = load_adapter(folder / "1-minilm-to-static")
    assert alone.transform(X[V2][:5]).tobytes() == a31.adapters[1].transform(X[V2][:5]).tobytes()
    with pytest.raises(NotFittedError):
        chain.ComposedAdapter().save(tmp_path / "empty")


def test_record_and_read_a_store_chain(tmp_path):
    X = spaces()
    create_store(tmp_path / "index", model_id=V1, dim=6)
    a21 = str(fitted("procrustes", X, V2, V1).save(tmp_path / "a21"))
    a32 = str(fitted("procrustes", X, V3, V2).save(tmp_path / "a32"))
    assert read_chain(tmp_path / "index") is None
    path = record_chain(tmp_path / "index", [V1, V2, V3], [a21, a32])
    assert path == tmp_path / "index" / "chain.json"
    got = read_chain(tmp_path / "index")
    assert got is not None and got.chain == (V1, V2, V3) and got.adapters == (a21, a32) and got.recorded_at
    assert [p.name for p in (tmp_path / "index").iterdir() if p.name.endswith(".tmp")] == []

    with pytest.raises(ModelMismatchError) as err:  # the chain must start at the store's own model
        record_chain(tmp_path / "index", [V2, V3], [a32])
    assert V1 in str(err.value) and V2 in str(err.value)
    with pytest.raises(ModelMismatchError, match="a32"):  # adapters in the wrong order
        record_chain(tmp_path / "index", [V1, V2, V3], [a32, a21])
    with pytest.raises(ValueError, match="needs 2 adapters"):
        record_chain(tmp_path / "index", [V1, V2, V3], [a21])
    with pytest.raises(FileNotFoundError):
        record_chain(tmp_path / "index", [V1, V2], [str(tmp_path / "missing")])
    assert read_chain(tmp_path / "index") == got  # refused records leave the old one in place


def test_a_v1_index_serves_v3_queries_through_the_chain(chain, tmp_path):
    from hotswap.search import Searcher

    X = spaces()
    store = create_store(tmp_path / "v1", model_id=V1, dim=6)
    store.add([str(i) for i in range(len(X[V1]))], X[V1], model_id=V1)
    a31 = chain.ComposedAdapter([fitted("procrustes", X, V3, V2), fitted("affine", X, V2, V1)])
    D, I = Searcher(store, adapter=a31).search(X[V3][:5], k=3, mode="adapted", model_id=V3)
    assert I.shape == (5, 3)
    with pytest.raises(ModelMismatchError):
        Searcher(store, adapter=a31).search(X[V2][:5], k=3, mode="adapted", model_id=V2)
