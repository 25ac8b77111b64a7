"""``hotswap delete``: delete documents by id from the texts and every index of a collection no server is serving
(each batch one durable write, both models during an upgrade)."""

from __future__ import annotations

from pathlib import Path

import typer

from hotswap.cli.upsert import ALLOW, STORE, console, open_collection
from hotswap.errors import HotswapError


def delete(
    ids: list[str] = typer.Argument(None, help="ids to delete"),
    store: str = STORE,
    file: Path = typer.Option(None, "--file", help="a text file of ids to delete, one per line"),
    batch_size: int = typer.Option(256, min=1, max=4096, help="ids per durable write"),
    allow_model: list[str] = ALLOW,
) -> None:
    """Delete documents by id from the texts and every index (unknown ids are ignored).

    Example: hotswap delete --store collections/debian doc-17 doc-42
    """
    try:
        todo = list(ids or []) + ([ln.strip() for ln in file.read_text().splitlines() if ln.strip()] if file else [])
        if not todo:
            raise HotswapError("no ids given: pass them as arguments or with --file")
        deleted = 0
        with open_collection(store, allow_model) as service:
            for start in range(0, len(todo), batch_size):
                out = service.delete_documents(todo[start:start + batch_size])
                deleted += out["deleted"]
    except (HotswapError, OSError, ValueError) as e:
        console.print(f"[red]cannot delete from {store}:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"deleted {deleted:,} of {len(todo):,} ids; the collection holds {out['items']:,}")
