import json
import math

import numpy as np
import pytest

from hotswap.errors import DimensionMismatchError
from hotswap.metrics import (
    CompatibilityMatrix, ac_per_task, am_per_task, average_compatibility, average_multimodel_accuracy,
    class_templates, classification_flip_rate, compatibility_matrix, empirical_compatibility, retrieval_scores,
    self_cross_gaps, summarise, template_correct, template_top1)
from hotswap.metrics.model_compatibility import _descending_keys

NAN = math.nan
C3 = np.array([[50, NAN, NAN], [55, 60, NAN], [45, 58, 70]], dtype=float)


# ------------------------------------------------------------------------------------------- AC / AM / ECC


def test_ac_am_on_hand_made_3x3():
    # (1,0): 55 > 50 yes; (2,0): 45 > 50 no; (2,1): 58 > 60 no.
    ecc = empirical_compatibility(C3)
    assert ecc.tolist() == [[False, False, False], [True, False, False], [False, False, False]]
    assert average_compatibility(C3) == pytest.approx(1 / 3)
    assert average_multimodel_accuracy(C3) == pytest.approx(np.mean([50, 55, 60, 45, 58, 70]))


def test_ac_am_on_hand_made_4x4_ignore_upper_triangle():
    C = np.array([[40, 99, 99, 99],
                  [42, 50, 99, 99],
                  [41, 49, 60, 99],
                  [39, 52, 61, 70]], dtype=float)  # the upper triangle is ignored whatever it holds
    # pairs j < i: (1,0) 42>40 T, (2,0) 41>40 T, (2,1) 49>50 F, (3,0) 39>40 F, (3,1) 52>50 T, (3,2) 61>60 T
    assert average_compatibility(C) == pytest.approx(4 / 6)
    assert average_multimodel_accuracy(C) == pytest.approx(np.mean([40, 42, 50, 41, 49, 60, 39, 52, 61, 70]))
    assert ac_per_task(C) == pytest.approx([1.0, 2 / 3, 4 / 6])
    assert am_per_task(C) == pytest.approx([40, np.mean([40, 42, 50]), np.mean([40, 42, 50, 41, 49, 60]),
                                            np.mean([40, 42, 50, 41, 49, 60, 39, 52, 61, 70])])


def test_compatibility_is_strict():
    C = np.array([[50, NAN], [50, 60]])
    assert not empirical_compatibility(C)[1, 0]
    assert average_compatibility(C) == 0.0
    C[1, 0] = 50.0001
    assert average_compatibility(C) == 1.0


def test_single_model_and_nan_cells():
    assert average_compatibility([[0.7]]) == 1.0          # the authors clamp the pair count to 1
    assert ac_per_task([[0.7]]) == []
    assert am_per_task([[0.7]]) == [0.7]
    C = np.array([[50, NAN, NAN], [NAN, 60, NAN], [45, 65, 70]])
    assert average_compatibility(C) == pytest.approx(1 / 3)   # NaN pair counts as not compatible
    assert average_multimodel_accuracy(C) == pytest.approx(np.mean([50, 60, 45, 65, 70]))


def test_zeros_as_missing_reproduces_the_authors_quirk():
    C = np.array([[0.5, 0.0], [0.0, 0.7]])
    assert average_multimodel_accuracy(C) == pytest.approx(0.4)
    assert average_multimodel_accuracy(C, zeros_as_missing=True) == pytest.approx(0.6)
    assert am_per_task(C, zeros_as_missing=True) == pytest.approx([0.5, 0.6])


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(3), np.zeros((0, 0)), [[1.0, np.inf], [1.0, 1.0]],
                                 [["a", "b"], ["c", "d"]]])
def test_matrix_validation(bad):
    with pytest.raises(ValueError):
        average_compatibility(bad)


def test_summarise_is_json_serialisable():
    s = summarise(C3)
    text = json.dumps(s, allow_nan=False)
    back = json.loads(text)
    assert back["matrix"][0][1] is None
    assert back["ac"] == pytest.approx(1 / 3)
    assert back["ecc"][1][0] is True
    assert back["ac_per_task"] == pytest.approx([1.0, 1 / 3])
    assert back["self_cross"]["gap"] == pytest.approx([5.0, 12.0])
    cm = CompatibilityMatrix(C3, metric="template_top1")
    assert cm.T == 3 and cm.ac == pytest.approx(1 / 3) and cm.am() == pytest.approx(s["am"])
    assert cm.summarise()["metric"] == "template_top1"
    with pytest.raises(ValueError):
        cm.values[0, 0] = 1.0


