"""Typer options shared by several verbs, defined once."""

from __future__ import annotations

import typer

INDEX = typer.Option(..., "--index", help="the index: a store folder built by 'hotswap encode', a served "
                     "collection (its current version, read only), or a store URI (qdrant://PATH, milvus://PATH, "
                     "pg://PATH, postgres://user@host/db?table=NAME)")


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: a comma-separated option, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())

