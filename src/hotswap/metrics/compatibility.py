"""Compatibility between an old retrieval system and an upgraded one, per query.

**Negative flip rate** (after Yan et al., CVPR 2021, "Positive-congruent training", adapted to ranked
retrieval). For query q and system s let ``r_s(q)`` be the 1-based rank of the first relevant document in
s's top ``k`` (k = 10), or ``k + 1`` if none is there. A *negative flip* is ``r_new(q) > r_old(q)``: the user
who found the answer at rank 3 yesterday finds it lower, or not at all, today. Queries the old system missed
(``r_old = k + 1``) cannot flip. ``NFR = #flips / #queries`` over every query of the qrels.
The stricter classification-style variant (old hit in top k, new miss) is ``hit_flip_rate``.

Compatibility between *models* on labelled images (Biondi et al. CVPR 2024: compatibility matrix, ECC, AC, AM,
1:N template search, classification flip rates) lives in ``hotswap.metrics.model_compatibility``; its public
names are re-exported at the end of this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotswap.metrics.retrieval import Run


def first_relevant_rank(qrels: dict[str, dict[str, int]], run: Run, k: int = 10) -> dict[str, int]:
    """1-based rank of the first relevant document within the top ``k`` of each query, else ``k + 1``."""
    ranks = {}
    for q, rel in qrels.items():
        docs = sorted(run.get(q, {}).items(), key=lambda kv: -kv[1])[:k]
        ranks[q] = next((i for i, (d, _) in enumerate(docs, 1) if rel.get(d, 0) > 0), k + 1)
    return ranks


@dataclass(frozen=True)
class FlipReport:
    negative_flip_rate: float
    hit_flip_rate: float
    positive_flip_rate: float
    n_queries: int
    flipped: tuple[str, ...]


def negative_flips(qrels: dict[str, dict[str, int]], run_old: Run, run_new: Run, k: int = 10) -> FlipReport:
    """Negative, hit-level and positive flips of ``run_new`` against ``run_old`` (see module docstring)."""
    qrels = {q: rel for q, rel in qrels.items() if any(g > 0 for g in rel.values())}
    r_old, r_new = first_relevant_rank(qrels, run_old, k), first_relevant_rank(qrels, run_new, k)
    n = max(len(qrels), 1)
    flipped = tuple(sorted(q for q in qrels if r_new[q] > r_old[q]))
    hit_flips = sum(r_old[q] <= k < r_new[q] for q in qrels)
    positive = sum(r_new[q] < r_old[q] for q in qrels)
    return FlipReport(len(flipped) / n, hit_flips / n, positive / n, len(qrels), flipped)


def compare_per_query(a: dict[str, float], b: dict[str, float], tol: float = 1e-9) -> dict[str, float]:
    """Wins / losses / ties of system b over a on one per-query metric, and the mean difference."""
    qids = sorted(set(a) & set(b))
    diff = np.array([b[q] - a[q] for q in qids]) if qids else np.zeros(0)
    return {"wins": int((diff > tol).sum()), "losses": int((diff < -tol).sum()),
            "ties": int((np.abs(diff) <= tol).sum()), "mean_diff": float(diff.mean()) if qids else 0.0}


__all__ = ["FlipReport", "compare_per_query", "first_relevant_rank", "negative_flips"]