def test_self_cross_gaps():
    g = self_cross_gaps(C3)
    assert g["pairs"] == [(0, 1), (1, 2)]
    assert g["self_test"] == [60, 70] and g["cross_test"] == [55, 58] and g["old_self_test"] == [50, 60]
    assert g["gap"] == [5, 12]
    assert g["mean_gap"] == pytest.approx(8.5) and g["mean_cross_test"] == pytest.approx(56.5)


def test_classification_flip_rate():
    old = np.array([1, 1, 1, 0, 0, 1], dtype=bool)
    new = np.array([1, 0, 0, 1, 0, 1], dtype=bool)
    r = classification_flip_rate(old, new)
    assert r == {"negative_flip_rate": 2 / 6, "positive_flip_rate": 1 / 6, "n_negative": 2, "n_positive": 1,
                 "n": 6}
    with pytest.raises(ValueError):
        classification_flip_rate(old, new[:3])


# ---------------------------------------------------------------------------------------- template search


def _naive_templates(g, y):
    classes = sorted(set(y.tolist()))
    out = []
    for c in classes:
        feats = [g[i] / np.linalg.norm(g[i]) for i in range(len(y)) if y[i] == c]
        m = np.sum(feats, axis=0) / len(feats)
        out.append(m / np.linalg.norm(m))
    return np.array(out), np.array(classes)


def test_templates_match_a_naive_loop():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(60, 8)).astype(np.float32) * rng.uniform(0.1, 10, size=(60, 1)).astype(np.float32)
    y = rng.choice([3, 7, 11, 20], size=60)
    t, c = class_templates(g, y)
    t0, c0 = _naive_templates(g.astype(np.float64), y)
    assert t.dtype == np.float32 and t.shape == (4, 8)
    assert c.tolist() == c0.tolist()
    np.testing.assert_allclose(t, t0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-6)


def test_template_search_on_a_constructed_case():
    # two classes along e0 and e1; gallery norms differ wildly, so normalising before averaging matters.
    g = np.array([[100, 1, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0.2]], dtype=np.float32)
    yg = np.array([5, 5, 9, 9])
    q = np.array([[1, 0.1, 0], [0.1, 1, 0], [0.6, 0.4, 0], [0, 0, 1]], dtype=np.float32)
    yq = np.array([5, 9, 9, 5])
    # templates: class 5 ~ (1, 0.005, 0) normalised, class 9 ~ (0, 1, 0.1) normalised.
    # q0 -> 5 (right), q1 -> 9 (right), q2 -> 5 (wrong), q3 -> 9 (wrong: 0.1 vs 0 on e2).
    assert template_correct(q, yq, g, yg).tolist() == [True, True, False, False]
    assert template_top1(q, yq, g, yg) == 0.5
    # a query whose class is not in the gallery is always wrong
    assert template_correct(q[:1], np.array([42]), g, yg).tolist() == [False]


def test_template_search_dimension_mismatch():
    with pytest.raises(DimensionMismatchError):
        template_top1(np.ones((2, 3), np.float32), np.array([0, 1]), np.ones((2, 4), np.float32), np.array([0, 1]))


# --------------------------------------------------------------------------------------- image retrieval


def _naive_retrieval(q, yq, g, yg, k=None):
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    aps, top1 = [], []
    for i in range(len(q)):
        sims = [float(np.dot(q[i], g[j])) for j in range(len(g))]
        order = sorted(range(len(g)), key=lambda j: (-sims[j], j))
        cut = len(g) if k is None else min(k, len(g))
        n_rel = int(sum(yg == yq[i]))
        hits, total = 0, 0.0
        for r, j in enumerate(order[:cut], 1):
            if yg[j] == yq[i]:
                hits += 1
                total += hits / r
        aps.append(total / min(n_rel, cut) if n_rel else 0.0)
        top1.append(yg[order[0]] == yq[i])
    return float(np.mean(aps)), float(np.mean(top1)), np.array(aps), np.array(top1)


@pytest.mark.parametrize("k", [None, 1, 5, 40, 10_000])
def test_retrieval_matches_a_naive_loop(k):
    rng = np.random.default_rng(1)
    q = rng.normal(size=(37, 6)).astype(np.float32)
    g = rng.normal(size=(150, 6)).astype(np.float32)
    yq = rng.integers(0, 6, size=37)
    yg = rng.integers(0, 5, size=150)  # class 5 has no gallery image: AP 0
    m, t1, ap, correct = _naive_retrieval(q.astype(np.float64), yq, g.astype(np.float64), yg, k)
    r = retrieval_scores(q, yq, g, yg, k=k, chunk_size=8)
    assert r["map"] == pytest.approx(m, abs=1e-9)
    assert r["top1"] == pytest.approx(t1)
    np.testing.assert_allclose(r["ap"], ap, atol=1e-9)
    assert r["correct"].tolist() == correct.tolist()
    assert r["k"] == k


