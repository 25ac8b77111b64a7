"""Does ``hotswap plan`` choose well without labels? Its label-free ranking and recommendation against qrels.

For each labelled set and model pair: an index of the set's corpus built by the old model, then
``plan_upgrade`` with the train queries' texts as the query log (their labels unused) and the test qrels.
Reported per pair: the paths' ARR@10, known-item nDCG@10 and nDCG@10; the Spearman correlation of the
label-free ranking (ARR@10) of the end paths with their ranking by nDCG@10 on the test queries; the label-free
recommendation and whether it is the best path by qrels or within 0.01 nDCG@10 of it; the recommendation
with the qrels; the measured backfill time of the whole collection; the wall time of the plan. Beside the
references: the best bridge (adapter or blend) as a share of the re-index's nDCG@10 gain over the old model
(an independent reproduction on human labels measured 0.24-0.50 of a re-index), and its ARR@10 (Drift-Adapter,
EMNLP 2025: 95-99 % of a re-index's Recall@10, measured against the new model's own neighbours).

Written to ``results/plan.json``: ``{"pairs": [{"dataset", "old_model", "new_model", "sample", "paths":
[{"path", "arr@10", "ndcg@10", ...}], "recommendation", "best_by_qrels", "spearman", "backfill_hours",
"wall_s", ...}], "summary": {...}}``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.io import atomic_write_json
from hotswap_harness.experiments.protocols.plan import PAIRS, PAPER, TOLERANCE, Pair, PlanValidationConfig


def path_of(recommendation: str) -> str:
    """The path a recommendation names: ``stay`` -> old, ``backfill:*`` -> new, ``cascade:G`` -> cascade@G."""
    kind, _, arg = recommendation.partition(":")
    return {"stay": "old", "backfill": "new", "cascade": f"cascade@{arg}"}.get(kind, arg)


def run_pair(pair: Pair, seed: int = 0) -> dict[str, Any]:
    """Plan ``pair`` on a fresh index of its corpus (in a temporary folder) and score the plan by the qrels."""
    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.encoders.cache import encode_cached
    from hotswap.plan import plan_upgrade
    from hotswap.store import create_store

    ds = load_dataset(pair.dataset)
    if pair.max_docs is not None:
        ds = ds.subset(max_docs=pair.max_docs, seed=seed)
    old, new = load_encoder(pair.old), load_encoder(pair.new)
    ids = sorted(ds.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        store = create_store(Path(tmp) / "index", old.id, old.dim)
        store.add(ids, encode_cached(old, [ds.corpus[i] for i in ids])[0], old.id)
        started = time.perf_counter()
        plan = plan_upgrade(store, old, new, lambda xs: [ds.corpus[i] for i in xs],
                            queries=list(ds.train_queries.values()), qrels=ds.qrels, qrel_queries=ds.queries,
                            sample=pair.sample, seed=seed, max_log_queries=pair.max_log_queries,
                            max_qrels_queries=pair.max_qrels_queries, known_items=pair.known_items).to_dict()
        wall = time.perf_counter() - started
        store.close()
    by = {p["path"]: p for p in plan["paths"]}
    best = by[plan["best_by_qrels"]]["ndcg@10"]
    chosen = by[path_of(plan["recommendation_label_free"])]["ndcg@10"]
    no_path_beats_old = all(p["ndcg@10"] <= by["old"]["ndcg@10"] + TOLERANCE for p in plan["paths"]
                            if p["kind"] != "curve" and p["path"] != "old")
    return with_references({"dataset": pair.dataset, "old_model": old.id, "new_model": new.id, "sample": plan["sample"],
            "collection_size": plan["collection_size"], "paths": plan["paths"],
            "recommendation": plan["recommendation_label_free"],
            "recommendation_with_qrels": plan["recommendation"], "best_by_qrels": plan["best_by_qrels"],
            "recommended_ndcg@10": chosen, "best_ndcg@10": best, "regret": best - chosen,
            "within_tolerance": bool(best - chosen <= TOLERANCE + 1e-12), "no_path_beats_old": no_path_beats_old,
            "spearman": plan["spearman"], "spearman_known_item": plan["spearman_known_item"],
            "gain_new_over_old": plan["gain_new_over_old"], "encode_rate": plan["encode_rate"],
            "backfill_hours": plan["backfill_hours"], "wall_s": round(wall, 2), "queries": plan["queries"],
            "n_score_queries": plan["n_score_queries"]})


def with_references(row: dict) -> dict:
    """``row`` plus what compares with the references: the best bridge (adapter or blend, by nDCG@10), its
    share of the re-index's nDCG@10 gain over the old model, and its ARR@10."""
    by = {p["path"]: p for p in row["paths"]}
    bridges = [p for p in row["paths"] if p["kind"] in ("adapter", "blend")]
    bridge = max(bridges, key=lambda p: p["ndcg@10"]) if bridges else None
    gain = by["new"]["ndcg@10"] - by["old"]["ndcg@10"]
    return {**row, "best_bridge": None if bridge is None else bridge["path"],
            "best_bridge_arr@10": None if bridge is None else bridge["arr@10"],
            "best_bridge_share_of_reindex": None if bridge is None or gain == 0 else
            (bridge["ndcg@10"] - by["old"]["ndcg@10"]) / gain}


