"""``hotswap serve``: run the search service on a collection (created on first use with ``--model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from hotswap.errors import HotswapError

console = Console(stderr=True)


def serve(
    store: str = typer.Option(..., help="collection folder (serving.json + indexes), as PATH or faiss://PATH, "
                                        "qdrant://PATH, milvus://PATH (the backend of a new collection); created "
                                        "when --model is given and the folder is new"),
    model: str = typer.Option(None, help="create the collection: encode the dataset's corpus with this model "
                                         "(static, minilm, mpnet or a folder)"),
    dataset: str = typer.Option(None, help="creating (--model): a bundled dataset name (default debian), a BEIR "
                                "folder or a JSONL file of {\"id\", \"text\"} lines; serving: only for a collection "
                                "made before collections kept their texts"),
    max_docs: int = typer.Option(None, help="with --model: index a seeded sample of this many documents"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    batch_size: int = typer.Option(256, help="items per atomic backfill batch"),
    no_resume: bool = typer.Option(False, "--no-resume", help="do not resume a running upgrade at start-up"),
    api_key: str = typer.Option(None, envvar="HOTSWAP_API_KEY", help="admin key (upgrade, its controls, "
                                "query-model; may search too), sent as 'Authorization: Bearer KEY'"),
    read_key: str = typer.Option(None, envvar="HOTSWAP_READ_KEY", help="read key (search, status, metrics)"),
    allow_host: list[str] = typer.Option([], "--allow-host", help="a Host name clients may use besides the "
                                         "loopback names and --host (repeat for several)"),
    insecure: bool = typer.Option(False, "--insecure", help="serve a non-loopback address without keys"),
    max_searches: int = typer.Option(8, help="searches answered at once; more wait up to 5 s, then get 429"),
    queries_first: bool = typer.Option(False, "--queries-first/--no-queries-first", help="the backfill encodes "
                                       "in a worker process at the lowest CPU priority (nice 19), so searches get the "
                                       "cores first (benchmarks/load.py --queries-first)"),
    allow_model: list[str] = typer.Option([], "--allow-model", help="NAME=FOLDER: a model folder clients may "
                                          "upgrade to by NAME (besides static, minilm, mpnet); repeat for several"),
) -> None:
    """Serve STORE over HTTP: POST /search, POST /upgrade (then /upgrade/pause, resume, rollback,
    commit), GET /status, GET /metrics.

    Example: hotswap serve --store collections/debian --model static --max-docs 6000 (or --store
    qdrant://collections/debian, milvus://...), then
    curl -s localhost:8000/search -H 'content-type: application/json' -d '{"query": "python web framework"}'
    """
    import uvicorn

    from hotswap.serve.guard import LOOPBACK

    if host not in LOOPBACK and not api_key and not insecure:
        console.print(f"[red]refusing to serve {host} without keys:[/red] anyone who reaches it could upgrade, roll "
                      "back or commit. Set --api-key (and --read-key), or HOTSWAP_API_KEY; or pass --insecure")
        raise typer.Exit(2)
    if read_key and not api_key:
        console.print("[red]--read-key needs --api-key too[/red]: without an admin key every client is an admin")
        raise typer.Exit(2)

    from hotswap.encoders import BUNDLED, load_encoder
    from hotswap.serve import Collection, SearchService, create_app
    from hotswap.store.registry import parse_store_uri

    explicit = "://" in store  # a plain path serves whatever backend the collection was created on
    try:
        backend, store = parse_store_uri(store)
        if not isinstance(store, Path):
            raise HotswapError("a served collection lives in a folder (its state, texts and upgrades); serve "
                               "PostgreSQL from one with --store pg://PATH")
        creating = model is not None and not (store / "serving.json").exists()
        corpus = None
        if creating:
            corpus = _corpus(dataset or "debian", max_docs)
            console.print(f"creating collection {store}: encoding {len(corpus):,} documents with {model}")
            Collection.create(store, model, load_encoder(model), corpus, backend=backend)
            corpus = None  # served from the texts the collection now keeps
        elif dataset is not None:
            corpus = _corpus(dataset, None)
        on_disk = Collection(store).backend
        if explicit and on_disk != backend:
            raise HotswapError(f"{store} is a {on_disk} collection, not {backend}; serve it as {on_disk}://{store}")
        backend = on_disk
        folders, load = model_loader(allow_model)
        service = SearchService(store, corpus, batch_size=batch_size, resume=not no_resume,
                                models=[*BUNDLED, *folders], encoder_loader=load, queries_first=queries_first)
    except (HotswapError, FileExistsError, ValueError, OSError) as e:
        console.print(f"[red]cannot serve {store}:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"serving {backend}://{store} (version {service.collection.state['version']}, {service.encoder.id}, "
                  f"{len(service.index):,} items, mode {service.default_mode}) on http://{host}:{port}  docs: /docs")
    app = create_app(service, api_key=api_key, read_key=read_key, allowed_hosts=[*LOOPBACK, host, *allow_host],
                     max_searches=max_searches)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)


def model_loader(allow_model: list[str]) -> tuple[dict[str, str], Any]:
    """The ``--allow-model NAME=FOLDER`` map, and the ``encoder_loader`` that reads NAME from FOLDER."""
    from hotswap.encoders.named import NamedLoader

    folders = dict(_name_folder(spec) for spec in allow_model)
    return folders, NamedLoader(folders)


def _name_folder(spec: str) -> tuple[str, str]:
    name, sep, folder = spec.partition("=")
    if not sep or not name or not folder:
        raise HotswapError(f"--allow-model takes NAME=FOLDER; got {spec!r}")
    return name, folder


def _corpus(dataset: str, max_docs: int | None) -> dict[str, str]:
    """``{id: text}`` from a corpus JSONL file (``hotswap.data.beir.read_corpus_jsonl``), a BEIR folder or a
    bundled dataset."""
    from pathlib import Path

    if dataset.endswith((".jsonl", ".jsonl.gz")) and Path(dataset).is_file():
        from hotswap.data.beir import read_corpus_jsonl

        return read_corpus_jsonl(dataset, max_docs)
    from hotswap.data import load_dataset

    return dict(load_dataset(dataset, max_docs=max_docs).corpus)
