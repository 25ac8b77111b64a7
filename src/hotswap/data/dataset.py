"""``RetrievalDataset``: BEIR-shaped dicts plus a fixed train/test split of the queries.

``corpus {doc_id: text}``, ``queries {qid: text}`` and ``qrels {qid: {doc_id: grade}}`` are the *test* split
(never seen by any fitting); ``train_queries`` / ``train_qrels`` are what adapters are fitted on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

import numpy as np

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class RetrievalDataset:
    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: Qrels
    train_queries: dict[str, str] = field(default_factory=dict)
    train_qrels: Qrels = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)  # doc_id -> domain (Debian Section), when known
    titles: dict[str, str] = field(default_factory=dict)  # doc_id -> title (BEIR's "title"), for display only
    note: str = ""

    @property
    def checksum(self) -> str:
        """sha256 over corpus, queries and qrels of both splits (first 16 hex digits); keys caches."""
        h = hashlib.sha256()
        for part in (self.corpus, self.queries, self.qrels, self.train_queries, self.train_qrels):
            h.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
        return h.hexdigest()[:16]

    def subset(
        self, max_docs: int | None = None, max_train_queries: int | None = None,
        max_test_queries: int | None = None, seed: int = 0,
    ) -> RetrievalDataset:
        """A deterministic random sample of ``max_docs`` documents (seeded), then ``restrict`` to them."""
        rng = np.random.default_rng(seed)
        doc_ids = sorted(self.corpus)
        if max_docs is not None and max_docs < len(doc_ids):
            doc_ids = sorted(rng.choice(doc_ids, size=max_docs, replace=False).tolist())
        out = self.restrict(doc_ids, max_train_queries, max_test_queries, rng)
        return replace(out, note=f"subset of {len(self.corpus)} docs: {len(doc_ids)} sampled with seed {seed}")

    def restrict(self, doc_ids, max_train_queries: int | None = None, max_test_queries: int | None = None,
                 rng: np.random.Generator | None = None) -> RetrievalDataset:
        """Only the documents ``doc_ids`` (e.g. what an index holds) and the queries with a relevant document
        among them, qrels cut to those documents; each query split capped at its maximum (sampled by ``rng``)."""
        rng = rng or np.random.default_rng(0)
        keep = set(doc_ids)
        unknown = keep - self.corpus.keys()
        if unknown:
            raise ValueError(
                f"{len(unknown)} document id(s) are not in dataset {self.name!r}, e.g. {sorted(unknown)[:3]}")

        def cut(queries: dict[str, str], qrels: Qrels, cap: int | None) -> tuple[dict[str, str], Qrels]:
            kept = {q: {d: g for d, g in rel.items() if d in keep} for q, rel in qrels.items() if q in queries}
            qids = sorted(q for q, rel in kept.items() if rel)
            if cap is not None and cap < len(qids):
                qids = sorted(rng.choice(qids, size=cap, replace=False).tolist())
            return {q: queries[q] for q in qids}, {q: kept[q] for q in qids}

        queries, qrels = cut(self.queries, self.qrels, max_test_queries)
        train_queries, train_qrels = cut(self.train_queries, self.train_qrels, max_train_queries)
        return replace(
            self, corpus={d: self.corpus[d] for d in sorted(keep)}, queries=queries, qrels=qrels,
            train_queries=train_queries, train_qrels=train_qrels,
            domains={d: v for d, v in self.domains.items() if d in keep},
            titles={d: v for d, v in self.titles.items() if d in keep},
        )

    def describe(self) -> str:
        return (f"{self.name}: {len(self.corpus)} docs, {len(self.train_queries)} train / "
                f"{len(self.queries)} test queries")
