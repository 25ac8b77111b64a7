"""``DemandLog``: the ids that queries asked for and did not find encoded by the new model, in arrival order.

A cascade search (``hotswap.search.cascade``) re-scores an upgrade's old-partition candidates with the new
model; candidates past its per-query encoding budget are *demanded*: appended here, one JSON string per line,
to ``<upgrade folder>/demand.log``. A backfill planned with the ``demand`` ordering policy
(``hotswap.backfill``) reads the lines it has not read yet before each batch and backfills those items first.

The log is a hint, not a record: losing its tail in a crash only changes the order in which items are
backfilled, never what is stored. So appends are written without fsync, and a reader skips a last line that
has no newline yet (a write in progress, or one cut short by a kill); it reads that line once it is whole.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

DEMAND_NAME = "demand.log"


class DemandLog:
    """Append and read demanded ids of the upgrade in ``folder`` (``folder/demand.log``)."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / DEMAND_NAME
        self._offset = 0  # bytes of the file already returned by ``read_new``
        self._lock = threading.Lock()

    def record(self, ids: Iterable[str]) -> int:
        """Append ``ids`` (one line each, in one ``write``); returns how many were appended."""
        lines = [json.dumps(i) + "\n" for i in ids]
        if lines:
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write("".join(lines))
        return len(lines)

    def read_new(self) -> list[str]:
        """The ids appended since the last call (by any process), oldest first; a partial last line waits."""
        with self._lock:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                return []
            end = data.rfind(b"\n") + 1
            self._offset += end
        out = []
        for line in data[:end].splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line mangled by a crash: a lost hint, nothing more
            if isinstance(value, str):
                out.append(value)
        return out

    def rewind(self) -> None:
        """Read the log from its first line again (a new run of the backfill)."""
        with self._lock:
            self._offset = 0

    def size(self) -> int:
        """Bytes in the log (0 when nothing was demanded)."""
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0
