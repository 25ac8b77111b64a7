"""Image BCL training: a two-step micro run per method on synthetic class patterns gives a valid matrix;
heads, model save/load and the compatibility terms behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotswap.encoders.image import to_tensor
from hotswap.errors import AssetMissingError, CorruptStoreError
from hotswap.metrics.model_compatibility import compatibility_matrix, summarise
from hotswap.training.bcl_model import BCLModel
from hotswap.training.classification import METHODS, BCLConfig, train_step
from hotswap.training.heads import build_head


def pattern_images(n_per_class: int, classes: range, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright 6x6 block at a class-specific place, on noise (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in classes:
        x = rng.integers(0, 60, size=(n_per_class, 28, 28)).astype(np.uint8)
        r, q = 3 + 6 * (c // 4), 3 + 6 * (c % 4)
        x[:, r:r + 6, q:q + 6] = 250
        xs.append(x)
        ys.append(np.full(n_per_class, c, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


X, Y = pattern_images(24, range(4), seed=0)
XQ, YQ = pattern_images(10, range(4), seed=1)
XG, YG = pattern_images(10, range(4), seed=2)


def _config(method: str, **kw) -> BCLConfig:
    base = dict(method=method, arch="cnn", width=8, embed_dim=16, n_classes=4, preallocated=17, epochs=3,
                batch_size=16, lr=0.05, seed=0)
    base.update(kw)
    return BCLConfig(**base)


@pytest.mark.parametrize("method", METHODS)
def test_two_step_micro_run_gives_a_valid_matrix(method):
    first = np.flatnonzero(Y < 2)
    second = np.flatnonzero(Y >= 2) if method in ("independent", "bct", "dsimplex") else np.arange(len(Y))
    m0 = train_step(_config(method), X, Y, first, name="m0")
    memory = first[::6] if method in ("independent", "bct", "dsimplex") else None
    init = m0 if method in ("independent", "bct", "dsimplex") else None
    m1 = train_step(_config(method, seed=1), X, Y, second, memory, init=init, old=m0, name="m1")
    assert m1.classes == [0, 1, 2, 3] and m1.info["method"] == method and m1.info["old"] == "m0"
    losses = [h["loss"] for h in m1.info["history"]]
    assert all(np.isfinite(losses))
    queries = [m.encode(XQ) for m in (m0, m1)]
    gallery = [m.encode(XG) for m in (m0, m1)]
    C = 100 * compatibility_matrix(queries, gallery, YQ, YG, metric="template_top1")
    assert C.shape == (2, 2) and np.isnan(C[0, 1])
    assert np.all((C[np.tril_indices(2)] >= 0) & (C[np.tril_indices(2)] <= 100))
    s = summarise(C)
    assert s["ac"] in (0.0, 1.0) and 0 <= s["am"] <= 100
    assert C[1, 1] >= 50, f"{method}: the new model should learn the 4 patterns (self-test {C[1, 1]:.0f}%)"


def test_dsimplex_head_is_fixed_and_embedding_is_k_minus_1():
    m = train_step(_config("dsimplex"), X, Y, np.arange(len(Y)), name="s")
    assert m.dim == 16 and m.head.kind == "simplex" and list(m.head.parameters()) == []


def test_prototype_methods_record_perturbations_and_ndpp_moves_less_than_odpp_radius():
    first = np.flatnonzero(Y < 2)
    m0 = train_step(_config("independent", head="cosine"), X, Y, first, name="m0")
    for method, bound in (("ndpp", 2.0), ("odpp", 0.3 + 1e-5), ("prototype", 0.0)):
        m1 = train_step(_config(method), X, Y, np.arange(len(Y)), old=m0, name=method)
        norms = m1.info["perturbation_norms"]
        assert len(norms) == (0 if method == "prototype" else 3)
        assert all(0 <= v <= bound for v in norms)


def test_bct_pulls_new_features_onto_the_old_classifier():
    """Under the OLD classifier, BCT's new features classify the old classes; independent ones do not."""
    first = np.flatnonzero(Y < 2)
    m0 = train_step(_config("independent", epochs=15), X, Y, first, name="m0")  # BN running stats settle
    W, b, _ = m0.head.class_weights()
    xq, yq = to_tensor(XQ[YQ < 2]), YQ[YQ < 2]

    def old_head_accuracy(model: BCLModel) -> float:
        return float(((model.raw_features(xq) @ W.T + b)[:, :2].argmax(1).numpy() == yq).mean())

    assert old_head_accuracy(m0) == 1.0
    acc = {m: old_head_accuracy(train_step(_config(m, seed=5, epochs=15), X, Y, np.arange(len(Y)), old=m0, name=m))
           for m in ("independent", "bct")}
    assert acc["bct"] >= 0.9 and acc["independent"] < 0.9, acc


