"""QDC results as a rich table beside the paper's numbers, and one heat map per method's T x T matrix."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from hotswap.experiments.report import save_png


def qdc_table(result: dict) -> Table:
    """Average nDCG@10 after the last task (x100, as the paper prints it), ours beside the paper's."""
    table = Table(title=f"QDC on {len(result['tasks'])} tasks ({', '.join(result['tasks'])}; {result['model']}): "
                        "average nDCG@10 "
                        "after the last task", caption="paper: Goswami et al., CoLLAs 2025, 5 BEIR-style datasets, "
                        "nomic-embed 137M (not comparable in level; compare the ordering)")
    for col in ("method", "ours", "paper", *result["tasks"]):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in result["rows"]:
        paper = row.get("paper_avg_ndcg@10")
        table.add_row(row["method"], f"{100 * row['avg_ndcg@10']:.1f}", "-" if paper is None else f"{paper:.1f}",
                      *(f"{100 * v:.1f}" for v in row["matrix"][-1]))
    return table


def plot_matrices(result: dict, path: str | Path) -> Path:
    """One heat map per method (rows: after task i; columns: task j), values x100."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    cols = 4
    fig, axes = plt.subplots(-(-len(rows) // cols), cols, figsize=(4.2 * cols, 3.8 * -(-len(rows) // cols)))
    axes = np.atleast_1d(axes).ravel()
    short = [t.split("-")[0][:6] for t in result["tasks"]]
    for ax, row in zip(axes, rows):
        M = 100 * np.array(row["matrix"])
        ax.imshow(M, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), v in np.ndenumerate(M):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w" if v < 60 else "k")
        ax.set_title(f"{row['method']} (avg {100 * row['avg_ndcg@10']:.1f})", fontsize=9)
        ax.set_xticks(range(M.shape[1]), short, fontsize=7, rotation=30)
        ax.set_yticks(range(M.shape[0]), [f"after {i + 1}" for i in range(M.shape[0])] if M.shape[0] > 1
                      else ["after all"], fontsize=7)
    for ax in axes[len(rows):]:
        ax.axis("off")
    fig.suptitle("nDCG@10 on each task (columns) after training each task (rows)")
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
