"""``hotswap plan``: which upgrade path to take and what it costs, measured on a sample before re-embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hotswap.cli import context
from hotswap.cli.output import JSON, console, emit_json, say
from hotswap.errors import HotswapError

COLUMNS = ("path", "arr@10", "known_item_ndcg@10", "ndcg@10", "recall@10", "encodes_per_query")
HEADERS = {"arr@10": "ARR@10", "known_item_ndcg@10": "known", "ndcg@10": "nDCG@10", "recall@10": "R@10",
           "encodes_per_query": "enc/q"}


def plan(
    store: str = typer.Option(..., "--store", help="the index: a folder built by 'hotswap encode', a served "
                              "collection, or a store URI (qdrant://, milvus://, pg://, postgres://...)"),
    new: str = typer.Option(..., "--new", help="the candidate new model: static, minilm, mpnet or a folder"),
    old: str = typer.Option(None, "--old", help="the model that built the index (default: found from its record)"),
    queries: Path = typer.Option(None, help="a query log: JSONL of {\"_id\", \"text\"} lines, or one query per "
                                 "line (default: spans of the collection's own texts, weaker evidence)"),
    qrels: Path = typer.Option(None, help="relevance labels (BEIR qrels TSV) for queries in --queries: adds "
                               "nDCG@10 / R@10 and decides by them"),
    sample: int = typer.Option(2000, min=50, help="documents re-embedded with the new model (a seeded sample)"),
    cost_per_hour: float = typer.Option(None, help="price of the encoding machine per hour, for the backfill cost"),
    dataset: str = typer.Option(None, help="where the texts are (default: the dataset the index records; 'store' "
                                "reads the index's own text column)"),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="also write plan.json and plan.png into this folder"),
    json_output: bool = JSON,
) -> None:
    """Measure every upgrade path (stay, adapters, blend, cascade, backfill) on a sample of STORE and say which
    one to take, without relevance labels (or with --qrels), and without writing to STORE.

    Example: hotswap plan --store indexes/old --new minilm --queries mydata/queries.jsonl --cost-per-hour 2.5
    """
    from hotswap.data.beir import read_qrels, read_queries
    from hotswap.encoders import load_encoder
    from hotswap.plan import plan_upgrade

    if qrels is not None and queries is None:
        raise typer.BadParameter("--qrels labels queries by id: pass the queries file too (--queries)")
    log = read_queries(queries) if queries is not None else None
    labels = read_qrels(qrels) if qrels is not None else None
    target = context.open_target(store, None)
    try:
        _, texts = context.texts_of(target, dataset)
        new_enc = load_encoder(new)
        if new_enc.id == target.old_model_id:
            raise HotswapError(f"{store} is already built by {new_enc.id}: nothing to plan")
        old_enc = context.old_encoder(target, old)
        say(f"planning {old_enc.id} -> {new_enc.id} on a sample of {min(sample, len(target.store)):,} of "
            f"{len(target.store):,} documents")
        logged = [t for q, t in (log or {}).items() if not labels or q not in labels]
        result = plan_upgrade(target.store, old_enc, new_enc, texts, queries=logged or None, qrels=labels,
                              qrel_queries=log if labels else None, sample=sample, cost_per_hour=cost_per_hour,
                              seed=seed, labels=(store, new)).to_dict()
    finally:
        target.close()
    if out is not None:
        _write(result, out)
    if json_output:
        emit_json(result)
        return
    _print(result)


def _write(result: dict, out: Path) -> None:
    from hotswap.io import atomic_write_json
    from hotswap.plan.plot import plot_plan

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "plan.json", result)
    plot_plan(result, out / "plan.png")
    say(f"wrote {out / 'plan.json'} and {out / 'plan.png'}")


def _print(result: dict) -> None:
    from rich.table import Table

    with_qrels = result["best_by_qrels"] is not None
    table = Table(title=f"plan {result['old_model']} -> {result['new_model']}: {result['sample']:,} of "
                        f"{result['collection_size']:,} documents, {result['n_score_queries']} queries "
                        f"({result['queries']})", title_justify="left")
    columns = [c for c in COLUMNS if with_qrels or c not in ("ndcg@10", "recall@10")]
    for c in columns:
        table.add_column(HEADERS.get(c, c), justify="left" if c == "path" else "right")
    for row in result["paths"]:
        table.add_row(*[row["path"] if c == "path" else _cell(row[c]) for c in columns])
    console.print(table)
    console.print("ARR@10: share of the new model's top-10 each path returns; known: known-item nDCG@10 on spans of "
                  "the collection's texts; enc/q: new-model encodes per query", highlight=False)
    cost = f", {result['backfill_cost']:.2f} at the given price" if result["backfill_cost"] is not None else ""
    console.print(f"new model encodes {result['encode_rate']:.0f} items/s here: a full backfill takes "
                  f"{result['backfill_hours']:.2f} h{cost}", highlight=False)
    if with_qrels:
        console.print(f"with qrels: best {result['best_by_qrels']}, new over old {result['gain_new_over_old']:+.3f} "
                      f"nDCG@10; label-free ranking vs qrels: Spearman {_cell(result['spearman'])}; without the "
                      f"qrels plan would say {result['recommendation_label_free']}", highlight=False)
    console.print(f"recommendation: {result['recommendation']} ({result['reason']})", highlight=False)
    console.print(f"next: {result['next_command']}", highlight=False)
    for line in result["not_measurable"]:
        console.print(f"not measured: {line}", highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
