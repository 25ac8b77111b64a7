"""``WriteBack``: new-model document vectors that cascade searches encode, on their way into the backfill.

A cascade search (``hotswap.search.cascade``) encodes, with the new model, old-index candidates that have
no new vector yet. Those encodings are exactly what the backfill would compute for the same items, so
they are kept: buffered here, served to later searches from the buffer, and committed to the upgrade's new
partition in batches of ``flush_every`` through ``add_backfilled(..., skip_stored=True)`` — the backfill
runner's own commit path (one atomic segment or one database commit per batch). A SIGKILL therefore loses at
most the unflushed buffer, never consistency; an item a running backfill stored first is left out of the
write-back (and the runner skips items written back), so nothing is stored twice.

``persist=False`` keeps the encodings in memory only and logs no demand: a measurement of the cascade that must
not change the upgrade it measures (the paper harness's cascade demo).

Threads: searches of one service share one ``WriteBack``. An item being encoded by one search is *claimed*
(``_inflight``): a second search that needs it waits for that encoding instead of encoding it again, so
concurrent searches never encode the same item twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hotswap.store.demand_log import DemandLog
from hotswap.upgrade import Upgrade

Texts = Callable[[Sequence[str]], Sequence[str]]


@dataclass
class WriteBackCounts:
    """What the write-back did so far: items encoded, waited for (another search was encoding them), committed
    to the new partition, and demanded (over a query's budget: logged for the ``demand`` backfill order)."""

    encoded: int = 0
    waited: int = 0
    written: int = 0
    demanded: int = 0
    flush_errors: int = 0  # flushes a search started that failed (e.g. the upgrade was rolled back meanwhile)


class WriteBack:
    """Encode items with ``encoder`` (texts from ``texts(ids)``) once, and commit them to ``upgrade``."""

    def __init__(self, upgrade: Upgrade, encoder: Any, texts: Texts, flush_every: int = 256,
                 persist: bool = True) -> None:
        if getattr(encoder, "id", None) != upgrade.new_model_id:
            raise ValueError(f"the write-back encodes with {getattr(encoder, 'id', None)!r} but the upgrade is to "
                             f"{upgrade.new_model_id!r}; pass the upgrade's new encoder")
        if flush_every < 1:
            raise ValueError(f"flush_every must be at least 1; got {flush_every}")
        self.upgrade, self.encoder, self.texts, self.flush_every = upgrade, encoder, texts, int(flush_every)
        self.persist = persist  # False: keep encodings in memory only, log no demand (measurements)
        self.demand = DemandLog(upgrade.path)
        self.counts = WriteBackCounts()
        self._buffer: dict[str, np.ndarray] = {}  # encoded, not committed yet
        self._inflight: dict[str, threading.Event] = {}  # claimed by a search that is encoding them now
        self._demanded: set[str] = set()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def __len__(self) -> int:
        """Items encoded and not committed yet (what a kill would lose)."""
        return len(self._buffer)

    def known(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` have a new-model vector without encoding: buffered, being encoded, or stored."""
        with self._lock:
            here = {i for i in ids if i in self._buffer or i in self._inflight}
        rest = [i for i in ids if i not in here]
        with self.upgrade.reading():
            return here | {i for i in rest if self.upgrade.new.contains(i)}

    def vectors(self, ids: Sequence[str]) -> tuple[dict[str, np.ndarray], int]:
        """``({id: new-model vector}, number encoded by this call)`` for distinct ``ids``: from the buffer, the
        new store, another search's encoding in flight (waited for), or encoded now and buffered."""
        out: dict[str, np.ndarray] = {}
        mine: list[str] = []
        wait: list[tuple[str, threading.Event]] = []
        claim = threading.Event()
        with self._lock:
            for i in dict.fromkeys(ids):
                if i in self._buffer:
                    out[i] = self._buffer[i]
                elif i in self._inflight:
                    wait.append((i, self._inflight[i]))
                else:
                    mine.append(i)
                    self._inflight[i] = claim
        encoded = 0
        try:
            out |= self._stored(mine)
            todo = [i for i in mine if i not in out]
            if todo:
                X = self.encoder.encode(list(self.texts(todo)), show_progress=False)
                encoded = len(todo)
                with self._lock:
                    self._buffer.update(zip(todo, X))
                    self.counts.encoded += encoded
                out |= dict(zip(todo, X))
        finally:
            with self._lock:
                for i in mine:
                    self._inflight.pop(i, None)
            claim.set()
        for i, event in wait:
            event.wait()
            with self._lock:
                v = self._buffer.get(i)
                self.counts.waited += 1
            if v is None:  # its encoder failed, or it was committed meanwhile
                got, n = self.vectors([i])
                v, encoded = got[i], encoded + n
            out[i] = v
        if self.persist and len(self._buffer) >= self.flush_every:
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the search's answer stands; the buffer stays for the next flush
                self.counts.flush_errors += 1
        return out, encoded

    def _stored(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """New vectors already committed (by a backfill, or an earlier flush) for those of ``ids`` that have one."""
        with self.upgrade.reading():
            there = [i for i in ids if self.upgrade.new.contains(i)]
            return dict(zip(there, self.upgrade.new.get(there))) if there else {}

    def demand_ids(self, ids: Sequence[str]) -> int:
        """Log ``ids`` (asked for, not encoded) once each for the ``demand`` backfill order; returns how many."""
        with self._lock:
            fresh = [i for i in dict.fromkeys(ids) if i not in self._demanded]
            self._demanded.update(fresh)
            self.counts.demanded += len(fresh)
        return self.demand.record(fresh) if self.persist else len(fresh)

    def flush(self) -> int:
        """Commit the buffered vectors as one batch of the new partition; returns how many were written
        (none when ``persist`` is off)."""
        if not self.persist:
            return 0
        with self._flush_lock:
            with self._lock:
                ids = list(self._buffer)
                if not ids:
                    return 0
                X = np.stack([self._buffer[i] for i in ids])
            written = self.upgrade.add_backfilled(ids, X, model_id=self.upgrade.new_model_id, skip_stored=True)
            with self._lock:
                for i in ids:
                    self._buffer.pop(i, None)
                self.counts.written += written
            return written

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self.counts), "buffered": len(self)}
