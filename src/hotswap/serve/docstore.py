"""``DocStore``: the texts of a collection's items, kept beside its vectors (``PATH/texts.sqlite``).

A collection that keeps its texts needs no dataset to be served, searched or upgraded: the backfill re-encodes
what the docstore holds. One SQLite file (WAL journal, ``synchronous=FULL``: a committed transaction survives a
power cut), table ``docs(id TEXT PRIMARY KEY, text TEXT)``, used for every backend (FAISS, qdrant, milvus).
It reads as a ``Mapping[str, str]`` from any thread; ``put_many`` writes a batch in one transaction.
``Collection.create`` fills it before ``serving.json`` is written, so a collection never exists without it.

It is also the write-ahead journal of the service's writes: ``stage`` changes the texts *and* records the ids
in table ``pending(id)`` in one transaction, before any index is touched; once the indexes hold the vectors
of those texts (or no longer hold the deleted ids), ``settle`` clears them. A process killed in between
leaves the ids pending, and the next start re-applies them from the texts (``SearchService``): the docstore
is the truth, the indexes follow it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from hotswap.errors import CorruptStoreError

DOCSTORE_NAME = "texts.sqlite"


class DocStore(Mapping[str, str]):
    """id -> text of one collection (see the module docstring)."""

    def __init__(self, path: str | Path, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CorruptStoreError(f"{self.path} is missing: the collection keeps no texts; serve it with "
                                    "--dataset (the data it was built from)")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, text TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY)")
        except sqlite3.DatabaseError as e:
            raise CorruptStoreError(f"{self.path} is not a readable docstore ({e}); restore it from a backup") from e
        self._lock = threading.Lock()

    def put_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Insert or replace ``(id, text)`` pairs in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO docs (id, text) VALUES (?, ?)", items)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def stage(self, upserts: Sequence[tuple[str, str]] = (), deletes: Sequence[str] = ()) -> None:
        """Durably (one committed transaction) set the texts of ``upserts``, remove ``deletes``, and mark all
        those ids pending until ``settle``."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO docs (id, text) VALUES (?, ?)", upserts)
                self._db.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in deletes])
                self._db.executemany("INSERT OR IGNORE INTO pending (id) VALUES (?)",
                                     [(i,) for i, _ in upserts] + [(i,) for i in deletes])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def settle(self, ids: Sequence[str]) -> None:
        """The indexes now follow the texts of ``ids``: they are no longer pending."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in ids])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self) -> list[str]:
        """Ids staged by a write whose indexes may not follow their texts yet (the write was cut short)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM pending ORDER BY rowid")]

    def __getitem__(self, key: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT text FROM docs WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return row[0]

    def get_many(self, ids: list[str], chars: int | None = None) -> dict[str, str]:
        """``{id: text}`` for the ids it holds (one query per 500 ids); ``chars``: only each text's first
        ``chars`` characters (cut by SQLite: a long text is not read whole)."""
        out: dict[str, str] = {}
        column = "text" if chars is None else f"substr(text, 1, {int(chars)})"
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                out.update(self._db.execute(f"SELECT id, {column} FROM docs WHERE id IN ({marks})",
                                            chunk).fetchall())
        return out

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM docs WHERE id = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM docs ORDER BY rowid")]
        return iter(ids)

    def close(self) -> None:
        with self._lock:
            self._db.close()
