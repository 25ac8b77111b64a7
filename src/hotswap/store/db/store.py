"""``DbStore``: the database-independent half of ``QdrantStore`` and ``MilvusStore``.

It validates exactly like ``FaissStore`` (same helpers, same error classes and wording), keeps the id map
(id -> insertion number ``seq``), pads short result lists the FAISS way (``None`` ids; ``-inf`` scores for
"ip", ``+inf`` for "l2"), and commits each ``add`` by rewriting the store file (see ``hotswap.store.db.common``).

Writes: ``add`` appends; ``upsert`` replaces the vectors of stored ids in place (same seq, one write per row:
a kill midway leaves each id with its old or its new vector) and appends the other ids like ``add``;
``delete`` removes rows and counts them in the store file's ``deleted`` (recorded first as ``deleting``, so a
delete that dies is finished at the next open). Every open view of a folder in a process shares one copy
of the store file; a view rebuilds its id map when the model's ``(count, deleted)`` moved since it last read.

``search_without`` searches the rows whose id another model's view lacks (an upgrade's old partition): here a
post-filter that re-asks short rows with ``k'`` doubled; a backend that can filter in its query overrides it.

A subclass supplies the database calls: ``_scan``, ``_write``, ``_replace``, ``_remove``, ``_purge``,
``_query`` and ``_fetch``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hotswap.errors import CorruptStoreError
from hotswap.store.base import IdStoreMixin, in_order, padded
from hotswap.store.db.common import (
    Handle,
    acquire,
    find_model,
    live_rows,
    read_store_file,
    release,
    with_model,
    write_store_file,
)

Hits = list[list[tuple[str, float]]]


def _serialised(method: Callable) -> Callable:
    """Run ``method`` holding the folder handle's lock: the qdrant local and milvus-lite clients are not safe
    for a write concurrent with a read, and every view of a folder in a process shares one client."""
    @functools.wraps(method)
    def run(self: DbStore, *args: Any, **kwargs: Any) -> Any:
        with self._h.lock if self._h is not None else nullcontext():
            return method(self, *args, **kwargs)
    return run


class DbStore(IdStoreMixin):
    """A view of one model's vectors in a database folder; open it with the backend's ``open_*`` function."""

    backend: ClassVar[str]
    opener: ClassVar[str]

    def __init__(self, path: str | Path, model_id: str) -> None:
        self.path = Path(path)
        self._h: Handle | None = acquire(self.backend, self.path, self._connect, self._disconnect)
        self._ids: list[str] = []
        self._pos: dict[str, int] | None = None
        self._seen: tuple[int, int] | None = None  # the model's (count, deleted) when _ids / _pos were read
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
    # row of the model; _write: rows with seq = start, start + 1, ...; _replace: new vectors for stored ids,
    # keeping their seqs; _remove: delete the model's rows with the given seqs (seqs not there are ignored);
    # _purge: delete rows with seq >= count; _query: per query up to ``limit`` (id, score) best first,
    # scores as the protocol defines them; _fetch: {id: row} for known, distinct ids whose seqs are ``rows``.
    @staticmethod
    def _connect(folder: Path) -> Any: ...
    @staticmethod
    def _disconnect(client: Any, folder: Path) -> None: ...
    def _open(self) -> None: ...
    def _scan(self) -> list[tuple[str, int]]: raise NotImplementedError
    def _write(self, ids: list[str], X: np.ndarray, start: int) -> None: ...
    def _replace(self, ids: list[str], X: np.ndarray, seqs: list[int]) -> None: ...
    def _remove(self, seqs: list[int]) -> None: ...
    def _purge(self, count: int) -> None: ...
    def _query(self, Q: np.ndarray, limit: int) -> Hits: raise NotImplementedError
    def _fetch(self, ids: list[str], rows: list[int]) -> dict[str, np.ndarray]: raise NotImplementedError

    # ---- state -------------------------------------------------------------------------------------------
    def _handle(self) -> Handle:
        """The folder's shared handle (client and store file); ``ValueError`` once this view is closed."""
        if self._h is None:
            raise ValueError(f"store {self.path} (model {self._entry['model_id']}) is closed; reopen it with "
                             f"{self.opener}({str(self.path)!r}, {self._entry['model_id']!r})")
        return self._h

    @property
    def client(self) -> Any:
        """The shared database client; ``ValueError`` once this view is closed."""
        return self._handle().client

    def _model(self) -> dict[str, Any]:
        """This model's entry in the folder's store file (shared with other open views of the folder)."""
        return find_model(self._handle().data, self._entry["model_id"], self.path, "reopen the store")

    def _recover(self) -> None:
        """Adopt the store file on disk, delete rows it does not count (crash leftovers) and finish a delete
        that died after recording its intent."""
        self._handle().data = read_store_file(self.path, self.backend)
        self._purge(self._model()["count"])
        self._pos = None
        if seqs := self._model().get("deleting"):
            self._remove(seqs)  # again: the rows the dead delete removed already are ignored
            self._commit_deletes(len(seqs))

    def _commit(self, entry: dict[str, Any]) -> None:
        """Replace this model's entry in the store file (atomically), then in the shared copy."""
        h = self._handle()
        data = with_model(h.data, entry)
        write_store_file(self.path, data)
        h.data = data

    def _commit_deletes(self, n: int) -> None:
        """Count ``n`` more deleted rows and drop the ``deleting`` intent: the commit point of a delete."""
        m = {k: v for k, v in self._model().items() if k != "deleting"}
        self._commit({**m, "deleted": m.get("deleted", 0) + n})

    def close(self) -> None:
        """Release this view; the folder's database client is closed with its last open view."""
        if self._h is not None:
            self._h = None
            release(self.backend, self.path)

    @property
    def closed(self) -> bool:
        return self._h is None

    @_serialised
    def refresh(self) -> None:
        """Re-read the store file: what another process committed since this folder was opened here (every view
        of the folder in this process sees it)."""
        self._handle().data = read_store_file(self.path, self.backend)

    @_serialised
    def verify(self) -> None:
        """Re-read every id and seq from the database and check them against the store file."""
        self._pos = None
        self._id_map()

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
        return live_rows(self._model())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, model_id={self.model_id!r}, dim={self.dim}, "
                f"metric={self.metric!r})")

    # ---- ids ---------------------------------------------------------------------------------------------
    def _version(self) -> tuple[int, int]:
        """The model's ``(count, deleted)``: changes with every append and every delete, in any view."""
        m = self._model()
        return m["count"], m.get("deleted", 0)

    @_serialised
    def _id_map(self) -> dict[str, int]:
        """id -> seq, read from the database on first use and whenever another view appended or deleted."""
        if self._model().get("deleting"):  # a delete whose commit failed in this process: finish it first
            self._recover()
        if self._pos is None or self._seen != self._version():
            count, live = self._model()["count"], len(self)
            rows = sorted(self._scan(), key=lambda r: r[1])
            seqs = [s for _, s in rows]
            if (len(rows) != live or len({i for i, _ in rows}) != live or len(set(seqs)) != live
                    or any(not 0 <= s < count for s in seqs)):
                raise CorruptStoreError(f"the {self.backend} database in {self.path} holds {len(rows)} rows of "
                                        f"model {self.model_id} but the store file counts {live} ({count} added, "
                                        f"{count - live} deleted), or their ids or seqs repeat or reach {count}; "
                                        "restore the folder from a backup or rebuild it")
            self._ids = [i for i, _ in rows]
            self._pos = {i: s for i, s in rows}
            self._seen = self._version()
        return self._pos

    # ---- writing -----------------------------------------------------------------------------------------

    @_serialised
    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *, skip_existing: bool = False) -> int:
        """Append rows; refuses (writing nothing) bad model, dim, values, ids or duplicates (``skip_existing``:
        leaves stored ids out instead). Returns the number of rows written."""
        ids, X = self._checked_batch(ids, vectors, model_id)
        ids, X = self._fresh_rows(ids, X, skip_existing)
        if ids:
            self._append(ids, X)
        return len(ids)

    def _append(self, ids: list[str], X: np.ndarray) -> None:
        """Write rows of new ids with seqs from the model's count on, then commit the new count."""
        pos = self._id_map()
        start = self._model()["count"]  # seqs are never reused: deleted rows leave gaps
        entry = {**self._model(), "count": start + len(ids)}
        try:
            self._write(ids, X, start)
            self._commit(entry)  # the commit point
        except BaseException:
            self._recover()
            raise
        self._ids.extend(ids)
        pos.update(zip(ids, range(start, start + len(ids))))
        self._seen = self._version()

    @_serialised
    def upsert(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> int:
        """Write ``vectors`` under ``ids``: stored ids get the new vector in place (the old one is gone from
        search and get), the others are appended like ``add``. Refuses a bad batch like ``add`` (model, dim,
        values, ids, ids repeated within it), writing nothing. Returns ``len(ids)``."""
        ids, X = self._checked_batch(ids, vectors, model_id)
        pos = self._id_map()
        stored = [r for r, i in enumerate(ids) if i in pos]
        if stored:
            self._replace([ids[r] for r in stored], X[stored], [pos[ids[r]] for r in stored])
        if new := [r for r, i in enumerate(ids) if i not in pos]:
            self._append([ids[r] for r in new], X[new])
        return len(ids)

    @_serialised
    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove ``ids`` of this model (ids not stored are ignored); returns how many were stored."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        if bad := [i for i in ids if not isinstance(i, str)][:3]:
            raise TypeError(f"ids must be strings; got {bad!r}")
        pos = self._id_map()
        gone = [i for i in dict.fromkeys(ids) if i in pos]
        if not gone:
            return 0
        seqs = sorted(pos[i] for i in gone)
        self._commit({**self._model(), "deleting": seqs})  # the intent: a delete that dies is finished later
        try:
            self._remove(seqs)
            self._commit_deletes(len(seqs))  # the commit point
        except BaseException:
            self._recover()  # finishes the delete
            raise
        dropped = set(gone)
        self._ids = [i for i in self._ids if i not in dropped]
        for i in gone:
            del pos[i]
        self._seen = self._version()
        return len(gone)

    # ---- reading -----------------------------------------------------------------------------------------
    @_serialised
    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-style ``(D, I)``: float32 [nq, k] best first, string ids [nq, k] (``None`` pads short lists)."""
        Q, k = self._check_queries(queries, k, model_id)
        n = len(self)
        return padded(self._query(Q, min(k, n)) if n and len(Q) else [[] for _ in range(len(Q))], k, self.metric)

    def search_without(self, Q: np.ndarray, k: int, other: DbStore) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` over this model's items whose id ``other`` (another model's view of the same database)
        lacks: an upgrade's old partition. ``Q`` must be checked already. Asks for ``k'`` results and drops the
        ids ``other`` holds; rows left short of ``k`` are asked again with ``k'`` doubled, up to
        ``k + len(other)`` (enough by construction). The first ``k'`` is ``1.25 k / (1 - f)``, ``f`` the share
        of ids ``other`` holds: about ``2k`` at half way, ``10k`` at 90 %."""
        done, n = other.id_map(), len(self)
        D = np.full((len(Q), k), -np.inf if self.metric == "ip" else np.inf, dtype=np.float32)
        I = np.full((len(Q), k), None, dtype=object)
        if n <= len(done) or not len(Q):
            return D, I
        cap = min(n, k + len(done))  # the top k + |done| hold >= k items other lacks
        kk = min(cap, k if not done else math.ceil(1.25 * k * n / (n - len(done))))
        rows = np.arange(len(Q))
        while len(rows):
            Dk, Ik = self.search(Q[rows], kk, self.model_id)
            short = []
            for r, d, i in zip(rows, Dk, Ik):
                keep = [c for c, x in enumerate(i) if x is not None and x not in done][:k]
                D[r, :len(keep)], I[r, :len(keep)] = d[keep], i[keep]
                if len(keep) < k and kk < cap:
                    short.append(r)
            rows, kk = np.array(short, dtype=np.int64), min(cap, 2 * kk)
        return D, I

    @_serialised
    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]`` rows in the order asked; unknown ids raise ``UnknownIdError``."""
        ids, pos = self._known(ids)
        distinct = list(dict.fromkeys(ids))
        rows = self._fetch(distinct, [pos[i] for i in distinct])
        if lost := [i for i in distinct if i not in rows][:5]:
            raise CorruptStoreError(f"the {self.backend} database in {self.path} lost the vectors of {lost} "
                                    f"(model {self.model_id}); restore the folder from a backup or rebuild it")
        return in_order(rows, ids, self.dim)
