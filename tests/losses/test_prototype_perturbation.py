"""Prototype alignment, NDPP and ODPP against naive loops and their stated properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hotswap.training.methods.ndpp import NDPP
from hotswap.training.methods.odpp import ODPP, odpp_objective, project_to_ball
from hotswap.losses.prototype_alignment import PrototypeAccumulator, PrototypeAlignment, class_prototypes


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_class_prototypes_match_a_loop():
    emb, labels = torch.randn(30, 5), torch.randint(0, 4, (30,), generator=torch.Generator().manual_seed(0))
    labels[0] = 0
    P, present = class_prototypes(emb, labels, 6)
    for c in range(6):
        rows = [F.normalize(emb[i], dim=0) for i in range(30) if int(labels[i]) == c]
        assert bool(present[c]) == bool(rows)
        if rows:
            expected = F.normalize(torch.stack(rows).sum(0), dim=0)
            assert torch.allclose(P[c], expected, atol=1e-6)
        else:
            assert torch.all(P[c] == 0)
    with pytest.raises(ValueError, match="labels must lie"):
        class_prototypes(emb, labels + 10, 6)


def test_accumulator_equals_class_prototypes_over_batches():
    emb, labels = torch.randn(40, 4), torch.arange(40) % 3
    acc = PrototypeAccumulator(3, 4)
    acc.add(emb[:15], labels[:15])
    acc.add(emb[15:], labels[15:])
    P1, m1 = acc.prototypes()
    P2, m2 = class_prototypes(emb, labels, 3)
    assert torch.allclose(P1, P2, atol=1e-6) and torch.equal(m1, m2)


def test_alignment_loss_matches_naive_softmax_and_masks_absent_classes():
    new, protos = torch.randn(6, 4), _unit(5, 4, 1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    present = torch.tensor([True, True, True, False, True])
    loss = PrototypeAlignment(scale=10.0)(new, labels, protos, present)
    total = 0.0
    for i in range(6):
        z = F.normalize(new[i], dim=0)
        logits = {c: 10.0 * float(z @ protos[c]) for c in range(5) if present[c]}
        total += -(logits[int(labels[i])] - math.log(sum(math.exp(v) for v in logits.values())))
    assert float(loss) == pytest.approx(total / 6, rel=1e-5)
    with pytest.raises(ValueError, match="no prototype"):
        PrototypeAlignment()(new, torch.tensor([3, 1, 2, 0, 1, 2]), protos, present)
    with pytest.raises(ValueError, match="share a dimension"):
        PrototypeAlignment()(torch.randn(6, 3), labels, protos)


def _ndpp_loop(old, new, k, lam):
    old, new = F.normalize(old, dim=-1), F.normalize(new, dim=-1)
    C = old.shape[0]
    out = []
    for c in range(C):
        sims = sorted(((float(old[c] @ old[j]), j) for j in range(C) if j != c), reverse=True)[:k]
        push = torch.zeros_like(old[c])
        for _, j in sims:
            w = max(0.0, float(old[c] @ old[j]) - float(new[c] @ new[j]))
            diff = old[c] - old[j]
            push += w * diff / diff.norm()
        out.append(F.normalize(old[c] + lam * push, dim=0))
    return torch.stack(out)


def test_ndpp_matches_the_formula_loop():
    old, new = _unit(7, 5, 2), _unit(7, 5, 3)
    assert torch.allclose(NDPP(k=3, strength=0.5)(old, new), _ndpp_loop(old, new, 3, 0.5), atol=1e-6)


def test_ndpp_no_perturbation_when_new_is_not_more_discriminative():
    old = _unit(5, 4, 4)
    assert torch.allclose(NDPP()(old, old), old, atol=1e-6)              # same geometry: w = 0
    crowded = F.normalize(torch.ones(5, 4) + 0.01 * torch.randn(5, 4), dim=-1)
    assert torch.allclose(NDPP()(old, crowded), old, atol=1e-6)          # new model crowds more: w = 0


def test_ndpp_separates_classes_the_new_model_separates():
    old = F.normalize(torch.tensor([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [0.0, 0.0, 1.0]]), dim=-1)
    new = torch.eye(3)
    pseudo = NDPP(k=1, strength=0.5)(old, new)
    assert float(pseudo[0] @ pseudo[1]) < float(old[0] @ old[1]) - 0.1
    assert torch.allclose(pseudo.norm(dim=-1), torch.ones(3), atol=1e-6)


def test_ndpp_leaves_absent_classes_alone():
    old, new = _unit(6, 4, 5), torch.eye(6, 4)
    present = torch.tensor([True, True, True, True, False, False])
    pseudo = NDPP(k=2)(old, new, present)
    assert torch.allclose(pseudo[4:], old[4:])


def test_odpp_objective_matches_a_pair_loop_and_ball_projection():
    old, new, delta = _unit(4, 3, 6), _unit(4, 3, 7), 0.1 * torch.randn(4, 3)
    present = torch.tensor([True, True, False, True])
    pseudo = F.normalize(old + delta, dim=-1)
    expected = sum(max(0.0, float(pseudo[c] @ pseudo[j]) - float(new[c] @ new[j]))
                   for c in range(4) for j in range(4) if c != j and present[c] and present[j])
    assert float(odpp_objective(old, delta, new, present)) == pytest.approx(expected, rel=1e-5)
    big = torch.tensor([[3.0, 4.0], [0.1, 0.0]])
    proj = project_to_ball(big, 1.0)
    assert torch.allclose(proj[0], torch.tensor([0.6, 0.8])) and torch.allclose(proj[1], big[1])


def test_odpp_lowers_its_objective_within_the_radius_and_warm_starts():
    old = F.normalize(torch.ones(6, 8) + 0.3 * torch.randn(6, 8, generator=torch.Generator().manual_seed(8)), dim=-1)
    new = torch.eye(6, 8)
    odpp = ODPP(radius=0.4, steps=30, lr=0.05)
    before = float(odpp_objective(old, torch.zeros_like(old), new, torch.ones(6, dtype=torch.bool)))
    pseudo = odpp(old, new)
    assert odpp.last_objective < before
    assert float(odpp.delta.norm(dim=-1).max()) <= 0.4 + 1e-5
    assert torch.allclose(pseudo, F.normalize(old + odpp.delta, dim=-1))
    first = odpp.delta.clone()
    odpp(old, new)
    assert odpp.last_objective <= float(odpp_objective(old, first, new, torch.ones(6, dtype=torch.bool))) + 1e-6
    odpp.reset()
    assert odpp.delta is None


def test_odpp_zero_radius_is_plain_alignment():
    old, new = _unit(5, 4, 9), torch.eye(5, 4)
    assert torch.allclose(ODPP(radius=0.0, steps=5)(old, new), old, atol=1e-6)


def test_ndpp_defaults_are_the_unbounded_formula_bit_for_bit():
    old, new = _unit(7, 5, 2), _unit(7, 5, 3)
    assert torch.equal(NDPP(k=3, strength=0.5)(old, new), NDPP(3, 0.5, normalise=False, max_shift=None)(old, new))


def test_ndpp_normalise_divides_the_push_by_k():
    old, new = _unit(8, 5, 12), _unit(8, 5, 13)
    for k in (1, 3):
        assert torch.allclose(NDPP(k=k, strength=0.6, normalise=True)(old, new), _ndpp_loop(old, new, k, 0.6 / k),
                              atol=1e-6)


def test_ndpp_max_shift_bounds_every_displacement_and_keeps_unit_norm():
    old, new = _unit(9, 6, 14), _unit(9, 6, 15)
    free = NDPP(k=4, strength=5.0)(old, new)
    assert float((free - old).norm(dim=-1).max()) > 0.2              # the bound binds somewhere
    bounded = NDPP(k=4, strength=5.0, max_shift=0.2)(old, new)
    shift = (bounded - old).norm(dim=-1)
    assert float(shift.max()) <= 0.2 + 1e-5
    assert torch.allclose(bounded.norm(dim=-1), torch.ones(9), atol=1e-5)
    inside = (free - old).norm(dim=-1) <= 0.2
    assert torch.allclose(bounded[inside], free[inside])             # within the bound: untouched
    far = ~inside
    assert torch.allclose(shift[far], torch.full_like(shift[far], 0.2), atol=1e-5)   # projected onto the edge
    # direction kept: the capped point lies on the great circle from old towards the free point
    cos_free = F.cosine_similarity(free[far] - old[far], bounded[far] - old[far], dim=-1)
    assert bool((cos_free > 0.9).all())
    with pytest.raises(ValueError, match="max_shift"):
        NDPP(max_shift=-0.1)


def test_ndpp_options_recipe_unchanged_by_default_and_passed_to_perturber():
    from hotswap.training.methods.ndpp import NDPPOptions
    from hotswap.training.methods.odpp import ODPPOptions
    assert NDPPOptions().recipe() == {"version": NDPPOptions.version}
    assert ODPPOptions().recipe() == {"version": ODPPOptions.version}
    assert NDPPOptions(normalise=True, max_shift=0.1).recipe() == {"version": 1, "normalise": True, "max_shift": 0.1}
    assert ODPPOptions(proximity=2.0).recipe() == {"version": 1, "proximity": 2.0}


def test_odpp_proximity_adds_the_squared_norms_and_shrinks_the_perturbation():
    old, new, delta = _unit(4, 3, 16), _unit(4, 3, 17), 0.1 * torch.randn(4, 3)
    present = torch.tensor([True, False, True, True])
    base = float(odpp_objective(old, delta, new, present))
    assert float(odpp_objective(old, delta, new, present, 3.0)) == pytest.approx(
        base + 3.0 * float((delta[present] ** 2).sum()), rel=1e-5)
    old = F.normalize(torch.ones(6, 8) + 0.3 * torch.randn(6, 8, generator=torch.Generator().manual_seed(8)), dim=-1)
    new = torch.eye(6, 8)
    free, near = ODPP(radius=0.4, steps=40, lr=0.05), ODPP(radius=0.4, steps=40, lr=0.05, proximity=50.0)
    free(old, new)
    near(old, new)
    assert float(near.delta.norm(dim=-1).mean()) < float(free.delta.norm(dim=-1).mean())
    assert float(near.delta.norm(dim=-1).max()) <= 0.4 + 1e-5
    with pytest.raises(ValueError, match="proximity"):
        ODPP(proximity=-1.0)
