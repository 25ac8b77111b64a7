"""``BackfillRunner``: re-embed a gallery with the new model while it is served, crash-safe and resumable.

Files in the upgrade folder (``hotswap.upgrade``)::

    plan.json        the ordering policy and every id in backfill order; written once, atomically
    checkpoint.json  progress (done/total, items/s, elapsed, state); informational, rewritten at most once a
                     second and when the run ends
    PAUSE            present = "stop after the current batch" (``request_pause``); removed when honoured
    .run.lock        ``flock`` held by the one running backfill: a second runner is refused, and a checkpoint
                     that says "running" while nobody holds the lock reads as "interrupted" (a crash); a
                     status or pause probe takes it for an instant, so a starting run retries for 0.25 s

Exactly once: batch ``j`` is ``plan[j*B:(j+1)*B]``; each batch becomes one atomic segment of the new store
(``Upgrade.add_backfilled``), whose manifest is the truth about what is done. A process killed at any
moment (SIGKILL included) leaves whole batches or nothing; ``run()`` on the same folder (``hotswap backfill
--resume``) skips every id already stored and encodes the rest in the same batches, so the result equals a
clean run's byte for byte (``gallery_checksum``); only ``run(until=...)`` may cut a batch short, which changes
nothing for encoders whose output per item does not depend on its batch. An id stored meanwhile by someone
else (a cascade search writing back what it encoded) is skipped when its batch is formed and left out at
commit (``add_backfilled(skip_stored=True)``, checked under the store's writer lock), so nothing is encoded
into the store twice or duplicated. Under the ``demand`` policy batches start with the items that queries
asked for (``hotswap.store.demand_log``). How a batch is encoded is the executor's job: ``LocalExecutor`` here,
``hotswap.backfill.ray_runner.RayExecutor`` on a Ray cluster; both feed the same commit loop, which writes
batch ``j`` in a background thread while the executor encodes batch ``j + 1`` (one commit in flight at most,
committed in plan order), so the fsyncs cost no encoding time.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.encoders.progress import maybe_progress
from hotswap.errors import HotswapError, ModelMismatchError
from hotswap.io import atomic_write_json, read_json_object, utc_now
from hotswap.store.demand_log import DemandLog
from hotswap.upgrade import Upgrade

PLAN_NAME, CHECKPOINT_NAME, PAUSE_NAME, LOCK_NAME = "plan.json", "checkpoint.json", "PAUSE", ".run.lock"
CHECKPOINT_EVERY_S = 1.0
PROBE_GRACE_S = 0.25  # a run retries its lock this long: ``_is_locked`` (status, pause) takes it for an instant
Batch = tuple[list[str], list[Any]]  # (ids, items to encode)
Fetch = Callable[[Sequence[str]], Sequence[Any]]


class LocalExecutor:
    """Encode batches one after another in this process (``hotswap.backfill.niced_executor.NicedExecutor``: in a
    worker process of low CPU priority instead)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def map(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], np.ndarray]]:
        for ids, items in batches:
            yield ids, self.encoder.encode(items, show_progress=False)


@dataclass
class BackfillStatus:
    """Where a backfill stands; ``eta_s`` and ``cost_left`` from this run's (or the last run's) rate."""

    done: int
    total: int
    state: str  # "planned", "running", "paused", "interrupted" (killed while running), "done"
    items_per_s: float | None
    elapsed_s: float
    eta_s: float | None
    cost_left: float | None  # eta in hours x cost_per_hour, when a price is given

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def write_plan(upgrade: Upgrade, order: Sequence[str], policy: str, seed: int, **extra: Any) -> None:
    """Persist the backfill order (once), with ``extra`` fields (``then``: the order under ``demand``).
    Refuses to replace an existing plan: resume it instead."""
    path = upgrade.path / PLAN_NAME
    if path.exists():
        raise HotswapError(f"{path} exists: this upgrade already has a plan; resume it (hotswap backfill --resume)")
    order = list(order)
    if set(order) != set(upgrade.old.ids) or len(order) != len(upgrade.old):
        raise HotswapError("a backfill plan must hold every id of the old index exactly once")
    atomic_write_json(path, {"policy": policy, "seed": seed, **extra, "ids": order, "created_at": utc_now()})


def read_plan(upgrade: Upgrade) -> dict:
    return read_json_object(upgrade.path / PLAN_NAME, what="backfill plan",
                            fix="start the backfill first (hotswap backfill --order ...)")


def backfill_running(upgrade_path: str | Path) -> bool:
    """Whether a backfill process holds the upgrade's run lock right now."""
    return _is_locked(Path(upgrade_path))


def request_pause(upgrade_path: str | Path) -> bool:
    """Ask the running backfill to stop after its current batch; ``False`` (and no request) if none runs."""
    if not _is_locked(Path(upgrade_path)):
        return False
    (Path(upgrade_path) / PAUSE_NAME).touch()
    return True


