"""Queries when there are none: spans of the collection's own texts (known-item search).

Without a query log, ``plan`` asks each path to find a document from a short span of its own text: a seeded
window of ``SPAN_WORDS`` consecutive words (the inverse cloze task of Lee et al., ACL 2019, §4, without removing
the span from the document). The known item is the one relevant document, so every path also gets a label-free
``nDCG@10`` that can rank the old model against the new one. It is weaker evidence than real queries: a span is
not how users ask, and the span is still inside the indexed text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPAN_WORDS = 12
MIN_WORDS = 6


def known_item_queries(ids: Sequence[str], texts: Sequence[str], n: int,
                       rng: np.random.Generator) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    """Up to ``n`` pseudo-queries ``(qids, texts, qrels)``: a span of each of a seeded sample of the documents
    with at least ``MIN_WORDS`` words; query ``pq:<doc id>`` has that document as its one relevant item."""
    usable = [i for i, t in enumerate(texts) if len(t.split()) >= MIN_WORDS]
    chosen = sorted(rng.choice(usable, size=min(n, len(usable)), replace=False).tolist()) if usable else []
    qids, queries, qrels = [], [], {}
    for i in chosen:
        words = texts[i].split()
        width = min(SPAN_WORDS, len(words))
        start = int(rng.integers(0, len(words) - width + 1))
        qid = f"pq:{ids[i]}"
        qids.append(qid)
        queries.append(" ".join(words[start:start + width]))
        qrels[qid] = {ids[i]: 1}
    return qids, queries, qrels
