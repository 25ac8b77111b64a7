"""The online-backfill protocol's table (AUCs, relative gain, monotonicity, flips) and one figure of all curves."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from hotswap.experiments.report import save_png


def online_backfill_table(result: dict) -> Table:
    table = Table(title=f"Online backfill with rank merge: {result['dataset']}",
                  caption=f"old model mAP {result['old_model_map']:.1f}; {_shared(result)}"
                          f"paper (Seo et al. WACV 2025; second-hand): {result['paper_ordering']}")
    for col in ("method", "setting", "order", "AUC mAP", "AUC CMC", "rel. gain", "rel. gain (shared new)",
                "monotone", "max neg. flips", "new mAP", "stored new mAP"):
        table.add_column(col, justify="left" if col in ("method", "setting", "order") else "right")
    for r in result["rows"]:
        table.add_row(r["method"], r.get("setting", "-"), r["order"], f"{r['auc_map']:.1f}", f"{r['auc_cmc']:.1f}",
                      _percent(r["relative_gain_map"]), _percent(r.get("relative_gain_shared_map")),
                      "yes" if r["monotone_map"] else "no", str(r["max_negative_flips"]), f"{r['new_model_map']:.1f}",
                      f"{r.get('stored_new_map', r['new_model_map']):.1f}")
    return table


def _shared(result: dict) -> str:
    m = result.get("shared_new_model_map")
    return "" if m is None else f"independent (shared) new model mAP {m:.1f}; "


def _percent(gain: float | None) -> str:
    return "-" if gain is None else f"{100 * gain:.0f} %"


def plot_online_backfill(result: dict, path: str | Path) -> Path:
    """mAP (left) and top-1 (right) against the backfilled fraction, one line per (method, setting, order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for r in result["rows"]:
        x = [c["fraction"] for c in r["curve"]]
        style = "-" if r["order"] == "random" else "--"
        for ax, key in zip(axes, ("map", "top1")):
            label = f"{r['method']} [{r.get('setting', '-')}] ({r['order']})"
            ax.plot(x, [c[key] for c in r["curve"]], style, marker="o", ms=3, label=label)
    axes[0].axhline(result["old_model_map"], color="grey", lw=0.8, label="old model alone")
    for ax, name in zip(axes, ("mAP (%)", "top-1 (%)")):
        ax.set_xlabel("fraction of the gallery backfilled")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    fig.suptitle("Merged search over old and new partitions while the gallery is re-embedded", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
