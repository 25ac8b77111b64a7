"""What the verbs print: tables that fit 80 columns, ``--json`` (only the JSON on stdout), progress lines.

Metric headers are short (``METRIC_HEADERS``) so that a row of them fits a terminal of 80 columns; a verb with
``--json`` prints exactly one JSON document on stdout and its notes on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

METRIC_HEADERS = {"ndcg@10": "nDCG@10", "recall@10": "R@10", "recall@100": "R@100", "mrr@10": "MRR@10",
                  "negative_flip_rate": "NFR", "arr@10": "ARR@10"}
JSON = typer.Option(False, "--json", help="print only JSON on stdout (notes go to stderr)")

console = Console()  # stdout: tables
notes = Console(stderr=True)  # stderr: progress and notes, which never mix into --json output


def header(key: str) -> str:
    return METRIC_HEADERS.get(key, key)


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def table(title: str | None, rows: Sequence[Mapping[str, Any]], columns: Iterable[str],
          caption: str | None = None) -> Table:
    """A rich table of ``rows`` (dicts) with ``columns`` (keys; metric keys get short headers): numbers to the
    right, words (the first column, and any column whose cells are all text) to the left."""
    columns = list(columns)
    out = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for i, key in enumerate(columns):
        words = i == 0 or all(isinstance(row.get(key), str) for row in rows)
        out.add_column(header(key), justify="left" if words else "right", overflow="fold")
    for row in rows:
        out.add_row(*[cell(row.get(key)) for key in columns])
    return out


def emit_json(obj: Any) -> None:
    """Print ``obj`` as the only JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def say(text: str) -> None:
    """A note for people (stderr when stdout carries JSON; here always stderr)."""
    notes.print(text, highlight=False)
