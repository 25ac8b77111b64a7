"""``PgStore``: vectors in PostgreSQL with pgvector, in a user's database (``postgres://...?table=NAME``) or an
embedded server hotswap starts in a folder (``pg://PATH``, store name ``gallery``); see ``server.py``.

State lives in the database, so nothing of a server store is on the client's disk::

    hotswap_store(name text primary key, state jsonb)   one row per store: format_version, backend, serving
                                                         model, and per model: model_id, table, id/vector/text
                                                         columns, dim, metric, index, count, version
    NAME                (id text primary key, seq bigint identity, vec vector(dim))   the first model's table
    NAME__<sha1[:10]>   the same for each later model (an upgrade's new model)

A store may also *adopt* a table hotswap did not create (``adopt_table``): its id, vector and text columns are
named in the state; rows keep their order by id; nothing is copied or altered.

Search orders by pgvector's distance (``vec <#> q`` for "ip": the negative inner product, negated back; ``<->``
for "l2": Euclidean distance, squared to match FAISS). ``index="flat"`` (default) has no vector index: an exact
scan, equal to FAISS's "Flat" store. ``index="hnsw"`` adds pgvector's HNSW index (``vector_ip_ops`` /
``vector_l2_ops``, pgvector's defaults m=16, ef_construction=64), kept up to date by every insert; a search
reads ``ef_search`` candidates (``EF_SEARCH``, at least k; pgvector caps it at 1000). ``set_index`` switches a
table between the two (a large load goes faster flat, then one bulk ``CREATE INDEX``).

An upgrade's old partition (``search_without``) is the old table filtered in SQL by an anti-join with the new
model's table (``WHERE NOT EXISTS (... n.id = o.id)``), not a post-filter. With HNSW, pgvector applies that
filter to the ``ef_search`` candidates the index yields, so the filtered search widens ``ef_search`` by
``1 / (1 - f)`` (``f``: the share the filter drops) and asks rows still short of ``k`` again with an exact scan.

Crash safety: every write (add, upsert, delete, adding or dropping a model, switching the served one) is one
PostgreSQL transaction that also updates the model's ``count`` and ``version`` in the state row (taken
``FOR UPDATE``, so writers in several processes queue). A killed process leaves the old state or the new one,
never a mix; nothing needs recovering at the next open. Each view caches the ids it read and re-reads them when
the model's ``version`` moved. Writes made around hotswap (to an adopted table, by another program) are seen
after ``refresh()``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hotswap.errors import CorruptStoreError, DuplicateIdError
from hotswap.store.base import METRICS, IdStoreMixin, VectorStore, in_order, padded
from hotswap.store.db.common import find_model
from hotswap.store.pg.server import Client, Target, connect, release, target

OPERATOR = {"ip": "<#>", "l2": "<->"}
OPS = {"ip": "vector_ip_ops", "l2": "vector_l2_ops"}
INDEXES = ("flat", "hnsw")
EF_SEARCH = 100  # HNSW candidates per search (pgvector's default is 40); at least k
EF_MAX = 1000  # pgvector's upper limit of hnsw.ef_search
STATE_TABLE = "hotswap_store"
NAME_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
FORMAT_VERSION = 1
Hits = list[list[tuple[str, float]]]


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _sql(text: str, **parts: Any) -> Any:
    from psycopg import sql

    return sql.SQL(text).format(**{k: v if isinstance(v, sql.Composable) else _ident(v) for k, v in parts.items()})


def table_for(store: str, model_id: str) -> str:
    """The table of a later model of store ``store``: ``NAME__`` and 10 hex digits of the model id's sha1."""
    schema, _, base = store.rpartition(".")
    name = f"{base[:40]}__{hashlib.sha1(model_id.encode()).hexdigest()[:10]}"
    return f"{schema}.{name}" if schema else name


def _check_args(model_id: str, dim: int, metric: str, index: str = "flat") -> None:
    if not model_id or not isinstance(model_id, str):
        raise ValueError(f"model_id must be a non-empty string; got {model_id!r}")
    if metric not in METRICS or not isinstance(dim, (int, np.integer)) or not 0 < dim <= 16000:
        raise ValueError(f"need metric in {METRICS} and a dim in 1..16000; got metric={metric!r}, dim={dim!r}")
    if index not in INDEXES:
        raise ValueError(f"unknown pg index {index!r}; use one of {INDEXES}")


