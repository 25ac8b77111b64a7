"""Quality against cost, one point per path (``hotswap plan --out``)."""

from __future__ import annotations

from pathlib import Path

from hotswap.io import atomic_write

MARKERS = {"stay": "s", "adapter": "o", "blend": "D", "cascade": "^", "backfill": "*"}


def plot_plan(plan: dict, path: str | Path) -> Path:
    """x: new-model encodes per query (0 without re-embedding; a backfill's cost is one-off, in its label);
    y: nDCG@10 with qrels, else ARR@10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_qrels = plan["paths"][0].get("ndcg@10") is not None
    key = "ndcg@10" if with_qrels else "arr@10"
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for row in plan["paths"]:
        if row["kind"] == "curve":
            continue
        x, y = row["encodes_per_query"], row[key]
        label = row["path"] if row["kind"] != "backfill" else f"backfill ({plan['backfill_hours']:.2f} h once)"
        ax.scatter([x], [y], marker=MARKERS[row["kind"]], s=60)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("new-model encodes per query (before the backfill)")
    ax.set_ylabel(key + ("" if with_qrels else " (agreement with the new model)"))
    ax.set_title(f"{plan['old_model']} -> {plan['new_model']}: recommendation {plan['recommendation']}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return out
