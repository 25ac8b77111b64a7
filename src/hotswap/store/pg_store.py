"""``PgStore``: vectors in PostgreSQL with pgvector, on an embedded server that hotswap starts (``pg://PATH``).

Layout::

    store/hotswap-store.json     backend, and per model: model_id, table, dim, metric, count, deleted (``db_common``)
    store/pgdata/                the PostgreSQL 16 data folder of the embedded server (the ``pgserver`` wheel,
                                 pgvector included), started on first use and stopped with the last process

One table per model, named ``model_key(model_id)``: ``id text primary key``, ``seq bigint`` (the insertion
number) and ``vec vector(dim)``. Search orders by pgvector's distance (``ORDER BY vec <#> q`` for "ip": the
negative inner product, negated back; ``<->`` for "l2": Euclidean distance, squared to match FAISS).
``index="flat"`` (default) has no vector index: a sequential scan, results equal to FAISS's "Flat" store.
``index="hnsw"`` adds pgvector's HNSW index (``vector_ip_ops`` / ``vector_l2_ops``, m=16, ef_construction=64,
pgvector's defaults) kept up to date by every insert; a search reads ``ef_search`` candidates (the store's
setting, at least k; pgvector caps it at 1000). ``upsert`` of a stored id is an ``UPDATE`` of its vector, seq
kept; ``delete`` deletes rows by seq.

An upgrade's old partition (``search_without``) is the old table filtered in SQL by an anti-join against the new
model's table. With HNSW, pgvector applies that filter to the ``ef_search`` candidates the index yields, so the
filtered search widens ``ef_search`` by ``1 / (1 - f)`` (``f``: the share of items the filter drops) and asks the
rows still short of ``k`` again with an exact scan, so no row comes back short.

Crash safety: each batch is one PostgreSQL transaction, durable on commit; the store file stays the commit point
of appends, as for the other database backends (rows with ``seq`` at or past the model's count are deleted at
the next open). A killed process leaves the server running; the next process adopts it (``pgserver`` keeps
track of the processes using it and stops it after the last one).

Differs from the other database backends: a real database server, so other processes may connect to it too
(its URI is ``PgStore.uri``); the folder is not locked to one process.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.errors import CorruptStoreError
from hotswap.store.db_common import (append_model, check_new_store, model_entry, model_key, new_model_entry,
                                     write_store_file)
from hotswap.store.db_store import DbStore, Hits

DATA = "pgdata"
OPERATOR = {"ip": "<#>", "l2": "<->"}
OPS = {"ip": "vector_ip_ops", "l2": "vector_l2_ops"}
INDEXES = ("flat", "hnsw")
EF_SEARCH = 100  # HNSW candidates per search (pgvector's default is 40); at least k
EF_MAX = 1000  # pgvector's upper limit of hnsw.ef_search


def _server(folder: Path) -> Any:
    if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver asks platformdirs for a private runtime folder
        run = Path(tempfile.gettempdir()) / f"hotswap-runtime-{os.getuid()}"
        run.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)
    import pgserver

    return pgserver.get_server(folder / DATA, cleanup_mode="stop")


class _Client:
    """The embedded server and one autocommit connection to it (pgvector's type registered)."""

    def __init__(self, folder: Path) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        self.server = _server(folder)
        self.conn = psycopg.connect(self.server.get_uri(), autocommit=True)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self.conn)

    def close(self) -> None:
        self.conn.close()
        _forget_dead_users(self.server)
        self.server.cleanup()  # stops the server when this process was its last user


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


