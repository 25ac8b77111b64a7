"""rank_merge against a naive per-row reference: concatenate both lists, drop pads, sort best first (stable:
ties keep the first list's entry first, as the docstring promises), keep each id's first occurrence, pad to k.

Scores are compared exactly and ids exactly, ties included: the reference's stable sort over the
concatenation (first list, then second) is the tie order rank_merge documents."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hotswap.search import rank_merge

WORST = {"ip": -np.inf, "l2": np.inf}


def reference(D1, I1, D2, I2, k: int, metric: str, obj: bool) -> tuple[np.ndarray, np.ndarray]:
    pad = None if obj else -1
    D1, D2 = np.asarray(D1, np.float32), np.asarray(D2, np.float32)
    out_D, out_I = [], []
    for r in range(len(D1)):
        entries = [(float(d), i) for d, i in zip(D1[r], I1[r], strict=True) if i is not pad and i != pad] + \
                  [(float(d), i) for d, i in zip(D2[r], I2[r], strict=True) if i is not pad and i != pad]
        entries.sort(key=lambda e: -e[0] if metric == "ip" else e[0])  # stable: list 1 first on ties
        seen, row = set(), []
        for d, i in entries:
            if i not in seen:
                seen.add(i)
                row.append((d, i))
        row = row[:k] + [(WORST[metric], pad)] * max(0, k - len(row))
        out_D.append([d for d, _ in row])
        out_I.append([i for _, i in row])
    I = np.empty((len(D1), k), dtype=object if obj else np.int64)
    if len(D1):
        I[:] = out_I
    return np.array(out_D, np.float32).reshape(len(D1), k), I


def to_ids(codes: np.ndarray, obj: bool) -> np.ndarray:
    """Integer codes -> ids: ``-1`` is the pad (``None`` for object ids), ``c`` -> ``c`` or ``"id-c"``."""
    if not obj:
        return codes.astype(np.int64)
    out = np.empty(codes.shape, dtype=object)
    for idx, c in np.ndenumerate(codes):
        out[idx] = None if c < 0 else f"id-{c}"
    return out


def check(D1, I1, D2, I2, k, metric, obj):
    D, I = rank_merge(D1, I1, D2, I2, k, metric=metric)
    D_ref, I_ref = reference(D1, I1, D2, I2, k, metric, obj)
    assert D.dtype == np.float32 and D.shape == (len(D1), k) and I.shape == (len(D1), k)
    assert I.dtype == (object if obj else np.int64)
    np.testing.assert_array_equal(D, D_ref)
    assert I.tolist() == I_ref.tolist()
    # invariants the reference implies, stated directly
    if len(D):
        key = -D if metric == "ip" else D
        assert (key[:, 1:] >= key[:, :-1]).all()  # best first
    for row in I.tolist():
        real = [i for i in row if i is not None and i != -1]
        assert len(real) == len(set(real))
    return D, I


# scores from a small set (ties), or any finite float32 (no ties); padded slots carry garbage scores that
# rank_merge must ignore (pads are recognised by their id, not their score)
SCORES = st.sampled_from([-1.5, -0.25, 0.0, 0.5, 2.0]) | st.floats(-100, 100, width=32, allow_subnormal=False)


@st.composite
def merge_cases(draw):
    nq = draw(st.integers(0, 4))
    k1, k2 = draw(st.integers(0, 7)), draw(st.integers(0, 7))
    pool = draw(st.integers(1, 9))  # small id pools give duplicates within and across lists
    codes = st.integers(-1, pool - 1)
    D1 = draw(hnp.arrays(np.float32, (nq, k1), elements=SCORES))
    D2 = draw(hnp.arrays(np.float32, (nq, k2), elements=SCORES))
    C1 = draw(hnp.arrays(np.int64, (nq, k1), elements=codes))
    C2 = draw(hnp.arrays(np.int64, (nq, k2), elements=codes))
    k = draw(st.integers(1, k1 + k2 + 3))  # smaller than, equal to and larger than both lists together
    return D1, C1, D2, C2, k, draw(st.sampled_from(["ip", "l2"])), draw(st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(merge_cases())
def test_matches_reference_on_random_inputs(case):
    D1, C1, D2, C2, k, metric, obj = case
    check(D1, to_ids(C1, obj), D2, to_ids(C2, obj), k, metric, obj)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("obj", [False, True])
def test_matches_reference_on_larger_seeded_inputs(seed, metric, obj):
    rng = np.random.default_rng(seed)
    nq, k1, k2 = int(rng.integers(1, 40)), int(rng.integers(0, 25)), int(rng.integers(0, 25))
    pool = int(rng.integers(5, 60))
    # scores rounded to one decimal: many ties; FAISS-like rows (best first, pads at the end) half the time
    D1 = np.round(rng.standard_normal((nq, k1)), 1).astype(np.float32)
    D2 = np.round(rng.standard_normal((nq, k2)), 1).astype(np.float32)
    C1, C2 = rng.integers(-1, pool, (nq, k1)), rng.integers(-1, pool, (nq, k2))
    if seed % 2:
        for D, C in ((D1, C1), (D2, C2)):
            D[:] = -np.sort(-D, axis=1) if metric == "ip" else np.sort(D, axis=1)
            C[:] = np.where(np.arange(C.shape[1]) < rng.integers(0, C.shape[1] + 1, (nq, 1)),
                            rng.integers(0, pool, C.shape), -1)
            D[C < 0] = WORST[metric]
    for k in (1, max(1, (k1 + k2) // 2), k1 + k2 + 5):
        check(D1, to_ids(C1, obj), D2, to_ids(C2, obj), k, metric, obj)


def test_ties_keep_the_first_lists_entry_first():
    D_a, I_a = np.array([[1.0, 1.0]], np.float32), np.array([["a", "b"]], dtype=object)
    D_c, I_c = np.array([[1.0]], np.float32), np.array([["c"]], dtype=object)
    assert rank_merge(D_a, I_a, D_c, I_c, 3)[1].tolist() == [["a", "b", "c"]]
    assert rank_merge(D_c, I_c, D_a, I_a, 3)[1].tolist() == [["c", "a", "b"]]
    assert rank_merge(D_c, I_c, D_a, I_a, 2, metric="l2")[1].tolist() == [["c", "a"]]


@pytest.mark.parametrize("metric, best", [("ip", 0.9), ("l2", 0.1)])
def test_an_id_in_both_lists_is_kept_once_with_its_best_score(metric, best):
    D1, I1 = np.array([[0.9, 0.5]], np.float32), np.array([[7, 3]])
    D2, I2 = np.array([[0.1, 0.4]], np.float32), np.array([[7, 8]])
    D, I = rank_merge(D1, I1, D2, I2, 4, metric=metric)
    assert I[0].tolist().count(7) == 1
    assert D[0, I[0].tolist().index(7)] == np.float32(best)
    assert I[0, -1] == -1 and D[0, -1] == WORST[metric]  # three distinct ids, padded to four


def test_pads_are_recognised_by_id_whatever_their_score():
    D1, I1 = np.array([[5.0, 99.0]], np.float32), np.array([["x", None]], dtype=object)
    D, I = rank_merge(D1, I1, np.array([[1.0]], np.float32), np.array([["y"]], dtype=object), 3)
    assert I.tolist() == [["x", "y", None]] and D.tolist() == [[5.0, 1.0, -np.inf]]
    D2, I2 = np.array([[-99.0, 1.0]], np.float32), np.array([[-1, 4]])
    D, I = rank_merge(D2, I2, D2[:, :0], I2[:, :0], 2, metric="l2")
    assert I.tolist() == [[4, -1]] and D.tolist() == [[1.0, np.inf]]


def test_string_ids_in_a_numpy_unicode_array():
    D, I = rank_merge(np.array([[0.3, 0.1]]), np.array([["a", "b"]]), np.array([[0.2]]), np.array([["a"]]), 3)
    assert I.tolist() == [["a", "b", None]] and D.tolist() == [[np.float32(0.3), np.float32(0.1), -np.inf]]


@pytest.mark.parametrize("obj", [False, True])
def test_no_queries(obj):
    D, I = rank_merge(np.zeros((0, 3), np.float32), to_ids(np.zeros((0, 3), int), obj),
                      np.zeros((0, 2), np.float32), to_ids(np.zeros((0, 2), int), obj), 4)
    assert D.shape == I.shape == (0, 4) and D.dtype == np.float32


BAD_SHAPES = [
    ("D1 vs I1", (np.zeros((2, 3)), np.zeros((2, 2), int), np.zeros((2, 3)), np.zeros((2, 3), int))),
    ("D2 vs I2", (np.zeros((2, 3)), np.zeros((2, 3), int), np.zeros((2, 3)), np.zeros((2, 4), int))),
    ("nq differs", (np.zeros((2, 3)), np.zeros((2, 3), int), np.zeros((3, 3)), np.zeros((3, 3), int))),
    ("1-D first", (np.zeros(3), np.zeros(3, int), np.zeros((3, 3)), np.zeros((3, 3), int))),
    ("1-D second", (np.zeros((3, 3)), np.zeros((3, 3), int), np.zeros(3), np.zeros(3, int))),
    ("3-D second", (np.zeros((2, 3)), np.zeros((2, 3), int), np.zeros((2, 3, 1)), np.zeros((2, 3, 1), int))),
]


@pytest.mark.parametrize("arrays", [b[1] for b in BAD_SHAPES], ids=[b[0] for b in BAD_SHAPES])
def test_mismatched_shapes_raise(arrays):
    with pytest.raises(ValueError, match=r"\(D, I\) pairs"):
        rank_merge(*arrays, 3)


@pytest.mark.parametrize("metric", ["cosine", "IP", "", None])
def test_bad_metric_raises(metric):
    ok = (np.zeros((1, 2), np.float32), np.zeros((1, 2), int))
    with pytest.raises(ValueError, match="metric"):
        rank_merge(*ok, *ok, 2, metric=metric)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3", None])
def test_bad_k_raises(k):
    ok = (np.zeros((1, 2), np.float32), np.zeros((1, 2), int))
    with pytest.raises(ValueError, match="k must be"):
        rank_merge(*ok, *ok, k)


def test_numpy_integer_k_is_accepted():
    ok = (np.array([[1.0, 0.0]], np.float32), np.array([[1, 2]]))
    assert rank_merge(*ok, *ok, np.int64(2))[1].tolist() == [[1, 2]]
