"""Validation of ``hotswap plan`` against relevance labels: ``hotswap experiment plan``.

For each labelled set and model pair, the label-free plan (the train queries' texts as the log) is scored by the
test qrels: does its ranking of the paths agree with theirs (Spearman), and is its recommendation the best path or
within :data:`TOLERANCE` nDCG@10 of it? Run by :mod:`hotswap_harness.experiments.plan_validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hotswap.figures import rows_table
from hotswap_harness.experiments.registry import Experiment, Paper

TOLERANCE = 0.01
PAPER = Paper(
    "Vejendla, Drift-Adapter: A Practical Approach to Near Zero-Downtime Embedding Model Upgrades in Vector "
    "Databases, EMNLP 2025, arXiv:2509.23471",
    numbers={
        "drift_adapter_recall_share_of_reindex": [0.95, 0.99],  # vs the new model's own neighbours
        "reproduction_ndcg_share_of_reindex": [0.24, 0.50],  # the same adapters scored on human labels
    },
    note="a bridge (adapter or blend) reaches 95-99 % of a re-index's Recall@10 against the new model's own "
         "neighbours; an independent reproduction on human labels measured 0.24-0.50 of a re-index's nDCG@10 gain")


@dataclass(frozen=True)
class Pair:
    """One labelled set and model pair of the validation."""

    dataset: str
    old: str
    new: str
    max_docs: int | None = 6000  # None: the whole corpus
    sample: int = 2000
    max_log_queries: int = 2000
    max_qrels_queries: int = 500
    known_items: int = 500


PAIRS = (
    Pair("debian", "static", "minilm", max_docs=None),  # the whole 60k-document collection: the timing target
    Pair("foldoc", "static", "minilm"),
    Pair("jargon", "static", "minilm"),
    Pair("gcide", "static", "minilm"),
    Pair("pydoc", "static", "minilm"),
    Pair("debian", "minilm", "mpnet", sample=600, max_log_queries=600, max_qrels_queries=200, known_items=200),
    Pair("debian", "static", "mpnet", sample=600, max_log_queries=600, max_qrels_queries=200, known_items=200),
    Pair("debian", "minilm", "static"),  # a "new" model worse than the old one: staying is right
)


@dataclass
class PlanValidationConfig:
    """The options of ``hotswap experiment plan``."""

    pairs: tuple[str, ...] = field(default=(), metadata={
        "help": "comma-separated DATASET:OLD:NEW (default: every pair of the protocol)"})
    out: Path = field(default=Path("results"), metadata={"help": "folder for plan.json"})
    seed: int = 0

    def chosen(self) -> tuple[Pair, ...]:
        """The pairs to run: the protocol's own settings for a pair it knows, defaults for another."""
        if not self.pairs:
            return PAIRS
        known = {(p.dataset, p.old, p.new): p for p in PAIRS}
        picked = []
        for spec in self.pairs:
            parts = tuple(part.strip() for part in spec.split(":"))
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"--pairs takes DATASET:OLD:NEW items; got {spec!r}")
            picked.append(known.get(parts) or Pair(*parts))
        return tuple(picked)


def check(cfg: PlanValidationConfig) -> None:
    """Refuse a malformed ``--pairs`` before anything is encoded."""
    cfg.chosen()


def table(result: dict):
    """One row per pair: the label-free plan's agreement with the qrels and its regret."""
    rows = [{"pair": f"{r['dataset']} {r['old_model'].split('@')[0]}->{r['new_model'].split('@')[0]}",
             "spearman": r["spearman"], "plan says": r["recommendation"], "best by qrels": r["best_by_qrels"],
             "regret": r["regret"]} for r in result["pairs"]]
    return rows_table("plan validation (label-free plan vs test qrels)", rows,
                      [(c, c) for c in ("pair", "spearman", "plan says", "best by qrels", "regret")])


def lines(result: dict) -> list[str]:
    return [f"summary: {result['summary']}"]


SPEC = Experiment(
    name="plan",
    help="Validate 'hotswap plan': its label-free ranking and recommendation against qrels on every labelled set "
         "and model pair; writes results/plan.json (rewritten after each pair).",
    options=PlanValidationConfig,
    run="hotswap_harness.experiments.plan_validation:run",
    save="hotswap_harness.experiments.plan_validation:save",
    table=table,
    example="hotswap experiment plan --pairs foldoc:static:minilm",
    lines=lines,
    check=check,
    paper=PAPER,
)