class BackfillRunner:
    """Run the plan of ``upgrade`` through ``executor``; ``fetch(ids)`` returns the items (texts, images)."""

    def __init__(self, upgrade: Upgrade, fetch: Fetch, executor: Any, batch_size: int = 256,
                 cost_per_hour: float | None = None, progress: bool = True) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive; got {batch_size}")
        model_id = getattr(executor, "model_id", None) or getattr(getattr(executor, "encoder", None), "id", None)
        if model_id is not None and model_id != upgrade.new_model_id:
            raise ModelMismatchError(f"the executor encodes with model {model_id!r} but upgrade {upgrade.path} is to "
                                     f"{upgrade.new_model_id!r}; load the upgrade's model")
        self.upgrade, self.fetch, self.executor = upgrade, fetch, executor
        self.batch_size, self.cost_per_hour, self.progress = int(batch_size), cost_per_hour, progress
        self._rate: float | None = None
        self._elapsed = 0.0
        self._held = False  # inside ``hold()``: this runner already holds the run lock

    # ---- planning ----------------------------------------------------------------------------------------
    def plan_ids(self) -> list[str]:
        """The plan's ids, plus (at the end) any id the old index gained since the plan was written."""
        ids = read_plan(self.upgrade)["ids"]
        if len(ids) < len(self.upgrade.old):
            known = set(ids)
            ids += [i for i in self.upgrade.old.ids if i not in known]
        return ids

    def pending_batches(self, stop_at: int | None = None) -> Iterator[Batch]:
        """Batches of items not stored yet, in plan order; ``stop_at`` cuts the plan at that many items.

        Ids stored since the run began (a cascade search's write-back, ``hotswap.search.cascade``, or a write
        during the upgrade) and ids deleted since are skipped as each batch is formed. Under the ``demand`` policy
        each batch starts with the ids queries demanded (``DemandLog``) that are still pending, and ``stop_at``
        counts stored items rather than plan positions.
        """
        plan, up = self.plan_ids(), self.upgrade
        end = len(plan) if stop_at is None else min(stop_at, len(plan))
        log = DemandLog(up.path) if read_plan(up).get("policy") == "demand" else None
        yielded: set[str] = set()
        recent: deque[list[str]] = deque(maxlen=2)  # batches that may be encoded or committing right now
        queue: deque[str] = deque()
        cursor = 0
        while True:
            if log is None:  # a fixed order: batch j is plan[j*B:(j+1)*B] (the crash-resume contract)
                if cursor >= end:
                    return
                stop = min(cursor + self.batch_size, end)
                ids = self._unstored(plan[cursor:stop])
                cursor = stop
            else:
                queue.extend(log.read_new())
                in_flight = sum(len(self._unstored(batch)) for batch in recent)
                room = min(self.batch_size, end - len(up.new) - in_flight)
                ids = []
                while queue and len(ids) < room:  # demanded first, each once, only while still pending
                    i = queue.popleft()
                    if i not in yielded and self._pending(i):
                        ids.append(i)
                        yielded.add(i)
                while cursor < len(plan) and len(ids) < room:
                    stop = min(cursor + room - len(ids), len(plan))
                    fresh = [i for i in self._unstored(plan[cursor:stop]) if i not in yielded]
                    ids += fresh
                    yielded.update(fresh)
                    cursor = stop
                if not ids:
                    return
                recent.append(ids)
            if ids:
                yield ids, list(self.fetch(ids))

    def _pending(self, i: str) -> bool:
        """Whether the old index holds ``i`` and the new one does not yet (under the read lock)."""
        with self.upgrade.reading():
            return self.upgrade.old.contains(i) and not self.upgrade.new.contains(i)

    def _unstored(self, ids: Sequence[str]) -> list[str]:
        """``ids`` the old index holds and the new store lacks (deleted or written ones drop out), looked up
        under the upgrade's read lock (a commit may be in flight)."""
        with self.upgrade.reading():
            old, new = self.upgrade.old, self.upgrade.new
            return [i for i in ids if old.contains(i) and not new.contains(i)]

    # ---- running -----------------------------------------------------------------------------------------
    def run(self, until: float | None = None, on_batch: Callable[[BackfillStatus], None] | None = None
            ) -> BackfillStatus:
        """Backfill until the plan is done, ``until`` (a fraction of the gallery) is reached, or a pause."""
        if self._held:
            return self._run(until, on_batch)
        with _run_lock(self.upgrade.path):
            return self._run(until, on_batch)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the run lock across several ``run(until=...)`` calls (a backfill curve evaluates between them),
        so that other processes see one live backfill, not a paused one, for the whole session."""
        with _run_lock(self.upgrade.path):
            self._held = True
            try:
                yield
            finally:
                self._held = False

    def _run(self, until: float | None, on_batch: Callable[[BackfillStatus], None] | None) -> BackfillStatus:
        up = self.upgrade
        pause_file = up.path / PAUSE_NAME
        pause: Path | None = pause_file  # None once the loop ran to its end (no pause honoured)
        up.refresh()  # see batches another (perhaps killed) process stored since ``up`` was opened: skip them
        _remove_leftovers(up.path)  # we hold the run lock: a PAUSE or temp file here is from an earlier run
        total = len(up.old)
        stop_at = None if until is None else int(round(until * total))
        started, done_at_start = time.perf_counter(), len(up.new)
        prior = self._checkpoint().get("elapsed_s", 0.0)
        state, last_checkpoint = "running", 0.0
        writer, commit = ThreadPoolExecutor(1, thread_name_prefix="backfill-commit"), None
        with writer, maybe_progress(self.progress) as bar:
            task = bar.add_task(f"backfill -> {up.new_model_id}", total=total, completed=len(up.new), rate="")
            # the commit of batch j (fsyncs) runs in a thread while the executor encodes batch j + 1
            for ids, X in self.executor.map(self.pending_batches(stop_at)):
                if commit is not None and self._after_commit(commit, started, done_at_start, prior, bar, task,
                                                            on_batch, last_checkpoint):
                    last_checkpoint = time.perf_counter()
                commit = None
                if pause_file.exists():  # this batch was encoded but is not committed: the next run redoes it
                    break
                commit = writer.submit(up.add_backfilled, ids, X, model_id=up.new_model_id, skip_stored=True)
            else:
                pause = None
            if commit is not None:
                self._after_commit(commit, started, done_at_start, prior, bar, task, on_batch, 0.0)
        if pause is not None and pause.exists():
            pause.unlink(missing_ok=True)
            state = "paused"
        if state == "running":
            state = "done" if len(up.new) == total else "paused"
        final = self.status(state)
        self._write_checkpoint(final)
        return final

    def _after_commit(self, commit: Future, started: float, done_at_start: int, prior: float, bar: Any, task: int,
                      on_batch: Callable[[BackfillStatus], None] | None, last_checkpoint: float) -> bool:
        """Wait for a batch's commit, update rate and progress; checkpoint at most once a second (True if so)."""
        commit.result()  # re-raises a failed write here, in the caller's thread
        took = time.perf_counter() - started
        self._rate = (len(self.upgrade.new) - done_at_start) / took if took > 0 else None
        self._elapsed = prior + took
        # this run holds the lock and knows its rate: no checkpoint read or lock probe per batch
        status = self._status("running", {} if self._rate else self._checkpoint())
        wrote = time.perf_counter() - last_checkpoint >= CHECKPOINT_EVERY_S
        if wrote:
            self._write_checkpoint(status)
        bar.update(task, completed=status.done, rate=f"{self._rate:,.0f} items/s" if self._rate else "")
        if on_batch:
            on_batch(status)
        return wrote

    def status(self, state: str | None = None) -> BackfillStatus:
        """Progress with ETA and cost left (from this run's rate, else the last checkpoint's)."""
        if state is None:
            self.upgrade.refresh()
        ck = self._checkpoint()
        state = state or ck.get("state") or ("done" if len(self.upgrade.new) == len(self.upgrade.old) else "planned")
        if state == "running" and not _is_locked(self.upgrade.path):
            state = "interrupted"
        return self._status(state, ck)

    def _status(self, state: str, ck: dict) -> BackfillStatus:
        done, total = len(self.upgrade.new), len(self.upgrade.old)
        rate = self._rate or ck.get("items_per_s")
        eta = (total - done) / rate if rate else None
        cost = None if eta is None or self.cost_per_hour is None else eta / 3600 * self.cost_per_hour
        return BackfillStatus(done, total, state, rate, self._elapsed or ck.get("elapsed_s", 0.0), eta, cost)

    def _checkpoint(self) -> dict:
        path = self.upgrade.path / CHECKPOINT_NAME
        return read_json_object(path, "checkpoint", "") if path.exists() else {}

    def _write_checkpoint(self, status: BackfillStatus) -> None:
        atomic_write_json(self.upgrade.path / CHECKPOINT_NAME, {**asdict(status), "updated_at": utc_now(),
                                                                 "batch_size": self.batch_size})


