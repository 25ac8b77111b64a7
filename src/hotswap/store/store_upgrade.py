"""``StoreUpgrade``: an upgrade in progress over a database store (qdrant, milvus), used like ``UpgradeStore``.

Layout::

    <db folder>/            the old store's database; the new model goes into *the same folder*: a second named
                            vector on the same points (qdrant ``add_model_vector``) or a second collection
                            (milvus ``add_model_collection``); its store file counts each model's committed rows
    upgrade/upgrade.json    backend, db folder (relative to upgrade/), both model ids and dims, metric, old count
    upgrade/...             the runner's plan.json, checkpoint.json, PAUSE and .run.lock

``create_any_upgrade`` / ``open_any_upgrade`` serve FAISS too: an ``upgrade.json`` without ``"backend"`` is a
FAISS upgrade (``UpgradeStore``), opened by ``open_upgrade`` unchanged.

Partitions: the **new partition** is the new model's store; it holds exactly the backfilled ids, and its count
in the store file is the commit point of each ``add_backfilled``. The **old partition** is the old model's
store minus those ids, searched in the database (no copy in memory) for ``k'`` results of which backfilled ids
are dropped; rows left short of ``k`` are asked again with ``k'`` doubled, up to ``k + backfilled`` (enough by
construction). The first ``k'`` is ``1.25 k / (1 - f)``, ``f`` the fraction backfilled: expected ``k'`` is
about ``k / (1 - f)`` (2k at half way, 10k at 90 %, 1000k at 99.9 %), and one extra round for some queries.
Orders that backfill the neighbourhoods of frequent queries first (popularity) cost those queries more rounds.
milvus-lite accepts any ``k'``; a Milvus server caps it (16,384 by default).

Crash safety: a batch is one ``DbStore.add`` of the new model (rows, then the store file, atomically). A SIGKILL
mid-batch leaves part of the batch in the database (qdrant: points with the new vector and a seq at or past the
count; milvus: rows of the new collection) under the old count. No reader sees them: searches in the writing
process wait on ``reading()``, no other process can open the locked folder, and the next open (the new view's
``DbStore._recover``) deletes them; the runner then redoes the batch. A kill inside ``create_any_upgrade``
(model added, no upgrade.json) leaves an empty model the next call adopts; one inside ``drop_upgrade_vectors``
is finished by calling it again.

Threads: the qdrant local and milvus-lite clients are not safe for a write concurrent with a read, so
``reading()`` is one RLock held by ``add_backfilled``, ``refresh`` and every partition search of this process
(the runner commits from a thread; a search waits for at most one batch). Another process cannot open the
folder while this one holds it: ``refresh()`` re-reads the store file for what one committed before.
"""

from __future__ import annotations

import math
import os
import threading
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.errors import CorruptStoreError, HotswapError, ModelMismatchError
from hotswap.io import atomic_write_json
from hotswap.store.db_common import check_model_args, read_store_file
from hotswap.store.db_store import DbStore
from hotswap.store.faiss_store import FaissStore
from hotswap.store.manifest import read_json_object, utc_now
from hotswap.store.upgrade_store import (UPGRADE_NAME, PartitionView, UpgradeCommon, UpgradeStore,
                                         check_partition_query, create_upgrade, open_upgrade)
from hotswap.store.uri import open_store_uri, parse_store_uri

# backend -> its module and the functions that open a model's view, add a model and remove one
_BACKENDS = {"qdrant": ("hotswap.store.qdrant_store", {"open": "open_qdrant_store", "add": "add_model_vector",
                                                         "remove": "remove_model_vector"}),
             "milvus": ("hotswap.store.milvus_store", {"open": "open_milvus_store", "add": "add_model_collection",
                                                         "remove": "drop_model_collection"}),
             "pg": ("hotswap.store.pg_store", {"open": "open_pg_store", "add": "add_model_table",
                                               "remove": "drop_model_table"})}


