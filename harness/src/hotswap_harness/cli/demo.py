"""``hotswap demo``: the upgrade story on bundled data, as a table, ``results/demo.json`` and ``demo.png``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from hotswap.cli.output import JSON, emit_json

console = Console() if sys.stdout.isatty() else Console(width=80)  # logs and pipes: 80 columns (wide tables: _wide)
# (row key, header): short headers so that the table fits 80 columns
COLUMNS = [("label", "system"), ("ndcg@10", "nDCG@10"), ("recall@10", "R@10"), ("mrr@10", "MRR@10"),
           ("recall@100", "R@100"), ("negative_flip_rate", "NFR"), ("recovered_recall@10", "rec R@10"),
           ("ratio_recall@10", "R@10/new")]


def _label(row: dict) -> str:
    if row.get("adapter") == "auto":
        return f"auto (validated): {row['auto_choice']}"
    if "blend_weight" in row:
        return f"blended: {row['adapter']} (w={row['blend_weight']:g})"
    return {"old": "old/old", "new": "new/new (re-index)"}.get(row["mode"], f"adapted: {row['adapter']}")


def _short_label(row: dict) -> str:
    """The row's name in the table (narrower than ``_label``, which demo.json and demo.png keep)."""
    if row.get("adapter") == "auto":
        return f"auto: {row['auto_choice']}"
    if "blend_weight" in row:
        return f"{row['adapter']} w={row['blend_weight']:g}"
    return {"old": "old (no upgrade)", "new": "new (re-index)"}.get(row["mode"], str(row["adapter"]))


def rows_table(result: dict) -> Any:
    """The demo's rows as a table of 80 columns or less: short headers, 3 decimals, labels folded."""
    from hotswap.cli.output import table

    rows = [{header: (f"{r.get(key):.3f}" if isinstance(r.get(key), float) else r.get(key))
             for key, header in COLUMNS} | {"system": _short_label(r)} for r in result["rows"]]
    caption = (f"{result['n_docs']:,} docs, {result['n_test_queries']:,} test queries (never fitted on); adapters "
               f"fitted on {result['n_fit_pairs']:,} pairs (train queries + corpus sample). NFR = negative flip "
               "rate vs old/old; rec R@10 = share of the old->new R@10 gap recovered; R@10/new = R@10 over new/new's.")
    out = table(f"{result['old_model']} -> {result['new_model']} on {result['dataset']}", rows,
                [header for _, header in COLUMNS], caption)
    out.show_edge = False  # two more columns for the labels
    return out


def corpus_phrase(n_docs: int, max_docs: int | None) -> str:
    """How much of the corpus the demo runs on, in words, from the real number of documents loaded."""
    if max_docs is None:
        return f"the full corpus, {n_docs:,} docs"
    if n_docs < max_docs:
        return f"the whole corpus, {n_docs:,} docs"
    return f"a seeded subset of {n_docs:,} docs; --full for all"


def demo(
    old: str = typer.Option("static", help="encoder that built the index: static, minilm, mpnet or a folder"),
    new: str = typer.Option("minilm", help="encoder users upgrade to"),
    dataset: str = typer.Option("debian", help="bundled dataset name or a BEIR folder"),
    max_docs: int = typer.Option(6000, help="corpus subset size (the full corpus takes ~25 min with minilm)"),
    full: bool = typer.Option(False, "--full", help="use the whole corpus and all queries"),
    seed: int = typer.Option(0, help="seed for the subset, the corpus fit sample and the MLP"),
    out: Path = typer.Option(Path("results"), help="folder for demo.json, demo.png, backfill.json, backfill.png"),
    backfill: bool = typer.Option(True, "--backfill/--no-backfill", help="also run the online-backfill curves"),
    cascade: bool = typer.Option(True, "--cascade/--no-cascade", help="also run cascade search (rows + curves)"),
    json_output: bool = JSON,
) -> None:
    """Index with OLD, upgrade to NEW, fit every adapter, compare against no upgrade and a full re-index.

    With --json only demo.json's content is printed on stdout (tables and notes go to stderr).

    Example: hotswap demo --old minilm --new mpnet
    """
    from hotswap.figures import grouped_bars
    from hotswap.io import atomic_write_json
    from hotswap_harness.experiments.upgrade_demo import DemoConfig, run_upgrade_demo

    show = Console(stderr=True, width=console.width) if json_output else console
    cfg = DemoConfig(dataset=dataset, old=old, new=new, seed=seed,
                     **({"max_docs": None, "max_train_queries": None, "max_test_queries": None} if full
                        else {"max_docs": max_docs}))

    def announce(ds: Any) -> None:
        show.print(f"[bold]hotswap demo[/]: index built by [cyan]{old}[/], queries by [cyan]{new}[/] on "
                   f"{ds.name} ({corpus_phrase(len(ds.corpus), cfg.max_docs)})")

    result = run_upgrade_demo(cfg, announce=announce)
    for row in result["rows"]:
        row["label"] = _label(row)
    show.print(rows_table(result))
    if sel := result["selection"]:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in sel["scores"].items())
        show.print(f"auto: served [bold]{sel['choice']}[/] (validation {sel['metric']} on "
                   f"{sel['validation_queries']} held-out train queries: {scores})")
    for name, why in result["skipped_adapters"].items():
        show.print(f"[yellow]skipped adapter {name}[/]: {why}")
    atomic_write_json(out / "demo.json", result)
    labels = [r["label"] for r in result["rows"]]
    series: dict[str, Sequence[float]] = {m: [r[m] for r in result["rows"]] for m in ("ndcg@10", "recall@10", "mrr@10")}
    grouped_bars(out / "demo.png", labels, series,
                 f"{old} -> {new}: search the old index with new-model queries")
    t = result["timings_s"]
    show.print(f"wrote {out / 'demo.json'} and {out / 'demo.png'} in {t['total']:.0f} s "
               f"(encoding {sum(v for k, v in t.items() if k.startswith('encode')):.0f} s)")
    if backfill:
        _backfill_section(cfg, out, show)
    if cascade:
        _cascade_section(cfg, out, show)
    if json_output:
        emit_json(result)


