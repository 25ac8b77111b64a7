"""The ``VectorStore`` protocol: what searchers, backfill runners and the service may rely on from any store
backend, and ``Backend``: what a backend gives the registry (``hotswap.store.registry``).

A store holds vectors written by exactly one model (``model_id``) and refuses vectors or queries from any
other model. Backends: FAISS files (the embedded default), qdrant local, milvus-lite and PostgreSQL + pgvector,
one sub-package each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from hotswap.errors import DuplicateIdError, InvalidVectorsError, ModelMismatchError, UnknownIdError
from hotswap.validation import as_matrix, check_k

if TYPE_CHECKING:
    from typing_extensions import Self

METRICS = ("ip", "l2")  # inner product (cosine on normalised vectors), squared Euclidean


def check_new_ids(ids: Sequence[str] | str, rows: int) -> list[str]:
    """A write's ids as a list: one non-empty, unique string per vector row, or an error naming the fix."""
    ids = [ids] if isinstance(ids, str) else list(ids)
    if bad := [i for i in ids if not isinstance(i, str)][:3]:
        raise TypeError(f"ids must be strings; got {bad!r}")
    if not ids or "" in ids or len(ids) != rows:
        raise InvalidVectorsError(f"need one non-empty string id per vector row; got {len(ids)} ids "
                                  f"({'with an empty id' if '' in ids else 'none empty'}) for {rows} rows")
    if len(set(ids)) != len(ids):
        dups = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise DuplicateIdError(f"{len(dups)} id(s) repeated within the batch: {dups[:5]}; make ids unique")
    return ids


def padded(hits: list[list[tuple[str, float]]], k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-query ``(id, score)`` lists, best first, as FAISS-style ``(D, I)`` of width ``k``: short rows padded
    with the worst score (``-inf`` for "ip", ``+inf`` for "l2") and ``None`` ids."""
    D = np.full((len(hits), k), -np.inf if metric == "ip" else np.inf, dtype=np.float32)
    I = np.full((len(hits), k), None, dtype=object)
    for r, row in enumerate(hits):
        for c, (i, score) in enumerate(row[:k]):
            D[r, c], I[r, c] = score, i
    return D, I


def in_order(rows: Mapping[str, np.ndarray], ids: Sequence[str], dim: int) -> np.ndarray:
    """float32 ``[len(ids), dim]``: the vector of each of ``ids`` (repeats allowed) from ``rows``, in order."""
    out = np.empty((len(ids), dim), dtype=np.float32)
    for r, i in enumerate(ids):
        out[r] = rows[i]
    return out


@runtime_checkable
class Searchable(Protocol):
    """What a search mode needs of an index: a store, or one partition of an upgrade (``PartitionView``)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def metric(self) -> str: ...

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class VectorStore(Protocol):
    """A versioned vector collection addressed by string ids, searched FAISS-style."""

    @property
    def backend(self) -> str:
        """The registry name of the store's backend ("faiss", "qdrant", "milvus", "postgres")."""

    @property
    def path(self) -> Path | str:
        """Where the store lives: its folder, or a server store's URI."""

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

    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *, skip_existing: bool = False) -> int:
        """Append vectors; refuse (writing nothing) on a model/dim mismatch, NaN/inf, or duplicate ids (with
        ``skip_existing``, already stored ids are left out instead); returns the number of rows written."""

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> int:
        """Write vectors under ids: new ids are appended, stored ids get the new vector (the old one is gone from
        search and get); refuses a bad batch like ``add`` (writing nothing); returns ``len(ids)``."""

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove ids (ids not stored are ignored); returns how many were stored."""

    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(D, I)``: float32 scores [nq, k] best first and string ids [nq, k] (``None`` = padding)."""

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 rows for ``ids`` in the order asked; unknown ids raise ``UnknownIdError``."""

    @property
    def uri(self) -> str:
        """The store URI that opens this store again."""

    def id_map(self) -> dict[str, int]:
        """id -> the row or insertion number it is stored under (read-only)."""

    def refresh(self) -> None:
        """See what other processes committed since this view last looked."""

    def verify(self) -> None:
        """Check the stored rows against the store's own record of them; ``CorruptStoreError`` naming the fix."""

    def close(self) -> None:
        """Let go of the store's files or database client (a closed view refuses further calls)."""

    def __enter__(self) -> VectorStore: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class Backend:
    """A backend as the registry knows it: how to create and open its stores and, for a database that holds
    several models side by side, how to add a model's (empty) vectors to a store, drop them (a rollback) and
    make a model the one served by default (a commit).

    ``family`` picks the upgrade implementation (``hotswap.upgrade``): ``"faiss"`` (one model per folder, an
    upgrade writes the new model's store in its own folder) or ``"database"`` (the new model goes into the
    same database as the old one).
    """

    name: str
    family: str
    create: Callable[..., VectorStore]  # (path, model_id, dim, metric="ip", **options)
    open: Callable[..., VectorStore]  # (path, model_id=None, **options)
    add_model: Callable[..., VectorStore] | None = None  # (path, model_id, dim, metric=None)
    drop_model: Callable[[Any, str], bool] | None = None  # (path, model_id) -> whether it was there
    serve_model: Callable[[Any, str], None] | None = None  # (path, model_id)
    adopt: Callable[..., VectorStore] | None = None  # (location, model_id, vector, text, id, metric, check)