def test_fine_tuning_with_another_head_is_refused():
    m0 = train_step(_config("independent"), X, Y, np.arange(len(Y)), name="m0")
    with pytest.raises(ValueError, match="cannot fine-tune a linear model"):
        train_step(_config("ndpp"), X, Y, np.arange(len(Y)), init=m0, old=m0)


def test_unknown_method_and_head_are_named():
    with pytest.raises(ValueError, match="unknown method 'lwf'"):
        BCLConfig(method="lwf")
    with pytest.raises(ValueError, match="unknown head"):
        build_head("arc", 8, 4)
    with pytest.raises(ValueError, match="needs a 15-d embedding"):
        build_head("simplex", 8, 4, preallocated=16)


@pytest.mark.parametrize("method", ["independent", "odpp", "dsimplex"])
def test_model_save_load_round_trip(tmp_path, method):
    m0 = train_step(_config("independent", head="cosine" if method == "odpp" else None), X, Y,
                    np.arange(len(Y)), name="m0") if method != "dsimplex" else None
    m = train_step(_config(method), X, Y, np.arange(len(Y)), old=m0, name="m")
    m.save(tmp_path / "m")
    back = BCLModel.load(tmp_path / "m")
    assert back.classes == m.classes and back.head.kind == m.head.kind and back.info["method"] == method
    np.testing.assert_allclose(back.encode(XQ), m.encode(XQ), atol=1e-6)
    z = torch.randn(3, m.dim)
    assert torch.allclose(back.head(z), m.head(z), atol=1e-6)
    (tmp_path / "m" / "head.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(CorruptStoreError, match="head.safetensors"):
        BCLModel.load(tmp_path / "m")
    with pytest.raises(AssetMissingError, match="bcl.json"):
        BCLModel.load(tmp_path / "nothing")


def test_cmcl_trains_psi_with_the_model_and_saves_it(tmp_path):
    """psi, trained jointly, maps new embeddings next to the old model's own embedding of the same image and
    keeps classes apart in the old space; it is saved with the model."""
    m0 = train_step(_config("independent", head="cosine", epochs=15), X, Y, np.arange(len(Y)), name="m0")
    m1 = train_step(_config("cmcl", seed=3, epochs=15), X, Y, np.arange(len(Y)), old=m0, name="m1")
    assert m1.psi is not None and (m1.psi.dim_new, m1.psi.dim_old) == (16, 16)
    new, old = m1.encode(XQ), m0.encode(XQ)
    mapped = m1.psi.transform(new, normalise=True)
    assert float(np.sum(mapped * old, axis=1).mean()) > 0.9                 # psi(new_i) ~ old_i
    sims, same = mapped @ old.T, YQ[:, None] == YQ[None, :]
    assert sims[same].mean() > sims[~same].mean() + 0.05
    m1.save(tmp_path / "m1")
    back = BCLModel.load(tmp_path / "m1")
    np.testing.assert_allclose(back.psi.transform(new), m1.psi.transform(new), atol=1e-6)
    assert train_step(_config("independent"), X, Y, np.arange(8), name="x").psi is None


def test_cmcl_with_rho_trains_the_stored_embedding_layer():
    m0 = train_step(_config("independent", head="cosine"), X, Y, np.arange(len(Y)), name="m0")
    m1 = train_step(_config("cmcl", seed=3, options={"learnable_embedding": True}), X, Y, np.arange(len(Y)), old=m0, name="m1")
    assert m1.net.rho is not None
    assert not torch.allclose(m1.net.rho.weight, torch.eye(16)), "rho must be trained"
    pre, post = m1.net.embed_pair(to_tensor(XQ[:4]))
    assert not torch.allclose(pre, post)
    assert m1.encode(XQ[:4]).shape == (4, 16)
