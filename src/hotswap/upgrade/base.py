"""What every upgrade shares: the ``Upgrade`` protocol that searchers, backfill runners and the service rely
on, the partition views, and ``UpgradeCommon``: counts, backfilled batches and writes done the same way on
every backend.

An upgrade holds one gallery during a model upgrade: the old model's index (``old``, every item) and the new
model's (``new``, the items backfilled so far). The **new partition** is the backfilled items on new vectors,
the **old partition** every other item on old vectors: disjoint, together each item exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from hotswap.errors import CorruptStoreError, ModelMismatchError, UnknownIdError
from hotswap.store.base import VectorStore, check_new_ids
from hotswap.validation import as_matrix, check_k

if TYPE_CHECKING:
    from typing_extensions import Self

UPGRADE_NAME = "upgrade.json"


@runtime_checkable
class Upgrade(Protocol):
    """An upgrade in progress, on any backend (``FaissUpgrade``, ``DbUpgrade``)."""

    path: Path
    config: dict
    old: VectorStore
    new: VectorStore
    old_part: PartitionView  # the old partition, searchable like a store
    new_part: PartitionView

    @property
    def old_model_id(self) -> str: ...

    @property
    def new_model_id(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def fraction(self) -> float: ...

    def __len__(self) -> int: ...

    def counts(self) -> dict[str, int]:
        """``{"old": items still on old vectors, "new": backfilled items}``."""

    def reading(self) -> threading.RLock:
        """Hold while searching both partitions: no in-process write moves an item in between."""

    def search_partition(self, side: str, queries: np.ndarray, k: int,
                         model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` of the ``"old"`` or ``"new"`` partition; ``I`` holds string ids (``None`` pads)."""

    def pending_ids(self) -> list[str]: ...

    def backfilled_ids(self) -> set[str]: ...

    def add_backfilled(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *,
                       skip_stored: bool = False) -> int: ...

    def write(self, ids: Sequence[str], old_vectors: np.ndarray, new_vectors: np.ndarray) -> int: ...

    def delete(self, ids: Sequence[str] | str) -> int: ...

    def refresh(self) -> None:
        """See what other processes backfilled or wrote since the last look."""

    def close(self) -> None: ...

    def __enter__(self) -> Upgrade: ...

    def __exit__(self, *exc: object) -> None: ...


class PartitionView:
    """One side of an upgrade (``"old"`` or ``"new"``), searchable like a store: ``search(Q, k, model_id)``."""

    def __init__(self, owner: Upgrade, side: str) -> None:
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
    """What every upgrade (``FaissUpgrade``, ``DbUpgrade``) does the same way with its ``old``
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
            done = self.new.id_map()
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
            known = self.old.id_map()
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
            pos = self.old.id_map()
            before = [pos[i] for i in ids if i in pos]
            self.old.upsert(ids, Xo, self.old_model_id)
            self.new.upsert(ids, Xn, self.new_model_id)
            self._after_write(before)
        return len(ids)

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove ``ids`` from the new partition, then from the old index; returns how many the old index held."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        with self._lock:
            pos = self.old.id_map()
            before = [pos[i] for i in ids if i in pos]
            self.new.delete(ids)
            removed = self.old.delete(ids)
            self._after_write(before)
        return removed

    def check_consistent(self) -> None:
        """Called on opening: refuse an upgrade whose old index lacks backfilled items (restored from an older
        copy, or replaced): writes keep every backfilled id in the old index, so anything else is damage."""
        old = self.old.id_map()
        if lost := [i for i in self.new.ids if i not in old]:
            raise CorruptStoreError(f"the old index {self.old.path} lost {len(lost)} backfilled item(s) of upgrade "
                                    f"{self.path} ({lost[:3]}); restore the old index, or roll the upgrade back")

    def close(self) -> None:
        """Release both stores."""
        self.old.close()
        self.new.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_write(self, removed: Sequence[int] = ()) -> None:
        """Under the lock, after a write (``removed``: the old-index rows the written items had before): bring
        in-memory search structures up to date (none here)."""


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


