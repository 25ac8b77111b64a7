"""Versioned vector stores: vectors plus a manifest saying which model wrote them.

``create_store`` / ``open_store`` give the embedded default, ``FaissStore``; every backend follows the
``VectorStore`` protocol. ``create_upgrade`` / ``open_upgrade`` hold a gallery mid-backfill (``UpgradeStore``).
"""

from hotswap.store.base import VectorStore
from hotswap.store.faiss_store import FaissStore, create_store, open_store
from hotswap.store.manifest import Manifest, Segment
from hotswap.store.partition_index import PartitionIndex
from hotswap.store.upgrade_store import UpgradeStore, create_upgrade, open_upgrade

__all__ = ["FaissStore", "Manifest", "PartitionIndex", "Segment", "UpgradeStore", "VectorStore", "create_store",
           "create_upgrade", "open_store", "open_upgrade"]
