"""Store URIs: one string names a backend and a folder, so callers need not import a backend.

``faiss://PATH`` (``FaissStore``), ``qdrant://PATH`` (``QdrantStore``), ``milvus://PATH`` (``MilvusStore``),
``pg://PATH`` (``PgStore``: PostgreSQL + pgvector on an embedded server in the folder);
a plain path with no ``scheme://`` means faiss. ``PATH`` is taken as written: ``qdrant://data/gal`` is the
relative folder ``data/gal``, ``qdrant:///srv/gal`` the absolute ``/srv/gal``. All three are local folders.
The qdrant and milvus stores lock their folder while open; call ``close()`` on them (``FaissStore`` needs none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hotswap.errors import ModelMismatchError
from hotswap.store.base import VectorStore
from hotswap.store.faiss_store import create_store, open_store

SCHEMES = ("faiss", "qdrant", "milvus", "pg")


def parse_store_uri(uri: str | Path) -> tuple[str, Path]:
    """``(scheme, folder)`` of a store URI; ``ValueError`` for an unknown scheme or an empty path."""
    text = str(uri)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "faiss", text
    if scheme not in SCHEMES:
        raise ValueError(f"unknown store scheme {scheme!r} in {text!r}; use one of "
                         f"{', '.join(s + '://PATH' for s in SCHEMES)} (a plain path means faiss)")
    if not rest:
        raise ValueError(f"store URI {text!r} names no folder; write {scheme}://PATH")
    return scheme, Path(rest)


def create_store_uri(uri: str | Path, model_id: str, dim: int, metric: str = "ip", **options: Any) -> VectorStore:
    """Create an empty store for ``model_id`` at ``uri`` (the folder must be new or empty); ``options`` go to the
    backend (``index="hnsw"`` for pg)."""
    scheme, path = parse_store_uri(uri)
    if scheme == "qdrant":
        from hotswap.store.qdrant_store import create_qdrant_store
        return create_qdrant_store(path, model_id, dim, metric)
    if scheme == "milvus":
        from hotswap.store.milvus_store import create_milvus_store
        return create_milvus_store(path, model_id, dim, metric)
    if scheme == "pg":
        from hotswap.store.pg_store import create_pg_store
        return create_pg_store(path, model_id, dim, metric, **options)
    return create_store(path, model_id=model_id, dim=dim, metric=metric)


def open_store_uri(uri: str | Path, model_id: str | None = None) -> VectorStore:
    """Open the store at ``uri``; ``model_id`` picks a model's view (None: the folder's primary / serving one).

    A FAISS folder holds one model: asking it for another raises ``ModelMismatchError``.
    """
    scheme, path = parse_store_uri(uri)
    if scheme == "qdrant":
        from hotswap.store.qdrant_store import open_qdrant_store
        return open_qdrant_store(path, model_id)
    if scheme == "milvus":
        from hotswap.store.milvus_store import open_milvus_store
        return open_milvus_store(path, model_id)
    if scheme == "pg":
        from hotswap.store.pg_store import open_pg_store
        return open_pg_store(path, model_id)
    store = open_store(path)
    if model_id is not None and model_id != store.model_id:
        raise ModelMismatchError(f"store {path} holds vectors of model {store.model_id!r}, not {model_id!r}; "
                                 "open the store built for that model, or backfill one")
    return store
