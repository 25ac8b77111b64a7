"""File helpers every layer uses: atomic writes, checksums, JSON objects read with a clear error, UTC time.

Atomic writes go to a temp file in the same folder, fsync, rename, fsync the folder: a process killed at any
moment leaves either the old file or the new one, never a partial file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hotswap.errors import CorruptStoreError

_CHUNK = 1 << 22


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` to fill a temp file next to ``path``, then fsync and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; a store or result file should be readable like any other
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


def json_safe(x):
    """A copy fit for strict JSON: NaN floats become ``None``; numpy scalars and arrays become Python ones; paths
    become strings."""
    import numpy as np

    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return json_safe(x.item())
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return x


def utc_now() -> str:
    """Current time as ISO-8601 UTC with a ``Z`` suffix (seconds precision)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_bytes(data: bytes | memoryview) -> str:
    """Hex sha256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_json_object(path: Path, what: str, fix: str) -> dict[str, Any]:
    """Read a JSON object file, or raise ``CorruptStoreError`` naming ``what`` the file is and the ``fix``."""
    if not path.is_file():
        raise CorruptStoreError(f"{path} is missing: {path.parent} has no {what}; {fix}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CorruptStoreError(f"{path} cannot be read as JSON ({e}); restore it from a backup") from e
    if not isinstance(data, dict):
        raise CorruptStoreError(f"{path} does not hold a JSON object; restore it from a backup")
    return data
