"""Shared plumbing of the database stores with a store file (``QdrantStore``, ``MilvusStore``): the store file,
names derived from model ids, argument checks, and the per-process registry of database clients.

Each such folder holds ``hotswap-store.json`` (written with ``atomic_write_json``): the backend, and per model
its ``model_id``, database name (``key``), ``dim``, ``metric``, committed row ``count`` and, once a ``delete``
has committed, ``deleted``. The count is the commit point of appends and a high-water mark: every row a
database holds also carries ``seq`` (its insertion number, 0-based, never reused), and rows with
``seq >= count`` are leftovers of an ``add`` that died before the store file was replaced; they are deleted
(``_recover``) when the store is opened and when an ``add`` fails, so readers never see half a batch.
``deleted`` (default 0) counts rows removed by ``delete``, so the model holds ``count - deleted`` rows, with
gaps in their seqs. A ``delete`` first records the seqs it is about to remove as ``deleting`` (its intent),
then removes the rows, then commits ``deleted`` without ``deleting``; a ``deleting`` list found later belongs
to a delete that died and is finished by ``_recover`` (removing rows again is harmless).

Both databases lock their folder for one client per process, so a process-wide registry shares one client
(and one copy of the store file) between every open view of a folder; the last ``close`` disconnects it.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.errors import CorruptStoreError, ModelMismatchError
from hotswap.io import atomic_write_json, read_json_object
from hotswap.store.base import METRICS

STORE_FILE = "hotswap-store.json"
FORMAT_VERSION = 1


def model_key(model_id: str) -> str:
    """A deterministic name for ``model_id`` valid as a qdrant vector and a milvus collection name."""
    slug = re.sub(r"[^A-Za-z0-9_]", "_", model_id)[:48]
    return f"m_{slug}_{hashlib.sha1(model_id.encode()).hexdigest()[:8]}"


def check_new_store(path: str | Path, model_id: str, dim: int, metric: str, opener: str) -> Path:
    """``path`` as a Path if it is a new or empty folder and the arguments are valid; else a clear error."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; open it with {opener}({str(path)!r}) "
                              "or choose a new folder")
    check_model_args(model_id, dim, metric)
    return path


def check_model_args(model_id: str, dim: int, metric: str) -> None:
    if not model_id or not isinstance(model_id, str):
        raise ValueError(f"model_id must be a non-empty string; got {model_id!r}")
    if metric not in METRICS or not isinstance(dim, (int, np.integer)) or dim <= 0:
        raise ValueError(f"need metric in {METRICS} and a positive dim; got metric={metric!r}, dim={dim!r}")


def model_entry(model_id: str, dim: int, metric: str) -> dict[str, Any]:
    return {"model_id": model_id, "key": model_key(model_id), "dim": int(dim), "metric": metric, "count": 0}


def new_model_entry(data: dict[str, Any], path: Path, model_id: str, dim: int, metric: str | None,
                    opener: str) -> dict[str, Any]:
    """The store-file entry of a model being added to the folder ``path`` (``metric`` defaults to the first
    model's); refuses bad arguments and a model the folder already holds."""
    metric = metric or data["models"][0]["metric"]
    check_model_args(model_id, dim, metric)
    if any(m["model_id"] == model_id for m in data["models"]):
        raise FileExistsError(f"store {path} already holds model {model_id!r}; open it with "
                              f"{opener}({str(path)!r}, {model_id!r})")
    return model_entry(model_id, dim, metric)


def live_rows(entry: dict[str, Any]) -> int:
    """How many rows the model of store-file ``entry`` holds: appended minus deleted."""
    return entry["count"] - entry.get("deleted", 0)


