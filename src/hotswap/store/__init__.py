"""Versioned vector stores: vectors plus a record of which model wrote them, on any registered backend.

``create_store(uri, model_id, dim)`` / ``open_store(uri)`` pick the backend from the URI (``faiss://``,
``qdrant://``, ``milvus://``, ``pg://PATH``, ``postgres://...?table=``; a plain path means FAISS); every store
follows the ``VectorStore`` protocol. ``drop_model`` / ``serve_model`` roll back / commit a database store's second
model. Upgrades in progress live one floor up, in ``hotswap.upgrade``.
"""

from hotswap.store.base import Backend, Searchable, VectorStore
from hotswap.store.faiss import FaissStore
from hotswap.store.registry import BACKENDS, backend, create_store, drop_model, open_store, parse_store_uri, serve_model

__all__ = ["BACKENDS", "Backend", "FaissStore", "Searchable", "VectorStore", "backend", "create_store",
           "drop_model", "open_store", "parse_store_uri", "serve_model"]