def _array(value: Any) -> np.ndarray:
    """A pgvector value as float32 (psycopg gives a ``Vector`` or a numpy array, by wire format)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


# ---- the state row -----------------------------------------------------------------------------------------
def _read_state(conn: Any, t: Target, lock: bool = False, probe: bool = True) -> dict[str, Any] | None:
    """Store ``t``'s state row (``lock``: inside a transaction, ``FOR UPDATE``, creating the table if needed);
    ``None`` if there is none. ``probe=False`` skips checking that the state table exists (an open store's
    reads: it does)."""
    if lock:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name text PRIMARY KEY, state jsonb NOT NULL)")
    elif probe and conn.execute("SELECT to_regclass(%s)", (STATE_TABLE,)).fetchone()[0] is None:
        return None
    row = conn.execute(f"SELECT state FROM {STATE_TABLE} WHERE name = %s{' FOR UPDATE' if lock else ''}",
                       (t.name,)).fetchone()
    if row is None:
        return None
    state = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    if state.get("format_version") != FORMAT_VERSION or not state.get("models"):
        raise CorruptStoreError(f"the hotswap state of store {t.uri} (row {t.name!r} of {STATE_TABLE}) is not one "
                                f"this hotswap reads (format_version {state.get('format_version')!r}); upgrade "
                                "hotswap or restore the row")
    return state


def _write_state(conn: Any, t: Target, state: dict[str, Any]) -> None:
    conn.execute(f"INSERT INTO {STATE_TABLE} (name, state) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                 "SET state = EXCLUDED.state", (t.name, json.dumps(state)))


@contextmanager
def _held(t: Target) -> Iterator[None]:
    """Hold a reference to ``t``'s client (an embedded server stays up between the steps of the body)."""
    connect(t)
    try:
        yield
    finally:
        release(t)


@contextmanager
def _transaction(t: Target) -> Iterator[tuple[Any, dict[str, Any] | None]]:
    """A transaction on ``t``'s database holding its state row (``FOR UPDATE``); the yielded state may be
    changed in place and is written back at the end (``None``: no store of that name yet)."""
    client = connect(t)
    try:
        with client.lock, client.conn.transaction():
            state = _read_state(client.conn, t, lock=True)
            yield client.conn, state
            if state is not None:
                _write_state(client.conn, t, state)
    finally:
        release(t)


