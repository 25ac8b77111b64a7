"""Typer options shared by several verbs, defined once."""

from __future__ import annotations

import typer

INDEX = typer.Option(..., "--index", help="store folder built by 'hotswap encode'")
DATASET = typer.Option("debian", help="bundled dataset name or a BEIR folder")


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: a comma-separated option, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())
