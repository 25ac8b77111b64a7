"""Tables and plots for experiment results (rich for the terminal, matplotlib for PNG files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from hotswap.io import atomic_write


def rows_table(title: str, rows: Sequence[dict], columns: Sequence[tuple[str, str]], caption: str = "") -> Table:
    """A rich table; ``columns`` are ``(key, header)``; floats are shown with 3 decimals, ``None`` as ``-``."""
    table = Table(title=title, caption=caption)
    for i, (_, header) in enumerate(columns):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[_fmt(row.get(key)) for key, _ in columns])
    return table


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def grouped_bars(path: str | Path, labels: Sequence[str], series: dict[str, Sequence[float]], title: str,
                 ylabel: str = "score") -> Path:
    """Save a grouped bar chart (one group per label, one bar per series) as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(labels)), 4.0))
    for i, (name, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


def save_png(fig, path: str | Path, dpi: int = 120) -> Path:
    """Write a matplotlib figure as PNG atomically (temp file, fsync, rename), then close it."""
    import matplotlib.pyplot as plt

    out = atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format="png"))
    plt.close(fig)
    return out
