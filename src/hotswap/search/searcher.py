"""``Searcher``: one object that serves queries in any mode of ``hotswap.search.modes``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any

import numpy as np

from hotswap.errors import HotswapError
from hotswap.search.cascade import needs_old_queries
from hotswap.search.modes import MODE_OPTIONS, MODES, Partitions, SearchResult
from hotswap.search.write_back import Texts, WriteBack
from hotswap.store import Searchable
from hotswap.upgrade import Upgrade


@lru_cache(maxsize=1)
def _numpy_blas():
    """numpy's own BLAS pools only (FAISS ships its own OpenBLAS, whose threads its search does use)."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()  # inspecting the loaded libraries takes ms: once per process
    paths = [lib.filepath for lib in controller.lib_controllers if lib.user_api == "blas" and "numpy" in lib.filepath]
    return controller.select(filepath=paths)


class Searcher:
    """Search an old index (and optionally a new one) with old-model, adapted or new-model queries.

    >>> s = Searcher(old_store, adapter=adapter, new_store=new_store)
    >>> D, I = s.search(new_model_queries, k=10, mode="adapted", model_id=new_encoder.id)

    ``blas_threads`` (default 1) caps numpy's BLAS threads (not FAISS's) during a search. An adapter's small
    matmul gains nothing from them, and the threads they leave spinning take the cores from FAISS's OpenMP
    search: about 20 % of batch-256 throughput on 2 cores (docs/benchmarks.md, benchmarks/search_modes.py).
    ``None`` leaves BLAS alone. The cap costs about 6 µs per call and is lifted when the call returns.
    """

    def __init__(self, old_store: Searchable, *, adapter: Any | None = None, new_store: Searchable | None = None,
                 blend: Any | None = None, old_encoder: Any | None = None, new_encoder: Any | None = None,
                 blas_threads: int | None = 1, upgrade: Upgrade | None = None, calibration: Any | None = None,
                 write_back: WriteBack | None = None) -> None:
        self.partitions = Partitions(old=old_store, new=new_store, adapter=adapter, blend=blend, upgrade=upgrade,
                                     calibration=calibration, write_back=write_back)
        self.blas_threads = blas_threads
        self.old_encoder, self.new_encoder = old_encoder, new_encoder

    def search(self, queries: np.ndarray | tuple[np.ndarray, np.ndarray], k: int, mode: str,
               model_id: str, **options: Any) -> SearchResult:
        """FAISS-style ``(D, I)`` (``I`` holds the stored string ids) for query embeddings of ``model_id``
        (for ``blended``, ``merged`` and ``calibrated``: the pair ``(new-model queries, old-model queries)``,
        ``model_id`` the new model's). ``options`` go to modes that take them (``MODE_OPTIONS``: ``cascade``'s
        ``candidates``, ``encode_budget``, ``candidate_query``)."""
        if mode not in MODES:
            raise HotswapError(f"unknown search mode {mode!r}; available: {', '.join(MODES)}")
        if unknown := sorted(set(options) - set(MODE_OPTIONS.get(mode, ()))):
            takes = ", ".join(MODE_OPTIONS.get(mode, ())) or "none"
            raise HotswapError(f"mode {mode!r} takes no option {', '.join(map(repr, unknown))} (its options: {takes})")
        with self._blas_cap():
            return MODES[mode](self.partitions, queries, k, model_id, **options)

    @classmethod
    def for_upgrade(cls, upgrade: Upgrade, *, texts: Texts | None = None, flush_every: int = 256,
                    persist: bool = True, **kwargs: Any) -> Searcher:
        """A searcher over an upgrade mid-backfill: ``old`` searches the whole old index, ``new`` the new
        partition, and ``merged`` / ``calibrated`` / ``adapted`` / ``cross`` merge both partitions.

        With ``texts`` (``ids -> texts``) and ``new_encoder``, mode ``cascade`` re-scores old-index
        candidates with the new model and writes what it encodes back into the upgrade's new partition, in
        batches of ``flush_every`` (``flush()`` commits the rest); ``persist=False`` keeps its encodings in
        this searcher's memory only (a measurement that must leave the upgrade as it is)."""
        wb = None
        if texts is not None:
            if kwargs.get("new_encoder") is None:
                raise HotswapError("texts=... is for mode 'cascade', which also needs new_encoder=... (the model "
                                   "of the upgrade)")
            wb = WriteBack(upgrade, kwargs["new_encoder"], texts, flush_every, persist=persist)
        return cls(upgrade.old, upgrade=upgrade, write_back=wb, **kwargs)

    def flush(self) -> int:
        """Commit the cascade's encoded, not yet written vectors to the upgrade; returns how many were written."""
        wb = self.partitions.write_back
        return wb.flush() if wb is not None else 0

    def cascade_stats(self) -> dict[str, float]:
        """Cascade searches so far: queries, candidates, share already encoded, encodes per query, and the
        write-back's counts (encoded, waited, written, demanded, buffered)."""
        wb = self.partitions.write_back
        return {**self.partitions.cascade_counts.as_dict(), **(wb.as_dict() if wb is not None else {})}

    def _blas_cap(self) -> AbstractContextManager:
        if self.blas_threads is None:
            return nullcontext()
        return _numpy_blas().limit(limits=self.blas_threads)

    def search_texts(self, texts: Sequence[str], k: int, mode: str, **options: Any) -> SearchResult:
        """Encode ``texts`` with the encoder(s) the mode needs (old for ``old``, both for ``blended`` and
        ``merged``, new otherwise; ``cascade``: new, and old when its candidate query needs it), then search
        with ``options``."""
        texts = list(texts)
        pair = ("new", "old")
        needs = {"old": ("old",), "blended": pair, "merged": pair, "calibrated": pair}.get(mode, ("new",))
        if mode == "cascade" and needs_old_queries(self.partitions, options.get("candidate_query", "auto")):
            needs = pair
        encoders = {"old": self.old_encoder, "new": self.new_encoder}
        found = {side: enc for side in needs if (enc := encoders[side]) is not None}
        if missing := [side for side in needs if side not in found]:
            raise HotswapError(f"mode {mode!r} needs the {' and '.join(missing)} encoder; pass it to the Searcher")
        encoded = tuple(found[side].encode(texts) for side in needs)
        return self.search(encoded if len(encoded) > 1 else encoded[0], k, mode, found[needs[0]].id, **options)
