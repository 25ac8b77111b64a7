"""``PartitionIndex``: an in-memory FAISS index over a changing subset of a gallery's items.

During a backfill the old partition shrinks (items leave it once re-embedded) and the new one grows. Each is
the store's factory index (``"Flat"`` by default, in an ``IndexIDMap2``), keyed by the item's row in the old
store (the gallery's item number), so ``add`` and ``remove`` are FAISS's own ``add_with_ids`` and
``remove_ids`` and a search scans exactly the items of the partition: a merged search over both
partitions costs about one search of the whole gallery.

A factory index that must be trained (``"IVF1024,Flat"``) cannot be trained on the new partition's first
small batches. Until ``min_train`` vectors have arrived they wait in an exact flat index that is searched
alongside (results merged with ``rank_merge``); then the factory index is trained on all of them and takes
them over.
"""

from __future__ import annotations

import faiss
import numpy as np

from hotswap.store.segment_search import FAISS_METRIC


class PartitionIndex:
    """Vectors of one model for a subset of item rows; search returns ``(D, rows)`` with -1 padding."""

    def __init__(self, dim: int, metric: str, factory: str = "Flat", min_train: int = 20_000) -> None:
        self.dim, self.metric, self.factory, self.min_train = int(dim), metric, factory, min_train
        self._index = self._idmap(factory)
        self._staged = None if self._index.is_trained else self._idmap("Flat")

    def _idmap(self, factory: str) -> faiss.Index:
        """The factory index keyed by item number: IVF indexes hold ids natively (``IndexIDMap`` would break on
        their ``remove_ids``, which does not renumber); others (Flat) are wrapped in ``IndexIDMap2``."""
        index = faiss.index_factory(self.dim, factory, FAISS_METRIC[self.metric])
        return index if faiss.try_extract_index_ivf(index) is not None else faiss.IndexIDMap2(index)

    def __len__(self) -> int:
        return int(self._index.ntotal) + (int(self._staged.ntotal) if self._staged is not None else 0)

    def add(self, rows: np.ndarray, X: np.ndarray) -> None:
        """Add vectors ``X`` under item numbers ``rows``."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self._staged is None:
            self._index.add_with_ids(X, rows)
            return
        self._staged.add_with_ids(X, rows)
        if self._staged.ntotal >= self.min_train:
            self._train_from_staged()

    def _train_from_staged(self) -> None:
        n = int(self._staged.ntotal)
        X = faiss.downcast_index(self._staged.index).reconstruct_n(0, n)
        rows = faiss.vector_to_array(self._staged.id_map).astype(np.int64)
        self._index.train(X)
        self._index.add_with_ids(X, rows)
        self._staged = None

    def remove(self, rows: np.ndarray) -> int:
        """Drop the given item numbers; returns how many were present."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == 0 or len(self) == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(rows))) if self._index.ntotal else 0
        if self._staged is not None and self._staged.ntotal:
            removed += int(self._staged.remove_ids(faiss.IDSelectorBatch(rows)))
        return removed

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` float32 scores (best first; worst score pads) and item rows (-1 pads)."""
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        D, P = self._search(self._index, Q, k)
        if self._staged is not None and self._staged.ntotal:
            from hotswap.search.rank_merge import rank_merge

            D, P = rank_merge(D, P, *self._search(self._staged, Q, k), k, metric=self.metric)
        return D, P

    def _search(self, index: faiss.Index, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        fill = -np.inf if self.metric == "ip" else np.inf
        if index.ntotal == 0:
            return np.full((len(Q), k), fill, np.float32), np.full((len(Q), k), -1, np.int64)
        D, P = index.search(Q, k)
        D[P < 0] = fill
        return D, P
