"""``FaissUpgrade``: an upgrade of a FAISS store — old vectors for every item, new ones as backfilled.

Layout::

    upgrade/upgrade.json   both model ids and dims, the metric, the old store's path and size at creation
    upgrade/new/           a ``FaissStore`` of the new model: its manifest lists exactly the backfilled ids
    <old store>            the live index of the old model (any ``FaissStore`` folder; never modified)

Which ids are backfilled is the new store's manifest, written last and atomically after each batch, so a
reader always sees a consistent cut: the **new partition** is the backfilled ids, the **old partition** every
other id of the old store. The two are disjoint and together hold each item exactly once, at every moment.
A reader in another process never waits for the writer: its ``refresh()`` moves the items backfilled since the
last look from the old partition's in-memory index to the new one (``PartitionIndex``), so each partition
scans only its own items. In the writer's own process a search waits for at most the commit in progress
(about 10 ms per 1,024 items, ``benchmarks/merged_search.py``), which keeps every search on one cut.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hotswap.errors import ModelMismatchError
from hotswap.io import atomic_write_json, utc_now
from hotswap.store.faiss import FaissStore, create_faiss_store, open_faiss_store
from hotswap.store.faiss.partition_index import PartitionIndex
from hotswap.upgrade.base import UPGRADE_NAME, PartitionView, Upgrade, UpgradeCommon, check_partition_query


class FaissUpgrade(UpgradeCommon):
    """An upgrade of a ``FaissStore`` in progress; build with ``hotswap.upgrade.create_upgrade`` / ``open_upgrade``."""

    def __init__(self, path: str | Path, config: dict, old: FaissStore, new: FaissStore) -> None:
        self.path, self.config, self.old, self.new = Path(path), config, old, new
        self._lock = threading.RLock()
        self._parts: dict[str, PartitionIndex] | None = None
        self._seen = 0  # new-store rows (dead ones too) already taken into the partition indexes
        self.old_part, self.new_part = PartitionView(self, "old"), PartitionView(self, "new")

    def __repr__(self) -> str:
        c = self.counts()
        return (f"FaissUpgrade({str(self.path)!r}, {self.old_model_id} -> {self.new_model_id}, "
                f"backfilled {c['new']}/{len(self)})")


    def refresh(self) -> None:
        """See what other processes backfilled since the last look (re-reads the new store's manifest)."""
        with self._lock:
            self.new.refresh()
            self._after_write()

    def _after_write(self, removed: Sequence[int] = ()) -> None:
        """Keep the partition indexes (keyed by the item's row in the old index) in step: rows ``removed`` (the
        old rows of written or deleted items) leave both; each live row the new store gained since the last
        look (a backfilled batch, or a write: under the item's new old-index row) leaves the old partition and
        enters the new one."""
        if self._parts is None:
            return
        if len(removed):
            for part in self._parts.values():
                part.remove(np.asarray(removed, np.int64))
        old_pos, new_pos = self.old.id_map(), self.new.id_map()
        rows = np.arange(self._seen, self.new.manifest.count)
        ids = [i for r, i in zip(rows, self.new.ids_at(rows)) if new_pos.get(i) == r]
        keys = np.fromiter((old_pos[i] for i in ids), np.int64, len(ids))
        self._parts["old"].remove(keys)
        self._parts["new"].add(keys, self.new.get(ids))
        self._seen = self.new.manifest.count

    def _partitions(self) -> dict[str, PartitionIndex]:
        """Build both partition indexes on first use: pending items' old vectors, backfilled items' new ones."""
        if self._parts is None:
            factory = self.old.manifest.index_factory
            pos, done = self.old.id_map(), self.new.ids
            pending = self.pending_ids()
            old = PartitionIndex(self.old.dim, self.metric, factory)
            old.add(np.fromiter((pos[i] for i in pending), np.int64, len(pending)), self.old.get(pending))
            new = PartitionIndex(self.new.dim, self.metric, factory)
            new.add(np.fromiter((pos[i] for i in done), np.int64, len(done)), self.new.get(done))
            self._parts, self._seen = {"old": old, "new": new}, self.new.manifest.count
        return self._parts

    def search_partition(self, side: str, queries: np.ndarray, k: int,
                         model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` of one partition; ``I`` holds string ids (``None`` pads)."""
        Q, k = check_partition_query(self, side, queries, k, model_id)
        with self._lock:
            D, P = self._partitions()[side].search(Q, k)
            return D, self.old.ids_at(P)  # partitions are keyed by the item's row in the old store


def create_faiss_upgrade(path: Path, old: FaissStore, new_model_id: str, new_dim: int) -> FaissUpgrade:
    """Start an upgrade of the FAISS store ``old`` to ``new_model_id`` in the empty folder ``path``."""
    _remove_unfinished_start(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; resume with open_upgrade({str(path)!r}) "
                              "or choose a new folder")
    new = create_faiss_store(path / "new", model_id=new_model_id, dim=new_dim, metric=old.metric,
                             index_factory=old.manifest.index_factory)
    config = {"format_version": 1, "backend": "faiss", "old_store": os.path.relpath(old.path.resolve(), path.resolve()),
              "old_model_id": old.model_id, "old_dim": old.dim, "old_count": len(old),
              "new_model_id": new_model_id, "new_dim": int(new_dim), "metric": old.metric,
              "created_at": utc_now()}
    atomic_write_json(path / UPGRADE_NAME, config)  # written last: a folder without it is no upgrade
    return FaissUpgrade(path, config, old, new)


def _remove_unfinished_start(path: Path) -> None:
    """A crash inside ``create_upgrade`` leaves an empty ``new/`` store and no ``upgrade.json``: clear it."""
    new = path / "new"
    if (path / UPGRADE_NAME).exists() or not new.is_dir() or {p.name for p in path.iterdir()} != {"new"}:
        return
    if {p.name for p in new.iterdir()} <= {"manifest.json", ".lock"} and len(open_faiss_store(new)) == 0:
        shutil.rmtree(new)


def open_faiss_upgrade(path: Path, config: dict) -> FaissUpgrade:
    """Open the FAISS upgrade folder ``path`` (``config``: its upgrade.json); refuses one whose old index changed
    model or lost items since it started."""
    old = open_faiss_store((path / config["old_store"]).resolve())
    new = open_faiss_store(path / "new")
    for side, store in (("old", old), ("new", new)):
        if store.model_id != config[f"{side}_model_id"] or store.dim != config[f"{side}_dim"] or \
                store.metric != config["metric"]:
            raise ModelMismatchError(f"the {side} index of upgrade {path} holds model {store.model_id!r} (dim "
                                     f"{store.dim}, metric {store.metric}) but the upgrade was started for "
                                     f"{config[f'{side}_model_id']!r} (dim {config[f'{side}_dim']}, metric "
                                     f"{config['metric']}); open the right folder or start a new upgrade")
    up = FaissUpgrade(path, config, old, new)
    up.check_consistent()
    return up


if TYPE_CHECKING:  # mypy checks FaissUpgrade against the Upgrade protocol: a signature drift fails type checking
    _faiss_upgrade: type[Upgrade] = FaissUpgrade
