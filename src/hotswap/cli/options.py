"""Typer options shared by several verbs, defined once."""

from __future__ import annotations

import typer

INDEX = typer.Option(..., "--index", help="the index: a store folder built by 'hotswap encode', or a store URI "
                     "(qdrant://PATH, milvus://PATH, pg://PATH, postgres://user@host/db?table=NAME)")
DATASET = typer.Option("debian", help="bundled dataset name or a BEIR folder (backfill: 'store' reads the texts "
                       "from the index's own text column, e.g. an adopted table)")


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: a comma-separated option, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())

