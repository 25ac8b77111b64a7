"""``hotswap verify``: recompute the checksums of a store, an upgrade or a whole collection."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hotswap.errors import HotswapError

console = Console()


def verify(path: Path = typer.Argument(..., help="a collection folder (serving.json), an upgrade folder "
                                                  "(upgrade.json) or a FAISS store folder (manifest.json)")) -> None:
    """Check every file of PATH against its recorded size and sha256 (a corruption that kept the sizes included).

    Example: hotswap verify collections/debian
    """
    from hotswap.store import open_store
    from hotswap.store.faiss import FaissStore

    folders: list[Path] = []
    if (path / "serving.json").is_file():
        from hotswap.serve import Collection

        col = Collection(path)
        if col.backend == "faiss":
            folders.append(col.index_path)
        if col.upgrade_path is not None and (col.upgrade_path / "new" / "manifest.json").is_file():
            folders.append(col.upgrade_path / "new")
    elif (path / "upgrade.json").is_file():
        folders.append(path / "new")
    elif (path / "manifest.json").is_file():
        folders.append(path)
    else:
        console.print(f"[red]{path}[/red] is not a collection, an upgrade or a store folder (no serving.json, "
                      "upgrade.json or manifest.json)")
        raise typer.Exit(2)
    try:
        for folder in folders:
            store = open_store(folder, verify=True)
            assert isinstance(store, FaissStore)  # every folder listed holds a manifest.json: FAISS
            console.print(f"ok: {folder} ({len(store):,} vectors of {store.model_id}, "
                          f"{len(store.manifest.segments)} segments)")
    except HotswapError as e:
        console.print(f"[red]corrupt:[/red] {e}")
        raise typer.Exit(2) from None
    if not folders:
        console.print(f"{path}: a database collection; its database checks its own pages")
