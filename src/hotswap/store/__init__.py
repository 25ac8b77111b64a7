"""Versioned vector stores: vectors plus a manifest saying which model wrote them.

``create_store`` / ``open_store`` give the embedded default, ``FaissStore``; every backend follows the
``VectorStore`` protocol. ``create_upgrade`` / ``open_upgrade`` hold a gallery mid-backfill (``UpgradeStore``).
``create_store_uri`` / ``open_store_uri`` pick a backend from ``faiss://``, ``qdrant://``, ``milvus://`` or ``pg://``;
the qdrant and milvus names below are imported on first use (they need the optional ``serve`` extra).
``create_any_upgrade`` / ``open_any_upgrade`` hold a mid-backfill gallery of any backend (``StoreUpgrade`` for
qdrant and milvus, whose new vectors go into the same database; ``drop_upgrade_vectors`` rolls that back).
"""

from importlib import import_module

from hotswap.store.base import VectorStore
from hotswap.store.faiss_store import FaissStore, create_store, open_store
from hotswap.store.manifest import Manifest, Segment
from hotswap.store.partition_index import PartitionIndex
from hotswap.store.upgrade_store import UpgradeStore, create_upgrade, open_upgrade
from hotswap.store.uri import create_store_uri, open_store_uri

_LAZY = {name: "hotswap.store.qdrant_store" for name in
         ("QdrantStore", "create_qdrant_store", "open_qdrant_store", "add_model_vector", "remove_model_vector")}
_LAZY |= {name: "hotswap.store.milvus_store" for name in
          ("MilvusStore", "create_milvus_store", "open_milvus_store", "add_model_collection", "set_serving",
           "drop_model_collection")}
_LAZY |= {name: "hotswap.store.pg_store" for name in
          ("PgStore", "create_pg_store", "open_pg_store", "add_model_table", "drop_model_table")}
_LAZY |= {name: "hotswap.store.store_upgrade" for name in
          ("StoreUpgrade", "create_any_upgrade", "open_any_upgrade", "drop_upgrade_vectors")}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FaissStore", "Manifest", "PartitionIndex", "Segment", "UpgradeStore", "VectorStore", "create_store",
           "create_upgrade", "open_store", "open_upgrade", "create_store_uri", "open_store_uri", *_LAZY]
