"""Cascade search: old-index candidates re-scored by the new model, whose encodings feed the backfill.

During an upgrade (``Partitions.upgrade``) a query ``q`` is answered in two stages (candidate generation +
re-ranking, here over the two partitions of Seo et al.'s online backfill):

1. **Candidates.** The top ``G`` (``candidates``) of the *old index* (every item's old vector, backfilled or
   not) for an old-space query ``q_c`` (``candidate_query``: ``old`` = ``f_old(q)``, ``adapted`` =
   ``A(f_new(q))``, ``blended`` = ``QueryBlend``; ``auto`` takes the best the searcher has: blended, else
   adapted, else old), plus the top ``G`` of the *new* partition for ``f_new(q)``.
2. **Re-scoring.** Every candidate is scored by the new model, ``s(q, d) = <f_new(q), f_new(d)>`` (squared
   L2 distance for ``l2`` stores): a backfilled item has its stored vector; an item still pending is encoded
   now with the new model (``WriteBack``: at most once per item across searches and threads, then committed
   to the new partition, so the backfill never encodes it again).

Taking the old candidates from the whole old index, not from the old partition only, makes a query's cost
fall as it repeats: its candidates stay the same and are all encoded after its first run (an old-partition
top ``G`` would move deeper into the gallery each time the previous one was written back, and encode ``G``
new items per repeat).

``encode_budget`` ``B`` caps the new-model document encodings per query. The misses (old candidates with no
new vector anywhere) are encoded in old-rank order, the first ``B`` of them; the others are logged as demanded
(``DemandLog``: the ``demand`` backfill order re-embeds them first) and keep a place in the ranking by their
**calibrated old score**: ``s_hat = a * s_old(q_c, d) + b``, where ``(a, b)`` is the least-squares line through
this query's own re-scored old candidates (pairs ``(s_old, s_new)``), slope clipped at 0 so the old order is
kept among them; with one pair the line is a shift (``a = 1``), with none the old score is used as it is (the
raw distance rank merge of Seo et al.). When ``k > G``, old-index items ranked ``G+1 .. k`` are placed by
the same rule, so a result list always has ``k`` items when the gallery has them; nothing is dropped. Once
nothing is pending the old index adds no candidate the new partition's own top ``k`` would not outrank, so a
fully backfilled upgrade is searched as the new index alone.

With ``B`` unlimited and ``k <= G`` the answer equals brute force: the top ``k`` by ``s(q, d)`` of the union
of both candidate sets (``tests/search/test_cascade.py``). At 0 % backfilled it is a re-ranking of the old
index; at 100 % it is a search of the new index.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hotswap.errors import HotswapError
from hotswap.validation import check_k

CANDIDATE_QUERIES = ("auto", "old", "adapted", "blended")


@dataclass
class CascadeCounts:
    """Totals over every cascade search of a searcher (``/status`` and ``/metrics`` report them)."""

    queries: int = 0
    candidates: int = 0  # old-index candidates (top G) + new-partition candidates, per query, summed
    already_encoded: int = 0  # of those, the ones with a new vector before the query (stored or buffered)
    encodes: int = 0  # new-model document encodings made by cascade searches
    requested: int = 0  # encodings the queries asked for, each query on its own (before sharing within a call)
    calibrated: int = 0  # items placed by calibrated old score (over the budget, or past G)

    def as_dict(self) -> dict[str, float]:
        q = max(self.queries, 1)
        return {**asdict(self), "encodes_per_query": self.encodes / q, "requested_per_query": self.requested / q,
                "share_already_encoded": self.already_encoded / self.candidates if self.candidates else 0.0}


def resolve_candidate_query(p: Any, how: str) -> str:
    """``auto`` -> ``blended`` with a blend, else ``adapted`` with an adapter, else ``old``; others are checked."""
    if how not in CANDIDATE_QUERIES:
        raise HotswapError(f"unknown candidate_query {how!r}; choose one of {', '.join(CANDIDATE_QUERIES)}")
    if how == "auto":
        return "blended" if p.blend is not None else "adapted" if p.adapter is not None else "old"
    if how == "adapted" and p.adapter is None:
        raise HotswapError("candidate_query 'adapted' needs a fitted adapter (hotswap fit-adapter); pass it to the "
                           "Searcher")
    if how == "blended" and p.blend is None:
        raise HotswapError("candidate_query 'blended' needs a QueryBlend (hotswap fit-adapter --kind auto may "
                           "choose one); pass it to the Searcher")
    return how


def needs_old_queries(p: Any, candidate_query: str = "auto") -> bool:
    """Whether a cascade search with ``candidate_query`` needs the old model's query embeddings too (not once
    the old partition is empty: then the cascade is a search of the new partition)."""
    if p.upgrade is not None and p.upgrade.counts()["old"] == 0:
        return False
    return resolve_candidate_query(p, candidate_query) in ("old", "blended")


def _candidate_query(p: Any, queries: Any, model_id: str, how: str) -> tuple[np.ndarray, np.ndarray]:
    """``(Q_new, Q_c)``: the new-model queries and the old-space queries that pick old candidates."""
    Q_new, Q_old = queries if isinstance(queries, tuple) else (queries, None)
    how = resolve_candidate_query(p, how)
    if how in ("old", "blended") and Q_old is None:
        raise HotswapError(f"mode 'cascade' with candidate_query {how!r} takes queries as a pair (new-model "
                           "queries, old-model queries)")
    if how == "old":
        return Q_new, Q_old
    target = p.blend if how == "blended" else p.adapter
    if getattr(target, "old_model_id_", None) not in (None, p.upgrade.old_model_id):
        raise HotswapError(f"the {how} query maps into model {target.old_model_id_}, but the index was built by "
                           f"{p.upgrade.old_model_id}; fit the adapter against this index's model")
    if how == "blended":
        return Q_new, p.blend.combine(Q_new, Q_old, model_id=model_id)
    return Q_new, p.adapter.transform(Q_new, model_id=model_id)


def calibrate(s_old: np.ndarray, s_new: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` of ``s_new ~ a * s_old + b`` by least squares, ``a >= 0``; a shift for one pair, ``(1, 0)`` for
    none (see the module docstring)."""
    if len(s_old) == 0:
        return 1.0, 0.0
    if len(s_old) == 1 or float(np.var(s_old)) < 1e-12:
        return 1.0, float(np.mean(s_new - s_old))
    x, y = s_old - s_old.mean(), s_new - s_new.mean()
    a = max(0.0, float((x * y).sum() / (x * x).sum()))
    return a, float(s_new.mean() - a * s_old.mean())


