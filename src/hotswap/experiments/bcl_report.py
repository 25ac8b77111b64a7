"""Tables and plots of the two image protocols: d-Simplex (AC / AM, T x T heat maps) and prototype
perturbation (self-test / cross-test bars)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from hotswap.experiments.report import save_png


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def dsimplex_table(result: dict) -> Table:
    """AC / AM per method, ours beside the paper's (repo notebooks, CIFAR-100 -> CIFAR-10)."""
    table = Table(title=f"d-Simplex protocol, {result['tasks']} tasks, replacements at "
                        f"{result['replacement_tasks']}: {result['dataset']}",
                  caption="paper: Biondi et al. CVPR 2024 / miccunifi/iamcl2r notebooks, CIFAR-100 -> CIFAR-10, "
                          "ResNet-18 (compare the ordering, not the level)")
    for col in ("method", "AC", "paper AC", "AM (%)", "paper AM", "last self (%)", "mean NFR (%)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in result["rows"]:
        nfr = row.get("negative_flip_rates") or []
        table.add_row(row["method"], _fmt(row["AC"]), _fmt(row.get("paper_AC")), _fmt(row["AM"]),
                      _fmt(row.get("paper_AM")), _fmt(row["matrix"][-1][-1], ".1f"),
                      _fmt(100 * sum(nfr) / len(nfr) if nfr else None, ".1f"))
    return table


def perturbation_table(result: dict) -> Table:
    """Self-test and cross-test mAP / top-1 per (setting, method)."""
    table = Table(title=f"Prototype perturbation protocol: {result['dataset']}",
                  caption="paper: Zhou et al. arXiv 2503.14824 (GLDv2 / In-shop) finds NDPP >= ODPP > BCT on "
                          "cross-test with self-test close to independent; its numbers could not be read here")
    for col in ("setting", "method", "self mAP", "cross mAP", "self top-1", "cross top-1", "old self mAP",
                "NFR (%)"):
        table.add_column(col, justify="left" if col in ("setting", "method") else "right")
    for row in result["rows"]:
        table.add_row(row["setting"], row["method"], _fmt(row["self_map"], ".1f"), _fmt(row["cross_map"], ".1f"),
                      _fmt(row["self_top1"], ".1f"), _fmt(row["cross_top1"], ".1f"), _fmt(row["old_self_map"], ".1f"),
                      _fmt(100 * row["negative_flip_rate"], ".1f"))
    return table


def _savefig(fig, path: str | Path) -> Path:
    return save_png(fig, path, dpi=110)


def plot_dsimplex(result: dict, path: str | Path) -> Path:
    """One heat map of C[i][j] (top-1 %, lower triangle) per method, the ECC-satisfying cells outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.4 * len(rows), 4.0), squeeze=False)
    for ax, row in zip(axes[0], rows):
        M = np.array([[np.nan if v is None else v for v in r] for r in row["matrix"]], dtype=float)
        ax.imshow(np.ma.masked_invalid(M), vmin=0, vmax=100, cmap="viridis")
        for (i, j), v in np.ndenumerate(M):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w" if v < 60 else "k")
                if j < i and v > M[j, j]:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
        ax.set_title(f"{row['method']}: AC {row['AC']:.2f}, AM {row['AM']:.1f}", fontsize=9)
        ax.set_xlabel("gallery model j")
        ax.set_ylabel("query model i")
        ax.set_xticks(range(M.shape[1]))
        ax.set_yticks(range(M.shape[0]))
    fig.suptitle("top-1 (%) of model i's queries on model j's gallery; red: C[i][j] > C[j][j] (ECC)", fontsize=10)
    fig.tight_layout()
    return _savefig(fig, path)


def plot_perturbation(result: dict, path: str | Path) -> Path:
    """Grouped bars: self-test and cross-test mAP per method, one panel per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = list(dict.fromkeys(r["setting"] for r in result["rows"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 3.8), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = [r for r in result["rows"] if r["setting"] == setting]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["self_map"] for r in rows], 0.4, label="self-test mAP")
        ax.bar(x + 0.2, [r["cross_map"] for r in rows], 0.4, label="cross-test mAP")
        ax.axhline(rows[0]["old_self_map"], color="grey", ls="--", lw=1, label="old model self-test")
        ax.set_xticks(x, [r["method"] for r in rows])
        ax.set_title(setting, fontsize=10)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _savefig(fig, path)