def summarise(rows: list[dict]) -> dict[str, Any]:
    rhos = [r["spearman"] for r in rows if r["spearman"] is not None]
    shares = [r["best_bridge_share_of_reindex"] for r in rows if r.get("best_bridge_share_of_reindex") is not None]
    return {"pairs": len(rows), "mean_spearman": float(np.mean(rhos)) if rhos else None,
            "bridge_share_of_reindex": [min(shares), max(shares)] if shares else None,
            "min_spearman": float(min(rhos)) if rhos else None,
            "pairs_spearman_at_least_0.8": sum(r >= 0.8 for r in rhos),
            "recommendation_within_0.01": sum(r["within_tolerance"] for r in rows),
            "share_within_0.01": float(np.mean([r["within_tolerance"] for r in rows])) if rows else None,
            "pairs_where_no_path_beats_old": sum(r["no_path_beats_old"] for r in rows),
            "said_stay_where_no_path_beats_old": sum(r["no_path_beats_old"] and r["recommendation"] == "stay"
                                                     for r in rows)}


def run_plan_validation(pairs: tuple[Pair, ...] = PAIRS, out: str | Path = "results", seed: int = 0,
                        on_pair: Any = None) -> dict[str, Any]:
    """Every pair in turn; ``results/plan.json`` is rewritten (atomically) after each, so a long run that is cut
    short keeps what it measured."""
    rows: list[dict] = []
    result: dict[str, Any] = {}
    for pair in pairs:
        rows.append(run_pair(pair, seed))
        result = assemble(rows)
        atomic_write_json(Path(out) / "plan.json", result)
        if on_pair is not None:
            on_pair(rows[-1])
    return result


def assemble(rows: list[dict]) -> dict[str, Any]:
    """The results file: the pairs (with the reference comparisons), the summary, the references."""
    rows = [with_references(r) for r in rows]
    return {"pairs": rows, "summary": summarise(rows), "tolerance": TOLERANCE, "references": dict(PAPER.numbers),
            "protocol": "label-free plan (train-query texts as the log) scored by test qrels"}


def run(cfg: PlanValidationConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The protocol's entry for ``hotswap experiment plan``: one line per pair as it finishes."""
    return run_plan_validation(cfg.chosen(), cfg.out, cfg.seed, on_pair=lambda r: say(
        f"{r['dataset']} {r['old_model']} -> {r['new_model']}: plan says {r['recommendation']}, best by qrels "
        f"{r['best_by_qrels']}, Spearman {r['spearman']}, {r['wall_s']} s"))


def save(result: dict, cfg: PlanValidationConfig) -> list[Path]:
    """``plan.json`` in ``cfg.out`` (already written after each pair; written once more, whole)."""
    return [atomic_write_json(Path(cfg.out) / "plan.json", result)]
