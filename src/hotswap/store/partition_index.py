"""``PartitionIndex``: an in-memory FAISS index over a changing subset of a gallery's items.

During a backfill the old partition shrinks (items leave it once re-embedded) and the new one grows. Each is
a ``faiss.IndexIDMap2`` around the store's factory index (``"Flat"`` by default), keyed by the item's row in
the old store (the gallery's item number), so ``add`` and ``remove`` are FAISS's own ``add_with_ids`` and
``remove_ids`` and a search scans exactly the items of the partition: a merged search over both
partitions costs about one search of the whole gallery.
"""

from __future__ import annotations

import faiss
import numpy as np

from hotswap.store.segment_search import FAISS_METRIC


class PartitionIndex:
    """Vectors of one model for a subset of item rows; search returns ``(D, rows)`` with -1 padding."""

    def __init__(self, dim: int, metric: str, factory: str = "Flat") -> None:
        self.dim, self.metric, self.factory = int(dim), metric, factory
        self._index = faiss.IndexIDMap2(faiss.index_factory(self.dim, factory, FAISS_METRIC[metric]))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, rows: np.ndarray, X: np.ndarray) -> None:
        """Add vectors ``X`` under item numbers ``rows`` (trains the inner index on the first call if needed)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        X = np.ascontiguousarray(X, dtype=np.float32)
        if not self._index.is_trained:
            self._index.train(X)
        self._index.add_with_ids(X, rows)

    def remove(self, rows: np.ndarray) -> int:
        """Drop the given item numbers; returns how many were present."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == 0 or len(self) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(rows)))

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` float32 scores (best first; worst score pads) and item rows (-1 pads)."""
        fill = -np.inf if self.metric == "ip" else np.inf
        if len(self) == 0:
            return np.full((len(Q), k), fill, np.float32), np.full((len(Q), k), -1, np.int64)
        D, P = self._index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
        D[P < 0] = fill
        return D, P
