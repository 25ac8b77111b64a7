"""``hotswap eval``: nDCG@10, recall, MRR and negative flips of a search mode on the test queries the index
covers (an upgrade in progress in any mode, left as it was)."""

from __future__ import annotations

from pathlib import Path

import typer

from hotswap.cli import context
from hotswap.cli.output import JSON, console, emit_json, table
from hotswap.cli.search import (
    ADAPTER,
    CALIBRATION_DOCS,
    CANDIDATE_QUERY,
    CANDIDATES,
    DATASET,
    ENCODE_BUDGET,
    INDEX,
    MODE,
    MODEL,
    NEW_INDEX,
    OLD,
    UPGRADE,
    Session,
    cascade_options,
    pick_mode,
)
from hotswap.errors import HotswapError


def evaluate(
    index: str = INDEX,
    upgrade: Path = UPGRADE,
    mode: str = MODE,
    model: str = MODEL,
    old: str = OLD,
    adapter: Path = ADAPTER,
    new_index: Path = NEW_INDEX,
    dataset: str = DATASET,
    max_test_queries: int = typer.Option(None, help="cap on test queries (seeded sample)"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, "--out", help="also write the metrics to this JSON file"),
    candidates: int = CANDIDATES,
    encode_budget: int = ENCODE_BUDGET,
    candidate_query: str = CANDIDATE_QUERY,
    calibration_docs: int = CALIBRATION_DOCS,
    json_output: bool = JSON,
) -> None:
    """Evaluate a search mode on the test queries whose relevant documents the index holds, with flips vs old.

    Example: hotswap eval --index indexes/old --mode adapted --model minilm --adapter adapters/affine
    (an upgrade in progress: hotswap eval --upgrade indexes/upgrade --mode calibrated; eval keeps a cascade's
    encodings in memory, so the upgrade is left as it was)
    """
    from hotswap.encoders.cache import encode_cached
    from hotswap.metrics import evaluate_run, negative_flips, run_from_search

    target = context.open_target(index, upgrade)
    try:
        mode = pick_mode(mode, target, adapter, new_index)
        ds = context.restricted(context.dataset_of(target, dataset), target.store.ids,
                                max_test_queries=max_test_queries, seed=seed)
        if not ds.queries:
            raise HotswapError(f"dataset {ds.name!r} has no test queries (qrels/test.tsv) whose relevant documents "
                               f"{target.location} holds; nothing to evaluate")
        full = context.dataset_of(target, dataset) if mode == "cascade" else ds
        session = Session(target, mode, model, old, adapter, new_index, full, persist=False,
                          candidate_query=candidate_query, calibration_docs=calibration_docs, seed=seed)
        if session.searcher.old_encoder is None:
            session.searcher.old_encoder = context.old_encoder(target, old)  # the baseline of the flips
        qids, texts = list(ds.queries), list(ds.queries.values())
        queries = session.encode_queries(texts)
        old_enc = session.searcher.old_encoder
        Q_old = queries[1] if isinstance(queries, tuple) else queries if mode == "old" else \
            encode_cached(old_enc, texts)[0]
        run_old = run_from_search(qids, target.store.search(Q_old, 100, model_id=old_enc.id)[1])
        options = cascade_options(mode, candidates, encode_budget, candidate_query)
        run = run_old if mode == "old" else run_from_search(qids, session.search(queries, 100, options)[1])
        result = {"index": session.searched, "mode": mode, "n_test_queries": len(qids), **options,
                  **evaluate_run(ds.qrels, run),
                  "negative_flip_rate": negative_flips(ds.qrels, run_old, run).negative_flip_rate}
        if target.upgrade is not None:
            result["backfilled"] = target.upgrade.fraction
        if mode == "cascade":
            result["encodes_per_query"] = session.searcher.cascade_stats()["encodes_per_query"]
    finally:
        target.close()
    if out:
        from hotswap.io import atomic_write_json

        atomic_write_json(out, result)
    if json_output:
        emit_json(result)
        return
    columns = ["mode", "ndcg@10", "recall@10", "recall@100", "mrr@10", "negative_flip_rate"]
    caption = f"{len(qids)} test queries of {ds.name}; NFR = negative flips vs the old model"
    if mode == "cascade":
        columns.append("encodes_per_query")
        result["encodes_per_query"] = round(result["encodes_per_query"], 2)
    console.print(table(f"{result['index']}", [result], columns, caption))
