"""``BackfillThread``: one ``BackfillRunner.run()`` in a background thread of the search service.

The runner does the crash-safe work (atomic batches, ``plan.json``, ``checkpoint.json``, the run lock; see
``hotswap.backfill.runner``); this class only starts it, asks it to pause (the runner's ``PAUSE`` file, honoured
after the batch in flight), waits for it, and keeps the last ``BackfillStatus`` and the error that ended it, if
any, for ``GET /status``. Because every batch is committed atomically, a paused, failed or killed run resumes
where it stopped: ``start()`` again (or a restarted server) skips every id already stored.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from hotswap.backfill import BackfillRunner, request_pause
from hotswap.backfill.runner import PAUSE_NAME, BackfillStatus


class BackfillThread:
    """Run ``runner`` in a daemon thread; ``pause()`` stops it after its current batch."""

    def __init__(self, runner: BackfillRunner) -> None:
        self.runner = runner
        self.status: BackfillStatus | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        self.error = self.status = None  # a resumed run reports its own progress, not the last run's
        self._thread = threading.Thread(target=self._run, name="hotswap-backfill", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.status = self.runner.run(on_batch=self._on_batch)
        except Exception as e:  # kept for /status; the batches already committed stay committed
            self.error = f"{type(e).__name__}: {e}"

    def _on_batch(self, status: BackfillStatus) -> None:
        self.status = status

    def pause(self, timeout: float = 600.0) -> None:
        """Ask the run to stop after its current batch and wait for it (up to ``timeout`` seconds).

        The request is repeated while the run lives and no request is pending: one made in the instant after
        the run took its lock is removed by the run's own start-up clean-up (it clears an earlier run's PAUSE).
        A request left behind by the repeat is such a leftover, and the next run clears it the same way.
        """
        pause, deadline = self.runner.upgrade.path / PAUSE_NAME, time.monotonic() + timeout
        while self.alive and time.monotonic() < deadline:
            if not pause.exists():
                request_pause(self.runner.upgrade.path)  # False while the run has not taken its lock yet
            self.join(0.02)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def current(self) -> BackfillStatus:
        """Live progress while running (from the last batch), else the runner's own status."""
        if self.alive and self.status is not None:
            return self.status
        return self.runner.status()

    def as_dict(self) -> dict[str, Any]:
        s = self.current()
        return {"done": s.done, "total": s.total, "fraction": s.fraction, "state": s.state,
                "items_per_s": s.items_per_s, "eta_s": s.eta_s, "running": self.alive, "error": self.error}
