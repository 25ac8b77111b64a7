"""Backward-compatibility losses: the fixed d-Simplex classifier, d-Simplex-HOC and the BCT influence loss,
each against its defining properties or a naive per-example loop."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hotswap.losses import BCTInfluence, HOCLoss, SimplexClassifier, hoc_infonce, simplex_vertices


def _lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _unit(v):
    return [float(x) / math.sqrt(sum(float(y) ** 2 for y in v)) for x in v]


def _dot(a, b):
    return sum(float(x) * float(y) for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------- simplex


@pytest.mark.parametrize("k", [3, 10, 64])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-7)])
def test_simplex_vertices_form_a_centred_regular_simplex(k, dtype, tol):
    w = simplex_vertices(k, dtype=dtype)
    assert w.shape == (k, k - 1) and w.dtype == dtype
    torch.testing.assert_close(w.norm(dim=1), torch.ones(k, dtype=dtype), atol=tol, rtol=0)
    cos = F.normalize(w, dim=1) @ F.normalize(w, dim=1).T
    off = ~torch.eye(k, dtype=torch.bool)
    torch.testing.assert_close(cos[off], torch.full((k * (k - 1),), -1.0 / (k - 1), dtype=dtype),
                               atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=0)
    torch.testing.assert_close(w.sum(dim=0), torch.zeros(k - 1, dtype=dtype), atol=tol * k, rtol=0)


def test_simplex_vertex_order_follows_the_construction():
    # Rows 0..d-1 come from the identity (row i peaks at coordinate i); the last row comes from a * 1, so after
    # centring all its coordinates are equal and negative.
    k = 7
    w = simplex_vertices(k, dtype=torch.float64)
    assert torch.equal(w[:-1].argmax(dim=1), torch.arange(k - 1))
    assert torch.allclose(w[-1], w[-1, 0].expand(k - 1)) and float(w[-1, 0]) < 0
    d = k - 1
    a = (1 - math.sqrt(1 + d)) / d
    t = torch.cat([torch.eye(d), torch.full((1, d), a)]).double()
    t = t - t.mean(dim=0)
    torch.testing.assert_close(w, t / t.norm(dim=1, keepdim=True), atol=1e-7, rtol=0)


@pytest.mark.parametrize("bad", [1, 0, -3, 2.0, True])
def test_simplex_vertices_rejects_bad_sizes(bad):
    with pytest.raises(ValueError):
        simplex_vertices(bad)


def test_simplex_classifier_has_no_parameters_and_maps_targets():
    clf = SimplexClassifier(10)
    assert list(clf.parameters()) == [] and clf.num_classes == 10 and clf.dim == 9
    assert clf.state_dict() == {}  # rebuilt from K, never loaded
    torch.testing.assert_close(clf.weight, simplex_vertices(10))
    z = torch.randn(4, 9, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(clf(z), z @ clf.weight.T)  # raw z, no normalisation, no bias
    assert clf(z.double()).dtype == torch.float64
    assert clf.target(torch.tensor([0, 3, 9])).tolist() == [9, 6, 0]
    with pytest.raises(ValueError):
        clf.target(torch.tensor([10]))
    with pytest.raises(ValueError):
        clf(torch.randn(2, 10))


def test_simplex_classifier_stays_fixed_under_an_optimiser_step():
    g = torch.Generator().manual_seed(1)
    k = 12
    model = nn.Sequential(nn.Linear(5, k - 1, bias=False), SimplexClassifier(k))
    before_w, before_lin = model[1].weight.clone(), model[0].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        x, y = torch.randn(8, 5, generator=g), torch.randint(0, k, (8,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), model[1].target(y)).backward()
        opt.step()
    assert torch.equal(model[1].weight, before_w)
    assert not torch.equal(model[0].weight, before_lin)
    assert not model[1].weight.requires_grad and model[1].weight.grad is None


# ------------------------------------------------------------------------------------------------- HOC


def naive_hoc(new, old, labels, mu, faithful):
    total, count = 0.0, 0
    for i in range(len(new)):
        o = _unit(old[i])
        terms = []
        for j in range(len(new)):
            s = mu * _dot(o, _unit(new[j]))
            if labels[j] != labels[i]:
                terms.append(s)
            elif faithful:
                terms.append(0.0)  # the code's sim * 0 -> exp(0) = 1, the positive itself included
        if not terms:
            continue
        total += -mu * _dot(o, _unit(new[i])) + _lse(terms)
        count += 1
    return total / count


@pytest.mark.parametrize("faithful", [True, False])
@pytest.mark.parametrize("mu", [1.0, 10.0])
def test_hoc_infonce_matches_a_naive_loop(faithful, mu):
    g = torch.Generator().manual_seed(2)
    new, old = torch.randn(9, 6, generator=g), torch.randn(9, 6, generator=g)
    labels = torch.tensor([0, 1, 1, 2, 0, 3, 3, 3, 4])
    got = hoc_infonce(new, old, labels, mu=mu, faithful_mask=faithful)
    assert got.item() == pytest.approx(naive_hoc(new.tolist(), old.tolist(), labels.tolist(), mu, faithful),
                                       rel=1e-5, abs=1e-5)
    # normalised inside: positive rescaling of the raw features changes nothing
    torch.testing.assert_close(hoc_infonce(3.0 * new, 0.2 * old, labels, mu=mu, faithful_mask=faithful), got)


def test_hoc_faithful_mask_counts_each_same_class_entry_as_exp0():
    g = torch.Generator().manual_seed(3)
    new, old = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    same = torch.zeros(5, dtype=torch.long)
    pos = (F.normalize(old, dim=1) * F.normalize(new, dim=1)).sum(dim=1)
    # one class only: every entry is masked to 0, so the log-sum is log(B) and the positive is never in it
    torch.testing.assert_close(hoc_infonce(new, old, same, mu=10.0), (-10.0 * pos).mean() + math.log(5))
    # the proper mask has no negative for any anchor: 0, still attached to the graph
    new.requires_grad_(True)
    z = hoc_infonce(new, old, same, mu=10.0, faithful_mask=False)
    assert z.item() == 0.0 and z.requires_grad
    z.backward()
    assert torch.equal(new.grad, torch.zeros_like(new))


def test_hoc_proper_mask_skips_anchors_without_negatives():
    g = torch.Generator().manual_seed(4)
    new, old = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    labels = torch.tensor([0, 0, 0, 1])  # every anchor has a negative here
    assert hoc_infonce(new, old, labels, faithful_mask=False).item() == pytest.approx(
        naive_hoc(new.tolist(), old.tolist(), labels.tolist(), 10.0, False), rel=1e-5)


def test_hoc_loss_is_the_convex_combination_and_ce_alone_without_ref():
    g = torch.Generator().manual_seed(5)
    k = 16
    clf = SimplexClassifier(k)
    new, old = torch.randn(8, k - 1, generator=g), torch.randn(8, k - 1, generator=g)
    y = torch.randint(0, 6, (8,), generator=g)
    logits, targets = clf(new), clf.target(y)
    ce = F.cross_entropy(logits, targets)
    for faithful in (True, False):
        loss = HOCLoss(lam=0.1, mu=10.0, faithful_mask=faithful)
        want = 0.1 * ce + 0.9 * hoc_infonce(new, old, y, mu=10.0, faithful_mask=faithful)
        torch.testing.assert_close(loss(logits, targets, new, y, ref=old), want)
        # the class mask only uses equality: simplex targets work as labels too (the code passes them)
        torch.testing.assert_close(loss(logits, targets, new, targets, ref=old), want)
        torch.testing.assert_close(loss(logits, targets, new, y), ce)  # task 0: plain CE, not lam * CE
    with pytest.raises(ValueError):
        HOCLoss(lam=1.5)


def test_hoc_gradient_reaches_new_features_but_not_the_fixed_layer_or_old_features():
    g = torch.Generator().manual_seed(6)
    k = 10
    backbone, clf = nn.Linear(7, k - 1, bias=False), SimplexClassifier(k)
    x, y = torch.randn(6, 7, generator=g), torch.tensor([0, 1, 2, 0, 1, 5])
    old = torch.randn(6, k - 1, generator=g, requires_grad=True)
    z = backbone(x)
    z.retain_grad()
    HOCLoss()(clf(z), clf.target(y), z, y, ref=old).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert backbone.weight.grad is not None and backbone.weight.grad.abs().sum() > 0
    assert old.grad is None  # old features are detached
    assert list(clf.parameters()) == [] and clf.weight.grad is None


# ------------------------------------------------------------------------------------------------- BCT


def naive_bct(new, labels, weight, bias, active, known, scale=None):
    total, count = 0.0, 0
    for z, y in zip(new, labels):
        if y >= len(known) or not known[y]:
            continue
        logits = {}
        for c in range(len(weight)):
            if not active[c]:
                continue
            if scale is None:
                logits[c] = _dot(z, weight[c]) + bias[c]
            else:
                logits[c] = scale * _dot(_unit(z), _unit(weight[c]))
        total += -(logits[y] - _lse(list(logits.values())))
        count += 1
    return total / count


def test_bct_matches_a_naive_loop_and_skips_unknown_classes():
    g = torch.Generator().manual_seed(7)
    w, b = torch.randn(4, 5, generator=g), torch.randn(4, generator=g)
    new = torch.randn(10, 5, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 4, 9, 0, 2, 7, 3])  # 4, 9, 7 unknown to a 4-class old classifier
    loss = BCTInfluence(w, b)
    assert list(loss.parameters()) == []
    want = naive_bct(new.tolist(), labels.tolist(), w.tolist(), b.tolist(), [True] * 4, [True] * 4)
    assert loss(new, labels).item() == pytest.approx(want, rel=1e-5)
    keep = labels < 4
    torch.testing.assert_close(loss(new, labels), F.cross_entropy(new[keep] @ w.T + b, labels[keep]))
    # no bias -> zero bias
    torch.testing.assert_close(BCTInfluence(w)(new, labels), F.cross_entropy(new[keep] @ w.T, labels[keep]))


def test_bct_extension_with_old_model_class_means():
    g = torch.Generator().manual_seed(8)
    d = 6
    w, b = torch.randn(3, d, generator=g), torch.randn(3, generator=g)
    old_emb = torch.randn(40, d, generator=g)
    data_labels = torch.tensor([0, 1, 3, 5] * 10)  # new classes 3 and 5; class 4 never seen -> placeholder row
    loss = BCTInfluence.from_old_model(w, b, old_emb, data_labels)
    assert loss.weight.shape == (6, d) and list(loss.parameters()) == []
    assert loss.known_classes.tolist() == [0, 1, 2, 3, 5]
    assert loss.active.tolist() == [True, True, True, True, False, True]
    for c in (3, 5):
        torch.testing.assert_close(loss.weight[c], old_emb[data_labels == c].mean(dim=0))
        assert loss.bias[c].item() == 0.0
    torch.testing.assert_close(loss.weight[:3], w)

    new = torch.randn(12, d, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 5, 3, 0, 4, 2])  # 4 (placeholder) and 6 (beyond) skipped
    want = naive_bct(new.tolist(), labels.tolist(), loss.weight.tolist(), loss.bias.tolist(),
                     loss.active.tolist(), loss.known.tolist())
    assert loss(new, labels).item() == pytest.approx(want, rel=1e-5)

    # the same through extend + class_means; a known class cannot be overwritten
    ids, means = BCTInfluence.class_means(old_emb, data_labels, [3, 5])
    manual = BCTInfluence(w, b).extend(ids, means)
    torch.testing.assert_close(manual(new, labels), loss(new, labels))
    with pytest.raises(ValueError):
        manual.extend([1], torch.zeros(1, d))


def test_bct_known_classes_of_a_preallocated_head():
    g = torch.Generator().manual_seed(9)
    d = 4
    w = torch.randn(5, d, generator=g)  # 5 preallocated rows, only classes 0 and 1 trained
    old_emb, data_labels = torch.randn(12, d, generator=g), torch.tensor([0, 1, 2] * 4)
    loss = BCTInfluence.from_old_model(w, None, old_emb, data_labels, known_classes=[0, 1])
    assert loss.known_classes.tolist() == [0, 1, 2] and loss.active.all()  # untrained rows 3, 4 stay in the softmax
    torch.testing.assert_close(loss.weight[2], old_emb[data_labels == 2].mean(dim=0))
    new, labels = torch.randn(7, d, generator=g), torch.tensor([0, 1, 2, 3, 4, 2, 0])
    want = naive_bct(new.tolist(), labels.tolist(), loss.weight.tolist(), [0.0] * 5, [True] * 5,
                     loss.known.tolist())
    assert loss(new, labels).item() == pytest.approx(want, rel=1e-5)


def test_bct_cosine_scale_variant():
    g = torch.Generator().manual_seed(10)
    w, new = torch.randn(4, 5, generator=g), torch.randn(6, 5, generator=g)
    labels = torch.tensor([0, 3, 2, 8, 1, 1])
    loss = BCTInfluence(w, scale=16.0)
    want = naive_bct(new.tolist(), labels.tolist(), w.tolist(), [0.0] * 4, [True] * 4, [True] * 4, scale=16.0)
    assert loss(new, labels).item() == pytest.approx(want, rel=1e-5)
    torch.testing.assert_close(loss(5.0 * new, labels), loss(new, labels))  # scale-invariant in the features
    with pytest.raises(ValueError):
        BCTInfluence(w, torch.zeros(4), scale=16.0)


def test_bct_zero_with_grad_when_no_sample_is_known_and_grad_only_to_new():
    g = torch.Generator().manual_seed(11)
    w = torch.randn(3, 4, generator=g, requires_grad=True)
    loss = BCTInfluence(w)
    new = torch.randn(5, 4, generator=g, requires_grad=True)
    z = loss(new, torch.tensor([3, 4, 5, 6, 7]))
    assert z.item() == 0.0 and z.requires_grad
    z.backward()
    assert torch.equal(new.grad, torch.zeros_like(new))
    new.grad = None
    loss(new, torch.tensor([0, 1, 2, 9, 0])).backward()
    assert new.grad.abs().sum() > 0 and w.grad is None and loss.weight.grad is None
