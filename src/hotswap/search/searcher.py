"""``Searcher``: one object that serves queries in any mode of ``hotswap.search.modes``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hotswap.errors import HotswapError
from hotswap.search.modes import MODES, Partitions, SearchResult


class Searcher:
    """Search an old index (and optionally a new one) with old-model, adapted or new-model queries.

    >>> s = Searcher(old_store, adapter=adapter, new_store=new_store)
    >>> D, I = s.search(new_model_queries, k=10, mode="adapted", model_id=new_encoder.id)
    """

    def __init__(self, old_store: Any, *, adapter: Any | None = None, new_store: Any | None = None,
                 old_encoder: Any | None = None, new_encoder: Any | None = None) -> None:
        self.partitions = Partitions(old=old_store, new=new_store, adapter=adapter)
        self.old_encoder, self.new_encoder = old_encoder, new_encoder

    def search(self, queries: np.ndarray, k: int, mode: str, model_id: str) -> SearchResult:
        """FAISS-style ``(D, I)`` (``I`` holds the stored string ids) for query embeddings of ``model_id``."""
        if mode not in MODES:
            raise HotswapError(f"unknown search mode {mode!r}; available: {', '.join(MODES)}")
        return MODES[mode](self.partitions, queries, k, model_id)

    def search_texts(self, texts: Sequence[str], k: int, mode: str) -> SearchResult:
        """Encode ``texts`` with the encoder the mode needs (old for ``old``, new otherwise), then search."""
        encoder = self.old_encoder if mode == "old" else self.new_encoder
        if encoder is None:
            raise HotswapError(f"mode {mode!r} needs the {'old' if mode == 'old' else 'new'} encoder; pass it")
        return self.search(encoder.encode(list(texts)), k, mode, encoder.id)
