"""Segment file I/O for ``FaissStore``: one job, the files of a store's segments on disk.

Maps a segment's ``.npy`` read-only with dtype/shape checks, reads its ids JSON, checks a new segment's ids
and writes its two files (each with ``atomic_write_bytes``), removes orphan files left by a crash, and holds
the writer lock.
Nothing here touches ``manifest.json``; callers decide what the manifest lists.
"""

from __future__ import annotations

import fcntl
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hotswap.errors import CorruptStoreError
from hotswap.io import atomic_write_bytes, sha256_bytes
from hotswap.store.faiss.manifest import Manifest, Segment


def map_segment(folder: Path, seg: Segment, dim: int) -> np.ndarray:
    """Memory-map ``seg``'s vectors (float32 ``[rows, dim]``) read-only; ``CorruptStoreError`` if they are not."""
    path = folder / seg.vectors_file
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise CorruptStoreError(f"segment file {path} is not a valid .npy ({e}); restore it from a "
                                "backup or rebuild the store") from e
    if X.dtype != np.float32 or X.shape != (seg.rows, dim):
        raise CorruptStoreError(f"segment file {path} holds {X.dtype} {X.shape}, expected float32 "
                                f"{(seg.rows, dim)}; restore it from a backup or rebuild the store")
    return X


def read_ids(folder: Path, seg: Segment) -> list[str]:
    """``seg``'s ids, a JSON list of ``seg.rows`` strings; ``CorruptStoreError`` if the file is anything else."""
    path = folder / seg.ids_file
    try:
        ids = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise CorruptStoreError(f"segment file {path} cannot be read ({e}); restore it from a backup") from e
    if not isinstance(ids, list) or len(ids) != seg.rows or not set(map(type, ids)) <= {str}:
        raise CorruptStoreError(f"segment file {path} is not a list of {seg.rows} string ids; restore it")
    return ids


def write_segment(folder: Path, name: str, ids: list[str], X: np.ndarray) -> Segment:
    """Write segment ``name``'s ids then vectors atomically; return its manifest entry (sizes, sha256)."""
    buf = io.BytesIO()
    np.save(buf, X, allow_pickle=False)
    vec, idb = buf.getbuffer(), json.dumps(ids).encode()
    seg = Segment(name, len(X), vec.nbytes, sha256_bytes(vec), len(idb), sha256_bytes(idb))
    atomic_write_bytes(folder / seg.ids_file, idb)
    atomic_write_bytes(folder / seg.vectors_file, vec)
    return seg


def remove_orphans(folder: Path, manifest: Manifest) -> None:
    """Delete segment files ``manifest`` does not list and stray temp files (both left by a crash)."""
    listed = {s.name for s in manifest.segments}
    for f in folder.iterdir():
        if (f.name.startswith("seg-") and f.name.split(".")[0] not in listed) or (
                f.name.startswith(".") and f.name.endswith(".tmp")):
            f.unlink(missing_ok=True)


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder/.lock`` (taken by writers only) for the ``with`` body."""
    with open(folder / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
