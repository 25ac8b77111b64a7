"""``hotswap serve``: run the search service on a collection (created on first use with ``--model``)."""

from __future__ import annotations

import typer
from rich.console import Console

from hotswap.cli.options import DATASET
from hotswap.errors import HotswapError

console = Console(stderr=True)


def serve(
    store: str = typer.Option(..., help="collection folder (serving.json + indexes), as PATH or faiss://PATH, "
                                        "qdrant://PATH, milvus://PATH (the backend of a new collection); created "
                                        "when --model is given and the folder is new"),
    model: str = typer.Option(None, help="create the collection: encode the dataset's corpus with this model "
                                         "(static, minilm, mpnet or a folder)"),
    dataset: str = DATASET,
    max_docs: int = typer.Option(None, help="with --model: index a seeded sample of this many documents"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    batch_size: int = typer.Option(256, help="items per atomic backfill batch"),
    no_resume: bool = typer.Option(False, "--no-resume", help="do not resume a running upgrade at start-up"),
) -> None:
    """Serve STORE over HTTP: POST /search, POST /upgrade (then /upgrade/pause, resume, rollback,
    commit), GET /status, GET /metrics.

    Example: hotswap serve --store collections/debian --model static --max-docs 6000 (or --store
    qdrant://collections/debian, milvus://...), then
    curl -s localhost:8000/search -H 'content-type: application/json' -d '{"query": "python web framework"}'
    """
    import uvicorn

    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.serve import Collection, SearchService, create_app
    from hotswap.store.uri import parse_store_uri

    explicit = "://" in store  # a plain path serves whatever backend the collection was created on
    try:
        backend, store = parse_store_uri(store)
        creating = model is not None and not (store / "serving.json").exists()
        ds = load_dataset(dataset, max_docs=max_docs if creating else None)  # serving: the whole corpus
        if creating:
            console.print(f"creating collection {store}: encoding {len(ds.corpus):,} documents with {model}")
            Collection.create(store, model, load_encoder(model), ds.corpus, backend=backend)
        on_disk = Collection(store).backend
        if explicit and on_disk != backend:
            raise HotswapError(f"{store} is a {on_disk} collection, not {backend}; serve it as {on_disk}://{store}")
        backend = on_disk
        service = SearchService(store, ds.corpus, batch_size=batch_size, resume=not no_resume)
    except (HotswapError, FileExistsError, ValueError) as e:
        console.print(f"[red]cannot serve {store}:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"serving {backend}://{store} (version {service.collection.state['version']}, {service.encoder.id}, "
                  f"{len(service.index):,} items, mode {service.default_mode}) on http://{host}:{port}  docs: /docs")
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
