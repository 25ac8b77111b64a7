"""``FaissStore``: the embedded default store, a folder of append-only segments plus ``manifest.json``.

Layout::

    store/manifest.json              model_id, dim, metric, count, segment list (rows, bytes, sha256), checksum
    store/seg-000001.vectors.npy     float32 [rows, dim], plain ``np.save`` (never pickled)
    store/seg-000001.ids.json        the segment's ids, a JSON list of strings
    store/.lock                      ``flock`` taken by writers only

Writes: ``add`` appends a segment; ``upsert`` appends one and marks the rows it replaces dead; ``delete`` marks
rows dead (``Manifest.dead``: listed files are never rewritten). Searches ask each segment for k plus its dead
rows and drop them. Once 16 small segments (< 4096 rows) trail a Flat store, the next write merges them into
its own segment, rows keeping their numbers (their files are then removed as orphans by a later write).

Crash safety: each write puts its new segment's two files with ``atomic_write`` (temp file, fsync, rename,
fsync folder), and only then replaces ``manifest.json`` the same way. Readers trust nothing the manifest does
not list, and listed files are never modified or deleted, so a process killed at any point leaves the old
state (plus ignored orphan files, which the next ``add`` removes under the lock) or the new one, never a mix.

Reading: ``open_store`` memory-maps every segment (``np.load(mmap_mode="r")``) and checks sizes only; ids are
parsed lazily on first use. A "Flat" store searches the mapped segments directly with ``faiss.knn`` and
merges per-segment top-k, so no second copy of the vectors is held. Other factory strings ("IVF256,Flat")
build a FAISS index lazily, trained on a sample of the stored vectors, and extended on each ``add``.
A store object is a snapshot: appends by other processes are seen after ``refresh()`` or a new
``open_store``; ``add`` always refreshes under the lock first, so concurrent writers never lose segments.

Segment file I/O (mapping, ids, writing, orphan cleanup, the lock) lives in ``segments.py``; search over the
mapped segments (per-segment ``faiss.knn`` + merge, the factory index) in ``segment_search.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from hotswap.errors import CorruptStoreError, ModelMismatchError
from hotswap.store.base import METRICS, IdStoreMixin, VectorStore
from hotswap.store.faiss.manifest import Manifest, check_segment_files, read_manifest, write_manifest
from hotswap.store.faiss.segment_search import build_index, check_factory, gather_rows, search_segments
from hotswap.store.faiss.segments import map_segment, read_ids, remove_orphans, write_segment, writer_lock

SMALL_SEGMENT = 4096  # rows: a segment smaller than this is "small"
MERGE_AT = 16  # merge a tail of this many small segments into the next write's segment


class FaissStore(IdStoreMixin):
    """Vectors of one model in a folder; build with ``hotswap.store.create_store`` / ``open_store``, not directly."""

    backend = "faiss"

    def __init__(self, path: str | Path, manifest: Manifest) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # held while the in-memory view changes (writes, refresh, id parsing)
        self._reset(manifest)

    def _reset(self, manifest: Manifest) -> None:
        with self._lock:
            self._vectors: list[np.ndarray] = []
            self._starts: list[int] = []
            self._row_ids: list[str] | None = None  # the id of every row, dead ones too
            self._id_array: np.ndarray | None = None
            self._pos: dict[str, int] | None = None  # live id -> row, in row order
            self._dead: frozenset[int] = frozenset()
            self._index: faiss.Index | None = None
            self._attach(manifest)

    def _attach(self, manifest: Manifest) -> None:
        """Map the segments of ``manifest`` beyond those already attached, take in its dead rows, adopt it.
        Searches read ``_snap`` (segments, starts, dead rows), replaced whole at the end: a search running
        beside a write sees the store before it or after it, never a segment without its dead rows."""
        with self._lock:
            new = manifest.segments[len(self._vectors):]
            check_segment_files(self.path, new)
            mapped = [map_segment(self.path, seg, manifest.dim) for seg in new]
            new_ids = [read_ids(self.path, seg) for seg in new] if self._row_ids is not None else []
            killed = sorted(set(manifest.dead) - self._dead)
            vectors, starts = list(self._vectors), list(self._starts)
            for X in mapped:  # everything is validated: commit
                starts.append(starts[-1] + len(vectors[-1]) if vectors else 0)
                vectors.append(X)
                if self._index is not None:
                    self._index.add(X)
            self._vectors, self._starts, self._dead = vectors, starts, frozenset(manifest.dead)
            row_ids, pos = self._row_ids, self._pos  # parsed (both) or not yet (both None)
            if row_ids is not None and pos is not None:
                for row in killed:  # rows attached before, dead now (rows of the new segments are skipped below)
                    if row < len(row_ids) and pos.get(row_ids[row]) == row:
                        del pos[row_ids[row]]
                for ids in new_ids:
                    self._extend_ids(row_ids, pos, ids)
                self._id_array = None
            self.manifest = manifest
            self._snap = (tuple(vectors), tuple(starts), np.asarray(manifest.dead, dtype=np.int64))

    @property
    def model_id(self) -> str:
        """Id of the model that wrote every vector."""
        return self.manifest.model_id

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def metric(self) -> str:
        """``"ip"`` or ``"l2"``."""
        return self.manifest.metric

    def __len__(self) -> int:
        return self.manifest.live

    def __repr__(self) -> str:
        return f"FaissStore({str(self.path)!r}, model_id={self.model_id!r}, dim={self.dim}, count={len(self)})"

    # ---- ids ---------------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """The live ids in row order (an upserted id moves to the end)."""
        pos = self._id_map()
        with self._lock:
            return list(pos)

    def _extend_ids(self, row_ids: list[str], pos: dict[str, int], ids: list[str]) -> None:
        """Append ``ids`` (the next rows) to ``row_ids`` and the live ones to ``pos``."""
        start = len(row_ids)
        row_ids.extend(ids)
        for row, i in enumerate(ids, start):
            if row in self._dead:
                continue
            if i in pos:  # only a hand-edited store can get here: writes never leave an id live twice
                self._row_ids = self._pos = None
                raise CorruptStoreError(f"store {self.path} holds the same live id twice ({i!r}); restore it from "
                                        "a backup")
            pos[i] = row

    def _id_map(self) -> dict[str, int]:
        """live id -> global row, parsed from the segments' ids files on first use."""
        if self._pos is None:
            with self._lock:
                if self._pos is None:
                    row_ids: list[str] = []
                    pos: dict[str, int] = {}
                    self._extend_ids(row_ids, pos, [i for seg in self.manifest.segments
                                                    for i in read_ids(self.path, seg)])
                    self._row_ids, self._pos = row_ids, pos
        return self._pos

    # ---- writing -----------------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *, skip_existing: bool = False) -> int:
        """Append one segment; refuses (writing nothing) bad model, dim, values, ids or duplicates. With
        ``skip_existing`` the ids already stored (by this or another process: checked under the writer lock)
        are left out instead of refused. Returns the number of rows written."""
        ids, X = self._checked_batch(ids, vectors, model_id)
        with writer_lock(self.path):
            self.refresh()
            ids, X = self._fresh_rows(ids, X, skip_existing)
            if not ids:
                return 0
            self._commit(ids, X, ())
        return len(ids)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> int:
        """Write ``vectors`` under ``ids`` in one atomic step: new ids are appended, stored ones get the new
        vector (their old row turns dead, the id moves to the end of ``ids``). Same checks as ``add``, minus
        the duplicate refusal. Returns ``len(ids)``."""
        ids, X = self._checked_batch(ids, vectors, model_id)
        with writer_lock(self.path):
            self.refresh()
            pos = self._id_map()
            self._commit(ids, X, [pos[i] for i in ids if i in pos])
        return len(ids)

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove ``ids`` (ids not stored are ignored) in one atomic manifest write; returns how many were
        stored. The rows stay in their segment files, marked dead (``Manifest.dead``)."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        if bad := [i for i in ids if not isinstance(i, str)][:3]:
            raise TypeError(f"ids must be strings; got {bad!r}")
        with writer_lock(self.path):
            self.refresh()
            pos = self._id_map()
            rows = [pos[i] for i in dict.fromkeys(ids) if i in pos]
            if rows:
                self._commit([], None, rows)
        return len(rows)

    def _commit(self, ids: list[str], X: np.ndarray | None, dead: Sequence[int]) -> None:
        """Under the writer lock: write a segment of ``ids`` (if any), mark ``dead`` rows, replace the manifest.
        A Flat store merges a tail of ``MERGE_AT`` small segments into the new one (rows keep their numbers),
        so that many small writes do not leave a search with thousands of segments to scan."""
        remove_orphans(self.path, self.manifest)
        merged = self._small_tail() if ids else 0
        seg = None
        if merged:
            tail = self.manifest.segments[-merged:]
            ids = [i for s in tail for i in read_ids(self.path, s)] + ids
            X = np.concatenate([*self._vectors[-merged:], X])
        if ids:
            assert X is not None  # a write of ids carries their rows; only a delete has none
            seg = write_segment(self.path, self.manifest.next_segment_name(), ids, X)
        manifest = self.manifest.with_writes(seg, dead, merged)
        write_manifest(self.path, manifest)
        if merged:
            self._reset(manifest)
        else:
            self._attach(manifest)

    def _small_tail(self) -> int:
        """How many trailing segments to merge into the next one: the tail of small ones once it is long."""
        if self.manifest.index_factory.strip() != "Flat":
            return 0
        n = 0
        for seg in reversed(self.manifest.segments):
            if seg.rows >= SMALL_SEGMENT:
                break
            n += 1
        return n if n >= MERGE_AT else 0

    def refresh(self) -> None:
        """Re-read ``manifest.json``: map segments appended and drop rows removed by other processes since."""
        disk = read_manifest(self.path)
        if disk.checksum == self.manifest.checksum:
            return
        n = len(self.manifest.segments)
        if disk.segments[:n] == self.manifest.segments and self._dead <= set(disk.dead):
            self._attach(disk)
        else:
            self._reset(disk)

    # ---- reading -----------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-style ``(D, I)``: float32 [nq, k] best first, string ids [nq, k] (``None`` pads short lists)."""
        Q, k = self._check_queries(queries, k, model_id)
        vectors, starts, dead = self._snap
        index = None if self.manifest.index_factory.strip() == "Flat" or not vectors else self._get_index()
        D, P = search_segments(Q, k, vectors, starts, self.metric, index, dead)
        return D, self.ids_at(P)

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        """The string ids stored at global ``rows`` (any shape; -1 -> ``None``), as an object array."""
        table = self._id_array
        if table is None or len(table) <= (int(rows.max()) if rows.size else -1):
            with self._lock:
                self._id_map()
                assert self._row_ids is not None  # parsed by _id_map, under the same lock
                table = self._id_array = np.array(self._row_ids + [None], dtype=object)  # position -1 -> None
        return table[rows]

    def _get_index(self) -> faiss.Index:
        """Build (and train on a sample of up to 200k stored rows) the factory index, once per process."""
        with self._lock:
            if self._index is None:
                self._index = build_index(self.dim, self.manifest.index_factory, self.metric, self._vectors,
                                          self.manifest.count)
            return self._index

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]`` rows in the order asked; unknown ids raise ``UnknownIdError``."""
        with self._lock:
            ids, pos = self._known(ids)
            P = np.fromiter((pos[i] for i in ids), dtype=np.int64, count=len(ids))
            return gather_rows(self._vectors, self._starts, P, self.dim)

    def verify(self) -> None:
        """Recompute every listed file's sha256; raise ``CorruptStoreError`` naming the first bad file."""
        check_segment_files(self.path, self.manifest.segments, checksums=True)


