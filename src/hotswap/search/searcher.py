"""``Searcher``: one object that serves queries in any mode of ``hotswap.search.modes``."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any

import numpy as np

from hotswap.errors import HotswapError
from hotswap.search.modes import MODES, Partitions, SearchResult


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
    search: about 20 % of batch-256 throughput on 2 cores (README, benchmarks/search_modes.py). ``None`` leaves
    BLAS alone. The cap costs about 6 µs per call and is lifted when the call returns.
    """

    def __init__(self, old_store: Any, *, adapter: Any | None = None, new_store: Any | None = None,
                 blend: Any | None = None, old_encoder: Any | None = None, new_encoder: Any | None = None,
                 blas_threads: int | None = 1, upgrade: Any | None = None, calibration: Any | None = None) -> None:
        self.partitions = Partitions(old=old_store, new=new_store, adapter=adapter, blend=blend, upgrade=upgrade,
                                     calibration=calibration)
        self.blas_threads = blas_threads
        self.old_encoder, self.new_encoder = old_encoder, new_encoder

    def search(self, queries: np.ndarray | tuple[np.ndarray, np.ndarray], k: int, mode: str,
               model_id: str) -> SearchResult:
        """FAISS-style ``(D, I)`` (``I`` holds the stored string ids) for query embeddings of ``model_id``
        (for ``blended``, ``merged`` and ``calibrated``: the pair ``(new-model queries, old-model queries)``, ``model_id`` the new
        model's)."""
        if mode not in MODES:
            raise HotswapError(f"unknown search mode {mode!r}; available: {', '.join(MODES)}")
        with self._blas_cap():
            return MODES[mode](self.partitions, queries, k, model_id)

    @classmethod
    def for_upgrade(cls, upgrade: Any, **kwargs: Any) -> Searcher:
        """A searcher over an ``UpgradeStore`` mid-backfill: ``old`` searches the whole old index, ``new`` the
        new partition, and ``merged`` / ``calibrated`` / ``adapted`` / ``cross`` merge both partitions."""
        return cls(upgrade.old, upgrade=upgrade, **kwargs)

    def _blas_cap(self) -> AbstractContextManager:
        if self.blas_threads is None:
            return nullcontext()
        return _numpy_blas().limit(limits=self.blas_threads)

    def search_texts(self, texts: Sequence[str], k: int, mode: str) -> SearchResult:
        """Encode ``texts`` with the encoder(s) the mode needs (old for ``old``, both for ``blended`` and
        ``merged``, new otherwise), then search."""
        texts = list(texts)
        pair = ("new", "old")
        needs = {"old": ("old",), "blended": pair, "merged": pair, "calibrated": pair}.get(mode, ("new",))
        encoders = {"old": self.old_encoder, "new": self.new_encoder}
        if missing := [side for side in needs if encoders[side] is None]:
            raise HotswapError(f"mode {mode!r} needs the {' and '.join(missing)} encoder; pass it to the Searcher")
        encoded = tuple(encoders[side].encode(texts) for side in needs)
        return self.search(encoded if len(encoded) > 1 else encoded[0], k, mode, encoders[needs[0]].id)
