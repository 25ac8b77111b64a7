"""``hotswap encode``: encode a dataset's corpus into a new index that records the dataset and the model.

Heavy modules (torch, FAISS, the models) load inside the verb, so ``hotswap --help`` stays fast; the output folder
is checked before anything is encoded, and the encoding goes through the embedding cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from hotswap.cli.output import JSON, console, emit_json
from hotswap.errors import HotswapError


def encode(
    model: str = typer.Option(..., help="encoder: static, minilm, mpnet or a model folder"),
    index: str = typer.Option(..., "--index", help="where to build the index: a new folder, or a store URI "
                              "(qdrant://PATH, milvus://PATH, pg://PATH, postgres://user@host/db?table=NAME)"),
    dataset: str = typer.Option(..., help="bundled dataset name (debian, foldoc, gcide, jargon, pydoc) or a BEIR "
                                "folder"),
    max_docs: int = typer.Option(None, help="index a seeded random subset of this many documents"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(64),
    json_output: bool = JSON,
) -> None:
    """Encode a dataset's corpus with MODEL into a new index at INDEX, which records the dataset and the model.

    Example: hotswap encode --model static --index indexes/old --dataset debian --max-docs 6000
    """
    from hotswap.data import load_dataset
    from hotswap.encoders import describe, load_encoder
    from hotswap.encoders.cache import encode_cached
    from hotswap.store import create_store
    from hotswap.store.provenance import dataset_spec, record_provenance

    _refuse_existing(index)
    enc = load_encoder(model)
    ds = load_dataset(dataset, max_docs=max_docs, seed=seed)
    ids = list(ds.corpus)
    start = time.perf_counter()
    X, hit = encode_cached(enc, [ds.corpus[d] for d in ids], batch_size=batch_size)
    took = time.perf_counter() - start
    store = create_store(index, model_id=enc.id, dim=enc.dim, metric="ip")
    with store:
        store.add(ids, X, model_id=enc.id)
        record_provenance(store, dataset=dataset_spec(dataset, max_docs, seed), models=[describe(enc)])
        summary = {"index": index, "dataset": ds.name, "documents": len(store), "model_id": enc.id, "dim": enc.dim,
                   "encode_s": round(took, 3), "cached": hit}
    if json_output:
        emit_json(summary)
        return
    console.print(f"indexed {summary['documents']:,} documents of {ds.name} with {enc.id} ({enc.dim}-d) into {index} "
                  f"in {took:.1f} s{' (cached embeddings)' if hit else ''}", highlight=False)


def _refuse_existing(index: str) -> None:
    """Refuse an output folder that already holds something, before any encoding."""
    if "://" in index:
        return
    path = Path(index)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise HotswapError(f"{index} already exists and is not empty; choose a new --index folder (or delete it)")