def search_cascade(p: Any, queries: Any, k: int, model_id: str, *, candidates: int = 50,
                   encode_budget: int | None = None, candidate_query: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Cascade search (module docstring); ``queries`` is ``Q_new`` or the pair ``(Q_new, Q_old)``."""
    up = p.upgrade
    if up is None:
        raise HotswapError("mode 'cascade' needs an upgrade in progress (Searcher.for_upgrade)")
    wb = p.write_back
    if wb is None:
        raise HotswapError("mode 'cascade' encodes documents with the new model: pass texts=... and new_encoder=... "
                           "to Searcher.for_upgrade")
    k = check_k(k)
    if not isinstance(candidates, (int, np.integer)) or isinstance(candidates, bool) or candidates < 1:
        raise HotswapError(f"candidates must be a positive integer; got {candidates!r}")
    if encode_budget is not None and (not isinstance(encode_budget, (int, np.integer))
                                      or isinstance(encode_budget, bool) or encode_budget < 0):
        raise HotswapError(f"encode_budget must be None (unlimited) or an integer >= 0; got {encode_budget!r}")
    G = int(candidates)
    resolve_candidate_query(p, candidate_query)
    if up.counts()["old"] == 0:  # fully backfilled: nothing to re-score, a search of the new partition
        Q_new = queries[0] if isinstance(queries, tuple) else queries
        D, I = up.new_part.search(Q_new, k, model_id)
        found = int((I[:, :G] != None).sum())  # noqa: E711 - elementwise on an object array
        p.cascade_counts.add(CascadeCounts(queries=len(D), candidates=found, already_encoded=found))
        return D, I
    Q_new, Q_c = _candidate_query(p, queries, model_id, candidate_query)
    sign = 1.0 if up.metric == "ip" else -1.0  # inside: higher is better for both metrics
    with up.reading():  # one cut of the gallery for both candidate lists
        D_o, I_o = up.old.search(Q_c, max(G, k), up.old_model_id)
        D_n, I_n = up.new_part.search(Q_new, max(G, k), model_id)
    Q_new = np.asarray(Q_new, dtype=np.float32)
    plans, counts = [], CascadeCounts(queries=len(Q_new))
    for r in range(len(Q_new)):  # which old candidates each query re-scores, which it only calibrates
        cand = [i for i in I_o[r, :G] if i is not None]
        have = wb.known(cand)
        misses = [i for i in cand if i not in have]
        take = misses if encode_budget is None else misses[:encode_budget]
        plans.append((cand, set(take) | have, misses[len(take):]))
        counts.requested += len(take)
        n_new = sum(i is not None and i not in have for i in I_n[r, :G])  # an item found by both counts once
        counts.candidates += len(cand) + n_new
        counts.already_encoded += len(have) + n_new
    wanted = list(dict.fromkeys(i for cand, rescore, _ in plans for i in cand if i in rescore))
    vectors, counts.encodes = wb.vectors(wanted) if wanted else ({}, 0)
    wb.demand_ids([i for _, _, over in plans for i in over if i not in vectors])
    D = np.full((len(Q_new), k), -np.inf if up.metric == "ip" else np.inf, dtype=np.float32)
    I = np.full((len(Q_new), k), None, dtype=object)
    for r, (cand, rescore, _) in enumerate(plans):
        scored: dict[str, float] = {i: sign * float(d) for d, i in zip(D_n[r], I_n[r]) if i is not None}
        pairs, rest = [], []
        for c, i in enumerate(I_o[r]):
            if i is None or i in scored:
                continue
            s_old = sign * float(D_o[r, c])
            if c < G and i in vectors:
                v = vectors[i]
                s = float(Q_new[r] @ v) if sign > 0 else -float(((Q_new[r] - v) ** 2).sum())
                scored[i] = s
                pairs.append((s_old, s))
            else:
                rest.append((i, s_old))
        if rest:
            xy = np.array(pairs, dtype=np.float64).reshape(-1, 2)
            a, b = calibrate(xy[:, 0], xy[:, 1])
            scored.update((i, a * s + b) for i, s in rest)
            counts.calibrated += len(rest)
        top = sorted(scored.items(), key=lambda t: -t[1])[:k]
        D[r, :len(top)] = [sign * s for _, s in top]
        I[r, :len(top)] = [i for i, _ in top]
    p.cascade_counts.add(counts)
    return D, I


class CascadeTotals:
    """Thread-safe running ``CascadeCounts`` of a searcher."""

    def __init__(self) -> None:
        self.counts = CascadeCounts()
        self._lock = threading.Lock()

    def add(self, c: CascadeCounts) -> None:
        with self._lock:
            for f in ("queries", "candidates", "already_encoded", "encodes", "requested", "calibrated"):
                setattr(self.counts, f, getattr(self.counts, f) + getattr(c, f))

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return self.counts.as_dict()
