"""Backfill curves as a rich table (AUC per policy and mode) and a PNG (nDCG@10 and flips vs fraction)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from hotswap.figures import save_png
from hotswap.io import atomic_write_json


def curve_table(result: dict, compact: bool = False) -> Table:
    """One row per (policy, mode): nDCG@10 at each fraction, then AUCs and whether the curve is monotone.
    ``compact``: at most three fractions (first, middle, last), short headers and no vertical rules, so that
    the table fits a terminal of 80 columns (the JSON and the plot hold every point)."""
    from rich import box

    curves = result["curves"]
    fractions = [p["fraction"] for p in curves[0]["points"]] if curves else []
    shown = list(range(len(fractions)))
    if compact and len(shown) > 3:
        shown = [0, len(shown) // 2, len(shown) - 1]
    table = Table(title=f"backfill {result['old_model']} -> {result['new_model']} on {result['dataset']}: nDCG@10 "
                        "at each backfilled fraction", caption="AUC = mean over the curve; NFR = negative-flip rate "
                        "vs the old system; monotone = nDCG@10 never drops",
                  box=box.SIMPLE if compact else box.HEAVY_HEAD, show_edge=not compact, collapse_padding=compact)
    heads = ("AUC", "AUC R@10", "AUC NFR", "mono") if compact else ("AUC nDCG@10", "AUC R@10", "AUC NFR", "monotone")
    for col in ("policy", "mode", *(f"{fractions[i]:.0%}" for i in shown), *heads):
        table.add_column(col, justify="left" if col in ("policy", "mode") else "right", no_wrap=True)
    for c in curves:
        table.add_row(c["policy"], c["mode"], *(f"{c['points'][i]['ndcg@10']:.3f}" for i in shown),
                      f"{c['auc_ndcg@10']:.3f}", f"{c['auc_recall@10']:.3f}", f"{c['auc_negative_flip_rate']:.3f}",
                      "yes" if c["monotone"] else "no" if compact else f"no (-{c['max_drop_ndcg@10']:.3f})")
    return table


def plot_curves(result: dict, path: str | Path) -> Path:
    """Two panels against the backfilled fraction: nDCG@10 and negative-flip rate, one line per curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"merged": "-", "adapted": "--", "cross": ":"}
    for c in result["curves"]:
        x = [p["fraction"] for p in c["points"]]
        label = f"{c['policy']} / {c['mode']} (AUC {c['auc_ndcg@10']:.3f})"
        for ax, key in zip(axes, ("ndcg@10", "negative_flip_rate")):
            ax.plot(x, [p[key] for p in c["points"]], styles.get(c["mode"], "-"), marker="o", ms=3, label=label)
    axes[0].set_ylabel("nDCG@10")
    axes[1].set_ylabel("negative-flip rate vs old")
    for ax in axes:
        ax.set_xlabel("fraction of the gallery backfilled")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"online backfill {result['old_model']} -> {result['new_model']} ({result['dataset']})")
    fig.tight_layout()
    return save_png(fig, path)


def write_results(result: dict, out: str | Path) -> Path:
    """``out/backfill.json`` (atomic)."""
    return atomic_write_json(Path(out) / "backfill.json", result)
