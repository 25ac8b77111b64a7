"""``results/cascade.json`` as rich tables (rows, curves, streams) and ``cascade.png`` (quality vs backfill)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from hotswap.figures import rows_table, save_png
from hotswap.io import atomic_write_json

ROW_COLUMNS = [("label", "cascade"), ("ndcg@10", "nDCG@10"), ("recall@10", "R@10"),
               ("recovered_ndcg@10", "recovered"), ("negative_flip_rate", "NFR"), ("encodes_per_query", "enc/q")]


def row_label(row: dict) -> str:
    budget = "unlimited" if row["encode_budget"] is None else f"budget {row['encode_budget']}"
    return f"G={row['candidates']} {budget}, {row['candidate_query']} ({row['resolved_query']})"


def _short(row: dict) -> str:
    label = row_label(row).split(",")[0]
    return label if row["candidate_query"] == "auto" else f"{label}, {row['candidate_query']} query"


def cascade_rows_table(result: dict) -> Table:
    """Day-0 rows beside the old system, the validated blend and the re-index."""
    head = [{"label": "old/old", **result["old"], "recovered_ndcg@10": 0.0},
            {"label": f"blended (w={result['blend_weight']:g})", **result["baselines"]["blended"]},
            {"label": "new/new (re-index)", **result["new"], "recovered_ndcg@10": 1.0}]
    gap = result["new_ndcg@10"] - result["old_ndcg@10"]
    head[1]["recovered_ndcg@10"] = (head[1]["ndcg@10"] - result["old_ndcg@10"]) / gap if gap else None
    rows = head + [{**r, "label": row_label(r)} for r in result["rows"]]
    return rows_table(f"cascade {result['old_model']} -> {result['new_model']} on {result['dataset']}, 0 % backfilled",
                      rows, ROW_COLUMNS, f"{result['n_docs']} docs, {result['n_test_queries']} test queries; "
                      "recovered = share of the old -> new nDCG@10 gap; enc/q = new-model document encodings a "
                      "query asks for on its own (cold); NFR vs old/old")


def cascade_curve_table(result: dict) -> Table:
    """nDCG@10 at each backfilled fraction per (policy, mode), with the AUC."""
    curves = result["curves"]
    fractions = [p["fraction"] for p in curves[0]["points"]] if curves else []
    table = Table(title="nDCG@10 across the online backfill", caption="AUC = mean over the curve")
    for col in ("policy", "mode", *(f"{f:.0%}" for f in fractions), "AUC"):
        table.add_column(col, justify="left" if col in ("policy", "mode") else "right")
    for c in curves:
        table.add_row(c["policy"], c.get("label", c["mode"]), *(f"{p['ndcg@10']:.3f}" for p in c["points"]),
                      f"{c['auc_ndcg@10']:.3f}")
    return table


def stream_table(stream: dict) -> Table:
    """One budget's stream: quality, encodes and latency after each count of queries served."""
    budget = "unlimited" if stream["budget"] is None else stream["budget"]
    table = Table(title=f"{stream.get('mode', 'cascade')} stream, budget {budget}")
    for col in ("queries", "nDCG@10", "enc/q", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for p in stream["points"]:
        table.add_row(str(p["queries"]), f"{p['ndcg@10']:.3f}", f"{p['encodes_per_query']:.2f}",
                      f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}")
    return table


def plot_cascade(result: dict, path: str | Path) -> Path:
    """Left: day-0 nDCG@10 of each row beside old / blend / re-index; right: nDCG@10 against the backfill."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    labels = ["old/old", "blended", *(_short(r) for r in result["rows"]), "re-index"]
    values = [result["old_ndcg@10"], result["baselines"]["blended"]["ndcg@10"],
              *(r["ndcg@10"] for r in result["rows"]), result["new_ndcg@10"]]
    bars = left.bar(range(len(values)), values, color=["grey", "tab:blue", *["tab:green"] * len(result["rows"]),
                                                       "black"])
    left.bar_label(bars, fmt="%.3f", fontsize=7)
    left.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=8)
    left.set_ylim(min(values) - 0.05, max(values) + 0.03)
    left.set_ylabel("nDCG@10 at 0 % backfilled")
    styles = {"merged": ":", "adapted": "--", "cascade": "-"}
    for c in result["curves"]:
        x = [p["fraction"] for p in c["points"]]
        right.plot(x, [p["ndcg@10"] for p in c["points"]], styles.get(c["mode"], "-"), marker="o", ms=3,
                   label=f"{c['policy']} / {c.get('label', c['mode'])} (AUC {c['auc_ndcg@10']:.3f})")
    right.axhline(result["new_ndcg@10"], color="black", lw=0.8)
    right.set_xlabel("fraction of the gallery backfilled")
    right.set_ylabel("nDCG@10")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"cascade search {result['old_model']} -> {result['new_model']} ({result['dataset']})")
    fig.tight_layout()
    return save_png(fig, path)


STREAM_KEYS = ("stream", "streams", "stream_baselines", "stream_run")  # written by benchmarks/cascade_cost.py


def write_cascade_results(result: dict, out: str | Path) -> Path:
    """``out/cascade.json``, keeping the ``STREAM_KEYS`` that ``benchmarks/cascade_cost.py`` wrote there."""
    path = Path(out) / "cascade.json"
    if path.exists():
        try:
            earlier = json.loads(path.read_text())
        except ValueError:
            earlier = {}
        result = {**{key: earlier[key] for key in STREAM_KEYS if key in earlier}, **result}
    return atomic_write_json(path, result)
