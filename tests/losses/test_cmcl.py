"""CMCL (metric-compatible contrastive loss) against a naive per-anchor loop, plus its invariances."""

from __future__ import annotations

import math

import pytest
import torch

from hotswap.losses.cmcl import CMCL, cmcl_loss

LABEL_PATTERNS = {
    "pairs": [0, 0, 1, 1, 2, 2],
    "singleton": [0, 0, 0, 1, 2, 2],       # class 1 has one sample: only its old self is a positive
    "all_same": [3, 3, 3, 3, 3],
    "all_distinct": [0, 1, 2, 3, 4],
    "mixed": [5, 1, 5, 5, 2, 1, 7],
}


def _unit(v):
    return [x / math.sqrt(sum(t * t for t in v)) for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def naive_cmcl(new, rev, labels, ref, tau, w, hard_k=None):
    """Per anchor: candidates (system, score, label, weight); SupCon over the weighted union."""
    n = [_unit(v) for v in new.tolist()]
    r = [_unit(v) for v in rev.tolist()]
    o = [_unit(v) for v in ref.tolist()]
    y = labels.tolist()
    losses = []
    for i in range(len(n)):
        cands = []                                   # (score, is_positive, weight)
        for j in range(len(n)):
            if j != i:
                cands.append((_dot(n[i], n[j]) / tau, y[j] == y[i], 1.0))
        if w > 0:
            for j in range(len(n)):
                cands.append((_dot(r[i], o[j]) / tau, y[j] == y[i], w))
        if hard_k is not None:
            negs = sorted((c for c in cands if not c[1]), key=lambda c: -c[0])[:hard_k]
            cands = [c for c in cands if c[1]] + negs
        pos = [c for c in cands if c[1]]
        if not pos:
            continue
        z = sum(wt * math.exp(s) for s, _, wt in cands)
        losses.append(sum(wt * (math.log(z) - s) for s, _, wt in pos) / sum(wt for _, _, wt in pos))
    return sum(losses) / len(losses) if losses else 0.0


def naive_supcon(new, labels, tau):
    n = [_unit(v) for v in new.tolist()]
    y = labels.tolist()
    losses = []
    for i in range(len(n)):
        others = [j for j in range(len(n)) if j != i]
        pos = [j for j in others if y[j] == y[i]]
        if not pos:
            continue
        log_z = math.log(sum(math.exp(_dot(n[i], n[j]) / tau) for j in others))
        losses.append(sum(log_z - _dot(n[i], n[p]) / tau for p in pos) / len(pos))
    return sum(losses) / len(losses)


def _batch(labels, d_new=6, d_old=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = len(labels)
    return (torch.randn(b, d_new, generator=g, dtype=torch.float64),
            torch.randn(b, d_old, generator=g, dtype=torch.float64),
            torch.tensor(labels),
            torch.randn(b, d_old, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("pattern", sorted(LABEL_PATTERNS))
@pytest.mark.parametrize("tau,w", [(0.1, 1.0), (0.5, 1.0), (0.2, 0.3), (1.0, 2.5)])
def test_cmcl_matches_a_naive_loop(pattern, tau, w):
    new, rev, labels, ref = _batch(LABEL_PATTERNS[pattern])
    got = float(CMCL(tau, w)(new, rev, labels, ref))
    assert got == pytest.approx(naive_cmcl(new, rev, labels, ref, tau, w), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("pattern", sorted(LABEL_PATTERNS))
@pytest.mark.parametrize("k", [1, 3, 100])
def test_hard_mining_matches_a_naive_loop(pattern, k):
    new, rev, labels, ref = _batch(LABEL_PATTERNS[pattern], seed=3)
    got = float(CMCL(0.2, 1.0, hard_mining=True, num_hard_negatives=k)(new, rev, labels, ref))
    assert got == pytest.approx(naive_cmcl(new, rev, labels, ref, 0.2, 1.0, hard_k=k), rel=1e-9, abs=1e-9)
    if k == 100:                                      # more slots than negatives: no mining at all
        assert got == pytest.approx(float(CMCL(0.2, 1.0)(new, rev, labels, ref)), rel=1e-12)


def test_cmcl_function_equals_module():
    new, rev, labels, ref = _batch(LABEL_PATTERNS["mixed"], seed=5)
    assert float(cmcl_loss(new, rev, labels, ref, 0.3, 0.7)) == float(CMCL(0.3, 0.7)(new, rev, labels, ref))


def test_scaling_inputs_does_not_change_the_loss():
    new, rev, labels, ref = _batch(LABEL_PATTERNS["mixed"], seed=1)
    loss = CMCL(0.1)
    base = float(loss(new, rev, labels, ref))
    assert float(loss(3.0 * new, 0.01 * rev, labels, 250.0 * ref)) == pytest.approx(base, rel=1e-10)


def test_gradients_reach_new_and_reversed_but_not_ref():
    new, rev, labels, ref = _batch(LABEL_PATTERNS["singleton"], seed=2)
    new.requires_grad_(True)
    rev.requires_grad_(True)
    ref.requires_grad_(True)
    CMCL()(new, rev, labels, ref).backward()
    assert new.grad is not None and float(new.grad.abs().sum()) > 0
    assert rev.grad is not None and float(rev.grad.abs().sum()) > 0
    assert ref.grad is None


def test_compatible_clustered_embeddings_score_lower_than_random():
    g = torch.Generator().manual_seed(4)
    labels = torch.arange(4).repeat_interleave(4)                        # 4 classes x 4 samples
    centres_new, centres_old = torch.randn(4, 16, generator=g), torch.randn(4, 8, generator=g)
    new = centres_new[labels] + 0.05 * torch.randn(16, 16, generator=g)
    ref = centres_old[labels] + 0.05 * torch.randn(16, 8, generator=g)
    good = float(CMCL(0.1)(new, ref.clone(), labels, ref))
    rand = float(CMCL(0.1)(torch.randn(16, 16, generator=g), torch.randn(16, 8, generator=g), labels,
                            torch.randn(16, 8, generator=g)))
    assert good < rand - 1.0


def test_cross_weight_zero_is_single_system_supcon():
    for pattern in ("pairs", "singleton", "mixed", "all_same"):
        new, rev, labels, ref = _batch(LABEL_PATTERNS[pattern], seed=6)
        got = float(CMCL(0.25, cross_weight=0.0)(new, rev, labels, ref))
        assert got == pytest.approx(naive_supcon(new, labels, 0.25), rel=1e-9)
        # the backward system plays no part at all
        assert got == pytest.approx(float(CMCL(0.25, 0.0)(new, -5 * ref, labels, rev)), rel=1e-12)


def test_no_positive_anywhere_gives_attached_zero():
    new = torch.randn(4, 3, requires_grad=True)
    rev = torch.randn(4, 2, requires_grad=True)
    out = CMCL(cross_weight=0.0)(new, rev, torch.arange(4), torch.randn(4, 2))
    assert float(out.detach()) == 0.0 and out.requires_grad


@pytest.mark.parametrize("kwargs", [{"temperature": 0.0}, {"temperature": float("nan")}, {"cross_weight": -1.0},
                                    {"num_hard_negatives": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        CMCL(**kwargs)


def test_bad_shapes_are_refused():
    new, rev, labels, ref = _batch(LABEL_PATTERNS["pairs"])
    with pytest.raises(ValueError):
        CMCL()(new, rev, labels, ref[:, :3])
    with pytest.raises(ValueError):
        CMCL()(new, rev, labels[:4], ref)
    with pytest.raises(ValueError):
        CMCL()(new[:5], rev, labels, ref)
