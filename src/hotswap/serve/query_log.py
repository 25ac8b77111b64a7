"""``QueryLog``: the texts of the queries a service answered, the query log of the ``popularity`` backfill order.

Bounded: the last ``MAX_LOGGED`` distinct texts (a repeated query moves to the newest end). Kept in memory and
persisted to ``COLLECTION/queries.json`` (``{"format_version": 1, "queries": [oldest, ..., newest]}``), replaced
atomically at most every ``SAVE_EVERY`` answered queries and at shutdown, so a kill loses at most the queries
since the last save. A damaged or unreadable file is set aside (the log starts empty) rather than refused:
the log only ranks what a backfill re-embeds first, it never decides what a search returns.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from hotswap.io import atomic_write_json

QUERY_LOG_NAME = "queries.json"
MAX_LOGGED = 5000
SAVE_EVERY = 256
FORMAT_VERSION = 1


class QueryLog:
    """The last ``limit`` distinct query texts, saved to ``path`` every ``save_every`` added queries."""

    def __init__(self, path: str | Path, limit: int = MAX_LOGGED, save_every: int = SAVE_EVERY) -> None:
        self.path, self.limit, self.save_every = Path(path), limit, save_every
        self._texts: OrderedDict[str, None] = OrderedDict()
        self._lock, self._save_lock = threading.Lock(), threading.Lock()
        self._unsaved = 0
        self.problem: str | None = None  # why the file could not be read or written, if it could not
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            self.problem = f"{self.path} could not be read ({type(e).__name__}); the query log started empty"
            return
        queries = data.get("queries") if isinstance(data, dict) else None
        if not isinstance(queries, list):
            self.problem = f"{self.path} is not a query log; the query log started empty"
            return
        self._remember(t for t in queries if isinstance(t, str) and t.strip())

    def _remember(self, texts: Iterable[str]) -> int:
        n = 0
        for text in texts:
            self._texts.pop(text, None)
            self._texts[text] = None
            n += 1
        while len(self._texts) > self.limit:
            self._texts.popitem(last=False)
        return n

    def add(self, texts: Iterable[str]) -> None:
        """Remember ``texts`` (answered queries); saves when ``save_every`` queries came since the last save."""
        with self._lock:
            self._unsaved += self._remember(texts)
            due = self._unsaved >= self.save_every
        if due:
            self.save()

    def texts(self) -> list[str]:
        """The remembered texts, oldest first."""
        with self._lock:
            return list(self._texts)

    def __len__(self) -> int:
        with self._lock:
            return len(self._texts)

    def save(self) -> bool:
        """Write the log if it changed since the last save; a failed write is kept in ``problem``, never raised
        (a search must not fail because its log could not be saved): returns whether the file is current."""
        with self._save_lock:
            with self._lock:
                if not self._unsaved:
                    return True
                snapshot, unsaved, self._unsaved = list(self._texts), self._unsaved, 0
            try:
                atomic_write_json(self.path, {"format_version": FORMAT_VERSION, "queries": snapshot})
            except OSError as e:
                with self._lock:
                    self._unsaved += unsaved  # try again at the next save
                self.problem = f"cannot save the query log to {self.path}: {e}"
                return False
            self.problem = None
            return True
