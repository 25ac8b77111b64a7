"""Connections to PostgreSQL for the pg backend: a user's server by URI, or an embedded one in a folder.

``postgres://user:password@host:port/db?table=NAME`` (or ``postgresql://``) names a store ``NAME`` in a
database on any PostgreSQL with the pgvector extension; ``pg://PATH`` an embedded server that hotswap starts
in ``PATH/pgdata`` from the ``pgserver`` wheel (PostgreSQL 16 + pgvector), with the store ``gallery``.
Both give a ``Target``; ``connect(target)`` returns the process's one shared ``Client`` for it (one
connection, in autocommit mode, pgvector's type registered, and a lock: one call at a time) and ``release``
lets go of it. The embedded server is started on first use and stopped after the last process using it lets
go (pgserver keeps a list of them; ``_forget_dead_users`` drops processes that were killed).
"""

from __future__ import annotations

import atexit
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DATA = "pgdata"
EMBEDDED_NAME = "gallery"
URI_SCHEMES = ("postgres", "postgresql")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}(\.[A-Za-z_][A-Za-z0-9_]{0,39})?")


@dataclass(frozen=True)
class Target:
    """Where a pg store lives: a server (``dsn``) or an embedded one (``folder``), and the store's ``name``
    (its first table, and its row in ``hotswap_store``; ``schema.table`` allowed)."""

    name: str
    dsn: str | None = None
    folder: Path | None = None

    @property
    def key(self) -> str:
        return str(self.folder.resolve()) if self.folder is not None else f"{self.dsn}"

    @property
    def uri(self) -> str:
        """The store URI to open it again (a server's password left out)."""
        if self.folder is not None:
            return f"pg://{self.folder}"
        parts = urlsplit(self.server_dsn())
        netloc = parts.netloc.rsplit("@", 1)
        if len(netloc) == 2:
            netloc[0] = netloc[0].split(":", 1)[0]
        query = urlencode([*parse_qsl(parts.query), ("table", self.name)])
        return urlunsplit((parts.scheme, "@".join(netloc), parts.path, query, ""))

    def __str__(self) -> str:
        return self.uri

    def server_dsn(self) -> str:
        """The server's connection string; ``ValueError`` for a target that names neither a server nor a folder."""
        if self.dsn is None:
            raise ValueError(f"pg store {self.name!r} names neither a server (dsn) nor a folder")
        return self.dsn


def target(location: str | Path | Target) -> Target:
    """The ``Target`` of a folder (embedded server) or a ``postgres://...?table=NAME`` URI."""
    if isinstance(location, Target):
        return location
    text = str(location)
    scheme = text.partition("://")[0]
    if isinstance(location, Path) or scheme not in URI_SCHEMES:
        return Target(EMBEDDED_NAME, folder=Path(text.removeprefix("pg://")))
    parts = urlsplit(text)
    query = parse_qsl(parts.query)
    names = [v for k, v in query if k == "table"]
    if len(names) != 1 or not NAME.fullmatch(names[0]):
        raise ValueError(f"{text!r} needs one ?table=NAME (letters, digits and _, optionally schema.table): the "
                         "store's table in that database, e.g. postgres://me@localhost:5432/search?table=docs")
    rest = urlencode([(k, v) for k, v in query if k != "table"])
    return Target(names[0], dsn=urlunsplit((parts.scheme, parts.netloc, parts.path, rest, "")))


def _embedded(folder: Path) -> Any:
    if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver asks platformdirs for a private runtime folder
        run = Path(tempfile.gettempdir()) / f"hotswap-runtime-{os.getuid()}"
        run.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)
    import pgserver

    return pgserver.get_server(folder / DATA, cleanup_mode="stop")


def _forget_dead_users(server: Any) -> None:
    """Drop processes that died without letting go (a SIGKILL) from pgserver's list of the server's users, so
    that the last live one stops it (pgserver 0.1.4 keeps the list in a file, ``global_process_id_list``)."""
    import psutil

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    users = getattr(server, "global_process_id_list", None)
    if users is None:
        return
    with server._lock:
        pids = users.get()
        if (live := [pid for pid in pids if alive(pid)]) != pids:
            users.put(live)


@dataclass
class Client:
    """One connection per target and process, shared by every open view; ``lock``: one call at a time."""

    conn: Any
    server: Any = None
    refs: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def close(self) -> None:
        self.conn.close()
        if self.server is not None:
            _forget_dead_users(self.server)
            self.server.cleanup()  # stops the embedded server when this process was its last user


_CLIENTS: dict[str, Client] = {}
_GUARD = threading.Lock()


def connect(t: Target) -> Client:
    """The process's client for ``t`` (connecting, and starting an embedded server, on first use)."""
    import psycopg
    from pgvector.psycopg import register_vector

    with _GUARD:
        if (c := _CLIENTS.get(t.key)) is None:
            server = _embedded(t.folder) if t.folder is not None else None
            try:
                conn = psycopg.connect(server.get_uri() if server is not None else t.server_dsn(), autocommit=True)
            except psycopg.OperationalError as e:
                raise ConnectionError(f"cannot connect to PostgreSQL for store {t.uri}: {e}".strip()) from e
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as e:
                conn.close()
                raise ConnectionError(f"the database of {t.uri} lacks the pgvector extension and this user cannot "
                                      f"create it ({e}); run CREATE EXTENSION vector as its owner") from e
            register_vector(conn)
            c = _CLIENTS[t.key] = Client(conn, server)
        c.refs += 1
        return c


def release(t: Target) -> None:
    """One reference less to ``t``'s client; the last one closes it (and stops an embedded server)."""
    with _GUARD:
        c = _CLIENTS[t.key]
        c.refs -= 1
        if c.refs <= 0:
            del _CLIENTS[t.key]
            c.close()


@atexit.register
def _close_all() -> None:
    while _CLIENTS:
        try:
            _CLIENTS.popitem()[1].close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