def _remove_leftovers(folder: Path) -> None:
    (folder / PAUSE_NAME).unlink(missing_ok=True)
    for f in folder.glob(".*.tmp"):  # temp files of atomic writes cut short by a crash
        f.unlink(missing_ok=True)


class _run_lock:
    """Exclusive, non-blocking ``flock`` on ``folder/.run.lock`` for the duration of a run."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME

    def __enter__(self) -> None:
        self._fh = open(self.path, "a")
        deadline = time.monotonic() + PROBE_GRACE_S
        while True:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:  # not a probe (``_is_locked`` holds it for microseconds)
                    self._fh.close()
                    raise HotswapError(f"another backfill is running on {self.path.parent} (it holds {LOCK_NAME}); "
                                       "wait for it, or pause it with 'hotswap backfill --pause'") from None
                time.sleep(0.01)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


def _is_locked(folder: Path) -> bool:
    path = folder / LOCK_NAME
    if not path.exists():
        return False
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def gallery_checksum(upgrade: Upgrade) -> str:
    """sha256 over (id, new vector bytes) sorted by id: equal for two backfills that stored the same thing."""
    ids = sorted(upgrade.new.ids)
    h = hashlib.sha256()
    X = upgrade.new.get(ids) if ids else np.empty((0, upgrade.new.dim), np.float32)
    for i, row in zip(ids, X):
        h.update(i.encode() + b"\x00" + np.ascontiguousarray(row, np.float32).tobytes())
    return h.hexdigest()
