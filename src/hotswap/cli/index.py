"""CLI verbs that build, search and evaluate one index: setup-models, encode, search, eval."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from hotswap.adapters import load_adapter
from hotswap.cli.options import DATASET, INDEX
from hotswap.data import load_dataset
from hotswap.encoders import encoder_for_model_id, load_encoder, prepare_models
from hotswap.encoders.cache import encode_cached
from hotswap.metrics import evaluate_run, negative_flips, run_from_search
from hotswap.search import MODES, QueryBlend, Searcher
from hotswap.search.blend import is_blend_folder
from hotswap.search.cascade import needs_old_queries
from hotswap.store import create_store, open_store
from hotswap.upgrade import open_upgrade

console = Console()


def setup_models() -> None:
    """Assemble and distil the bundled models once (run by make demo / make test). Example: hotswap setup-models"""
    for name, model_id in prepare_models().items():
        console.print(f"{name}: [green]{model_id}[/]")


def encode(
    model: str = typer.Option(..., help="encoder: static, minilm, mpnet or a model folder"),
    index: str = INDEX,
    dataset: str = DATASET,
    max_docs: int = typer.Option(None, help="index a seeded random subset of this many documents"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(64),
) -> None:
    """Encode a dataset's corpus with MODEL into a new store at INDEX.

    Example: hotswap encode --model static --index indexes/old --max-docs 6000
    """
    ds = load_dataset(dataset, max_docs=max_docs, seed=seed)
    enc = load_encoder(model)
    ids = list(ds.corpus)
    start = time.perf_counter()
    X, hit = encode_cached(enc, [ds.corpus[d] for d in ids], batch_size=batch_size)
    store = create_store(index, model_id=enc.id, dim=enc.dim, metric="ip")
    store.add(ids, X, model_id=enc.id)
    console.print(f"indexed {len(store)} docs of {ds.name} with {enc.id} ({enc.dim}-d) into {index} "
                  f"in {time.perf_counter() - start:.1f} s{' (cached embeddings)' if hit else ''}")


def _searcher(index: str | None, model: str | None, adapter: Path | None, new_index: Path | None, mode: str,
              upgrade: Path | None = None, corpus: dict[str, str] | None = None, candidate_query: str = "auto",
              persist: bool = True) -> Searcher:
    """The searcher for INDEX, or (``upgrade``) for an upgrade in progress, whose ``cascade`` mode re-encodes
    documents from ``corpus``; the old encoder is loaded only where the mode needs old-model queries."""
    if (index is None) == (upgrade is None):
        raise typer.BadParameter("give --index (a store) or --upgrade (an upgrade in progress), not both")
    if mode == "cascade" and upgrade is None:
        raise typer.BadParameter("mode 'cascade' searches an upgrade in progress: pass --upgrade (the folder "
                                 "'hotswap backfill' writes)")
    if mode != "old" and model is None:
        raise typer.BadParameter(f"mode {mode!r} needs --model (the new encoder)")
    fitted = load_adapter(adapter) if adapter else None
    blend = QueryBlend.load(adapter) if adapter and is_blend_folder(adapter) else None
    new_encoder = load_encoder(model) if model else None
    if upgrade is not None:
        up = open_upgrade(upgrade)
        texts = (lambda ids: [corpus[i] for i in ids]) if corpus is not None and mode == "cascade" else None
        searcher = Searcher.for_upgrade(up, adapter=fitted, blend=blend, new_encoder=new_encoder, texts=texts,
                                        persist=persist)
    else:
        searcher = Searcher(open_store(index), adapter=fitted, new_store=open_store(new_index) if new_index else None,
                            blend=blend, new_encoder=new_encoder)
    pair_modes = ("old", "blended", "merged", "calibrated")
    if mode in pair_modes or (mode == "cascade" and needs_old_queries(searcher.partitions, candidate_query)):
        searcher.old_encoder = encoder_for_model_id(searcher.partitions.old.model_id)
    return searcher


def _cascade_options(mode: str, candidates: int, encode_budget: int | None, candidate_query: str) -> dict:
    if mode != "cascade":
        return {}
    return {"candidates": candidates, "encode_budget": encode_budget, "candidate_query": candidate_query}


UPGRADE = typer.Option(None, "--upgrade", help="an upgrade in progress (the folder 'hotswap backfill' writes) "
                       "instead of --index: modes merged, calibrated, adapted, cross, cascade")
CANDIDATES = typer.Option(50, "--candidates", help="cascade: old-index candidates re-scored by the new model")
ENCODE_BUDGET = typer.Option(None, "--encode-budget", help="cascade: most documents encoded per query (default "
                             "unlimited); the rest keep their calibrated old score")
CANDIDATE_QUERY = typer.Option("auto", "--candidate-query", help="cascade: query that picks old candidates: auto, "
                               "old, adapted or blended")


def search(
    query: str = typer.Argument(..., help="query text"),
    index: str = typer.Option(None, "--index", help="store folder built by 'hotswap encode', or a store URI"),
    upgrade: Path = UPGRADE,
    mode: str = typer.Option("adapted", help=f"one of {', '.join(MODES)}"),
    model: str = typer.Option(None, help="new encoder (modes adapted and new)"),
    adapter: Path = typer.Option(None, help="fitted adapter folder (mode adapted)"),
    new_index: Path = typer.Option(None, help="store built by the new model (mode new)"),
    k: int = typer.Option(10),
    dataset: str = typer.Option(None, help="dataset to show document texts from (cascade: to encode them)"),
    candidates: int = CANDIDATES,
    encode_budget: int = ENCODE_BUDGET,
    candidate_query: str = CANDIDATE_QUERY,
) -> None:
    """Search INDEX (or an upgrade in progress) for QUERY and print the top K ids, scores and (with --dataset) texts.

    Example: hotswap search "fast array library for python" --index indexes/old --model minilm --adapter adapters/affine
    (cascade, whose encodings join the backfill: --upgrade indexes/upgrade --mode cascade --model minilm --dataset debian)
    """
    if mode == "cascade" and dataset is None:
        raise typer.BadParameter("mode 'cascade' encodes candidate documents: pass --dataset (their texts)")
    corpus = load_dataset(dataset).corpus if dataset else {}
    searcher = _searcher(index, model, adapter, new_index, mode, upgrade, corpus, candidate_query)
    D, I = searcher.search_texts([query], k, mode, **_cascade_options(mode, candidates, encode_budget,
                                                                      candidate_query))
    searcher.flush()  # cascade: what it encoded joins the upgrade's new partition
    table = Table(title=f"{mode}: {query}")
    for col in ("rank", "id", "score", "text"):
        table.add_column(col)
    for r, (d, s) in enumerate(zip(I[0], D[0]), 1):
        if d is not None:
            table.add_row(str(r), str(d), f"{s:.4f}", corpus.get(d, "")[:100])
    console.print(table)


def evaluate(
    index: str = typer.Option(None, "--index", help="store folder built by 'hotswap encode', or a store URI"),
    upgrade: Path = UPGRADE,
    mode: str = typer.Option("adapted", help=f"one of {', '.join(MODES)}"),
    model: str = typer.Option(None, help="new encoder (modes adapted and new)"),
    adapter: Path = typer.Option(None, help="fitted adapter folder (mode adapted)"),
    new_index: Path = typer.Option(None, help="store built by the new model (mode new)"),
    dataset: str = DATASET,
    max_test_queries: int = typer.Option(None, help="cap on test queries (seeded sample)"),
    seed: int = typer.Option(0),
    json_out: Path = typer.Option(None, "--json", help="also write the metrics as JSON"),
    candidates: int = CANDIDATES,
    encode_budget: int = ENCODE_BUDGET,
    candidate_query: str = CANDIDATE_QUERY,
) -> None:
    """Evaluate a search mode on the test queries whose relevant documents INDEX holds, with flips vs old.

    Example: hotswap eval --index indexes/old --mode adapted --model minilm --adapter adapters/affine
    (on an upgrade in progress: --upgrade indexes/upgrade --mode cascade --candidates 50 --encode-budget 8; eval
    keeps the cascade's encodings in memory, so the upgrade is left as it was)
    """
    full = load_dataset(dataset)
    searcher = _searcher(index, model, adapter, new_index, mode, upgrade, full.corpus, candidate_query, persist=False)
    store = searcher.partitions.old
    ds = full.restrict(store.ids, max_test_queries=max_test_queries, rng=np.random.default_rng(seed))
    qids, texts = list(ds.queries), list(ds.queries.values())
    old_enc = encoder_for_model_id(store.model_id)
    Q_old = old_enc.encode(texts)  # the baseline for flips, and the old half of a blended query
    run_old = run_from_search(qids, store.search(Q_old, 100, model_id=old_enc.id)[1])
    run = run_old
    options = _cascade_options(mode, candidates, encode_budget, candidate_query)
    if mode != "old":
        Q_new = searcher.new_encoder.encode(texts)
        queries = (Q_new, Q_old) if searcher.old_encoder is not None else Q_new
        run = run_from_search(qids, searcher.search(queries, 100, mode, searcher.new_encoder.id, **options)[1])
    result = {"index": str(index or upgrade), "mode": mode, "n_test_queries": len(qids), **options,
              **evaluate_run(ds.qrels, run), "negative_flip_rate": negative_flips(ds.qrels, run_old, run).negative_flip_rate}
    if mode == "cascade":
        result["encodes_per_query"] = searcher.cascade_stats()["encodes_per_query"]
    table = Table(title=f"{mode} on {ds.name} ({len(qids)} test queries)")
    for key in result:
        table.add_column(key)
    table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in result.values()])
    console.print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
