"""The ``VectorStore`` protocol: what searchers and backfill runners may rely on from any store backend.

A store holds vectors written by exactly one model (``model_id``) and refuses vectors or queries from any
other model. Backends: ``FaissStore`` (embedded default); server backends (Milvus, Qdrant) implement the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorStore(Protocol):
    """A versioned vector collection addressed by string ids, searched FAISS-style."""

    @property
    def model_id(self) -> str:
        """Id of the model that wrote every vector in the store."""

    @property
    def dim(self) -> int:
        """Vector width."""

    @property
    def metric(self) -> str:
        """``"ip"`` (inner product; cosine on normalised vectors) or ``"l2"`` (squared Euclidean)."""

    @property
    def ids(self) -> list[str]:
        """All ids, in insertion order."""

    def __len__(self) -> int: ...

    def __contains__(self, id: object) -> bool: ...

    def contains(self, id: str) -> bool:
        """Whether ``id`` is stored."""

    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> None:
        """Append vectors; refuse (writing nothing) on a model/dim mismatch, NaN/inf, or duplicate ids."""

    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(D, I)``: float32 scores [nq, k] best first and string ids [nq, k] (``None`` = padding)."""

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 rows for ``ids`` in the order asked; unknown ids raise ``UnknownIdError``."""
