"""``FaissStore``: the embedded default store, a folder of append-only segments plus ``manifest.json``.

Layout::

    store/manifest.json              model_id, dim, metric, count, segment list (rows, bytes, sha256), checksum
    store/seg-000001.vectors.npy     float32 [rows, dim], plain ``np.save`` (never pickled)
    store/seg-000001.ids.json        the segment's ids, a JSON list of strings
    store/.lock                      ``flock`` taken by writers only

Crash safety: ``add`` writes the new segment's two files with ``atomic_write`` (temp file, fsync, rename,
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

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from hotswap.errors import CorruptStoreError
from hotswap.store.base import IdStoreMixin
from hotswap.store.manifest import METRICS, Manifest, check_segment_files, read_manifest, write_manifest
from hotswap.store.segment_search import build_index, check_factory, gather_rows, search_segments
from hotswap.store.segments import check_new_ids, map_segment, read_ids, remove_orphans, write_segment, writer_lock
from hotswap.validation import as_matrix


class FaissStore(IdStoreMixin):
    """Vectors of one model in a folder; build with ``create_store`` / ``open_store``, not directly."""

    def __init__(self, path: str | Path, manifest: Manifest) -> None:
        self.path = Path(path)
        self._reset(manifest)

    def _reset(self, manifest: Manifest) -> None:
        self._vectors: list[np.ndarray] = []
        self._starts: list[int] = []
        self._ids: list[str] | None = None
        self._id_array: np.ndarray | None = None
        self._pos: dict[str, int] | None = None
        self._index: faiss.Index | None = None
        self._attach(manifest)

    def _attach(self, manifest: Manifest) -> None:
        """Map the segments of ``manifest`` beyond those already attached, then adopt ``manifest``."""
        new = manifest.segments[len(self._vectors):]
        check_segment_files(self.path, new)
        mapped = [map_segment(self.path, seg, manifest.dim) for seg in new]
        new_ids = [read_ids(self.path, seg) for seg in new] if self._ids is not None else []
        for X in mapped:  # everything is validated: commit
            self._starts.append(self._starts[-1] + len(self._vectors[-1]) if self._vectors else 0)
            self._vectors.append(X)
            if self._index is not None:
                self._index.add(X)
        for ids in new_ids:
            self._extend_ids(ids)
        self.manifest = manifest

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
        return self.manifest.count

    def __repr__(self) -> str:
        return f"FaissStore({str(self.path)!r}, model_id={self.model_id!r}, dim={self.dim}, count={len(self)})"

    # ---- ids ---------------------------------------------------------------------------------------------
    def _extend_ids(self, ids: list[str]) -> None:
        start = len(self._ids)
        self._ids.extend(ids)
        self._pos.update(zip(ids, range(start, start + len(ids))))
        self._id_array = None
        if len(self._pos) != len(self._ids):  # only a hand-edited store can get here: add refuses duplicates
            self._ids = self._pos = None
            raise CorruptStoreError(f"store {self.path} holds the same id twice; restore it from a backup")

    def _id_map(self) -> dict[str, int]:
        """id -> global row, parsed from the segments' ids files on first use."""
        if self._pos is None:
            ids = [i for seg in self.manifest.segments for i in read_ids(self.path, seg)]
            self._ids, self._pos = [], {}
            self._extend_ids(ids)
        return self._pos

    # ---- writing -----------------------------------------------------------------------------------------

    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *, skip_existing: bool = False) -> int:
        """Append one segment; refuses (writing nothing) bad model, dim, values, ids or duplicates. With
        ``skip_existing`` the ids already stored (by this or another process: checked under the writer lock)
        are left out instead of refused. Returns the number of rows written."""
        self._check_model(model_id, "vectors", f"encode them with {self.model_id!r}, or create a new store "
                          f"for {model_id!r} and backfill it")
        X = as_matrix(vectors, dim=self.dim, name="vectors", where=self._where())
        ids = check_new_ids(ids, len(X))
        with writer_lock(self.path):
            self.refresh()
            ids, X = self._fresh_rows(ids, X, skip_existing)
            if not ids:
                return 0
            remove_orphans(self.path, self.manifest)
            manifest = self.manifest.with_segment(write_segment(self.path, self.manifest.next_segment_name(), ids, X))
            write_manifest(self.path, manifest)
        self._attach(manifest)
        return len(ids)

    def refresh(self) -> None:
        """Re-read ``manifest.json`` and map segments appended by other processes since this one looked."""
        disk = read_manifest(self.path)
        if disk.checksum == self.manifest.checksum:
            return
        if disk.segments[:len(self.manifest.segments)] == self.manifest.segments:
            self._attach(disk)
        else:
            self._reset(disk)

    # ---- reading -----------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-style ``(D, I)``: float32 [nq, k] best first, string ids [nq, k] (``None`` pads short lists)."""
        Q, k = self._check_queries(queries, k, model_id)
        index = None if self.manifest.index_factory.strip() == "Flat" or len(self) == 0 else self._get_index()
        D, P = search_segments(Q, k, self._vectors, self._starts, self.metric, index)
        return D, self.ids_at(P)

    def ids_at(self, rows: np.ndarray) -> np.ndarray:
        """The string ids stored at global ``rows`` (any shape; -1 -> ``None``), as an object array."""
        if self._id_array is None:
            self._id_array = np.array(self.ids + [None], dtype=object)  # position -1 -> None
        return self._id_array[rows]

    def _get_index(self) -> faiss.Index:
        """Build (and train on a sample of up to 200k stored rows) the factory index, once per process."""
        if self._index is None:
            self._index = build_index(self.dim, self.manifest.index_factory, self.metric, self._vectors, len(self))
        return self._index

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]`` rows in the order asked; unknown ids raise ``UnknownIdError``."""
        ids, pos = self._known(ids)
        P = np.fromiter((pos[i] for i in ids), dtype=np.int64, count=len(ids))
        return gather_rows(self._vectors, self._starts, P, self.dim)

    def verify(self) -> None:
        """Recompute every listed file's sha256; raise ``CorruptStoreError`` naming the first bad file."""
        check_segment_files(self.path, self.manifest.segments, checksums=True)


def create_store(path: str | Path, model_id: str, dim: int, metric: str = "ip",
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


def open_store(path: str | Path, verify: bool = False) -> FaissStore:
    """Open a store: read the manifest, check file sizes, memory-map segments; ``verify`` adds sha256 checks."""
    store = FaissStore(path, read_manifest(path))
    if verify:
        store.verify()
    return store
