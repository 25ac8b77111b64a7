"""Retrieval metrics (via pytrec-eval) and compatibility metrics (negative flips, per-query comparison)."""

from hotswap.metrics.compatibility import FlipReport, compare_per_query, first_relevant_rank, negative_flips
from hotswap.metrics.retrieval import DEFAULT_METRICS, Run, evaluate_run, per_query_metrics, run_from_search

__all__ = ["DEFAULT_METRICS", "FlipReport", "Run", "compare_per_query", "evaluate_run", "first_relevant_rank",
           "negative_flips", "per_query_metrics", "run_from_search"]
