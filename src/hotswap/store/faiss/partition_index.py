"""``PartitionIndex``: an in-memory FAISS index over a changing subset of a gallery's items.

During a backfill the old partition shrinks (items leave it once re-embedded) and the new one grows. Each is
the store's factory index (``"Flat"`` by default, in an ``IndexIDMap2``), keyed by the item's row in the old
store (the gallery's item number), so ``add`` and ``remove`` are FAISS's own ``add_with_ids`` and
``remove_ids`` and a search scans exactly the items of the partition: a merged search over both
partitions costs about one search of the whole gallery.

Graph indexes (``"HNSW32"``) cannot remove vectors. For them a removal is a mask: the item numbers that left
are set in a bitmap, and each search passes FAISS the selector "not in the bitmap" (``IDSelectorNot`` over
``IDSelectorBitmap``, through ``SearchParameters``), so the graph still routes through the removed items
but never returns them. Item numbers never come back once removed (an upgrade keys items by their row in
the old index, and a rewritten item gets a new row), so the mask only grows.

A factory index that must be trained (``"IVF1024,Flat"``) cannot be trained on the new partition's first
small batches. Until ``min_train`` vectors have arrived they wait in an exact flat index that is searched
alongside (the best k of both kept); then the factory index is trained on all of them and takes
them over.
"""

from __future__ import annotations

import faiss
import numpy as np

from hotswap.store.faiss.segment_search import FAISS_METRIC, top_k_live

MASKED_KINDS = ("HNSW", "NSG")  # graph indexes: no remove_ids


def _set_bits(bitmap: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``bitmap`` (uint8, little-endian bits) with the bits of ``rows`` set, grown to hold the largest."""
    need = (int(rows.max()) >> 3) + 1 if len(rows) else 0
    if need > len(bitmap):
        bitmap = np.concatenate([bitmap, np.zeros(max(need, 2 * len(bitmap)) - len(bitmap), np.uint8)])
    np.bitwise_or.at(bitmap, rows >> 3, (1 << (rows & 7)).astype(np.uint8))
    return bitmap


def _has_bits(bitmap: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Whether each of ``rows`` has its bit set in ``bitmap``."""
    inside = (rows >> 3) < len(bitmap)
    out = np.zeros(len(rows), bool)
    out[inside] = (bitmap[rows[inside] >> 3] >> (rows[inside] & 7)) & 1 == 1
    return out


class PartitionIndex:
    """Vectors of one model for a subset of item rows; search returns ``(D, rows)`` with -1 padding."""

    def __init__(self, dim: int, metric: str, factory: str = "Flat", min_train: int = 20_000) -> None:
        self.dim, self.metric, self.factory, self.min_train = int(dim), metric, factory, min_train
        self._index = self._idmap(factory)
        self._staged: faiss.IndexIDMap2 | None = None  # an untrained index's items, until there are enough to train
        if not self._index.is_trained:  # what _idmap("Flat") builds
            self._staged = faiss.IndexIDMap2(faiss.index_factory(self.dim, "Flat", FAISS_METRIC[self.metric]))
        self._masked = any(kind in factory.upper() for kind in MASKED_KINDS)
        self._added = np.zeros(0, np.uint8)  # masked mode: bitmaps over item numbers, added and removed
        self._removed = np.zeros(0, np.uint8)
        self._n_removed = 0

    def _idmap(self, factory: str) -> faiss.Index:
        """The factory index keyed by item number: IVF indexes hold ids natively (``IndexIDMap`` would break on
        their ``remove_ids``, which does not renumber); others (Flat) are wrapped in ``IndexIDMap2``."""
        index = faiss.index_factory(self.dim, factory, FAISS_METRIC[self.metric])
        return index if faiss.try_extract_index_ivf(index) is not None else faiss.IndexIDMap2(index)

    def __len__(self) -> int:
        n = int(self._index.ntotal) + (int(self._staged.ntotal) if self._staged is not None else 0)
        return n - self._n_removed

    def add(self, rows: np.ndarray, X: np.ndarray) -> None:
        """Add vectors ``X`` under item numbers ``rows``."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self._masked:
            self._added = _set_bits(self._added, rows)
        if self._staged is None:
            self._index.add_with_ids(X, rows)
            return
        self._staged.add_with_ids(X, rows)
        if self._staged.ntotal >= self.min_train:
            self._train_from_staged()

    def _train_from_staged(self) -> None:
        staged = self._staged
        assert staged is not None  # add() calls this while staging
        n = int(staged.ntotal)
        X = faiss.downcast_index(staged.index).reconstruct_n(0, n)
        rows = faiss.vector_to_array(staged.id_map).astype(np.int64)
        self._index.train(X)
        self._index.add_with_ids(X, rows)
        self._staged = None

    def remove(self, rows: np.ndarray) -> int:
        """Drop the given item numbers; returns how many were present."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if len(rows) == 0 or len(self) == 0:
            return 0
        if self._masked:
            rows = np.unique(rows)
            gone = rows[_has_bits(self._added, rows) & ~_has_bits(self._removed, rows)]
            self._removed = _set_bits(self._removed, gone)
            self._n_removed += len(gone)
            return len(gone)
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(rows))) if self._index.ntotal else 0
        if self._staged is not None and self._staged.ntotal:
            removed += int(self._staged.remove_ids(faiss.IDSelectorBatch(rows)))
        return removed

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` float32 scores (best first; worst score pads) and item rows (-1 pads)."""
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        D, P = self._search(self._index, Q, k)
        if self._staged is not None and self._staged.ntotal:  # the two hold different items: keep the best k
            D2, P2 = self._search(self._staged, Q, k)
            D, P = top_k_live(np.concatenate([D, D2], 1), np.concatenate([P, P2], 1), k, self.metric,
                              -np.inf if self.metric == "ip" else np.inf, np.empty(0, np.int64))
        return D, P

    def _search(self, index: faiss.Index, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        fill = -np.inf if self.metric == "ip" else np.inf
        if index.ntotal == 0:
            return np.full((len(Q), k), fill, np.float32), np.full((len(Q), k), -1, np.int64)
        if self._masked and self._n_removed:
            removed = self._removed  # the selector reads this buffer during the search: keep a reference
            keep = faiss.IDSelectorNot(faiss.IDSelectorBitmap(len(removed) * 8, faiss.swig_ptr(removed)))
            D, P = index.search(Q, k, params=self._params(keep))
            D[P < 0] = fill
            return D, P
        D, P = index.search(Q, k)
        D[P < 0] = fill
        return D, P

    def _params(self, selector: faiss.IDSelector) -> faiss.SearchParameters:
        """Search parameters with ``selector``; an HNSW graph searches wider the more items are masked, so that
        enough unmasked ones are reached (efSearch >= 2 x the default 16 x (1 + masked / kept), up to 1024)."""
        kept = max(1, len(self))
        if "HNSW" in self.factory.upper():
            ef = int(min(1024, max(64, 32 * (1 + self._n_removed / kept))))
            # faiss's bundled stubs lack SearchParametersHNSW and the keyword __init__ its Python wrapper adds
            return faiss.SearchParametersHNSW(sel=selector, efSearch=ef)  # type: ignore[attr-defined]
        return faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]  # stubs: __init__ takes no keywords