class PgStore(IdStoreMixin):
    """One model's table in PostgreSQL; build with ``create_pg_store`` / ``open_pg_store`` / ``adopt_table``."""

    backend = "postgres"

    def __init__(self, location: str | Path | Target, model_id: str | None = None) -> None:
        self.target = target(location)
        self.path: Path | str = self.target.folder if self.target.folder is not None else self.target.uri
        self._client: Client | None = connect(self.target)
        self._ids: list[str] = []
        self._pos: dict[str, int] | None = None
        self._seen: int | None = None  # the model's version when _ids / _pos were read
        self._next = 0  # the position the next cached id gets
        try:
            with self._client.lock:
                state = _read_state(self._client.conn, self.target)
            if state is None:
                raise CorruptStoreError(f"there is no hotswap store {self.target.name!r} in the database of "
                                        f"{self.target.uri}; create it, or adopt an existing table with "
                                        "'hotswap adopt'")
            self._entry = find_model(state, model_id or state["serving"], self.target.uri,
                                     "open one of those models, or add this one first")
            self.verify(count=False)
        except BaseException:
            self.close()
            raise

    # ---- state -------------------------------------------------------------------------------------------
    @property
    def client(self) -> Client:
        if self._client is None:
            raise ValueError(f"store {self.target.uri} (model {self._entry['model_id']}) is closed; open it "
                             "again with hotswap.store.open_store")
        return self._client

    @property
    def closed(self) -> bool:
        return self._client is None

    def close(self) -> None:
        if self._client is not None:
            self._client = None
            release(self.target)

    @property
    def uri(self) -> str:
        return self.target.uri

    def _model(self) -> dict[str, Any]:
        """This model's entry in the state row as the database has it now."""
        from psycopg.errors import UndefinedTable

        c = self.client
        try:
            with c.lock:  # read on every len() and id check: one query, the state table exists since the open
                state = _read_state(c.conn, self.target, probe=False)
        except UndefinedTable:
            state = None
        if state is None:
            raise CorruptStoreError(f"the hotswap store {self.target.uri} is gone from its database")
        self._entry = find_model(state, self._entry["model_id"], self.target.uri, "it was dropped (rolled back)")
        return self._entry

    model_id = property(lambda self: self._entry["model_id"])
    dim = property(lambda self: self._entry["dim"])
    metric = property(lambda self: self._entry["metric"])
    table = property(lambda self: self._entry["table"], doc="This model's table (``schema.table`` allowed).")
    index = property(lambda self: self._entry["index"], doc='``"flat"`` (exact scan) or ``"hnsw"``.')
    text_column = property(lambda self: self._entry.get("text_column"))

    def __len__(self) -> int:
        return self._model()["count"]

    def __repr__(self) -> str:
        return f"PgStore({self.target.uri!r}, model_id={self.model_id!r}, dim={self.dim}, index={self.index!r})"

    def _cols(self) -> dict[str, Any]:
        e = self._entry
        return {"t": e["table"], "id": e["id_column"], "vec": e["vector_column"], "order": e["order_column"]}

    # ---- ids ---------------------------------------------------------------------------------------------
    def _id_map(self) -> dict[str, int]:
        """id -> position, read from the database on first use and whenever the model's version moved."""
        c = self.client
        with c.lock:
            version = self._model()["version"]
            if self._pos is None or self._seen != version:
                rows = c.conn.execute(_sql("SELECT {id}::text FROM {t} ORDER BY {order}", **self._cols())).fetchall()
                self._ids = [r[0] for r in rows]
                self._pos = {i: n for n, i in enumerate(self._ids)}
                self._seen, self._next = version, len(self._ids)
                if len(self._pos) != len(self._ids) or None in self._pos:
                    raise CorruptStoreError(f"table {self.table} of store {self.target.uri} holds repeated or NULL "
                                            f"ids in column {self._entry['id_column']}; make them unique")
            return self._pos

    def refresh(self) -> None:
        """See writes made around hotswap: an adopted table is counted again (and its cached ids dropped when the
        count moved). Writes through hotswap, from any process, need nothing: each view checks the model's
        version before trusting what it cached."""
        if not self._entry.get("adopted"):
            return
        with _transaction(self.target) as (conn, state):
            if state is None:
                raise CorruptStoreError(f"the hotswap store {self.target.uri} is gone from its database")
            m = find_model(state, self.model_id, self.target.uri, "it was dropped (rolled back)")
            n = conn.execute(_sql("SELECT count(*) FROM {t}", **self._cols())).fetchone()[0]
            if n != m["count"]:
                m.update(count=int(n), version=m["version"] + 1)

    def verify(self, count: bool = True) -> None:
        """Check the table and its vector column (``vector(dim)``), and with ``count`` its row count against the
        state; ``CorruptStoreError`` naming the fix."""
        e, c = self._entry, self.client
        schema, _, table = e["table"].rpartition(".")
        with c.lock:
            row = c.conn.execute(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relname = %s AND a.attname = %s "
                "AND (s.nspname = %s OR (%s = '' AND pg_table_is_visible(c.oid)))",
                (table, e["vector_column"], schema, schema)).fetchone()
            if row is None or row[0] != f"vector({e['dim']})":
                raise CorruptStoreError(f"the database of {self.target.uri} lacks table {e['table']} with column "
                                        f"{e['vector_column']} vector({e['dim']}) of model {e['model_id']} (found "
                                        f"{row[0] if row else 'none'}); restore it from a backup")
            if count:
                n = c.conn.execute(_sql("SELECT count(*) FROM {t}", **self._cols())).fetchone()[0]
                if n != self._model()["count"]:
                    raise CorruptStoreError(f"table {e['table']} of {self.target.uri} holds {n} rows but the store "
                                            f"counts {self._entry['count']}: written around hotswap? call refresh() "
                                            "to count it again")

    # ---- writing -----------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """A write transaction with this model's state entry (its count to be updated by the body); bumps the
        version and keeps the cached ids when they were current."""
        self.client  # noqa: B018 - raises once closed
        with _transaction(self.target) as (conn, state):
            if state is None:
                raise CorruptStoreError(f"the hotswap store {self.target.uri} is gone from its database")
            m = find_model(state, self.model_id, self.target.uri, "it was dropped (rolled back)")
            fresh = self._pos is not None and self._seen == m["version"]
            yield conn, m
            m["version"] += 1
        self._entry = m
        self._seen = m["version"] if fresh else None

    def _insert(self, conn: Any, ids: list[str], X: np.ndarray) -> None:
        with conn.cursor() as cur, cur.copy(_sql("COPY {t} ({id}, {vec}) FROM STDIN", **self._cols())) as copy:
            for i, x in zip(ids, X):
                copy.write_row((i, x))

    def add(self, ids: Sequence[str], vectors: np.ndarray, model_id: str, *, skip_existing: bool = False) -> int:
        """Append rows in one transaction; refuses (writing nothing) bad model, dim, values, ids or duplicates
        (``skip_existing``: leaves stored ids out instead). Returns the number of rows written."""
        ids, X = self._checked_batch(ids, vectors, model_id)
        ids, X = self._fresh_rows(ids, X, skip_existing)
        if ids:
            from psycopg.errors import UniqueViolation

            try:
                with self._writing() as (conn, m):
                    self._insert(conn, ids, X)
                    m["count"] += len(ids)
            except UniqueViolation as e:  # another process stored one of them since the check
                self._pos = None
                raise DuplicateIdError(f"an id of the batch is already in store {self.target.uri}: "
                                       f"{e.diag.message_detail}; skip it or write to a new store") from e
            self._remember(ids, ())
        return len(ids)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, model_id: str) -> int:
        """Write ``vectors`` under ``ids`` in one transaction: stored ids get the new vector (``UPDATE``), the
        others are inserted. Refuses a bad batch like ``add``, writing nothing. Returns ``len(ids)``."""
        ids, X = self._checked_batch(ids, vectors, model_id)
        with self._writing() as (conn, m):
            there = {r[0] for r in conn.execute(_sql("SELECT {id}::text FROM {t} WHERE {id}::text = ANY(%s)",
                                                     **self._cols()), (ids,)).fetchall()}
            old = [r for r, i in enumerate(ids) if i in there]
            if old:
                with conn.cursor() as cur:
                    cur.executemany(_sql("UPDATE {t} SET {vec} = %s WHERE {id}::text = %s", **self._cols()),
                                    [(X[r], ids[r]) for r in old])
            new = [r for r, i in enumerate(ids) if i not in there]
            if new:
                self._insert(conn, [ids[r] for r in new], X[new])
            m["count"] += len(new)
        self._remember([ids[r] for r in new], ())
        return len(ids)

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove ``ids`` in one transaction (ids not stored are ignored); returns how many were stored."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        if bad := [i for i in ids if not isinstance(i, str)][:3]:
            raise TypeError(f"ids must be strings; got {bad!r}")
        with self._writing() as (conn, m):
            gone = [r[0] for r in conn.execute(_sql("DELETE FROM {t} WHERE {id}::text = ANY(%s) RETURNING {id}::text",
                                                    **self._cols()), (list(dict.fromkeys(ids)),)).fetchall()]
            m["count"] -= len(gone)
        self._remember((), gone)
        return len(gone)

    def _remember(self, added: Sequence[str], removed: Sequence[str]) -> None:
        """Apply a committed write to the cached ids (if they were current when it started)."""
        if self._pos is None or self._seen is None:
            self._pos = None
            return
        if removed:
            gone = set(removed)
            self._ids = [i for i in self._ids if i not in gone]
            for i in gone:
                self._pos.pop(i, None)
        for n, i in enumerate(added):
            self._pos[i] = self._next + n
        self._next += len(added)
        self._ids.extend(added)

    # ---- reading -----------------------------------------------------------------------------------------
    def _query(self, Q: np.ndarray, limit: int, without: PgStore | None = None, ef: int = EF_SEARCH,
               exact: bool = False) -> Hits:
        """Top ``limit`` per query (exact, or by the HNSW index reading ``ef`` candidates); ``without``: leave
        out ids that store's table holds (an anti-join in SQL)."""
        from psycopg import sql

        cols = self._cols()
        skip = sql.SQL("") if without is None else _sql(
            "WHERE NOT EXISTS (SELECT 1 FROM {n} n WHERE n.{nid}::text = o.{id}::text) ", n=without.table,
            nid=without._entry["id_column"], id=cols["id"])
        query = _sql("SELECT o.{id}::text, o.{vec} {op} %s AS d FROM {t} o {skip}ORDER BY d LIMIT %s",
                     op=sql.SQL(OPERATOR[self.metric]), skip=skip, **cols)
        c = self.client
        with c.lock, c.conn.transaction():
            if exact:
                c.conn.execute("SET LOCAL enable_indexscan = off")
            elif self.index == "hnsw":
                c.conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(EF_MAX, max(ef, limit))),))
            out = []
            for q in Q:
                rows = c.conn.execute(query, (q.astype(np.float32), int(limit))).fetchall()
                out.append([(i, -d if self.metric == "ip" else d * d) for i, d in rows])
        return out

    def search(self, queries: np.ndarray, k: int, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """FAISS-style ``(D, I)``: float32 [nq, k] best first, string ids [nq, k] (``None`` pads short lists)."""
        Q, k = self._check_queries(queries, k, model_id)
        n = len(self)
        return padded(self._query(Q, min(k, n)) if n and len(Q) else [[] for _ in range(len(Q))], k, self.metric)

    def search_without(self, Q: np.ndarray, k: int, other: PgStore) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` over this model's items whose id ``other``'s table lacks: an upgrade's old partition,
        filtered in SQL. With HNSW, ``ef_search`` grows by ``1 / (1 - f)`` and rows left short of ``k`` (the
        filter dropped too many candidates) are asked again exactly."""
        n, done = len(self), len(other)
        want = min(k, max(0, n - done))
        if not len(Q) or not want:
            return padded([[] for _ in range(len(Q))], k, self.metric)
        hits = self._query(Q, want, without=other, ef=int(np.ceil(EF_SEARCH * n / (n - done))))
        if self.index == "hnsw" and (short := [r for r, h in enumerate(hits) if len(h) < want]):
            for r, h in zip(short, self._query(Q[short], want, without=other, exact=True)):
                hits[r] = h
        return padded(hits, k, self.metric)

    def get(self, ids: Sequence[str]) -> np.ndarray:
        """float32 ``[len(ids), dim]`` rows in the order asked; unknown ids raise ``UnknownIdError``."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        c = self.client
        with c.lock:
            found = {i: _array(v) for i, v in c.conn.execute(
                _sql("SELECT {id}::text, {vec} FROM {t} WHERE {id}::text = ANY(%s)", **self._cols()),
                (list(dict.fromkeys(ids)),)).fetchall()}
        self._refuse_unknown(ids, found)
        return in_order(found, ids, self.dim)

    def set_index(self, index: str, maintenance_work_mem: str = "1GB") -> None:
        """Switch this model's table to ``index`` ("flat" drops the HNSW index, "hnsw" builds it over the rows
        there): loading a large table flat and building once is several times faster than the row-by-row upkeep
        of an index that exists while rows arrive. One transaction; an adopted table is left as it is."""
        _check_args(self.model_id, self.dim, self.metric, index)
        if self._entry.get("adopted"):
            raise ValueError(f"table {self.table} was adopted: manage its indexes in PostgreSQL")
        name = f"{self.table}_hnsw"
        with self._writing() as (conn, m):
            conn.execute(_sql("DROP INDEX IF EXISTS {i}", i=name))
            if index == "hnsw":
                conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (maintenance_work_mem,))
                conn.execute(_sql("CREATE INDEX {i} ON {t} USING hnsw ({vec} {ops})", i=name.rpartition(".")[2],
                                  ops=_raw(OPS[self.metric]), **self._cols()))
            m["index"] = index

    def texts(self, ids: Sequence[str]) -> dict[str, str]:
        """``{id: text}`` from the table's text column (an adopted table's); ``ValueError`` when it has none."""
        if not self.text_column:
            raise ValueError(f"table {self.table} of {self.target.uri} has no text column; adopt it with one")
        c = self.client
        with c.lock:
            rows = c.conn.execute(_sql("SELECT {id}::text, {txt} FROM {t} WHERE {id}::text = ANY(%s)",
                                       txt=self.text_column, **self._cols()), (list(ids),)).fetchall()
        return {i: t for i, t in rows if t is not None}


# ---- creating, adding and dropping models -----------------------------------------------------------------
def _entry(model_id: str, table: str, dim: int, metric: str, index: str, **extra: Any) -> dict[str, Any]:
    return {"model_id": model_id, "table": table, "id_column": "id", "vector_column": "vec", "order_column": "seq",
            "text_column": None, "dim": int(dim), "metric": metric, "index": index, "count": 0, "version": 0,
            "adopted": False, **extra}


def _create_table(conn: Any, entry: dict[str, Any]) -> None:
    if conn.execute("SELECT to_regclass(%s)", (entry["table"],)).fetchone()[0] is not None:
        raise FileExistsError(f"table {entry['table']} already exists in that database; adopt it with 'hotswap "
                              "adopt', drop it, or choose another table name")
    conn.execute(_sql("CREATE TABLE {t} (id text PRIMARY KEY, seq bigint GENERATED ALWAYS AS IDENTITY, "
                      "vec vector({d}) NOT NULL)", t=entry["table"], d=_literal(entry["dim"])))
    if entry["index"] == "hnsw":
        conn.execute(_sql("CREATE INDEX {i} ON {t} USING hnsw (vec {ops})", t=entry["table"],
                          i=entry["table"].rpartition(".")[2] + "_hnsw", ops=_raw(OPS[entry["metric"]])))


def _literal(v: Any) -> Any:
    from psycopg import sql

    return sql.Literal(v)


def _raw(text: str) -> Any:
    from psycopg import sql

    return sql.SQL(text)


def create_pg_store(location: str | Path | Target, model_id: str, dim: int, metric: str = "ip",
                    index: str = "flat") -> PgStore:
    """Create store ``location`` (a new or empty folder for an embedded server, or ``postgres://...?table=``)
    with an empty table for ``model_id``; ``index``: ``"flat"`` (exact) or ``"hnsw"``."""
    t = target(location)
    _check_args(model_id, dim, metric, index)
    if t.folder is not None and t.folder.exists() and (not t.folder.is_dir() or any(t.folder.iterdir())):
        raise FileExistsError(f"{t.folder} exists and is not an empty folder; open it with pg://{t.folder} "
                              "or choose a new folder")
    if t.folder is not None:
        t.folder.mkdir(parents=True, exist_ok=True)
    with _held(t):
        with _transaction(t) as (conn, state):
            if state is not None:
                raise FileExistsError(f"store {t.uri} already exists; open it, or choose another table name")
            entry = _entry(model_id, t.name, dim, metric, index)
            _create_table(conn, entry)
            _write_state(conn, t, {"format_version": FORMAT_VERSION, "backend": "postgres", "serving": model_id,
                                   "models": [entry]})
        return PgStore(t, model_id)


def open_pg_store(location: str | Path | Target, model_id: str | None = None) -> PgStore:
    """Open the view of ``model_id`` (None: the served model) of a pg store."""
    t = target(location)
    if t.folder is not None and not (t.folder / "pgdata").is_dir():
        raise CorruptStoreError(f"{t.folder} holds no embedded PostgreSQL (pgdata/ is missing); create the store "
                                f"with pg://{t.folder}, or open a FAISS folder with faiss://{t.folder}")
    return PgStore(t, model_id)


def add_model_table(location: str | Path | Target, model_id: str, dim: int, metric: str | None = None) -> PgStore:
    """Add an empty table for ``model_id`` to the store (``metric`` and index default to the served model's)
    and return its view; one transaction."""
    t = target(location)
    with _held(t):
        with _transaction(t) as (conn, state):
            if state is None:
                raise CorruptStoreError(f"there is no hotswap store at {t.uri}")
            first = find_model(state, state["serving"], t, "")
            metric = metric or first["metric"]
            _check_args(model_id, dim, metric, first["index"])
            if any(m["model_id"] == model_id for m in state["models"]):
                raise FileExistsError(f"store {t.uri} already holds model {model_id!r}; open it")
            entry = _entry(model_id, table_for(t.name, model_id), dim, metric, first["index"])
            _create_table(conn, entry)
            state["models"].append(entry)
        return PgStore(t, model_id)


def drop_model_table(location: str | Path | Target, model_id: str) -> bool:
    """Drop ``model_id``'s table and its state entry in one transaction: the rollback of ``add_model_table``.
    Refuses the served model; ``False`` if the model was not there."""
    t = target(location)
    with _transaction(t) as (conn, state):
        if state is None or not any(m["model_id"] == model_id for m in state["models"]):
            return False
        if state["serving"] == model_id:
            raise ValueError(f"{model_id!r} is the serving model of store {t.uri}; it cannot be removed, only "
                             "models added after it can")
        entry = find_model(state, model_id, t, "")
        state["models"] = [m for m in state["models"] if m["model_id"] != model_id]
        if not entry.get("adopted"):
            conn.execute(_sql("DROP TABLE IF EXISTS {t}", t=entry["table"]))
    return True


def set_serving_model(location: str | Path | Target, model_id: str) -> None:
    """Make ``model_id`` the model the store opens by default: an upgrade's commit, one transaction."""
    t = target(location)
    with _transaction(t) as (conn, state):
        if state is None:
            raise CorruptStoreError(f"there is no hotswap store at {t.uri}")
        find_model(state, model_id, t, "add it first")
        state["serving"] = model_id


def adopt_table(location: str | Path | Target, model_id: str, vector_column: str, text_column: str | None = None,
                id_column: str = "id", metric: str = "ip", check: Callable[[PgStore], None] | None = None) -> PgStore:
    """Register the existing table named by ``location`` (``postgres://...?table=NAME``) as a store of
    ``model_id`` without copying or altering it: ids from ``id_column`` (any type, read as text; unique),
    vectors from ``vector_column`` (``vector(d)``), texts from ``text_column``. An HNSW index on the vector
    column is used when there is one. Refuses a table already registered, a missing column, a column that is
    not a pgvector ``vector(d)`` or ids that repeat, naming what is wrong. ``check`` sees the adopted store
    before the registration commits; an exception from it undoes the registration."""
    t = target(location)
    for col in (vector_column, id_column, *([text_column] if text_column else [])):
        if not NAME_COLUMN.fullmatch(col):
            raise ValueError(f"column name {col!r} is not a plain identifier (letters, digits, _)")
    with _held(t):
        with _transaction(t) as (conn, state):
            if state is not None:
                raise FileExistsError(f"store {t.uri} is already registered (model {state['serving']}); open it")
            if conn.execute("SELECT to_regclass(%s)", (t.name,)).fetchone()[0] is None:
                raise FileNotFoundError(f"there is no table {t.name} in the database of {t.uri}")
            types = dict(conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = "
                "to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped", (t.name,)).fetchall())
            for col in (vector_column, id_column, *([text_column] if text_column else [])):
                if col not in types:
                    raise ValueError(f"table {t.name} has no column {col!r}; it has {sorted(types)}")
            dims = re.fullmatch(r"vector\((\d+)\)", types[vector_column])
            if dims is None:
                raise ValueError(f"column {vector_column} of {t.name} is {types[vector_column]}, not a pgvector "
                                 "vector(d) with a fixed dimension")
            _check_args(model_id, int(dims.group(1)), metric)
            n, distinct = conn.execute(_sql("SELECT count(*), count(DISTINCT {id}) FROM {t}", t=t.name,
                                            id=id_column)).fetchone()
            if n != distinct:
                raise ValueError(f"column {id_column} of {t.name} holds {n - distinct} repeated or NULL ids; adopt a "
                                 "table whose id column is unique")
            hnsw = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s AND indexdef ILIKE %s",
                                (t.name.rpartition(".")[2], f"%USING hnsw ({vector_column} %")).fetchone()[0]
            entry = _entry(model_id, t.name, int(dims.group(1)), metric, "hnsw" if hnsw else "flat",
                           id_column=id_column, vector_column=vector_column, order_column=id_column,
                           text_column=text_column, adopted=True, count=int(n))
            _write_state(conn, t, {"format_version": FORMAT_VERSION, "backend": "postgres", "serving": model_id,
                                   "models": [entry]})
            if check is not None:
                with PgStore(t, model_id) as view:  # the same connection: sees the registration not yet committed
                    check(view)
        return PgStore(t, model_id)


if TYPE_CHECKING:  # mypy checks PgStore against the VectorStore protocol: a signature drift fails type checking
    _pg_store: type[VectorStore] = PgStore
