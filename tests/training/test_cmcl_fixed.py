"""CMCL on a fixed new model: psi (and rho) learn while both encoders stay exactly as they were; psi's
regression loss drops from its init; training is deterministic; the modules round-trip through the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hotswap.encoders.image import ImageEmbeddingNet, to_tensor
from hotswap.training.bcl_model import BCLModel
from hotswap.training.cmcl_fixed import (FixedCMCL, FixedCMCLConfig, init_modules, train_cmcl_fixed,
                                         train_or_load_fixed)
from hotswap.training.heads import build_head


def _images(n_per_class: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright 6x6 block at a class-specific place, on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, size=(n_per_class * n_classes, 28, 28)).astype(np.uint8)
    y = np.repeat(np.arange(n_classes), n_per_class)
    for i, c in enumerate(y):
        x[i, 3 + 6 * (c // 4):9 + 6 * (c // 4), 3 + 6 * (c % 4):9 + 6 * (c % 4)] = 250
    return x, y


def _model(name: str, seed: int, dim: int) -> BCLModel:
    torch.manual_seed(seed)
    net = ImageEmbeddingNet(arch="cnn", width=8, embed_dim=dim).eval()
    return BCLModel(net, build_head("cosine", dim, 4).eval(), name, classes=[0, 1, 2, 3])


X, Y = _images(16, 4, seed=0)
IDX = np.arange(len(Y))


def _state(m: BCLModel) -> dict[str, torch.Tensor]:
    return {f"{part}.{k}": v.clone() for part, mod in (("net", m.net), ("head", m.head))
            for k, v in mod.state_dict().items()}


def _regression(psi, new: BCLModel, old: BCLModel) -> float:
    with torch.no_grad():
        x = to_tensor(X)
        n, o = F.normalize(new.net(x), dim=-1), F.normalize(old.net(x), dim=-1)
        return float((psi(n) - o).pow(2).sum(-1).mean())


@pytest.fixture
def pair() -> tuple[BCLModel, BCLModel]:
    return _model("new", 1, 16), _model("old", 2, 12)


@pytest.mark.parametrize("rho", [False, True])
def test_frozen_encoders_are_untouched(pair, rho):
    new, old = pair
    before_new, before_old = _state(new), _state(old)
    cfg = FixedCMCLConfig(rho=rho, epochs=2, batch_size=16, seed=0)
    out = train_cmcl_fixed(cfg, new, old, X, Y, IDX)
    for before, model in ((before_new, new), (before_old, old)):
        after = _state(model)
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)      # BatchNorm statistics included
    assert all(p.requires_grad for p in new.net.parameters())             # the caller's model is not frozen
    assert (out.rho is not None) == rho and out.psi.dim_new == 16 and out.psi.dim_old == 12


def test_psi_lowers_the_regression_loss_from_its_init(pair):
    new, old = pair
    cfg = FixedCMCLConfig(epochs=6, batch_size=16, lr=0.05, augment=False, seed=0)
    start, _ = init_modules(cfg, new.dim, old.dim)
    out = train_cmcl_fixed(cfg, new, old, X, Y, IDX)
    assert _regression(out.psi, new, old) < 0.5 * _regression(start, new, old)
    history = out.info["history"]
    assert len(history) == 6 and history[-1]["regression"] < history[0]["regression"]


def test_rho_starts_at_the_identity_and_trains_with_the_head_term(pair):
    new, old = pair
    cfg = FixedCMCLConfig(rho=True, epochs=2, batch_size=16, seed=0)
    _, rho = init_modules(cfg, new.dim, old.dim)
    n = new.encode(X)
    untrained = FixedCMCL(init_modules(cfg, new.dim, old.dim)[0], rho)
    assert np.allclose(untrained.stored_new(n), n, atol=1e-6)
    out = train_cmcl_fixed(cfg, new, old, X, Y, IDX)
    assert "ce" in out.info["history"][0]
    stored = out.stored_new(n)
    assert np.allclose(np.linalg.norm(stored, axis=1), 1, atol=1e-5) and not np.allclose(stored, n)
    assert out.reverse(stored).shape == (len(X), old.dim)


def test_training_is_deterministic_and_leaves_the_global_rng(pair):
    new, old = pair
    cfg = FixedCMCLConfig(rho=True, epochs=2, batch_size=16, seed=3)
    torch.manual_seed(123)
    a = train_cmcl_fixed(cfg, new, old, X, Y, IDX)
    after_first = torch.rand(1)
    torch.manual_seed(123)
    b = train_cmcl_fixed(cfg, new, old, X, Y, IDX)
    assert torch.equal(after_first, torch.rand(1))
    for ma, mb in ((a.psi, b.psi), (a.rho, b.rho)):
        assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values()))


def test_cache_reuses_the_same_recipe_and_retrains_a_new_one(pair, tmp_path):
    new, old = pair
    cfg = FixedCMCLConfig(rho=True, epochs=1, batch_size=16, seed=0)
    calls = []

    def train() -> FixedCMCL:
        calls.append(1)
        return train_cmcl_fixed(cfg, new, old, X, Y, IDX)

    first, reused = train_or_load_fixed(tmp_path / "m", "k1", train)
    assert not reused and (tmp_path / "m" / "reverse_transform.safetensors").is_file()
    again, reused = train_or_load_fixed(tmp_path / "m", "k1", train)
    assert reused and len(calls) == 1 and again.rho is not None
    n = new.encode(X)
    assert np.allclose(again.reverse(again.stored_new(n)), first.reverse(first.stored_new(n)), atol=1e-6)
    _, reused = train_or_load_fixed(tmp_path / "m", "k2", train)
    assert not reused and len(calls) == 2
