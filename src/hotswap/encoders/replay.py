"""``ReplayEncoder``: serves embeddings a real encoder computed earlier, looked up by item id.

Experiments that backfill the same gallery several times (one run per ordering policy) encode the corpus
once with the real model (``encode_cached``) and replay those exact vectors, so each run stores what the model
would have produced. It carries the real model's ``id`` and ``dim``; its ``encode`` takes item *ids*.
Throughput is never measured through it: benchmarks and ``throughput`` fields use the real encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hotswap.errors import UnknownIdError


class ReplayEncoder:
    """``encode(ids)`` -> the rows of ``X`` stored for those ids, under the real model's ``id``."""

    def __init__(self, model_id: str, ids: Sequence[str], X: np.ndarray, name: str = "replay") -> None:
        if len(ids) != len(X):
            raise ValueError(f"{len(ids)} ids but {len(X)} vectors")
        self.id, self.name, self.dim = model_id, name, int(X.shape[1])
        self._row = {i: n for n, i in enumerate(ids)}
        self._X = np.asarray(X, np.float32)

    def encode(self, ids: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        if missing := [i for i in ids if i not in self._row]:
            raise UnknownIdError(f"{len(missing)} id(s) have no recorded embedding: {list(missing)[:5]}")
        return self._X[[self._row[i] for i in ids]]
