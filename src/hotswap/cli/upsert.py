"""``hotswap upsert``: insert or replace documents of a collection that no server is serving.

Each batch of ``--batch-size`` documents is one durable write (``SearchService.upsert_documents``): texts first,
then every index the collection serves or is building (during an upgrade, both models). A running server holds
the collection: send writes to it instead (``POST /documents``, ``DELETE /documents``).
``hotswap delete`` shares the options and :class:`open_collection`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hotswap.errors import HotswapError

console = Console(stderr=True)

STORE = typer.Option(..., help="collection folder (serving.json), as PATH or faiss:// qdrant:// milvus://PATH")
ALLOW = typer.Option([], "--allow-model", help="NAME=FOLDER: where a model the collection names lives (as given "
                     "to hotswap serve)")


def upsert(
    file: Path = typer.Argument(None, help="a JSONL file of documents: one {\"id\": ..., \"text\": ...} per line "
                                            "(BEIR's \"_id\" and \"title\" work too; .jsonl.gz as well)"),
    store: str = STORE,
    id: str = typer.Option(None, "--id", help="one document's id (with --text) instead of a file"),
    text: str = typer.Option(None, "--text", help="that document's text"),
    batch_size: int = typer.Option(256, min=1, max=4096, help="documents per durable write"),
    allow_model: list[str] = ALLOW,
) -> None:
    """Insert or replace documents: new ids are added, known ids get the new text and vectors.

    Example: hotswap upsert --store collections/debian new_docs.jsonl
    """
    if (file is None) == (id is None) or (id is None) != (text is None):
        console.print("[red]give a JSONL file, or --id and --text[/red]")
        raise typer.Exit(2)
    try:
        if file is not None:
            from hotswap.data.beir import read_corpus_jsonl

            docs = list(read_corpus_jsonl(file).items())
        elif not text.strip():
            raise HotswapError("--text is blank; a document needs a text")
        else:
            docs = [(id, text)]
        with open_collection(store, allow_model) as service:
            for start in range(0, len(docs), batch_size):
                out = service.upsert_documents(docs[start:start + batch_size])
    except (HotswapError, OSError, ValueError) as e:
        console.print(f"[red]cannot write to {store}:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"upserted {len(docs):,} documents; the collection holds {out['items']:,}")


class open_collection:
    """The collection's ``SearchService`` (its upgrade not resumed), closed on exit."""

    def __init__(self, store: str, allow_model: list[str]) -> None:
        from hotswap.cli.serve import model_loader
        from hotswap.serve import SearchService
        from hotswap.store.registry import parse_store_uri

        _, path = parse_store_uri(store)
        if not isinstance(path, Path) or not (path / "serving.json").is_file():
            raise HotswapError(f"{path} is not a collection (no serving.json); create it with 'hotswap serve "
                               "--store PATH --model NAME'")
        self.service = SearchService(path, encoder_loader=model_loader(allow_model)[1], resume=False)

    def __enter__(self):
        return self.service

    def __exit__(self, *exc: object) -> None:
        self.service.close()
