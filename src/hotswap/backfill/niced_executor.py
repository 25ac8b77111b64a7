"""``NicedExecutor``: encode backfill batches in a worker process of low CPU priority, so queries go first.

A backfill thread inside a search server shares the interpreter and the cores with the queries: its encoding
and theirs get equal shares, and a query that arrives mid-batch waits behind it. Here the batches are encoded
by one worker process (``concurrent.futures.ProcessPoolExecutor``, ``spawn``: a fresh interpreter) that lowers
its own priority with ``os.nice(niceness)`` (19: the lowest) and uses its own thread budget
(``torch.set_num_threads``). The kernel then gives the cores to the query threads whenever they are runnable
and to the backfill whenever they are not: no cooperation from the queries, no waits in the server.

The worker loads the model itself, from ``loader(spec)``: ``loader`` must be importable by the worker
(a module-level function or a picklable object such as ``hotswap.encoders.load_encoder``). Batches and vectors
travel over the pool's pipe between this process and its own child; one batch is encoded ahead while the
previous one is committed. The committed batches equal ``LocalExecutor``'s (same encoder, same batches).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any

import numpy as np

from hotswap.errors import ModelMismatchError

_ENCODER: Any = None  # the worker process's encoder


def _start_worker(loader: Callable[[str], Any], spec: str, niceness: int, threads: int) -> None:
    global _ENCODER
    os.nice(niceness)
    import torch

    torch.set_num_threads(threads)
    _ENCODER = loader(spec)


def _model_id() -> str:
    return _ENCODER.id


def _encode(items: list[Any]) -> np.ndarray:
    return np.ascontiguousarray(_ENCODER.encode(items, show_progress=False), dtype=np.float32)


class NicedExecutor:
    """Encode batches with ``loader(spec)`` in a worker process at ``os.nice(niceness)`` using ``threads``
    threads (default: every core); ``model_id`` (if given) must be the id the worker's encoder reports."""

    def __init__(self, loader: Callable[[str], Any], spec: str, model_id: str | None = None, niceness: int = 19,
                 threads: int | None = None) -> None:
        if not 0 <= niceness <= 19:
            raise ValueError(f"niceness must be 0 (normal) to 19 (lowest priority); got {niceness}")
        self.loader, self.spec, self.model_id = loader, spec, model_id
        self.niceness, self.threads = int(niceness), int(threads or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None
        self._starting = threading.Lock()
        self._closed = False

    def warm(self) -> None:
        """Start the worker and load its model now (in a thread of the caller's choosing), not at the first batch;
        nothing once closed."""
        with self._starting:
            if not self._closed and self._pool is None:
                self._start()

    def _worker(self) -> ProcessPoolExecutor:
        with self._starting:
            return self._pool or self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                   initargs=(self.loader, self.spec, self.niceness, self.threads))
        got = pool.submit(_model_id).result()
        if self.model_id is not None and got != self.model_id:
            pool.shutdown(cancel_futures=True)
            raise ModelMismatchError(f"model {self.spec!r} loads as {got!r} in the backfill worker, but the "
                                     f"upgrade is to {self.model_id!r}; install the same weights")
        self._pool = pool
        return pool

    def map(self, batches: Iterable[tuple[list[str], list[Any]]]) -> Iterator[tuple[list[str], np.ndarray]]:
        self._closed = False
        pool = self._worker()
        queued: deque[tuple[list[str], Future]] = deque()
        try:
            for ids, items in batches:
                queued.append((ids, pool.submit(_encode, list(items))))
                if len(queued) > 1:
                    done_ids, future = queued.popleft()
                    yield done_ids, future.result()
            while queued:
                done_ids, future = queued.popleft()
                yield done_ids, future.result()
        finally:  # a paused run stops reading: the batch encoded ahead is not wanted, and once this returns
            for _, future in queued:  # the worker is idle (a paused backfill takes no CPU from the queries)
                if not future.cancel():
                    wait([future])

    def close(self) -> None:
        """Stop the worker process (a later ``map`` starts a new one)."""
        with self._starting:
            self._closed = True
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