def create_faiss_store(path: str | Path, model_id: str, dim: int, metric: str = "ip",
                       index_factory: str = "Flat") -> FaissStore:
    """Create an empty store in ``path`` (new or empty folder) for vectors of ``model_id``."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; open it with open_store({str(path)!r}) "
                              "or choose a new folder")
    if not model_id or not isinstance(model_id, str):
        raise ValueError(f"model_id must be a non-empty string; got {model_id!r}")
    if metric not in METRICS or not isinstance(dim, (int, np.integer)) or dim <= 0:
        raise ValueError(f"need metric in {METRICS} and a positive dim; got metric={metric!r}, dim={dim!r}")
    check_factory(int(dim), index_factory, metric)
    manifest = Manifest(model_id=model_id, dim=int(dim), metric=metric, index_factory=index_factory)
    path.mkdir(parents=True, exist_ok=True)
    write_manifest(path, manifest)
    return FaissStore(path, manifest)


def open_faiss_store(path: str | Path, model_id: str | None = None, verify: bool = False) -> FaissStore:
    """Open a store: read the manifest, check file sizes, memory-map segments; ``verify`` adds sha256 checks.
    A folder holds one model: asking for another (``model_id``) raises ``ModelMismatchError``."""
    store = FaissStore(path, read_manifest(path))
    if model_id is not None and model_id != store.model_id:
        raise ModelMismatchError(f"store {path} holds vectors of model {store.model_id!r}, not {model_id!r}; "
                                 "open the store built for that model, or backfill one")
    if verify:
        store.verify()
    return store


if TYPE_CHECKING:  # mypy checks FaissStore against the VectorStore protocol: a signature drift fails type checking
    _faiss_store: type[VectorStore] = FaissStore
