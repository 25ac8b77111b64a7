"""InfoNCE and EmbeddingDistillation against naive per-example loops."""

import math

import pytest
import torch

from hotswap.losses import EmbeddingDistillation, InfoNCE


def _cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def naive_infonce(q, d_pos, d_neg, scale):
    docs = list(d_pos) + ([] if d_neg is None else list(d_neg.reshape(-1, q.shape[1])))
    total = 0.0
    for i, qi in enumerate(q):
        logits = [scale * _cos(qi, d) for d in docs]
        m = max(logits)
        total += -(logits[i] - (m + math.log(sum(math.exp(x - m) for x in logits))))
    return total / len(q)


@pytest.mark.parametrize("hard", [None, 3])
def test_infonce_matches_a_naive_loop(hard):
    g = torch.Generator().manual_seed(0)
    q, d_pos = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    d_neg = None if hard is None else torch.randn(5, hard, 8, generator=g)
    for scale in (1.0, 50.0):
        got = float(InfoNCE(scale)(q, d_pos, d_neg))
        assert got == pytest.approx(naive_infonce(q, d_pos, d_neg, scale), rel=1e-5, abs=1e-5)


def test_infonce_prefers_aligned_pairs_and_has_gradients():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(6, 16, generator=g, requires_grad=True)
    aligned, shuffled = q.detach() + 0.01, torch.randn(6, 16, generator=g)
    loss = InfoNCE()(q, aligned)
    assert loss.item() < InfoNCE()(q, shuffled).item()
    loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_infonce_refuses_bad_shapes():
    with pytest.raises(ValueError, match="equal shape"):
        InfoNCE()(torch.randn(4, 8), torch.randn(3, 8))
    with pytest.raises(ValueError, match="scale"):
        InfoNCE(0.0)


def test_distillation_matches_a_naive_loop_with_separate_weights():
    g = torch.Generator().manual_seed(2)
    q, q_ref = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    d, d_ref = torch.randn(4, 3, 8, generator=g), torch.randn(4, 3, 8, generator=g)
    want_q = sum(1 - _cos(a, b) for a, b in zip(q, q_ref)) / 4
    dd, dr = d.reshape(-1, 8), d_ref.reshape(-1, 8)
    want_d = sum(1 - _cos(a, b) for a, b in zip(dd, dr)) / 12
    got = float(EmbeddingDistillation(0.5, 2.0)(q, q_ref, d, d_ref))
    assert got == pytest.approx(0.5 * want_q + 2.0 * want_d, rel=1e-5)
    assert float(EmbeddingDistillation()(q, q)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_gradient_reaches_the_student_only():
    q = torch.randn(3, 4, requires_grad=True)
    ref = torch.randn(3, 4, requires_grad=True)
    EmbeddingDistillation()(q, ref).backward()
    assert q.grad is not None and ref.grad is None


def test_distillation_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="shape"):
        EmbeddingDistillation()(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="d_ref"):
        EmbeddingDistillation()(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4))
