"""FAISS files in a folder (``FaissStore``): the embedded default backend, one model per folder.

``store.py`` is the store, ``manifest.py`` its commit record, ``segments.py`` the segment files,
``segment_search.py`` search over mapped segments, ``partition_index.py`` the in-memory indexes an upgrade
searches its two partitions with.
"""

from hotswap.store.base import Backend
from hotswap.store.faiss.store import FaissStore, create_faiss_store, open_faiss_store

BACKEND = Backend("faiss", "faiss", create=create_faiss_store, open=open_faiss_store)

__all__ = ["BACKEND", "FaissStore", "create_faiss_store", "open_faiss_store"]