def with_model(data: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of store-file ``data`` with the model entry of ``entry["model_id"]`` replaced by ``entry``."""
    return {**data, "models": [entry if m["model_id"] == entry["model_id"] else m for m in data["models"]]}


def _valid_deletes(m: dict[str, Any]) -> bool:
    """``deleted`` (optional) is a count in ``[0, count]``; ``deleting`` (optional) lists distinct seqs below
    ``count`` that ``deleted`` does not cover yet."""
    deleted, deleting = m.get("deleted", 0), m.get("deleting", [])
    return (type(deleted) is int and type(deleting) is list and all(type(s) is int for s in deleting)
            and 0 <= deleted and all(0 <= s < m["count"] for s in deleting)
            and len(set(deleting)) == len(deleting) and deleted + len(deleting) <= m["count"])


def append_model(handle: Any, path: Path, entry: dict[str, Any]) -> None:
    """Commit ``entry`` to the folder's store file (after its vector / collection exists) and to ``handle``."""
    data = {**handle.data, "models": [*handle.data["models"], entry]}
    write_store_file(path, data)
    handle.data = data


def read_store_file(folder: str | Path, backend: str) -> dict[str, Any]:
    """Read and self-check ``folder/hotswap-store.json``; ``CorruptStoreError`` naming the fix otherwise."""
    folder = Path(folder)
    path = folder / STORE_FILE
    if not path.exists() and (folder / "manifest.json").is_file():
        raise CorruptStoreError(f"{folder} is a FAISS store, not a {backend} one; open it with faiss://{folder}")
    data = read_json_object(path, what=f"{backend} store file (not a hotswap {backend} store, or it was deleted)",
                            fix=f"restore {STORE_FILE} from a backup or create the store with {backend}://")
    fix = "restore it from a backup"
    if data.get("backend") != backend:
        raise CorruptStoreError(f"{path} describes a {data.get('backend')!r} store, not {backend!r}; open it with "
                                f"{data.get('backend')}://{folder}")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
        raise CorruptStoreError(f"{path} has format_version {data.get('format_version')!r}, not one this hotswap "
                                f"supports (<= {FORMAT_VERSION}); upgrade hotswap or {fix}")
    try:
        models = data["models"]
        ok = bool(models) and all(isinstance(m["model_id"], str) and m["key"] == model_key(m["model_id"])
                                  and isinstance(m["dim"], int) and m["dim"] > 0 and m["metric"] in METRICS
                                  and isinstance(m["count"], int) and m["count"] >= 0 and _valid_deletes(m)
                                  for m in models)
    except (KeyError, TypeError) as e:
        raise CorruptStoreError(f"{path} is malformed ({type(e).__name__}: {e}); {fix}") from e
    if not ok or len({m["model_id"] for m in models}) != len(models) or len({m["key"] for m in models}) != len(
            models):
        raise CorruptStoreError(f"{path} lists an invalid or repeated model entry; {fix}")
    return data


def write_store_file(folder: str | Path, data: dict[str, Any]) -> None:
    atomic_write_json(Path(folder) / STORE_FILE, data)


def find_model(data: dict[str, Any], model_id: str, folder: object, fix: str) -> dict[str, Any]:
    """The entry of ``model_id`` in ``data``, or ``ModelMismatchError`` listing the models there are (``folder``:
    the store's folder or URI, as the message names it)."""
    for m in data["models"]:
        if m["model_id"] == model_id:
            return m
    raise ModelMismatchError(f"store {folder} holds no vectors of model {model_id!r} (it has "
                             f"{[m['model_id'] for m in data['models']]}); {fix}")


@dataclass
class Handle:
    """One database client per folder and process, shared by every open view; ``data`` mirrors the store file."""

    client: Any
    data: dict[str, Any]
    disconnect: Callable[[Any, Path], None]
    folder: Path
    refs: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)  # one call into the client at a time


_HANDLES: dict[tuple[str, str], Handle] = {}


def acquire(backend: str, folder: Path, connect: Callable[[Path], Any],
            disconnect: Callable[[Any, Path], None]) -> Handle:
    """The folder's shared handle (connecting and reading the store file on first use), one reference more."""
    key = (backend, str(folder.resolve()))
    if (h := _HANDLES.get(key)) is None:
        data = read_store_file(folder, backend)
        h = _HANDLES[key] = Handle(connect(folder), data, disconnect, folder)
    h.refs += 1
    return h


def release(backend: str, folder: Path) -> None:
    """Drop one reference to the folder's handle; the last one disconnects the client."""
    key = (backend, str(folder.resolve()))
    h = _HANDLES[key]
    h.refs -= 1
    if h.refs <= 0:
        del _HANDLES[key]
        h.disconnect(h.client, h.folder)


@atexit.register
def _close_all() -> None:
    """Disconnect clients of views never closed, while the interpreter can still run their clean-up."""
    while _HANDLES:
        h = _HANDLES.popitem()[1]
        try:
            h.disconnect(h.client, h.folder)
        except Exception:  # noqa: BLE001 - best effort at exit; the databases recover on next open
            pass
