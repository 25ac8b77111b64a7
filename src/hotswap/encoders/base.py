"""The ``Encoder`` protocol, and the weight-file digests that model ids are made of (cached across processes)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

DIGESTS_NAME = "digests.json"
_MEMO: dict[tuple[str, int, int], str] = {}  # (absolute path, size, mtime_ns) -> sha256, this process
_MEMO_LOCK = threading.Lock()


@runtime_checkable
class Encoder(Protocol):
    """What every encoder offers.

    ``id`` is stable across processes, machines and folder names for the same weights (a label + a hash of
    the weight file), so a store or an adapter can tell which model wrote a vector. ``encode`` returns
    ``np.float32 [n, dim]`` with unit-norm rows.
    """

    name: str
    id: str
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray: ...


def weights_digest(path: Path, n_hex: int = 12) -> str:
    """sha256 of a weight file (first ``n_hex`` hex digits): the part of a model id that changes with weights."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:n_hex]


def _digests_path() -> Path:
    from hotswap.encoders.assets import cache_home

    return cache_home() / DIGESTS_NAME


def _read_digests(path: Path) -> dict[str, dict]:
    """The digest cache file's entries; a missing or damaged file reads as empty (it is only a cache)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _store_digest(path: Path, key: str, entry: dict) -> None:
    """Merge one entry into the digest cache (atomically), dropping entries whose file is gone. Best effort:
    a read-only cache folder only costs a re-hash next time."""
    from hotswap.io import atomic_write_json

    entries = {k: v for k, v in _read_digests(path).items() if os.path.exists(k)}
    entries[key] = entry
    try:
        atomic_write_json(path, entries)
    except OSError:
        pass


def cached_sha256(path: str | Path) -> str:
    """Full sha256 hex digest of a file, remembered in ``$HOTSWAP_HOME/digests.json`` under the file's absolute
    path, size and mtime: the bundled weights (mpnet ~440 MB) are hashed once, not on every model load."""
    file = Path(path).resolve()
    st = file.stat()
    memo_key = (str(file), st.st_size, st.st_mtime_ns)
    with _MEMO_LOCK:
        if memo_key in _MEMO:
            return _MEMO[memo_key]
    cache = _digests_path()
    entry = _read_digests(cache).get(str(file), {})
    digest = entry.get("sha256")
    if not (isinstance(digest, str) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns):
        digest = weights_digest(file, n_hex=64)
        _store_digest(cache, str(file), {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest})
    with _MEMO_LOCK:
        _MEMO[memo_key] = digest
    return digest
