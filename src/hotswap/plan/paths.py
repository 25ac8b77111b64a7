"""Scores of every upgrade path on an in-memory sample, against the new model's own exact search.

Each path is a way to answer new-model queries without (or before) re-embedding the gallery. On a sample of
the collection whose vectors are known for both models (``D_old`` read from the index, ``D_new`` encoded once),
every path is an exact search over the sample:

* ``old``: old-model queries on old vectors (the status quo, "stay");
* an adapter ``a``: ``a(q_new)`` on old vectors (Drift-Adapter, EMNLP 2025, arXiv 2509.23471);
* a blend: ``w * a(q_new) + (1 - w) * q_old`` on old vectors (``hotswap.search.QueryBlend``);
* ``cascade@G``: the old model's top-``G`` re-scored by the new model (its encodings of those candidates);
* ``merged@f``: a backfill ``f`` of the way: old queries on the old part, new queries on the re-embedded part,
  merged by raw score (Seo et al., "distance rank merge");
* ``new``: new-model queries on new vectors (the full re-index).

``ARR@k`` (the Drift-Adapter paper's agreement measure) is the share of the new model's top-``k`` a path also
returns: ``mean_q |top_k(path, q) ∩ top_k(new, q)| / k``. ``rank_corr`` is the mean Spearman correlation, per query,
between a path's scores and the new model's on the new model's top-``RANK_DEPTH`` (paths that score every item).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hotswap.search.rank_merge import rank_merge

K = 10
RANK_DEPTH = 50


def top_k(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, columns)`` of the ``k`` highest scores per row, best first."""
    k = min(k, S.shape[1])
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1, kind="stable")
    cols = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(S, cols, axis=1), cols


def arr_at_k(I_path: np.ndarray, I_new: np.ndarray, k: int = K) -> float:
    """Mean share of the new model's top-``k`` (``I_new``) found in the path's top-``k`` (``I_path``)."""
    if len(I_new) == 0:
        return float("nan")
    hits = [len(set(a[:k].tolist()) & set(b[:k].tolist())) for a, b in zip(I_path, I_new)]
    return float(np.mean(hits) / k)


def ranks(x: np.ndarray) -> np.ndarray:
    """The rank of each entry of ``x`` (0 = smallest; ties in order of position)."""
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r


def rank_corr(S_path: np.ndarray, S_new: np.ndarray, depth: int = RANK_DEPTH) -> float:
    """Mean per-query Spearman correlation of ``S_path`` with ``S_new`` on the new model's top-``depth``."""
    _, cols = top_k(S_new, depth)
    rhos = []
    for q, c in enumerate(cols):
        a, b = ranks(S_path[q, c]), ranks(S_new[q, c])
        if a.std() > 0 and b.std() > 0:
            rhos.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(rhos)) if rhos else float("nan")


@dataclass(frozen=True)
class Ranking:
    """A path's top-``k`` over the sample: columns into the sample (``I``), and new-model encodes per query."""

    I: np.ndarray
    encodes_per_query: float = 0.0
    scores: np.ndarray | None = None  # every item's score, for paths that have one (rank_corr)


def ranked(S: np.ndarray, k: int = K) -> Ranking:
    """The exact search whose scores are ``S`` (queries x items)."""
    return Ranking(top_k(S, k)[1], 0.0, S)


def exhaustive(Q: np.ndarray, D: np.ndarray, k: int = K) -> Ranking:
    """Exact inner-product search of ``Q`` over ``D``."""
    return ranked(Q @ D.T, k)


def cascade(S_old: np.ndarray, S_new: np.ndarray, candidates: int, k: int = K,
            backfilled: np.ndarray | None = None) -> Ranking:
    """The old ranking's top-``candidates`` re-ranked by the new model's scores. Encodes per query: the
    candidates not already re-embedded (``backfilled``, a boolean mask over the sample)."""
    _, cand = top_k(S_old, candidates)
    rescored = np.take_along_axis(S_new, cand, axis=1)
    order = np.argsort(-rescored, axis=1, kind="stable")[:, :k]
    encodes = float(cand.shape[1]) if backfilled is None else float(np.mean((~backfilled[cand]).sum(axis=1)))
    return Ranking(np.take_along_axis(cand, order, axis=1), encodes)


def merged(S_old: np.ndarray, S_new: np.ndarray, backfilled: np.ndarray, k: int = K) -> Ranking:
    """A backfill part way: old scores on the items not re-embedded, new scores on the others, merged by raw
    score (``hotswap.search.rank_merge``)."""
    old_part, new_part = np.where(~backfilled)[0], np.where(backfilled)[0]
    parts = []
    for cols, S in ((old_part, S_old), (new_part, S_new)):
        if len(cols) == 0:
            parts.append((np.full((len(S), 1), -np.inf, np.float32), np.full((len(S), 1), -1)))
            continue
        D, local = top_k(S[:, cols], k)
        parts.append((D, cols[local]))
    _, I = rank_merge(parts[0][0], parts[0][1], parts[1][0], parts[1][1], k)
    return Ranking(I, 1.0)


def backfill_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random ``fraction`` of ``n`` items marked as re-embedded."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=int(round(fraction * n)), replace=False)] = True
    return mask


def ids_of(I: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Sample columns -> document ids (``None`` for padding)."""
    lookup = np.asarray(list(ids) + [None], dtype=object)
    return lookup[np.where(I < 0, len(ids), I)]