def _wide(show: Console) -> Console:
    """Where a wide table goes: the terminal, else a console wide enough not to wrap it (logs and pipes)."""
    if show.file is sys.stdout and sys.stdout.isatty():
        return show
    return Console(width=200, stderr=show.stderr)


def _cascade_section(cfg: Any, out: Path, show: Console) -> None:
    """Old-index candidates re-scored by the new model: day-0 rows, and curves beside merged and adapted."""
    from hotswap_harness.experiments.cascade_demo import CascadeConfig, run_cascade_experiment
    from hotswap_harness.experiments.cascade_report import (
        cascade_curve_table,
        cascade_rows_table,
        plot_cascade,
        write_cascade_results,
    )

    show.print("[bold]cascade search[/]: the old index's candidates re-scored by the new model, whose "
                  "encodings feed the backfill")
    ccfg = CascadeConfig(dataset=cfg.dataset, old=cfg.old, new=cfg.new, max_docs=cfg.max_docs,
                         max_train_queries=cfg.max_train_queries, max_test_queries=cfg.max_test_queries,
                         seed=cfg.seed, cache_dir=cfg.cache_dir)
    result = run_cascade_experiment(ccfg)
    show.print(cascade_rows_table(result))
    _wide(show).print(cascade_curve_table(result))
    write_cascade_results(result, out)
    plot_cascade(result, out / "cascade.png")
    show.print(f"wrote {out / 'cascade.json'} and {out / 'cascade.png'} in {result['timings_s']['total']:.0f} s")


def _backfill_section(cfg: Any, out: Path, show: Console) -> None:
    """Re-embed the same index online with each ordering policy; curves of merged and adapter-only search."""
    from hotswap.backfill.curve_report import curve_table, plot_curves, write_results
    from hotswap_harness.experiments.backfill_demo import BackfillConfig, run_backfill_experiment

    show.print("[bold]online backfill[/]: re-embedding the index with the new model while serving merged search")
    bcfg = BackfillConfig(dataset=cfg.dataset, old=cfg.old, new=cfg.new, max_docs=cfg.max_docs,
                          max_train_queries=cfg.max_train_queries, max_test_queries=cfg.max_test_queries,
                          seed=cfg.seed)
    result = run_backfill_experiment(bcfg)
    _wide(show).print(curve_table(result))  # 17 columns
    tp = result["throughput"]
    show.print(f"runner {tp['runner_items_s']:.1f} items/s vs raw encode {tp['raw_encode_items_s']:.1f} items/s "
               f"({tp['ratio']:.2f}x) on {tp['n_docs']} docs")
    for mode, why in result["skipped_modes"].items():
        show.print(f"[yellow]skipped mode {mode}[/]: {why}")
    write_results(result, out)
    plot_curves(result, out / "backfill.png")
    show.print(f"wrote {out / 'backfill.json'} and {out / 'backfill.png'} in {result['timings_s']['total']:.0f} s")
