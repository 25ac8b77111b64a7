"""The README's headline table, read from the demo's results files (``demo.json``, ``cascade.json``,
``backfill.json``): one row per upgrade path, from staying on the old model to a full re-index.

Rows: the old model alone; the best path that re-embeds nothing (the validated ``auto`` choice of
:mod:`hotswap.search.selection`); cascade search at 50 candidates, unbounded and with an encode budget of 8 per
query (the old index proposes, the new model re-ranks); the online backfill's area under its nDCG@10 curve (the
mean quality a user saw while the corpus was re-embedded, best mode and ordering); the full re-index. Run
``python -m hotswap_harness.report.headline`` to print the table; a test keeps the README equal to it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hotswap_harness.report.build import load_results
from hotswap_harness.report.sections import ReportError

CASCADE_CANDIDATES = 50
CASCADE_BUDGET = 8


def _load(results: Path, name: str) -> dict[str, Any]:
    """One of the demo's results files, read by the report's reader (its errors name the file)."""
    path = Path(results) / name
    try:
        data = load_results(path)
    except ReportError as e:
        raise ReportError(f"{e}; run 'hotswap demo' first") from e
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    return data


def _row(path: str, reembedded: str, encodes: str, m: dict[str, Any]) -> dict[str, Any]:
    return {"path": path, "re-embedded": reembedded, "new-model encodes / query": encodes,
            "nDCG@10": m["ndcg@10"], "R@10": m.get("recall@10"), "NFR": m.get("negative_flip_rate")}


def headline_rows(results: Path) -> list[dict[str, Any]]:
    """The headline rows (see the module docstring) from ``results``; :class:`ReportError` (a ``HotswapError``)
    when a file is missing or unreadable."""
    demo, cascade, backfill = (_load(results, f"{n}.json") for n in ("demo", "cascade", "backfill"))
    old = next(r for r in demo["rows"] if r["mode"] == "old")
    new = next(r for r in demo["rows"] if r["mode"] == "new")
    auto = next(r for r in demo["rows"] if r.get("adapter") == "auto")
    choice = demo["selection"]["choice"]
    old_name, new_name = (str(demo[k]).split("@")[0] for k in ("old_model", "new_model"))
    rows = [_row(f"stay: {old_name} queries", "nothing", "0", old),
            _row(f"best without re-indexing: {choice} (validated)", "nothing", "1", auto)]
    for budget in (None, CASCADE_BUDGET):
        hit = [r for r in cascade["rows"] if r["candidates"] == CASCADE_CANDIDATES and r["encode_budget"] == budget
               and r["candidate_query"] == "auto"]
        if hit:
            label = f"cascade: top {CASCADE_CANDIDATES} re-ranked by {new_name}"
            label += f", budget {budget}" if budget is not None else ""
            rows.append(_row(label, "on demand", f"{hit[0]['encodes_per_query']:.0f}", hit[0]))
    best = max(backfill["curves"], key=lambda c: c["auc_ndcg@10"])
    rows.append(_row(f"online backfill ({best['mode']}, {best['policy']} order): mean over the backfill",
                     "all, online", "1",
                     {"ndcg@10": best["auc_ndcg@10"], "recall@10": best.get("auc_recall@10"),
                      "negative_flip_rate": best.get("auc_negative_flip_rate")}))
    rows.append(_row(f"full re-index: {new_name}", "all, offline", "1", new))
    return rows


def headline_markdown(results: Path) -> str:
    """The headline rows as a Markdown table (3 decimals; ``-`` where a value was not measured)."""
    rows = headline_rows(results)
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v)) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(headline_markdown(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))
