"""``DbUpgrade``: an upgrade in progress over a database store (qdrant, milvus, PostgreSQL), used like
``FaissUpgrade``.

Layout::

    <database>              the old store's database; the new model goes into *the same database*: a second named
                            vector on the same points (qdrant), a second collection (milvus) or table (PostgreSQL),
                            added by the backend's ``add_model``
    upgrade/upgrade.json    backend, the old store (its folder relative to upgrade/, or a server store's URI),
                            both model ids and dims, metric, old count
    upgrade/...             the runner's plan.json, checkpoint.json, PAUSE and .run.lock

Partitions: the **new partition** is the new model's store; it holds exactly the backfilled ids, and its
committed count is the commit point of each ``add_backfilled``. The **old partition** is the old model's store
minus those ids, searched in the database (no copy in memory) by the old store's ``search_without``: qdrant and
milvus post-filter ``k'`` results and re-ask short rows (``DbStore.search_without``: ``k'`` about
``k / (1 - f)``, ``f`` the fraction backfilled; milvus-lite accepts any ``k'``, a Milvus server caps it at
16,384 by default); PostgreSQL filters in SQL (``PgStore.search_without``).

Crash safety: a batch is one ``add`` of the new model. On qdrant and milvus (``DbStore``: rows, then the store
file, atomically) a SIGKILL mid-batch leaves part of the batch in the database under the old count; no reader
sees it (searches in the writing process wait on ``reading()``, no other process can open the locked folder)
and the next open deletes it. On PostgreSQL the batch is one transaction: a kill leaves nothing. The runner then
redoes the batch. A kill inside ``create_db_upgrade`` (model added, no upgrade.json) leaves an empty model the
next call adopts; one inside a rollback (``hotswap.store.drop_model``) is finished by calling it again.

Threads: the qdrant local and milvus-lite clients are not safe for a write concurrent with a read, so
``reading()`` is one RLock held by ``add_backfilled``, ``refresh`` and every partition search of this process
(the runner commits from a thread; a search waits for at most one batch). ``refresh()`` sees what another
process committed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hotswap.errors import ModelMismatchError
from hotswap.io import atomic_write_json, utc_now
from hotswap.store.base import VectorStore
from hotswap.store.registry import backend
from hotswap.upgrade.base import UPGRADE_NAME, PartitionView, Upgrade, UpgradeCommon, check_partition_query


def _close(*views: VectorStore) -> None:
    for v in views:
        v.close()


class DbUpgrade(UpgradeCommon):
    """An upgrade of a database store in progress; build with ``hotswap.upgrade.create_upgrade`` / ``open_upgrade``."""

    def __init__(self, path: str | Path, config: dict, old: VectorStore, new: VectorStore) -> None:
        self.path, self.config, self.old, self.new = Path(path), config, old, new
        self._lock = threading.RLock()
        self.old_part, self.new_part = PartitionView(self, "old"), PartitionView(self, "new")

    backend = property(lambda self: self.old.backend)

    def __repr__(self) -> str:
        state = "closed" if self.new.closed or self.old.closed else f"backfilled {len(self.new)}/{len(self)}"
        return (f"DbUpgrade({str(self.path)!r}, {self.old.uri}, {self.old_model_id} -> "
                f"{self.new_model_id}, {state})")

    def refresh(self) -> None:
        """Re-read the store file: rows another process committed since this one opened the folder."""
        with self._lock:
            self.new.refresh()  # the store file is shared by both views

    def search_partition(self, side: str, queries: np.ndarray, k: int,
                         model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` of one partition; ``I`` holds string ids (``None`` pads)."""
        Q, k = check_partition_query(self, side, queries, k, model_id)
        with self._lock:
            if side == "new":
                return self.new.search(Q, k, model_id)
            return self.old.search_without(Q, k, self.new)


def _location(store: VectorStore, path: Path) -> str:
    """How upgrade.json names the old store: its folder relative to the upgrade folder (both move together), or
    a server store's URI."""
    return os.path.relpath(Path(store.path).resolve(), path.resolve()) if isinstance(store.path, Path) else store.uri


def create_db_upgrade(path: Path, old: VectorStore, new_model_id: str, new_dim: int) -> DbUpgrade:
    """Start an upgrade of the database store ``old`` to ``new_model_id`` (its vectors in the same database) with
    its records in the empty folder ``path``."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; resume with open_upgrade("
                              f"{str(path)!r}) or choose a new folder")
    b, views = backend(old.backend), []
    try:
        try:  # an empty leftover of a start cut short is adopted as it is
            views.append(b.open(old.path, new_model_id))
        except ModelMismatchError:
            if b.add_model is None:
                raise ValueError(f"the {b.name} backend cannot add a second model to a store") from None
            views.append(b.add_model(old.path, new_model_id, new_dim, old.metric))
        there = views[0]
        if len(there) or (there.dim, there.metric) != (new_dim, old.metric):
            raise FileExistsError(f"store {old.path} already holds {len(there)} vectors of model {new_model_id!r} "
                                  f"(dim {there.dim}); another upgrade may be filling them: open its folder, or "
                                  "remove them with hotswap.store.drop_model first")
        views.append(b.open(old.path, old.model_id))
        config = {"format_version": 1, "backend": old.backend, "created_at": utc_now(),
                  "old_store": _location(old, path), "old_model_id": old.model_id, "old_dim": old.dim,
                  "old_count": len(old), "new_model_id": new_model_id, "new_dim": int(new_dim), "metric": old.metric}
        atomic_write_json(path / UPGRADE_NAME, config)  # written last: a folder without it is no upgrade
    except BaseException:
        _close(*views)
        raise
    return DbUpgrade(path, config, views[1], views[0])


def open_db_upgrade(path: Path, config: dict) -> DbUpgrade:
    """Open the database upgrade folder ``path`` (``config``: its upgrade.json); refuses one whose models are
    gone or changed, or whose old index lost backfilled items."""
    b = backend(config["backend"])
    where = config["old_store"]
    folder = where if "://" in where else (path / where).resolve()
    views = []
    try:
        for side in ("old", "new"):
            try:
                views.append(store := b.open(folder, config[f"{side}_model_id"]))
            except ModelMismatchError as e:
                raise ModelMismatchError(f"the {side} model of upgrade {path} is gone from its store: {e}") from e
            if store.dim != config[f"{side}_dim"] or store.metric != config["metric"]:
                raise ModelMismatchError(f"the {side} model {store.model_id!r} of upgrade {path} has dim {store.dim}, "
                                         f"metric {store.metric} in {folder}, but the upgrade was started for "
                                         f"{config[f'{side}_dim']}, metric {config['metric']}; restore the store")
        up = DbUpgrade(path, config, *views)
        up.check_consistent()
    except BaseException:
        _close(*views)
        raise
    return up


if TYPE_CHECKING:  # mypy checks DbUpgrade against the Upgrade protocol: a signature drift fails type checking
    _db_upgrade: type[Upgrade] = DbUpgrade
