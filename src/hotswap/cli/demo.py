"""``hotswap demo``: the upgrade story on bundled data, as a table, ``results/demo.json`` and ``demo.png``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from hotswap.experiments.backfill_demo import BackfillConfig, run_backfill_experiment
from hotswap.experiments.backfill_report import curve_table, plot_curves, write_results
from hotswap.experiments.cascade_demo import CascadeConfig, run_cascade_experiment
from hotswap.experiments.cascade_report import (cascade_curve_table, cascade_rows_table, plot_cascade,
                                                write_cascade_results)
from hotswap.experiments.report import grouped_bars, rows_table
from hotswap.experiments.upgrade_demo import DemoConfig, run_upgrade_demo
from hotswap.io import atomic_write_json

console = Console() if sys.stdout.isatty() else Console(width=130)  # logs and pipes: no wrapped table
COLUMNS = [("label", "system"), ("ndcg@10", "nDCG@10"), ("recall@10", "R@10"), ("mrr@10", "MRR@10"),
           ("recall@100", "R@100"), ("negative_flip_rate", "NFR"), ("recovered_recall@10", "recovered R@10"),
           ("ratio_recall@10", "R@10 / new")]


def _label(row: dict) -> str:
    if row.get("adapter") == "auto":
        return f"auto (validated): {row['auto_choice']}"
    if "blend_weight" in row:
        return f"blended: {row['adapter']} (w={row['blend_weight']:g})"
    return {"old": "old/old", "new": "new/new (re-index)"}.get(row["mode"], f"adapted: {row['adapter']}")


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
) -> None:
    """Index with OLD, upgrade to NEW, fit every adapter, compare against no upgrade and a full re-index.

    Example: hotswap demo --old minilm --new mpnet
    """
    cfg = DemoConfig(dataset=dataset, old=old, new=new, seed=seed,
                     **({"max_docs": None, "max_train_queries": None, "max_test_queries": None} if full
                        else {"max_docs": max_docs}))
    console.print(f"[bold]hotswap demo[/]: index built by [cyan]{old}[/], queries by [cyan]{new}[/] "
                  f"on {dataset} ({'full corpus' if full else f'subset of {max_docs} docs; --full for all'})")
    result = run_upgrade_demo(cfg)
    for row in result["rows"]:
        row["label"] = _label(row)
    caption = (f"{result['n_docs']} docs, {result['n_test_queries']} test queries (never fitted on); adapters fitted on "
               f"{result['n_fit_pairs']} pairs (train queries + corpus sample). NFR = negative flip rate vs old/old.")
    console.print(rows_table(f"{result['old_model']} -> {result['new_model']} on {result['dataset']}",
                             result["rows"], COLUMNS, caption))
    if sel := result["selection"]:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in sel["scores"].items())
        console.print(f"auto: served [bold]{sel['choice']}[/] (validation {sel['metric']} on "
                      f"{sel['validation_queries']} held-out train queries: {scores})")
    for name, why in result["skipped_adapters"].items():
        console.print(f"[yellow]skipped adapter {name}[/]: {why}")
    atomic_write_json(out / "demo.json", result)
    labels = [r["label"] for r in result["rows"]]
    grouped_bars(out / "demo.png", labels, {m: [r[m] for r in result["rows"]] for m in ("ndcg@10", "recall@10", "mrr@10")},
                 f"{old} -> {new}: search the old index with new-model queries")
    t = result["timings_s"]
    console.print(f"wrote {out / 'demo.json'} and {out / 'demo.png'} in {t['total']:.0f} s "
                  f"(encoding {sum(v for k, v in t.items() if k.startswith('encode')):.0f} s)")
    if backfill:
        _backfill_section(cfg, out)
    if cascade:
        _cascade_section(cfg, out)


def _cascade_section(cfg: DemoConfig, out: Path) -> None:
    """Old-index candidates re-scored by the new model: day-0 rows, and curves beside merged and adapted."""
    console.print("[bold]cascade search[/]: the old index's candidates re-scored by the new model, whose "
                  "encodings feed the backfill")
    ccfg = CascadeConfig(dataset=cfg.dataset, old=cfg.old, new=cfg.new, max_docs=cfg.max_docs,
                         max_train_queries=cfg.max_train_queries, max_test_queries=cfg.max_test_queries,
                         seed=cfg.seed, cache_dir=cfg.cache_dir)
    result = run_cascade_experiment(ccfg)
    console.print(cascade_rows_table(result))
    (console if sys.stdout.isatty() else Console(width=200)).print(cascade_curve_table(result))
    write_cascade_results(result, out)
    plot_cascade(result, out / "cascade.png")
    console.print(f"wrote {out / 'cascade.json'} and {out / 'cascade.png'} in {result['timings_s']['total']:.0f} s")


def _backfill_section(cfg: DemoConfig, out: Path) -> None:
    """Re-embed the same index online with each ordering policy; curves of merged and adapter-only search."""
    console.print("[bold]online backfill[/]: re-embedding the index with the new model while serving merged search")
    bcfg = BackfillConfig(dataset=cfg.dataset, old=cfg.old, new=cfg.new, max_docs=cfg.max_docs,
                          max_train_queries=cfg.max_train_queries, max_test_queries=cfg.max_test_queries,
                          seed=cfg.seed)
    result = run_backfill_experiment(bcfg)
    (console if sys.stdout.isatty() else Console(width=200)).print(curve_table(result))  # 17 columns
    tp = result["throughput"]
    console.print(f"runner {tp['runner_items_s']:.1f} items/s vs raw encode {tp['raw_encode_items_s']:.1f} items/s "
                  f"({tp['ratio']:.2f}x) on {tp['n_docs']} docs")
    for mode, why in result["skipped_modes"].items():
        console.print(f"[yellow]skipped mode {mode}[/]: {why}")
    write_results(result, out)
    plot_curves(result, out / "backfill.png")
    console.print(f"wrote {out / 'backfill.json'} and {out / 'backfill.png'} in {result['timings_s']['total']:.0f} s")
