"""The backfill curve table the CLI prints fits 80 columns with its numbers whole; the wide one keeps every
fraction."""

from __future__ import annotations

import io

from rich.console import Console

from hotswap.backfill.curve_report import curve_table


def _result(n_points: int) -> dict:
    points = [{"fraction": i / (n_points - 1), "ndcg@10": 0.4 + 0.01 * i} for i in range(n_points)]
    curve = {"policy": "uncertainty", "mode": "calibrated", "points": points, "auc_ndcg@10": 0.45,
             "auc_recall@10": 0.55, "auc_negative_flip_rate": 0.066, "monotone": False, "max_drop_ndcg@10": 0.0123}
    return {"old_model": "static@e79551e309c0", "new_model": "minilm@53aa51172d14", "dataset": "foldoc",
            "curves": [curve, {**curve, "mode": "merged"}]}


def _render(table, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_compact_table_fits_80_columns_without_truncation():
    text = _render(curve_table(_result(11), compact=True), 80)
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert "uncertainty" in text and "calibrated" in text and "0.400" in text and "0.450" in text  # 0%, 50%
    assert "0.500" in text and "10%" not in text  # the last point, and only three fractions shown


def test_wide_table_keeps_every_fraction():
    text = _render(curve_table(_result(11)), 200)
    assert all(f"{p}%" in text for p in range(0, 101, 10)) and "no (-0.012)" in text
