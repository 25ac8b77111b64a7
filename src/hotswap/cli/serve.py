"""``hotswap serve``: run the search service on a collection (created on first use with ``--model``, or adopted
in place from a FAISS index folder that ``hotswap encode`` built, without re-encoding)."""

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
                                        "when --model is given and the folder is new; a FAISS index folder "
                                        "('hotswap encode') becomes a collection in place, its vectors kept"),
    model: str = typer.Option(None, help="create the collection: encode the dataset's corpus with this model "
                                         "(static, minilm, mpnet or a folder); adopting an index: the model that "
                                         "built it (default: found from the index)"),
    dataset: str = typer.Option(None, help="creating (--model): a bundled dataset name (e.g. debian), a BEIR "
                                "folder or a JSONL file of {\"id\", \"text\"} lines; adopting an index: where its "
                                "texts come from (default: the dataset it records); serving: only for a collection "
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

    Example: hotswap serve --store collections/debian --model static --dataset debian --max-docs 6000 (or --store
    qdrant://collections/debian, milvus://...), or hotswap serve --store indexes/old (an index 'hotswap encode'
    built: served in place, not re-encoded), then
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
    folder: Path | str = store  # the collection's folder once parsed (a refusal names what it has)
    try:
        backend, location = parse_store_uri(store)
        if not isinstance(location, Path):
            raise HotswapError("a served collection lives in a folder (its state, texts and upgrades); serve "
                               "PostgreSQL from one with --store pg://PATH")
        folder = location
        folders, load = model_loader(allow_model)
        adopting = Collection.is_plain_index(folder)
        if adopting and backend != "faiss":
            raise HotswapError(f"{folder} is a FAISS index; serve it as faiss://{folder} or {folder}")
        creating = model is not None and not adopting and not (folder / "serving.json").exists()
        if not adopting and not creating and not (folder / "serving.json").exists() and explicit \
                and backend != "faiss" and folder.is_dir() and any(folder.iterdir()) \
                and not (folder / "v1").exists():
            raise HotswapError(f"{folder} is no collection: hotswap serve adopts FAISS index folders only; create a "
                               f"collection from the dataset with 'hotswap serve --store {backend}://NEW_FOLDER "
                               "--model NAME --dataset NAME'")
        corpus = None
        if adopting:
            _adopt(folder, model, dataset, max_docs, folders)
        texts_from = None if adopting else dataset  # adopted: served from the texts the collection now keeps
        if creating:
            if texts_from is None:
                raise HotswapError(f"creating the collection {folder} needs --dataset: a bundled dataset name (e.g. "
                                   "debian), a BEIR folder, or a JSONL file of {\"id\", \"text\"} lines")
            corpus = _corpus(texts_from, max_docs)
            console.print(f"creating collection {folder}: encoding {len(corpus):,} documents with {model}")
            Collection.create(folder, model, load_encoder(model), corpus, backend=backend)
            corpus = None  # served from the texts the collection now keeps
        elif texts_from is not None:
            corpus = _corpus(texts_from, None)
        on_disk = Collection(folder).backend
        if explicit and on_disk != backend:
            raise HotswapError(f"{folder} is a {on_disk} collection, not {backend}; serve it as {on_disk}://{folder}")
        backend = on_disk
        service = SearchService(folder, corpus, batch_size=batch_size, resume=not no_resume,
                                models=[*BUNDLED, *folders], encoder_loader=load, queries_first=queries_first)
    except (HotswapError, FileExistsError, ValueError, OSError) as e:
        console.print(f"[red]cannot serve {folder}:[/red] {e}")
        raise typer.Exit(2) from None
    console.print(f"serving {backend}://{folder} (version {service.collection.state['version']}, "
                  f"{service.encoder.id}, {len(service.index):,} items, mode {service.default_mode}) on "
                  f"http://{host}:{port}  docs: /docs")
    app = create_app(service, api_key=api_key, read_key=read_key, allowed_hosts=[*LOOPBACK, host, *allow_host],
                     max_searches=max_searches)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)


def _adopt(store: Path, model: str | None, dataset: str | None, max_docs: int | None,
           folders: dict[str, str]) -> None:
    """Make the FAISS index folder ``store`` a collection in place (``Collection.adopt_index``): its texts from
    ``dataset`` or its provenance, its model ``model`` or the one its model id names; prints one line."""
    from hotswap.serve import Collection
    from hotswap.store import open_store
    from hotswap.store.provenance import read_provenance

    Collection.recover_adoption(store)  # an adoption killed half-way: the plain index again first
    provenance = read_provenance(store)
    with open_store(f"faiss://{store}") as index:
        model_id, ids = index.model_id, list(index.ids)
    spec = _adopted_model(store, model_id, model, folders, provenance)
    corpus, source = _adopted_texts(store, ids, dataset, max_docs, provenance)
    Collection.adopt_index(store, spec, model_id, corpus)
    console.print(f"adopted {len(ids):,} vectors of {model_id} in {store} as a collection without re-encoding "
                  f"(texts from {source})", highlight=False)


def _adopted_model(store: Path, model_id: str, model: str | None, folders: dict[str, str],
                   provenance: dict) -> str:
    """What the adopted collection records as its model: a bundled name, or a model folder (absolute); its id
    must be the index's ``model_id``."""
    from hotswap.encoders import BUNDLED, encoder_for_model_id, load_encoder
    from hotswap.errors import ModelMismatchError

    if model is not None:
        where = folders.get(model, model)
        encoder = load_encoder(where)
        if encoder.id != model_id:
            raise ModelMismatchError(f"--model {model} is {encoder.id}, but the index {store} was built with "
                                     f"{model_id}; pass the model that built it, or leave --model out")
        return str(Path(where).resolve()) if Path(where).exists() else where
    name = model_id.rpartition("@")[0]
    location = (provenance.get("models", {}).get(model_id) or {}).get("location")
    # refuses a model that is not installed or has other weights; finds a folder model wherever it was recorded
    encoder = encoder_for_model_id(model_id, location=location)
    if name in BUNDLED:
        return name
    return getattr(encoder, "location", None) or name


def _adopted_texts(store: Path, ids: list[str], dataset: str | None, max_docs: int | None,
                   provenance: dict) -> tuple[dict[str, str], str]:
    """``{id: text}`` for every id of the index, and where the texts came from: ``--dataset``, else the dataset
    the index records; refused, naming how many lack a text, unless every id has one."""
    if dataset is not None:
        full, source = _corpus(dataset, max_docs), f"dataset {dataset}"
    else:
        spec = provenance.get("dataset") or {}
        if not spec.get("name"):
            raise HotswapError(f"{store} is an index without a collection and records no dataset; pass --dataset "
                               "(the bundled name, BEIR folder or JSONL file it was built from) to serve it")
        from hotswap.data import load_dataset

        full = dict(load_dataset(spec["name"], max_docs=spec.get("max_docs"), seed=spec.get("seed", 0)).corpus)
        source = f"dataset {spec['name']}, as the index records"
    missing = [i for i in ids if i not in full]
    if missing:
        raise HotswapError(f"{len(missing):,} of the {len(ids):,} vectors in {store} have no text in {source} "
                           f"(e.g. {', '.join(map(repr, missing[:3]))}); pass --dataset: the dataset the index was "
                           "built from")
    return {i: full[i] for i in ids}, source


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
