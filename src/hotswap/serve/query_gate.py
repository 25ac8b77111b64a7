"""``QueryGate``: searches first, backfill second, on the same cores.

Every search of the service holds the gate while it runs (``searching()``); the backfill thread's executor
calls ``wait_idle()`` before each sub-batch it encodes and waits there while any search is in flight, up to
``max_wait`` seconds, then encodes anyway: under a load that never pauses the backfill still moves, by at
least one sub-batch per ``max_wait`` plus its own encoding time. ``waited_s`` adds up the time the backfill
gave way (reported in ``/status``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class QueryGate:
    def __init__(self, max_wait: float = 0.5) -> None:
        self.max_wait = float(max_wait)
        self.waited_s = 0.0
        self._active = 0
        self._cond = threading.Condition()

    @property
    def active(self) -> int:
        """Searches running now."""
        return self._active

    @contextmanager
    def searching(self) -> Iterator[None]:
        with self._cond:
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if self._active == 0:
                    self._cond.notify_all()

    def wait_idle(self) -> None:
        """Return once no search runs, or after ``max_wait`` seconds."""
        start = time.perf_counter()
        with self._cond:
            self._cond.wait_for(lambda: self._active == 0, timeout=self.max_wait)
        self.waited_s += time.perf_counter() - start
