"""``DbStore``: the database-independent half of ``QdrantStore`` and ``MilvusStore``.

It validates exactly like ``FaissStore`` (same helpers, same error classes and wording), keeps the id map
(id -> insertion number ``seq``), pads short result lists the FAISS way (``None`` ids; ``-inf`` scores for
"ip", ``+inf`` for "l2"), and commits each ``add`` by rewriting the store file (see ``db_common``).
A subclass supplies the database calls: ``_scan``, ``_write``, ``_purge``, ``_query`` and ``_fetch``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hotswap.errors import CorruptStoreError
from hotswap.store.base import IdStoreMixin
from hotswap.store.db_common import Handle, acquire, find_model, read_store_file, release, write_store_file
from hotswap.store.segments import check_new_ids
from hotswap.validation import as_matrix

Hits = list[list[tuple[str, float]]]


class DbStore(IdStoreMixin):
    """A view of one model's vectors in a database folder; open it with the backend's ``open_*`` function."""

    backend: ClassVar[str]
    opener: ClassVar[str]

    def __init__(self, path: str | Path, model_id: str) -> None:
        self.path = Path(path)
        self._h: Handle | None = acquire(self.backend, self.path, self._connect, self._disconnect)
        self._ids: list[str] = []
        self._pos: dict[str, int] | None = None
        try:
            self._entry = find_model(self._h.data, model_id, self.path, "open one of those models, or add this "
                                     "one to the folder first")
            self._open()
            self._recover()
        except BaseException:
            self.close()
            raise

    @classmethod
    @contextmanager
    def handle(cls, path: Path) -> Iterator[Handle]:
        """The folder's shared client and store file, held for the ``with`` body (for folder-level changes)."""
        h = acquire(cls.backend, path, cls._connect, cls._disconnect)
        try:
            yield h
        finally:
            release(cls.backend, path)

    # ---- the database: each backend implements these ----------------------------------------------------
    # _open: check the model's vector / collection exists and make it searchable; _scan: (id, seq) of every
    # row of the model; _write: rows with seq = start, start + 1, ...; _purge: delete rows with seq >= count;
    # _query: per query up to ``limit`` (id, score) best first, scores as the protocol defines them;
    # _fetch: {id: row} for known, distinct ids whose seqs are ``rows``.
    @staticmethod
    def _connect(folder: Path) -> Any: ...
    @staticmethod
    def _disconnect(client: Any, folder: Path) -> None: ...
    def _open(self) -> None: ...
    def _scan(self) -> list[tuple[str, int]]: ...
    def _write(self, ids: list[str], X: np.ndarray, start: int) -> None: ...
    def _purge(self, count: int) -> None: ...
    def _query(self, Q: np.ndarray, limit: int) -> Hits: ...
    def _fetch(self, ids: list[str], rows: list[int]) -> dict[str, np.ndarray]: ...

    # ---- state -------------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The shared database client; ``ValueError`` once this view is closed."""
        if self._h is None:
            raise ValueError(f"store {self.path} (model {self._entry['model_id']}) is closed; reopen it with "
                             f"{self.opener}({str(self.path)!r}, {self._entry['model_id']!r})")
        return self._h.client

    def _model(self) -> dict[str, Any]:
        """This model's entry in the folder's store file (shared with other open views of the folder)."""
        self.client  # noqa: B018 - raises once closed
        return find_model(self._h.data, self._entry["model_id"], self.path, "reopen the store")

    def _recover(self) -> None:
        """Adopt the store file on disk and delete rows it does not count (crash leftovers)."""
        self._h.data = read_store_file(self.path, self.backend)
        self._purge(self._model()["count"])
        self._pos = None

    def close(self) -> None:
        """Release this view; the folder's database client is closed with its last open view."""
        if self._h is not None:
            self._h = None
            release(self.backend, self.path)

    def __enter__(self) -> DbStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model_id(self) -> str:
        return self._entry["model_id"]

    @property
    def key(self) -> str:
        """Name of this model's vector (qdrant) or collection (milvus) in the database."""
        return self._entry["key"]

    @property
    def dim(self) -> int:
        return self._entry["dim"]

    @property
    def metric(self) -> str:
        return self._entry["metric"]

    def __len__(self) -> int:
        return self._model()["count"]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, model_id={self.model_id!r}, dim={self.dim}, "
                f"metric={self.metric!r})")

    # ---- ids ---------------------------------------------------------------------------------------------
    def _id_map(self) -> dict[str, int]:
        """id -> seq, read from the database on first use and whenever another view added rows."""
        count = len(self)
        if self._pos is None or len(self._ids) != count:
            rows = sorted(self._scan(), key=lambda r: r[1])
            if [s for _, s in rows] != list(range(count)) or len({i for i, _ in rows}) != count:
                raise CorruptStoreError(f"the {self.backend} database in {self.path} holds {len(rows)} rows of "
                                        f"model {self.model_id} but the store file counts {count} (or their "
                                        "numbering has gaps); restore the folder from a backup or rebuild it")
            self._ids = [i for i, _ in rows]
            self._pos = {i: s for i, s in rows}
        return self._pos

    # ---- writing -----------------------------------------------------------------------------------------

    def _check_ids(self, ids: list[str]) -> None:
        """Backend limits on ids (none by default)."""

    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *, skip_existing: bool = False) -> int:
        """Append rows; refuses (writing nothing) bad model, dim, values, ids or duplicates (``skip_existing``:
        leaves stored ids out instead). Returns the number of rows written."""
        self._check_model(model_id, "vectors", f"encode them with {self.model_id!r}, or create a new store "
                          f"for {model_id!r} and backfill it")
        X = as_matrix(vectors, dim=self.dim, name="vectors", where=self._where())
        ids = check_new_ids(ids, len(X))
        self._check_ids(ids)
        ids, X = self._fresh_rows(ids, X, skip_existing)
        if not ids:
            return 0
        pos = self._id_map()
        start = len(pos)
        data = {**self._h.data, "models": [{**m, "count": start + len(ids)} if m["model_id"] == self.model_id
                                           else m for m in self._h.data["models"]]}
        try:
            self._write(ids, X, start)
            write_store_file(self.path, data)  # the commit point
        except BaseException:
            self._recover()
            raise
        self._h.data = data
        self._ids.extend(ids)
        pos.update(zip(ids, range(start, start + len(ids))))
        return len(ids)

    # ---- reading -----------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-style ``(D, I)``: float32 [nq, k] best first, string ids [nq, k] (``None`` pads short lists)."""
        Q, k = self._check_queries(queries, k, model_id)
        n = len(self)
        hits = self._query(Q, min(k, n)) if n and len(Q) else [[] for _ in range(len(Q))]
        D = np.full((len(Q), k), -np.inf if self.metric == "ip" else np.inf, dtype=np.float32)
        I = np.full((len(Q), k), None, dtype=object)
        for r, row in enumerate(hits):
            for c, (i, score) in enumerate(row[:k]):
                D[r, c], I[r, c] = score, i
        return D, I

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]`` rows in the order asked; unknown ids raise ``UnknownIdError``."""
        ids, pos = self._known(ids)
        distinct = list(dict.fromkeys(ids))
        rows = self._fetch(distinct, [pos[i] for i in distinct])
        if lost := [i for i in distinct if i not in rows][:5]:
            raise CorruptStoreError(f"the {self.backend} database in {self.path} lost the vectors of {lost} "
                                    f"(model {self.model_id}); restore the folder from a backup or rebuild it")
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for r, i in enumerate(ids):
            out[r] = rows[i]
        return out