class PgStore(DbStore):
    """One model's table in an embedded PostgreSQL; build with ``create_pg_store`` / ``open_pg_store``."""

    backend = "pg"
    opener = "open_pg_store"

    @staticmethod
    def _connect(folder: Path) -> _Client:
        return _Client(folder)

    @staticmethod
    def _disconnect(client: _Client, folder: Path) -> None:
        client.close()

    @property
    def uri(self) -> str:
        """The embedded server's connection URI (a unix socket)."""
        return self.client.server.get_uri()

    def _sql(self, text: str, *args: Any) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(sql.Identifier(self.key), *args)

    def _open(self) -> None:
        row = self.client.conn.execute(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname = %s AND a.attname = 'vec'", (self.key,)).fetchone()
        if row is None or row[0] != f"vector({self.dim})":
            raise CorruptStoreError(f"the PostgreSQL database in {self.path} lacks table {self.key!r} of model "
                                    f"{self.model_id} (vector({self.dim})); restore the folder from a backup")

    def _scan(self) -> list[tuple[str, int]]:
        return [(i, int(s)) for i, s in self.client.conn.execute(self._sql("SELECT id, seq FROM {}")).fetchall()]

    def _write(self, ids: list[str], X: np.ndarray, start: int) -> None:
        conn = self.client.conn
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(self._sql("COPY {} (id, seq, vec) FROM STDIN")) as copy:
                for n, (i, x) in enumerate(zip(ids, X)):
                    copy.write_row((i, start + n, x))

    def _replace(self, ids: list[str], X: np.ndarray, seqs: list[int]) -> None:
        conn = self.client.conn
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(self._sql("UPDATE {} SET vec = %s WHERE id = %s"), list(zip(X, ids)))

    def _remove(self, seqs: list[int]) -> None:
        self.client.conn.execute(self._sql("DELETE FROM {} WHERE seq = ANY(%s)"), ([int(s) for s in seqs],))

    def _purge(self, count: int) -> None:
        self.client.conn.execute(self._sql("DELETE FROM {} WHERE seq >= %s"), (int(count),))

    @property
    def index(self) -> str:
        """``"flat"`` (exact scan) or ``"hnsw"`` (pgvector's HNSW index)."""
        return self._entry.get("index", "flat")

    def _query(self, Q: np.ndarray, limit: int, without: str | None = None, ef: int = EF_SEARCH) -> Hits:
        """Top ``limit`` per query (exact, or by the HNSW index reading ``ef`` candidates); ``without``: leave
        out ids that table holds (an anti-join in SQL)."""
        from psycopg import sql

        skip = sql.SQL("") if without is None else sql.SQL(
            "WHERE NOT EXISTS (SELECT 1 FROM {} n WHERE n.id = o.id) ").format(sql.Identifier(without))
        query = sql.SQL("SELECT o.id, o.vec {op} %s AS d FROM {table} o {skip}ORDER BY d LIMIT %s").format(
            op=sql.SQL(OPERATOR[self.metric]), table=sql.Identifier(self.key), skip=skip)
        conn = self.client.conn
        if self.index == "hnsw":
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(min(EF_MAX, max(ef, limit))),))
        out = []
        for q in Q:
            rows = conn.execute(query, (q, int(limit))).fetchall()
            out.append([(i, -d if self.metric == "ip" else d * d) for i, d in rows])
        return out

    def _exact(self, Q: np.ndarray, limit: int, without: str | None) -> Hits:
        """``_query`` with the vector index turned off for this transaction: an exact scan."""
        conn = self.client.conn
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            return self._query(Q, limit, without)

    def search_without(self, Q: np.ndarray, k: int, other: PgStore) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` over this model's items whose id ``other``'s table lacks: an upgrade's old partition,
        filtered in SQL. With HNSW, ``ef_search`` grows by ``1 / (1 - f)`` and rows left short of ``k`` (the
        filter dropped too many candidates) are asked again exactly."""
        self.client  # noqa: B018 - raises once closed
        with self._h.lock:
            n, done = len(self), len(other)
            want = min(k, max(0, n - done))
            if not len(Q) or not want:
                return self._padded([[] for _ in range(len(Q))], k)
            hits = self._query(Q, want, without=other.key, ef=int(np.ceil(EF_SEARCH * n / (n - done))))
            if self.index == "hnsw" and (short := [r for r, h in enumerate(hits) if len(h) < want]):
                for r, h in zip(short, self._exact(Q[short], want, other.key)):
                    hits[r] = h
            return self._padded(hits, k)

    def _fetch(self, ids: list[str], rows: list[int]) -> dict[str, np.ndarray]:
        found = self.client.conn.execute(self._sql("SELECT id, vec FROM {} WHERE seq = ANY(%s)"),
                                         ([int(s) for s in rows],)).fetchall()
        return {i: _array(v) for i, v in found}


def _array(value: Any) -> np.ndarray:
    """A pgvector value as float32 (psycopg gives a ``Vector`` or a numpy array, by wire format)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _check_index(index: str) -> str:
    if index not in INDEXES:
        raise ValueError(f"unknown pg index {index!r}; use one of {INDEXES}")
    return index


def _create_table(conn: Any, entry: dict[str, Any]) -> None:
    """(Re)create the empty table of store-file ``entry``, with its HNSW index when the entry asks for one."""
    from psycopg import sql

    key = sql.Identifier(entry["key"])
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(key))  # a create that died: afresh
    conn.execute(sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, seq bigint NOT NULL, vec vector({}) NOT NULL)")
                 .format(key, sql.Literal(int(entry["dim"]))))
    if entry.get("index", "flat") == "hnsw":
        conn.execute(sql.SQL("CREATE INDEX {} ON {} USING hnsw (vec {})").format(
            sql.Identifier(entry["key"] + "_hnsw"), key, sql.SQL(OPS[entry["metric"]])))


def create_pg_store(path: str | Path, model_id: str, dim: int, metric: str = "ip", index: str = "flat") -> PgStore:
    """Create an embedded PostgreSQL in ``path`` (new or empty folder) with a table for ``model_id``;
    ``index``: ``"flat"`` (exact search) or ``"hnsw"`` (pgvector's HNSW index)."""
    path = check_new_store(path, model_id, dim, metric, opener="open_pg_store")
    path.mkdir(parents=True, exist_ok=True)
    entry = {**model_entry(model_id, dim, metric), "index": _check_index(index)}
    client = _Client(path)
    try:
        _create_table(client.conn, entry)
    finally:
        client.close()
    write_store_file(path, {"backend": "pg", "format_version": 1, "models": [entry]})
    return PgStore(path, model_id)


def open_pg_store(path: str | Path, model_id: str | None = None) -> PgStore:
    """Open the view of ``model_id``'s table (None: the folder's first model) in a pg store folder."""
    path = Path(path)
    with PgStore.handle(path) as h:
        return PgStore(path, h.data["models"][0]["model_id"] if model_id is None else model_id)


def add_model_table(path: str | Path, model_id: str, dim: int, metric: str | None = None) -> PgStore:
    """Add an empty table for ``model_id`` (``metric`` and index default to the first model's) and return its
    view."""
    path = Path(path)
    with PgStore.handle(path) as h:
        entry = {**new_model_entry(h.data, path, model_id, dim, metric, "open_pg_store"),
                 "index": h.data["models"][0].get("index", "flat")}
        _create_table(h.client.conn, entry)
        append_model(h, path, entry)
        return PgStore(path, model_id)


def drop_model_table(path: str | Path, model_id: str) -> bool:
    """Drop ``model_id``'s table and its store-file entry: the rollback of ``add_model_table``. Refuses the
    folder's first model; ``False`` if the model was not there."""
    from psycopg import sql

    path = Path(path)
    with PgStore.handle(path) as h:
        drop = sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(model_key(model_id)))
        if not any(m["model_id"] == model_id for m in h.data["models"]):
            h.client.conn.execute(drop)  # a drop killed after its commit leaves the table
            return False
        if h.data["models"][0]["model_id"] == model_id:
            raise ValueError(f"{model_id!r} is the first model of store {path} (opened by default); it cannot "
                             "be removed, only later ones can")
        data = {**h.data, "models": [m for m in h.data["models"] if m["model_id"] != model_id]}
        write_store_file(path, data)  # the commit point
        h.data = data
        h.client.conn.execute(drop)
        return True
