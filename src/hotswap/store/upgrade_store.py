"""``UpgradeStore``: one gallery during a model upgrade — old vectors for every item, new ones as backfilled.

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
from typing import Any

import numpy as np

from hotswap.errors import CorruptStoreError, HotswapError, ModelMismatchError, UnknownIdError
from hotswap.io import atomic_write_json
from hotswap.store.faiss_store import FaissStore, create_store, open_store
from hotswap.store.manifest import read_json_object, utc_now
from hotswap.store.partition_index import PartitionIndex
from hotswap.store.segments import check_new_ids
from hotswap.validation import as_matrix, check_k

UPGRADE_NAME = "upgrade.json"


class PartitionView:
    """One side of an upgrade (``"old"`` or ``"new"``), searchable like a store: ``search(Q, k, model_id)``."""

    def __init__(self, owner: UpgradeStore, side: str) -> None:
        self.owner, self.side = owner, side

    @property
    def model_id(self) -> str:
        return self.owner.old_model_id if self.side == "old" else self.owner.new_model_id

    @property
    def dim(self) -> int:
        return self.owner.old.dim if self.side == "old" else self.owner.new.dim

    @property
    def metric(self) -> str:
        return self.owner.metric

    def __len__(self) -> int:
        return self.owner.counts()[self.side]

    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        return self.owner.search_partition(self.side, queries, k, model_id)


class UpgradeCommon:
    """What every upgrade (FAISS ``UpgradeStore``, database ``StoreUpgrade``) does the same way with its ``old``
    and ``new`` stores: progress counts, the checks of a backfilled batch, and writes during the upgrade.

    Writes keep one invariant at every moment, crash included: the new partition's ids are a subset of the old
    index's. ``write`` (an upsert) puts the old model's vectors into the old index first, then the new model's
    into the new partition, so the item is backfilled with its latest content at once; ``delete`` removes it
    from the new partition first, then from the old index. A backfilled batch (``add_backfilled``) keeps only
    ids the old index holds and, with ``skip_stored``, the new partition lacks, checked under the same lock as
    the writes: a batch encoded from an older text (or a deleted item) never overwrites or resurrects.
    """

    old: Any
    new: Any
    path: Path
    _lock: threading.RLock

    @property
    def old_model_id(self) -> str:
        return self.old.model_id

    @property
    def new_model_id(self) -> str:
        return self.new.model_id

    @property
    def metric(self) -> str:
        return self.old.metric

    def __len__(self) -> int:
        return len(self.old)

    def counts(self) -> dict[str, int]:
        """``{"old": items still on old vectors, "new": backfilled items}`` for this snapshot."""
        return {"old": len(self.old) - len(self.new), "new": len(self.new)}

    @property
    def fraction(self) -> float:
        """Share of the gallery backfilled (0.0 ... 1.0)."""
        return len(self.new) / len(self.old) if len(self.old) else 1.0

    def reading(self) -> threading.RLock:
        """Hold this while searching both partitions, so that no in-process write moves an item in between."""
        return self._lock

    def backfilled_ids(self) -> set[str]:
        with self._lock:
            return set(self.new.ids)

    def pending_ids(self) -> list[str]:
        """Old-store ids not backfilled yet, in old-store order."""
        with self._lock:
            done = self.new._id_map()
            return [i for i in self.old.ids if i not in done]

    def add_backfilled(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *,
                       skip_stored: bool = False) -> int:
        """Store new-model vectors of items the old index holds: one committed write of the new store. An id
        the old index lacks, or one stored twice, is refused, unless ``skip_stored``: then ids already
        backfilled (by a runner, a cascade search's write-back or a write, in any process) and ids deleted
        since the batch was read are left out. Returns the number of items written."""
        if model_id != self.new_model_id:
            raise ModelMismatchError(f"vectors come from model {model_id!r} but upgrade {self.path} is to model "
                                     f"{self.new_model_id!r}; encode them with the new model")
        ids = [ids] if isinstance(ids, str) else list(ids)
        with self._lock:
            known = self.old._id_map()
            if unknown := [i for i in ids if i not in known]:
                if not skip_stored:
                    raise UnknownIdError(f"{len(unknown)} id(s) are not in the old index {self.old.path}: "
                                         f"{unknown[:5]}; a backfill only re-embeds items the old index holds")
                keep = [r for r, i in enumerate(ids) if i in known]
                if not keep:
                    return 0
                ids, vectors = [ids[r] for r in keep], np.asarray(vectors)[keep]
            written = self.new.add(ids, vectors, model_id=model_id, skip_existing=skip_stored)
            self._after_write()
        return written

    def write(self, ids: Sequence[str], old_vectors: np.ndarray, new_vectors: np.ndarray) -> int:
        """Upsert ``ids`` during the upgrade (dual-write): ``old_vectors`` (old model) into the old index, then
        ``new_vectors`` (new model) into the new partition. Both batches are checked before either is written.
        Returns ``len(ids)``."""
        ids = check_new_ids(ids, len(old_vectors))
        Xo = as_matrix(old_vectors, dim=self.old.dim, name="old-model vectors", where=f"old index {self.old.path}")
        Xn = as_matrix(new_vectors, dim=self.new.dim, name="new-model vectors", where=f"upgrade {self.path}")
        if len(Xn) != len(ids):
            raise ValueError(f"got {len(ids)} ids, {len(Xo)} old-model and {len(Xn)} new-model vectors; "
                             "send one of each per id")
        with self._lock:
            pos = self.old._id_map()
            before = [pos[i] for i in ids if i in pos]
            self.old.upsert(ids, Xo, self.old_model_id)
            self.new.upsert(ids, Xn, self.new_model_id)
            self._after_write(before)
        return len(ids)

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove ``ids`` from the new partition, then from the old index; returns how many the old index held."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        with self._lock:
            pos = self.old._id_map()
            before = [pos[i] for i in ids if i in pos]
            self.new.delete(ids)
            removed = self.old.delete(ids)
            self._after_write(before)
        return removed

    def _check_subset(self) -> None:
        """Refuse an upgrade whose old index lacks backfilled items (restored from an older copy, or replaced):
        writes keep every backfilled id in the old index, so anything else is damage."""
        old = self.old._id_map()
        if lost := [i for i in self.new.ids if i not in old]:
            raise CorruptStoreError(f"the old index {self.old.path} lost {len(lost)} backfilled item(s) of upgrade "
                                    f"{self.path} ({lost[:3]}); restore the old index, or roll the upgrade back")

    def _after_write(self, removed: Sequence[int] = ()) -> None:
        """Under the lock, after a write (``removed``: the old-index rows the written items had before): bring
        in-memory search structures up to date (none here)."""


class UpgradeStore(UpgradeCommon):
    """An upgrade in progress; build with ``create_upgrade`` / ``open_upgrade``."""

    def __init__(self, path: str | Path, config: dict, old: FaissStore, new: FaissStore) -> None:
        self.path, self.config, self.old, self.new = Path(path), config, old, new
        self._lock = threading.RLock()
        self._parts: dict[str, PartitionIndex] | None = None
        self._seen = 0  # new-store rows (dead ones too) already taken into the partition indexes
        self.old_part, self.new_part = PartitionView(self, "old"), PartitionView(self, "new")

    def __repr__(self) -> str:
        c = self.counts()
        return (f"UpgradeStore({str(self.path)!r}, {self.old_model_id} -> {self.new_model_id}, "
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
        old_pos, new_pos = self.old._id_map(), self.new._id_map()
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
            pos, done = self.old._id_map(), self.new.ids
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


def check_partition_query(up: Any, side: str, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, int]:
    """The checked ``(queries, k)`` for a search of ``up``'s ``side`` partition (any upgrade: ``up.old`` /
    ``up.new`` stores); refuses another model's queries, a wrong dim, NaN rows or a bad k, naming the problem."""
    store = up.old if side == "old" else up.new
    if model_id != store.model_id:
        raise ModelMismatchError(f"queries come from model {model_id!r} but the {side} partition of {up.path} "
                                 f"holds vectors of model {store.model_id!r}; map them with an adapter or "
                                 "search in merged mode")
    Q = as_matrix(queries, dim=store.dim, name="queries", where=f"{side} partition (model {store.model_id})")
    return Q, check_k(k)