def test_retrieval_ties_break_by_gallery_order():
    q = np.array([[1, 0]], dtype=np.float32)
    g = np.array([[1, 0], [1, 0], [2, 0], [0, 1]], dtype=np.float32)  # three exact ties at cosine 1
    yg = np.array([0, 1, 1, 1])
    r = retrieval_scores(q, np.array([1]), g, yg)
    assert r["correct"].tolist() == [False]                       # gallery 0 wins the tie
    assert r["map"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)  # ranking 0, 1, 2, 3


def test_descending_keys_sort_like_a_stable_argsort():
    rng = np.random.default_rng(2)
    values = np.array([-3e38, -2.5, -1.0, -1e-30, 0.0, 1e-30, 0.3, 7.0, 3e38], dtype=np.float32)
    s = rng.choice(values, size=(5, 60))  # many exact ties, negative and positive
    keys = np.sort(_descending_keys(s), axis=1)
    got = (keys & 0xFFFFFFFF).astype(np.intp)
    np.testing.assert_array_equal(got, np.argsort(-s, axis=1, kind="stable"))


# ------------------------------------------------------------------------------------ compatibility matrix


def _toy_models(seed=3, n_cls=5, d=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_cls, d))
    yq = np.repeat(np.arange(n_cls), 40)
    yg = np.repeat(np.arange(n_cls), 30)
    q0 = (centres[yq] + 0.3 * rng.normal(size=(len(yq), d))).astype(np.float32)
    g0 = (centres[yg] + 0.3 * rng.normal(size=(len(yg), d))).astype(np.float32)
    rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q0, g0, yq, yg, rot.astype(np.float32)


@pytest.mark.parametrize("metric", ["template_top1", "top1", "map"])
def test_identical_model_is_compatible_rotated_model_is_not(metric):
    q0, g0, yq, yg, rot = _toy_models()
    C = compatibility_matrix([q0, q0.copy(), q0 @ rot], [g0, g0.copy(), g0 @ rot], yq, yg, metric=metric)
    assert np.isnan(C[np.triu_indices(3, 1)]).all()
    assert C[0, 0] > 0.9
    assert C[1, 0] == pytest.approx(C[0, 0]) and C[1, 1] == pytest.approx(C[0, 0])
    assert C[2, 2] == pytest.approx(C[0, 0], abs=1e-3)   # a rotation keeps every cosine
    assert C[2, 0] < 0.6 and C[2, 1] < 0.6               # rotated queries against the old gallery: near chance
    assert not empirical_compatibility(C)[1, 0]          # identical: equal, not better
    assert average_compatibility(C) == 0.0
    full = compatibility_matrix([q0, q0 @ rot], [g0, g0 @ rot], yq, yg, metric=metric, lower_only=False)
    assert not np.isnan(full).any() and full[0, 1] < 0.6


def test_compatibility_matrix_template_matches_cell_function_and_map_at_k():
    q0, g0, yq, yg, rot = _toy_models(seed=4)
    C = compatibility_matrix([q0, q0 @ rot], [g0, g0 @ rot], yq, yg, metric="map", k=10)
    assert C[1, 0] == pytest.approx(retrieval_scores(q0 @ rot, yq, g0, yg, k=10)["map"])
    C = compatibility_matrix([q0, q0 @ rot], [g0, g0 @ rot], yq, yg)
    assert C[1, 0] == pytest.approx(template_top1(q0 @ rot, yq, g0, yg))
    cm = CompatibilityMatrix.from_embeddings([q0, q0], [g0, g0], yq, yg, metric="top1")
    assert cm.metric == "top1" and cm.T == 2


def test_compatibility_matrix_dimension_mismatch():
    q0, g0, yq, yg, _ = _toy_models()
    q1, g1 = q0[:, :8].copy(), g0[:, :8].copy()
    with pytest.raises(DimensionMismatchError, match=r"model 1 .*model 0"):
        compatibility_matrix([q0, q1], [g0, g1], yq, yg)
    C = compatibility_matrix([q0, q1], [g0, g1], yq, yg, skip_mismatched=True)
    assert np.isnan(C[1, 0]) and not np.isnan(C[1, 1]) and not np.isnan(C[0, 0])
    with pytest.raises(ValueError, match="metric"):
        compatibility_matrix([q0], [g0], yq, yg, metric="recall")
