"""Distance rank merge (Seo et al., WACV 2025, "Online backfilling", Sec. 3: rank merge of two galleries).

During a backfill the gallery is split into an old partition (vectors of the old model) and a new one
(vectors of the new model). Each partition is searched with a query embedding of its own model and the
two top-k lists are merged by their raw scores:

    merged(q) = top-k over  {(s, id) in R_old(q)}  ∪  {(s, id) in R_new(q)}

best first (largest similarity for ``"ip"``, smallest distance for ``"l2"``). No score is rescaled: the
method is training-free and model-agnostic, and its quality depends on how comparable the two models'
scores are (what metric-compatible training fixes). An id present in both lists is kept once, with its
best score. ``rank_merge`` is a pure, vectorised function over FAISS-style ``(D, I)`` pairs (the shape of
``faiss.merge_knn_results``); ids may be integers (``-1`` pads) or objects such as strings (``None`` pads).
"""

from __future__ import annotations

import numpy as np

from hotswap.validation import check_k

_PAD_INT = -1


def _is_pad(I: np.ndarray) -> np.ndarray:
    if I.dtype == object:
        return np.equal(I, np.asarray(None))  # None as numpy passes it: a 0-d object array
    return I == _PAD_INT


def rank_merge(D1: np.ndarray, I1: np.ndarray, D2: np.ndarray, I2: np.ndarray, k: int,
               metric: str = "ip") -> tuple[np.ndarray, np.ndarray]:
    """Merge two result lists per query into one top-``k`` ``(D, I)``, deduplicating ids.

    ``D1, I1`` are ``[nq, k1]`` and ``D2, I2`` ``[nq, k2]``; ``metric`` is ``"ip"`` (higher is better) or
    ``"l2"`` (lower is better). Short rows are padded with the worst score and a pad id (``None`` for object
    ids, ``-1`` for integer ids). Ties keep the first list's entry first.
    """
    if metric not in ("ip", "l2"):
        raise ValueError(f"metric must be 'ip' or 'l2'; got {metric!r}")
    k = check_k(k)
    D1, D2 = np.asarray(D1, np.float32), np.asarray(D2, np.float32)
    I1, I2 = np.asarray(I1), np.asarray(I2)
    if D1.shape != I1.shape or D2.shape != I2.shape or D1.ndim != 2 or D2.ndim != 2 or len(D1) != len(D2):
        raise ValueError(f"need (D, I) pairs of equal shape [nq, k] with the same nq; got D1 {D1.shape}, "
                         f"I1 {I1.shape}, D2 {D2.shape}, I2 {I2.shape}")
    obj = I1.dtype.kind in "OUS" or I2.dtype.kind in "OUS"  # numpy str arrays hold ids as objects do
    D = np.concatenate([D1, D2], axis=1)
    I = np.concatenate([I1.astype(object) if obj else I1.astype(np.int64),
                        I2.astype(object) if obj else I2.astype(np.int64)], axis=1)
    worst = -np.inf if metric == "ip" else np.inf
    pad = _is_pad(I)
    D = np.where(pad, worst, D)
    order = np.argsort(-D if metric == "ip" else D, axis=1, kind="stable")
    D, I, pad = (np.take_along_axis(a, order, 1) for a in (D, I, pad))
    dup = _later_duplicates(I, pad)
    if dup.any():  # push duplicates behind everything else, keeping the order of the rest
        D = np.where(dup, worst, D)
        order = np.argsort(dup, axis=1, kind="stable")
        D, I, pad = (np.take_along_axis(a, order, 1) for a in (D, I, pad | dup))
    nq, m = D.shape
    if m < k:
        D = np.concatenate([D, np.full((nq, k - m), worst, np.float32)], axis=1)
        I = np.concatenate([I, np.full((nq, k - m), None if obj else _PAD_INT, I.dtype)], axis=1)
        pad = np.concatenate([pad, np.ones((nq, k - m), bool)], axis=1)
    D, I, pad = D[:, :k], I[:, :k].copy(), pad[:, :k]
    I[pad] = None if obj else _PAD_INT
    return D.astype(np.float32, copy=False), I


def _later_duplicates(I: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Mask of entries whose id already appears earlier in the same (best-first) row; pads are never dups."""
    nq, m = I.shape
    keys = np.where(pad, "", I).astype(str) if I.dtype == object else I
    codes = np.unique(keys, return_inverse=True)[1].reshape(nq, m)
    by_id = np.argsort(codes, axis=1, kind="stable")  # ties keep row order: the best-scored copy comes first
    sorted_codes = np.take_along_axis(codes, by_id, 1)
    sorted_pad = np.take_along_axis(pad, by_id, 1)
    first = np.ones((nq, m), bool)
    first[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    dup_sorted = ~first & ~sorted_pad
    dup = np.zeros((nq, m), bool)
    np.put_along_axis(dup, by_id, dup_sorted, 1)
    return dup

