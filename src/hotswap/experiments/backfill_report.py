"""Backfill curves as a rich table (AUC per policy and mode) and a PNG (nDCG@10 and flips vs fraction)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from hotswap.experiments.report import save_png
from hotswap.io import atomic_write_json


def curve_table(result: dict) -> Table:
    """One row per (policy, mode): nDCG@10 at each fraction, then AUCs and whether the curve is monotone."""
    curves = result["curves"]
    fractions = [p["fraction"] for p in curves[0]["points"]] if curves else []
    table = Table(title=f"backfill {result['old_model']} -> {result['new_model']} on {result['dataset']}: nDCG@10 "
                        "at each backfilled fraction", caption="AUC = mean over the curve; NFR = negative-flip rate "
                        "vs the old system; monotone = nDCG@10 never drops")
    for col in ("policy", "mode", *(f"{f:.0%}" for f in fractions), "AUC nDCG@10", "AUC R@10", "AUC NFR",
                "monotone"):
        table.add_column(col, justify="left" if col in ("policy", "mode") else "right")
    for c in curves:
        table.add_row(c["policy"], c["mode"], *(f"{p['ndcg@10']:.3f}" for p in c["points"]),
                      f"{c['auc_ndcg@10']:.3f}", f"{c['auc_recall@10']:.3f}", f"{c['auc_negative_flip_rate']:.3f}",
                      "yes" if c["monotone"] else f"no (-{c['max_drop_ndcg@10']:.3f})")
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
