"""Retrieval metrics (via pytrec-eval), compatibility metrics (negative flips, per-query comparison) and
model-to-model compatibility on labelled images (compatibility matrix, ECC, AC, AM; see ``model_compatibility``)."""

from hotswap.metrics.compatibility import FlipReport, compare_per_query, first_relevant_rank, negative_flips
from hotswap.metrics.model_compatibility import (
    CELL_METRICS,
    CompatibilityMatrix,
    ac_per_task,
    am_per_task,
    average_compatibility,
    average_multimodel_accuracy,
    class_templates,
    classification_flip_rate,
    compatibility_matrix,
    empirical_compatibility,
    retrieval_scores,
    self_cross_gaps,
    summarise,
    template_correct,
    template_top1,
)
from hotswap.metrics.retrieval import DEFAULT_METRICS, Run, evaluate_run, per_query_metrics, run_from_search

__all__ = ["CELL_METRICS", "DEFAULT_METRICS", "CompatibilityMatrix", "FlipReport", "Run", "ac_per_task",
           "am_per_task", "average_compatibility", "average_multimodel_accuracy", "class_templates",
           "classification_flip_rate", "compare_per_query", "compatibility_matrix", "empirical_compatibility",
           "evaluate_run", "first_relevant_rank", "negative_flips", "per_query_metrics", "retrieval_scores",
           "run_from_search", "self_cross_gaps", "summarise", "template_correct", "template_top1"]
