"""Versioned vector stores: vectors plus a manifest saying which model wrote them.

``create_store`` / ``open_store`` give the embedded default, ``FaissStore``; every backend follows the
``VectorStore`` protocol.
"""

from hotswap.store.base import VectorStore
from hotswap.store.faiss_store import FaissStore, create_store, open_store
from hotswap.store.manifest import Manifest, Segment

__all__ = ["FaissStore", "Manifest", "Segment", "VectorStore", "create_store", "open_store"]