class IdStoreMixin:
    """What every backend's store shares: ids from its ``_id_map()`` (id -> row, filling ``_ids`` in insertion
    order) and the model / dimension checks with their messages. Needs ``path``, ``model_id`` and ``dim``."""

    backend: ClassVar[str]
    path: Any
    _ids: list[str]

    if TYPE_CHECKING:  # each backend defines these as properties
        @property
        def model_id(self) -> str: ...

        @property
        def dim(self) -> int: ...

    def _id_map(self) -> dict[str, int]:
        raise NotImplementedError

    @property
    def uri(self) -> str:
        """The store URI that opens this store again."""
        return f"{self.backend}://{self.path}"

    def id_map(self) -> dict[str, int]:
        """id -> the row (FAISS) or insertion number (databases) it is stored under; read-only, do not modify."""
        return self._id_map()

    def close(self) -> None:
        """Let go of the store (nothing to release by default)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ids(self) -> list[str]:
        """All ids in insertion order (a copy)."""
        self._id_map()
        return list(self._ids)

    def contains(self, id: str) -> bool:
        return id in self._id_map()

    def __contains__(self, id: object) -> bool:
        return id in self._id_map()

    def _check_model(self, model_id: str, what: str, fix: str) -> None:
        if model_id != self.model_id:
            raise ModelMismatchError(f"{what} come from model {model_id!r} but store {self.path} holds vectors "
                                     f"of model {self.model_id!r}; {fix}")

    def _where(self) -> str:
        return (f"index dimension {self.dim} (model {self.model_id}); fit an adapter with "
                "'hotswap fit-adapter' or rebuild the index")

    def _check_queries(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, int]:
        """The checked ``(queries, k)`` of a search: this store's model and dim, finite rows, a valid k."""
        self._check_model(model_id, "queries", "map the queries with an adapter (hotswap fit-adapter) or "
                          "search in merged mode")
        return as_matrix(queries, dim=self.dim, name="queries", where=self._where()), check_k(k)

    def _check_ids(self, ids: list[str]) -> None:
        """Backend limits on ids (none by default)."""

    def _checked_batch(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> tuple[list[str], np.ndarray]:
        """The ids and float32 rows of a write, or an error (before anything is written) for a bad model, dim,
        value, id or an id repeated within the batch."""
        self._check_model(model_id, "vectors", f"encode them with {self.model_id!r}, or create a new store "
                          f"for {model_id!r} and backfill it")
        X = as_matrix(vectors, dim=self.dim, name="vectors", where=self._where())
        ids = check_new_ids(ids, len(X))
        self._check_ids(ids)
        return ids, X

    def _fresh_rows(self, ids: list[str], X: np.ndarray, skip_existing: bool) -> tuple[list[str], np.ndarray]:
        """The rows of an ``add`` whose ids are not stored yet: all of them, or ``DuplicateIdError`` naming the
        stored ones; with ``skip_existing`` the stored ones are left out instead (possibly all)."""
        pos = self._id_map()
        if skip_existing:
            keep = [r for r, i in enumerate(ids) if i not in pos]
            return [ids[r] for r in keep], X[keep]
        if dups := [i for i in ids if i in pos]:
            raise DuplicateIdError(f"{len(dups)} id(s) already in store {self.path}: {dups[:5]}; "
                                   "skip them or write to a new store")
        return ids, X

    def _known(self, ids: Sequence[str] | str) -> tuple[list[str], dict[str, int]]:
        """``ids`` as a list and the id map, or ``UnknownIdError`` naming the ids this store lacks."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        pos = self._id_map()
        self._refuse_unknown(ids, pos)
        return ids, pos

    def _refuse_unknown(self, ids: list[str], stored: Container[str]) -> None:
        """``UnknownIdError`` naming the ids of ``ids`` that are not in ``stored``."""
        if missing := [i for i in ids if i not in stored]:
            raise UnknownIdError(f"{len(missing)} id(s) not in store {self.path} (model {self.model_id}): "
                                 f"{missing[:5]}; check the ids, or add them first")