def _backend_fn(backend: str, action: str) -> Any:
    """The ``action`` ("open", "add" or "remove") function of ``backend``, imported on first use."""
    module, names = _BACKENDS[backend]
    return getattr(import_module(module), names[action])


def _close(*views: DbStore) -> None:
    for v in views:
        v.close()


class StoreUpgrade(UpgradeCommon):
    """An upgrade of a ``DbStore`` in progress; build with ``create_any_upgrade`` / ``open_any_upgrade``."""

    def __init__(self, path: str | Path, config: dict, old: DbStore, new: DbStore) -> None:
        self.path, self.config, self.old, self.new = Path(path), config, old, new
        self._lock = threading.RLock()
        self.old_part, self.new_part = PartitionView(self, "old"), PartitionView(self, "new")

    backend = property(lambda self: self.old.backend)

    def __repr__(self) -> str:
        state = "closed" if None in (self.new._h, self.old._h) else f"backfilled {len(self.new)}/{len(self)}"
        return (f"StoreUpgrade({str(self.path)!r}, {self.backend}://{self.old.path}, {self.old_model_id} -> "
                f"{self.new_model_id}, {state})")

    def close(self) -> None:
        """Release both views (the database folder is unlocked once no view of it is open in this process)."""
        _close(self.old, self.new)

    def __enter__(self) -> StoreUpgrade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Re-read the store file: rows another process committed since this one opened the folder."""
        with self._lock:
            self.new.client  # noqa: B018 - raises once closed
            self.new._h.data = read_store_file(self.new.path, self.backend)  # shared by both views

    def search_partition(self, side: str, queries: np.ndarray, k: int,
                         model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` of one partition; ``I`` holds string ids (``None`` pads)."""
        Q, k = check_partition_query(self, side, queries, k, model_id)
        with self._lock:
            if side == "new":
                return self.new.search(Q, k, model_id)
            if hasattr(self.old, "search_without"):  # pg: the old partition is a filter in SQL
                return self.old.search_without(Q, k, self.new)
            return self._search_pending(Q, k)

    def _search_pending(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Old-store search with backfilled ids dropped, re-asked with ``k'`` doubled for rows left short."""
        done, n = self.new._id_map(), len(self.old)
        D = np.full((len(Q), k), -np.inf if self.metric == "ip" else np.inf, dtype=np.float32)
        I = np.full((len(Q), k), None, dtype=object)
        if n <= len(done) or not len(Q):
            return D, I
        cap = min(n, k + len(done))  # the top k + |done| of the old store hold >= k pending items
        kk = min(cap, k if not done else math.ceil(1.25 * k * n / (n - len(done))))
        rows = np.arange(len(Q))
        while len(rows):
            Dk, Ik = self.old.search(Q[rows], kk, self.old_model_id)
            short = []
            for r, d, i in zip(rows, Dk, Ik):
                keep = [c for c, x in enumerate(i) if x is not None and x not in done][:k]
                D[r, :len(keep)], I[r, :len(keep)] = d[keep], i[keep]
                if len(keep) < k and kk < cap:
                    short.append(r)
            rows, kk = np.array(short, dtype=np.int64), min(cap, 2 * kk)
        return D, I


def create_any_upgrade(path: str | Path, old_store: Any, new_model_id: str,
                       new_dim: int) -> UpgradeStore | StoreUpgrade:
    """Start an upgrade of ``old_store`` (a store, or a store URI) to ``new_model_id`` in the empty folder
    ``path``: an ``UpgradeStore`` for FAISS, a ``StoreUpgrade`` (new model in the same database) otherwise."""
    if isinstance(old_store, (str, Path)):
        scheme, folder = parse_store_uri(old_store)
        if scheme == "faiss":
            return create_upgrade(path, folder, new_model_id, new_dim)
        with open_store_uri(old_store) as old:
            return create_any_upgrade(path, old, new_model_id, new_dim)
    if isinstance(old_store, FaissStore):
        return create_upgrade(path, old_store, new_model_id, new_dim)
    if not isinstance(old_store, DbStore):
        raise TypeError(f"cannot upgrade a {type(old_store).__name__}; pass a store or a store URI")
    old, path = old_store, Path(path)
    if new_model_id == old.model_id:
        raise HotswapError(f"the index {old.path} is already built by {new_model_id!r}; nothing to upgrade")
    check_model_args(new_model_id, new_dim, old.metric)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; resume with open_any_upgrade("
                              f"{str(path)!r}) or choose a new folder")
    with type(old).handle(old.path) as h:
        there = [m for m in h.data["models"] if m["model_id"] == new_model_id]
    if there and (there[0]["count"] or (there[0]["dim"], there[0]["metric"]) != (new_dim, old.metric)):
        raise FileExistsError(f"store {old.path} already holds {there[0]['count']} vectors of model {new_model_id!r} "
                              f"(dim {there[0]['dim']}); another upgrade may be filling them: open its folder, or "
                              f"remove them with drop_upgrade_vectors first")
    views: list[DbStore] = []
    try:  # an empty leftover of a start cut short is adopted as it is
        if there:
            views.append(type(old)(old.path, new_model_id))
        else:
            views.append(_backend_fn(old.backend, "add")(old.path, new_model_id, new_dim, old.metric))
        views.append(type(old)(old.path, old.model_id))
        config = {"format_version": 1, "backend": old.backend, "created_at": utc_now(),
                  "old_store": os.path.relpath(old.path.resolve(), path.resolve()), "old_model_id": old.model_id,
                  "old_dim": old.dim, "old_count": len(old), "new_model_id": new_model_id, "new_dim": int(new_dim),
                  "metric": old.metric}
        atomic_write_json(path / UPGRADE_NAME, config)  # written last: a folder without it is no upgrade
    except BaseException:
        _close(*views)
        raise
    return StoreUpgrade(path, config, views[1], views[0])


def open_any_upgrade(path: str | Path) -> UpgradeStore | StoreUpgrade:
    """Open an upgrade folder of any backend; refuses one whose old store changed model or lost items."""
    path = Path(path)
    config = read_json_object(path / UPGRADE_NAME, what="upgrade manifest", fix="start it with create_any_upgrade")
    backend = config.get("backend")
    if backend is None:
        return open_upgrade(path)
    if backend not in _BACKENDS:
        raise CorruptStoreError(f"{path / UPGRADE_NAME} names backend {backend!r}, not one of {list(_BACKENDS)}")
    folder, views = (path / config["old_store"]).resolve(), []
    try:
        for side in ("old", "new"):
            try:
                views.append(store := _backend_fn(backend, "open")(folder, config[f"{side}_model_id"]))
            except ModelMismatchError as e:
                raise ModelMismatchError(f"the {side} model of upgrade {path} is gone from its store: {e}") from e
            if store.dim != config[f"{side}_dim"] or store.metric != config["metric"]:
                raise ModelMismatchError(f"the {side} model {store.model_id!r} of upgrade {path} has dim {store.dim}, "
                                         f"metric {store.metric} in {folder}, but the upgrade was started for dim "
                                         f"{config[f'{side}_dim']}, metric {config['metric']}; restore the store")
        up = StoreUpgrade(path, config, *views)
        up._check_subset()
    except BaseException:
        _close(*views)
        raise
    return up


def drop_upgrade_vectors(old_store: Any, new_model_id: str) -> bool:
    """Remove ``new_model_id``'s vectors from a database store (a store or its URI): a rollback. ``False`` if
    there were none; always for FAISS, whose new vectors live in the upgrade folder (delete that instead).
    Close the upgrade first: its new view stops working."""
    if isinstance(old_store, DbStore):
        return _backend_fn(old_store.backend, "remove")(old_store.path, new_model_id)
    if isinstance(old_store, FaissStore):
        return False
    scheme, folder = parse_store_uri(old_store)
    return False if scheme == "faiss" else _backend_fn(scheme, "remove")(folder, new_model_id)
