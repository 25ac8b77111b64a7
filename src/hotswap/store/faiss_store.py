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
"""

from __future__ import annotations

import fcntl
import io
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from hotswap.errors import CorruptStoreError, DuplicateIdError, InvalidVectorsError, ModelMismatchError, UnknownIdError
from hotswap.io import atomic_write_bytes
from hotswap.store.manifest import (METRICS, Manifest, Segment, check_segment_files, read_manifest,
                                    sha256_bytes, write_manifest)
from hotswap.validation import as_matrix

_FAISS_METRIC = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
_TRAIN_SAMPLE = 200_000


class FaissStore:
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
        mapped = [self._map(seg, manifest.dim) for seg in new]
        new_ids = [self._read_ids(seg) for seg in new] if self._ids is not None else []
        for X in mapped:  # everything is validated: commit
            self._starts.append(self._starts[-1] + len(self._vectors[-1]) if self._vectors else 0)
            self._vectors.append(X)
            if self._index is not None:
                self._index.add(X)
        for ids in new_ids:
            self._extend_ids(ids)
        self.manifest = manifest

    def _map(self, seg: Segment, dim: int) -> np.ndarray:
        path = self.path / seg.vectors_file
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise CorruptStoreError(f"segment file {path} is not a valid .npy ({e}); restore it from a "
                                    "backup or rebuild the store") from e
        if X.dtype != np.float32 or X.shape != (seg.rows, dim):
            raise CorruptStoreError(f"segment file {path} holds {X.dtype} {X.shape}, expected float32 "
                                    f"{(seg.rows, dim)}; restore it from a backup or rebuild the store")
        return X

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
    def _read_ids(self, seg: Segment) -> list[str]:
        path = self.path / seg.ids_file
        try:
            ids = json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            raise CorruptStoreError(f"segment file {path} cannot be read ({e}); restore it from a backup") from e
        if not isinstance(ids, list) or len(ids) != seg.rows or not set(map(type, ids)) <= {str}:
            raise CorruptStoreError(f"segment file {path} is not a list of {seg.rows} string ids; restore it")
        return ids

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
            ids = [i for seg in self.manifest.segments for i in self._read_ids(seg)]
            self._ids, self._pos = [], {}
            self._extend_ids(ids)
        return self._pos

    @property
    def ids(self) -> list[str]:
        """All ids in insertion order (a copy)."""
        self._id_map()
        return list(self._ids)

    def contains(self, id: str) -> bool:
        return id in self._id_map()

    __contains__ = contains

    # ---- writing -----------------------------------------------------------------------------------------
    def _check_model(self, model_id: str, what: str, fix: str) -> None:
        if model_id != self.model_id:
            raise ModelMismatchError(f"{what} come from model {model_id!r} but store {self.path} holds vectors "
                                     f"of model {self.model_id!r}; {fix}")

    def _where(self) -> str:
        return (f"index dimension {self.dim} (model {self.model_id}); fit an adapter with "
                "'hotswap fit-adapter' or rebuild the index")

    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> None:
        """Append one segment; refuses (writing nothing) bad model, dim, values, ids or duplicates."""
        self._check_model(model_id, "vectors", f"encode them with {self.model_id!r}, or create a new store "
                          f"for {model_id!r} and backfill it")
        X = as_matrix(vectors, dim=self.dim, name="vectors", where=self._where())
        ids = [ids] if isinstance(ids, str) else list(ids)
        if bad := [i for i in ids if not isinstance(i, str)][:3]:
            raise TypeError(f"ids must be strings; got {bad!r}")
        if not ids or "" in ids or len(ids) != len(X):
            raise InvalidVectorsError(f"need one non-empty string id per vector row; got {len(ids)} ids "
                                      f"({'with an empty id' if '' in ids else 'none empty'}) for {len(X)} rows")
        if len(set(ids)) != len(ids):
            dups = sorted(i for i, n in Counter(ids).items() if n > 1)
            raise DuplicateIdError(f"{len(dups)} id(s) repeated within the batch: {dups[:5]}; make ids unique")
        with self._lock():
            self.refresh()
            if dups := [i for i in ids if i in self._id_map()]:
                raise DuplicateIdError(f"{len(dups)} id(s) already in store {self.path}: {dups[:5]}; "
                                       "skip them or write to a new store")
            self._remove_orphans()
            manifest = self.manifest.with_segment(self._write_segment(self.manifest.next_segment_name(), ids, X))
            write_manifest(self.path, manifest)
        self._attach(manifest)

    def _write_segment(self, name: str, ids: list[str], X: np.ndarray) -> Segment:
        buf = io.BytesIO()
        np.save(buf, X, allow_pickle=False)
        vec, idb = buf.getbuffer(), json.dumps(ids).encode()
        seg = Segment(name, len(X), vec.nbytes, sha256_bytes(vec), len(idb), sha256_bytes(idb))
        atomic_write_bytes(self.path / seg.ids_file, idb)
        atomic_write_bytes(self.path / seg.vectors_file, vec)
        return seg

    def _remove_orphans(self) -> None:
        """Delete segment files the manifest does not list and stray temp files (both left by a crash)."""
        listed = {s.name for s in self.manifest.segments}
        for f in self.path.iterdir():
            if (f.name.startswith("seg-") and f.name.split(".")[0] not in listed) or (
                    f.name.startswith(".") and f.name.endswith(".tmp")):
                f.unlink(missing_ok=True)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.path / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

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
        self._check_model(model_id, "queries", "map the queries with an adapter (hotswap fit-adapter) or "
                          "search in merged mode")
        Q = as_matrix(queries, dim=self.dim, name="queries", where=self._where())
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        k, fill = int(k), (-np.inf if self.metric == "ip" else np.inf)
        if self.manifest.index_factory.strip() == "Flat" or len(self) == 0:
            D, P = self._search_flat(Q, k, fill)
        else:
            D, P = self._get_index().search(Q, k)
            D[P < 0] = fill
        if self._id_array is None:
            self._id_array = np.array(self.ids + [None], dtype=object)  # position -1 -> None
        return D.astype(np.float32, copy=False), self._id_array[P]

    def _search_flat(self, Q: np.ndarray, k: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over each mapped segment, merged; no copy of the stored vectors is made."""
        Ds, Ps = [], []
        for start, X in zip(self._starts, self._vectors):
            D, P = faiss.knn(Q, X, min(k, len(X)), metric=_FAISS_METRIC[self.metric])
            Ds.append(D)
            Ps.append(P + start)
        Ds.append(np.full((len(Q), k), fill, np.float32))  # padding sorts last
        Ps.append(np.full((len(Q), k), -1, np.int64))
        D, P = np.concatenate(Ds, axis=1), np.concatenate(Ps, axis=1)
        order = np.argsort(-D if self.metric == "ip" else D, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(D, order, 1), np.take_along_axis(P, order, 1)

    def _get_index(self) -> faiss.Index:
        """Build (and train on a sample of up to 200k stored rows) the factory index, once per process."""
        if self._index is None:
            index = faiss.index_factory(self.dim, self.manifest.index_factory, _FAISS_METRIC[self.metric])
            if not index.is_trained:
                step = max(1, -(-len(self) // _TRAIN_SAMPLE))
                try:
                    index.train(np.concatenate([X[::step] for X in self._vectors]))
                except RuntimeError as e:
                    raise ValueError(f"cannot train index {self.manifest.index_factory!r} on {len(self)} "
                                     f"vectors ({e}); add more vectors first or use 'Flat'") from e
            for X in self._vectors:
                index.add(X)
            self._index = index
        return self._index

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]`` rows in the order asked; unknown ids raise ``UnknownIdError``."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        pos = self._id_map()
        if missing := [i for i in ids if i not in pos]:
            raise UnknownIdError(f"{len(missing)} id(s) not in store {self.path} (model {self.model_id}): "
                                 f"{missing[:5]}; check the ids, or add them first")
        P = np.fromiter((pos[i] for i in ids), dtype=np.int64, count=len(ids))
        seg = np.searchsorted(self._starts, P, side="right") - 1
        out = np.empty((len(P), self.dim), np.float32)
        for s in np.unique(seg):
            m = seg == s
            out[m] = self._vectors[s][P[m] - self._starts[s]]
        return out

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
    try:
        faiss.index_factory(int(dim), index_factory, _FAISS_METRIC[metric])
    except RuntimeError as e:
        raise ValueError(f"invalid FAISS factory string {index_factory!r}: {e}") from e
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
