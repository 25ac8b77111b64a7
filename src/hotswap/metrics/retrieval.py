"""Standard IR metrics, computed by pytrec-eval (trec_eval), never re-implemented.

A *run* is ``{qid: {doc_id: score}}`` (BEIR / ranx shape). ``run_from_search`` turns FAISS-style ``(D, I)``
into a run whose scores encode the rank (``k - position``), so trec_eval sees exactly our order even where
two similarities tie (trec_eval would otherwise break ties by doc id).

Metrics (names as reported): ``ndcg@10`` = trec ``ndcg_cut_10``; ``recall@10`` / ``recall@100`` = trec
``recall_10`` / ``recall_100``; ``mrr@10`` = trec ``recip_rank`` on the run cut to its top 10. Every query of
the qrels counts: a query absent from the run scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytrec_eval

Run = dict[str, dict[str, float]]
DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
_TREC = {"ndcg@10": ("ndcg_cut", "ndcg_cut_10"), "recall@10": ("recall", "recall_10"),
         "recall@100": ("recall", "recall_100"), "mrr@10": ("recip_rank", "recip_rank")}


def run_from_search(query_ids: Sequence[str], I: np.ndarray) -> Run:
    """``{qid: {doc_id: k - rank}}`` from the id matrix of a search (``None`` ids are padding and skipped)."""
    k = I.shape[1] if I.ndim == 2 else 0
    return {qid: {str(d): float(k - r) for r, d in enumerate(row) if d is not None} for qid, row in zip(query_ids, I)}


def _cut(run: Run, depth: int) -> Run:
    return {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:depth]) for q, docs in run.items()}


def per_query_metrics(qrels: dict[str, dict[str, int]], run: Run,
                      metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` for every query of ``qrels`` (0 where the run has nothing for it)."""
    unknown = [m for m in metrics if m not in _TREC]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {sorted(_TREC)}")
    qrels = {q: rel for q, rel in qrels.items() if rel}
    out: dict[str, dict[str, float]] = {m: dict.fromkeys(qrels, 0.0) for m in metrics}
    for m in metrics:
        measure, key = _TREC[m]
        evaluated = _cut(run, 10) if m == "mrr@10" else run
        evaluated = {q: docs for q, docs in evaluated.items() if q in qrels and docs}
        if not evaluated:
            continue
        res = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(evaluated)
        for q, vals in res.items():
            out[m][q] = float(vals[key])
    return out


def evaluate_run(qrels: dict[str, dict[str, int]], run: Run,
                 metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of each metric over all queries of ``qrels``."""
    per_query = per_query_metrics(qrels, run, metrics)
    return {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}
