"""Hard-negative mining with the previous model, for contrastive training of a retriever on one task.

QDC's paper takes (query, positive, 7 hard negatives) triples mined beforehand (contrastors' sets; gte-base for
FiQA). Here they are mined with the model *before* the task, ``f_{t-1}``, from the task's own corpus: the
corpus and the train queries are encoded (L2-normalised), each query's documents are ranked by cosine, and
``n`` negatives are drawn (seeded) from ranks ``lo .. hi`` of that ranking, skipping its relevant documents.
Ranks above ``lo`` are left out on purpose: on Debian descriptions the very top is crowded with near-duplicates
of the positive (``foo``, ``foo-doc``, ``python3-foo``) that are unlabelled positives, not negatives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import faiss
import numpy as np


def mine_hard_negatives(encode: Callable[[list[str]], np.ndarray], queries: Sequence[str],
                        positives: Sequence[set[str]], doc_ids: Sequence[str], doc_texts: Sequence[str],
                        n: int, ranks: tuple[int, int] = (10, 50), seed: int = 0) -> list[list[str]]:
    """For each query, ``n`` document ids drawn from ranks ``ranks[0]..ranks[1]`` (0-based) of ``encode``'s
    ranking of the corpus, its relevant ids (``positives``) excluded. Fewer when the corpus is too small."""
    lo, hi = ranks
    if n <= 0:
        return [[] for _ in queries]
    if not 0 <= lo < hi:
        raise ValueError(f"need 0 <= lo < hi for the negative ranks; got {ranks}")
    D = np.ascontiguousarray(encode(list(doc_texts)), dtype=np.float32)
    Q = np.ascontiguousarray(encode(list(queries)), dtype=np.float32)
    k = min(hi + max(len(p) for p in positives) if positives else hi, len(doc_ids))
    _, I = faiss.knn(Q, D, k, metric=faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    out = []
    for row, pos in zip(I, positives):
        ranked = [doc_ids[j] for j in row if j >= 0 and doc_ids[j] not in pos]
        pool = ranked[lo:hi] or ranked[:hi]
        take = min(n, len(pool))
        out.append([pool[j] for j in sorted(rng.choice(len(pool), take, replace=False))] if take else [])
    return out
