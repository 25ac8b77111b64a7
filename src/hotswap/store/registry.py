"""The backend registry: one string (a store URI) names a backend and a folder, so callers never import one.

``faiss://PATH`` (FAISS files), ``qdrant://PATH`` (qdrant local), ``milvus://PATH`` (milvus-lite),
``pg://PATH`` (PostgreSQL + pgvector on an embedded server in the folder),
``postgres://user@host:port/db?table=NAME`` (a store in a user's PostgreSQL, ``postgresql://`` too); a plain
path with no ``scheme://`` means faiss. ``PATH`` is taken as written: ``qdrant://data/gal`` is the relative
folder ``data/gal``, ``qdrant:///srv/gal`` the absolute ``/srv/gal``. A backend's package is imported on first
use (qdrant, milvus and pg need the optional ``serve`` extra). Adding a backend is one sub-package with a
``BACKEND`` (``hotswap.store.base.Backend``) and one line in ``BACKENDS``.

Database stores hold a client until ``close()``; every store is a context manager.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from hotswap.store.base import Backend, VectorStore

BACKENDS = {"faiss": "hotswap.store.faiss", "qdrant": "hotswap.store.qdrant", "milvus": "hotswap.store.milvus",
            "postgres": "hotswap.store.pg"}
ALIASES = {"pg": "postgres", "postgresql": "postgres"}  # schemes that name a backend under another name
SERVER_SCHEMES = ("postgres", "postgresql")  # the URI itself locates the store (a server), not a folder
SCHEMES = (*BACKENDS, *ALIASES)


def backend(name: str) -> Backend:
    """The registered backend ``name`` (its package imported on first use); ``ValueError`` for an unknown one."""
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise ValueError(f"unknown store backend {name!r}; use one of {', '.join(BACKENDS)}")
    return import_module(BACKENDS[name]).BACKEND


def parse_store_uri(uri: str | Path) -> tuple[str, Path | str]:
    """``(scheme, location)`` of a store URI: the folder, or for a server scheme the URI itself; ``ValueError``
    for an unknown scheme or an empty path."""
    text = str(uri)
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "faiss", text
    if scheme not in SCHEMES:
        raise ValueError(f"unknown store scheme {scheme!r} in {text!r}; use one of "
                         f"{', '.join(s + '://PATH' for s in SCHEMES if s not in SERVER_SCHEMES)} (a plain path "
                         "means faiss) or postgres://user@host:port/db?table=NAME")
    if not rest:
        raise ValueError(f"store URI {text!r} names no folder; write {scheme}://PATH")
    return scheme, text if scheme in SERVER_SCHEMES else Path(rest)


def create_store(uri: str | Path, model_id: str, dim: int, metric: str = "ip", **options: Any) -> VectorStore:
    """Create an empty store for ``model_id`` at ``uri`` (the folder must be new or empty). ``options`` go to
    the backend: ``index_factory`` for faiss (default "Flat"), ``index`` for pg ("flat" or "hnsw")."""
    scheme, path = parse_store_uri(uri)
    return backend(scheme).create(path, model_id, dim, metric, **options)


def open_store(uri: str | Path, model_id: str | None = None, **options: Any) -> VectorStore:
    """Open the store at ``uri``; ``model_id`` picks a model's view (None: the folder's first one). A FAISS folder
    holds one model: asking it for another raises ``ModelMismatchError``. ``options``: ``verify=True`` for
    faiss (checks every file's sha256)."""
    scheme, path = parse_store_uri(uri)
    return backend(scheme).open(path, model_id, **options)


def store_location(store: VectorStore | str | Path) -> tuple[Backend, Path | str]:
    """The backend and location (folder, or a server store's URI) of an open store or a store URI."""
    if isinstance(store, (str, Path)):
        scheme, path = parse_store_uri(store)
        return backend(scheme), path
    return backend(store.backend), store.path


def drop_model(store: VectorStore | str | Path, model_id: str) -> bool:
    """Remove ``model_id``'s vectors from a database store (an open store or its URI): an upgrade's rollback.
    ``False`` if there were none; always for FAISS, whose upgrade keeps new vectors in its own folder."""
    b, path = store_location(store)
    return False if b.drop_model is None else b.drop_model(path, model_id)


def serve_model(store: VectorStore | str | Path, model_id: str) -> None:
    """Make ``model_id`` the model a database store serves by default (a commit); nothing to do for most."""
    b, path = store_location(store)
    if b.serve_model is not None:
        b.serve_model(path, model_id)