def create_upgrade(path: str | Path, old_store: str | Path | FaissStore, new_model_id: str,
                   new_dim: int) -> UpgradeStore:
    """Start an upgrade of ``old_store`` (a store folder) to ``new_model_id`` in the empty folder ``path``."""
    old = old_store if isinstance(old_store, FaissStore) else open_store(old_store)
    if new_model_id == old.model_id:
        raise HotswapError(f"the index {old.path} is already built by {new_model_id!r}; nothing to upgrade")
    path = Path(path)
    _remove_unfinished_start(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty folder; resume with open_upgrade({str(path)!r}) "
                              "or choose a new folder")
    new = create_store(path / "new", model_id=new_model_id, dim=new_dim, metric=old.metric,
                       index_factory=old.manifest.index_factory)
    config = {"format_version": 1, "old_store": os.path.relpath(old.path.resolve(), path.resolve()),
              "old_model_id": old.model_id, "old_dim": old.dim, "old_count": len(old),
              "new_model_id": new_model_id, "new_dim": int(new_dim), "metric": old.metric,
              "created_at": utc_now()}
    atomic_write_json(path / UPGRADE_NAME, config)  # written last: a folder without it is no upgrade
    return UpgradeStore(path, config, old, new)


def _remove_unfinished_start(path: Path) -> None:
    """A crash inside ``create_upgrade`` leaves an empty ``new/`` store and no ``upgrade.json``: clear it."""
    new = path / "new"
    if (path / UPGRADE_NAME).exists() or not new.is_dir() or {p.name for p in path.iterdir()} != {"new"}:
        return
    if {p.name for p in new.iterdir()} <= {"manifest.json", ".lock"} and len(open_store(new)) == 0:
        shutil.rmtree(new)


def open_upgrade(path: str | Path) -> UpgradeStore:
    """Open an upgrade folder; refuses one whose old index changed model or lost items since it started."""
    path = Path(path)
    config = read_json_object(path / UPGRADE_NAME, what="upgrade manifest", fix="start it with create_upgrade")
    if "backend" in config:
        raise HotswapError(f"upgrade {path} is on the {config['backend']} backend; open it with "
                           "hotswap.store.open_any_upgrade")
    old = open_store((path / config["old_store"]).resolve())
    new = open_store(path / "new")
    for side, store in (("old", old), ("new", new)):
        if store.model_id != config[f"{side}_model_id"] or store.dim != config[f"{side}_dim"] or \
                store.metric != config["metric"]:
            raise ModelMismatchError(f"the {side} index of upgrade {path} holds model {store.model_id!r} (dim "
                                     f"{store.dim}, metric {store.metric}) but the upgrade was started for "
                                     f"{config[f'{side}_model_id']!r} (dim {config[f'{side}_dim']}, metric "
                                     f"{config['metric']}); open the right folder or start a new upgrade")
    up = UpgradeStore(path, config, old, new)
    up._check_subset()
    return up
