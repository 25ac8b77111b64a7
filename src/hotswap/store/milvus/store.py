"""``MilvusStore``: vectors in a milvus-lite database (``pymilvus.MilvusClient("<folder>/milvus.db")``).

Layout::

    store/hotswap-store.json     backend, alias, serving model, and per model: model_id, collection, dim, metric,
                                 count, deleted (see ``hotswap.store.db.common``)
    store/milvus.db/             milvus-lite's data folder (a folder despite the name): WAL, parquet segments,
                                 per-collection manifests, aliases.json, and LOCK (one process at a time)

One collection per model version, named ``model_key(model_id)`` (e.g. ``m_minilm_1a2b3c_<sha1[:8]>``), with
fields ``id`` (VARCHAR primary key: the string id itself), ``seq`` (INT64 insertion number) and ``vec``
(FLOAT_VECTOR, FLAT index: exact search). ``upsert`` of a stored id is a milvus ``upsert`` of its row, seq
kept; ``delete`` deletes rows by seq (ints: no string escaping). milvus-lite shows both to the very next query
and search (the tests check it). The alias ``gallery`` points at the serving collection; milvus-lite
supports aliases (``create_alias`` / ``alter_alias`` / ``describe_alias``), so the alias is the truth and the
store file's ``serving`` field is a copy written after each move. ``add_model_collection`` adds a model's
collection without moving the alias; ``set_serving`` moves it; ``drop_model_collection`` drops a collection
that is not serving.

Metrics: "ip" is milvus ``IP`` (inner products, as in FAISS); "l2" is milvus ``L2``, which reports squared
Euclidean distance already (checked against numpy), so scores match FAISS's without conversion.

Crash safety: milvus-lite appends each insert request to its write-ahead log (flushed to the OS on every
write, fsynced on close) and recovers the log on open; a kill mid-``add`` may still leave part of a batch
(inserts are sent in chunks). The store file is the commit point: it is replaced (``atomic_write_json``)
after every chunk is inserted, and rows with ``seq`` at or past the model's count are deleted when the model
is next opened or an ``add`` fails, so readers see the old state or the new one. A ``delete`` records its
seqs in the store file before deleting and is finished at the next open if it dies midway; an ``upsert``
killed midway leaves each row with its old or its new vector. milvus-lite replaces ``aliases.json`` by
rename (no fsync), so an alias move survives a process kill but maybe not a power cut.

Differs from FaissStore: milvus-lite serves the folder through an in-process gRPC server on 127.0.0.1 that
holds ``milvus.db/LOCK``; views of a folder in one process share one client, and the last ``close()`` stops the
server so another process can open the folder. Inserting an existing primary key would silently replace
it in milvus-lite, so duplicates are refused from the id map, never left to the database. Ids are limited
to 65,535 UTF-8 bytes (VARCHAR max length).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from milvus_lite.server_manager import server_manager_instance
from pymilvus import DataType, MilvusClient, MilvusException

from hotswap.errors import CorruptStoreError, InvalidVectorsError
from hotswap.store.base import VectorStore
from hotswap.store.db.common import (
    append_model,
    check_new_store,
    find_model,
    model_entry,
    model_key,
    new_model_entry,
    write_store_file,
)
from hotswap.store.db.store import DbStore, Hits

ALIAS = "gallery"
DB_NAME = "milvus.db"
METRIC = {"ip": "IP", "l2": "L2"}
MAX_ID_BYTES = 65_535
_CHUNK = 4096


def _db_path(folder: Path) -> str:
    return str(folder / DB_NAME)


class MilvusStore(DbStore):
    """One model's collection in a milvus-lite folder; build with ``create_milvus_store`` / ``open_milvus_store``."""

    backend = "milvus"
    opener = "open_milvus_store"

    @staticmethod
    def _connect(folder: Path) -> MilvusClient:
        try:
            return MilvusClient(_db_path(folder))
        except MilvusException as e:  # milvus-lite says only "Open local milvus failed"
            raise RuntimeError(f"cannot open the milvus-lite database {_db_path(folder)} ({e.message}); another "
                               "process probably holds it (milvus.db/LOCK): close the store there first") from e

    @staticmethod
    def _disconnect(client: MilvusClient, folder: Path) -> None:
        client.close()
        server_manager_instance.release_server(_db_path(folder))  # stop the in-process server: frees LOCK

    def _open(self) -> None:
        fields = self.client.describe_collection(self.key)["fields"] if self.client.has_collection(self.key) else []
        if not [f for f in fields if f["name"] == "vec" and f["params"].get("dim") == self.dim]:
            raise CorruptStoreError(f"milvus database in {self.path} lacks collection {self.key!r} of model "
                                    f"{self.model_id} (dim {self.dim}); restore the folder from a backup")
        self.client.load_collection(self.key)

    def _check_ids(self, ids: list[str]) -> None:
        if long := [i for i in ids if len(i.encode()) > MAX_ID_BYTES][:3]:
            raise InvalidVectorsError(f"ids longer than {MAX_ID_BYTES} UTF-8 bytes cannot be milvus primary keys: "
                                      f"{[i[:40] + '...' for i in long]}; shorten them (e.g. hash them)")

    def _scan(self) -> list[tuple[str, int]]:
        return [(r["id"], r["seq"]) for r in self.client.query(self.key, filter="seq >= 0",
                                                                output_fields=["id", "seq"])]

    def _write(self, ids: list[str], X: np.ndarray, start: int) -> None:
        for a in range(0, len(ids), _CHUNK):
            rows = [{"id": i, "seq": start + a + n, "vec": x.tolist()}
                    for n, (i, x) in enumerate(zip(ids[a:a + _CHUNK], X[a:a + _CHUNK]))]
            self.client.insert(self.key, rows)

    def _replace(self, ids: list[str], X: np.ndarray, seqs: list[int]) -> None:
        for a in range(0, len(ids), _CHUNK):
            rows = [{"id": i, "seq": s, "vec": x.tolist()}
                    for i, s, x in zip(ids[a:a + _CHUNK], seqs[a:a + _CHUNK], X[a:a + _CHUNK])]
            self.client.upsert(self.key, rows)

    def _remove(self, seqs: list[int]) -> None:
        for a in range(0, len(seqs), _CHUNK):
            self.client.delete(self.key, filter=f"seq in [{','.join(str(int(s)) for s in seqs[a:a + _CHUNK])}]")

    def _purge(self, count: int) -> None:
        self.client.delete(self.key, filter=f"seq >= {int(count)}")

    def _query(self, Q: np.ndarray, limit: int) -> Hits:
        res = self.client.search(self.key, data=Q.tolist(), limit=limit, anns_field="vec", output_fields=[],
                                 search_params={"metric_type": METRIC[self.metric]})
        return [[(h["id"], h["distance"]) for h in row] for row in res]

    def _fetch(self, ids: list[str], rows: list[int]) -> dict[str, np.ndarray]:
        out = {}
        for a in range(0, len(rows), _CHUNK):
            seqs = ",".join(str(s) for s in rows[a:a + _CHUNK])  # ints: no string escaping needed
            for r in self.client.query(self.key, filter=f"seq in [{seqs}]", output_fields=["id", "vec"]):
                out[r["id"]] = np.asarray(r["vec"], dtype=np.float32)
        return out


def _create_collection(client: MilvusClient, key: str, dim: int, metric: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=int(dim))
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type=METRIC[metric])
    client.create_collection(key, schema=schema)
    client.create_index(key, index, sync=False)  # FLAT on an empty collection: nothing to wait for (saves 0.5 s)
    client.load_collection(key)


def create_milvus_store(path: str | Path, model_id: str, dim: int, metric: str = "ip") -> MilvusStore:
    """Create a milvus-lite database in ``path`` (new or empty folder) with ``model_id``'s collection serving."""
    path = check_new_store(path, model_id, dim, metric, opener="open_milvus_store")
    path.mkdir(parents=True, exist_ok=True)
    entry = model_entry(model_id, dim, metric)
    client = MilvusStore._connect(path)
    try:
        _create_collection(client, entry["key"], dim, metric)
        client.create_alias(entry["key"], ALIAS)
    finally:
        MilvusStore._disconnect(client, path)
    write_store_file(path, {"backend": "milvus", "format_version": 1, "alias": ALIAS, "serving": model_id,
                            "models": [entry]})
    return MilvusStore(path, model_id)


def open_milvus_store(path: str | Path, model_id: str | None = None) -> MilvusStore:
    """Open ``model_id``'s collection (None: the one the ``gallery`` alias points at) in a milvus store folder."""
    path = Path(path)
    with MilvusStore.handle(path) as h:
        if model_id is None:
            key = h.client.describe_alias(ALIAS)["collection_name"]
            if not (ids := [m["model_id"] for m in h.data["models"] if m["key"] == key]):
                raise CorruptStoreError(f"alias {ALIAS!r} in {path} points at {key!r}, a collection the store "
                                        "file does not list; move it with set_serving, or restore a backup")
            model_id = ids[0]
        return MilvusStore(path, model_id)


def add_model_collection(path: str | Path, model_id: str, dim: int, metric: str | None = None) -> MilvusStore:
    """Add an empty collection for ``model_id`` (``metric`` defaults to the first model's); the alias stays."""
    path = Path(path)
    with MilvusStore.handle(path) as h:
        entry = new_model_entry(h.data, path, model_id, dim, metric, "open_milvus_store")
        if h.client.has_collection(entry["key"]):  # left by an add_model_collection that died: start afresh
            h.client.drop_collection(entry["key"])
        _create_collection(h.client, entry["key"], dim, entry["metric"])
        append_model(h, path, entry)
        return MilvusStore(path, model_id)


def set_serving(path: str | Path, model_id: str) -> None:
    """Point the ``gallery`` alias at ``model_id``'s collection (one atomic alias move in milvus-lite)."""
    path = Path(path)
    with MilvusStore.handle(path) as h:
        entry = find_model(h.data, model_id, path, "add it with add_model_collection and backfill it first")
        h.client.alter_alias(entry["key"], ALIAS)
        data = {**h.data, "serving": model_id}
        write_store_file(path, data)
        h.data = data


def drop_model_collection(path: str | Path, model_id: str) -> bool:
    """Drop ``model_id``'s collection and its store-file entry: the rollback of ``add_model_collection``.
    Refuses the serving model (move the alias with ``set_serving`` first); ``False`` if it was not there."""
    path = Path(path)
    with MilvusStore.handle(path) as h:
        key = model_key(model_id)
        if not any(m["model_id"] == model_id for m in h.data["models"]):
            if h.client.has_collection(key):  # a drop killed after its commit leaves the collection
                h.client.drop_collection(key)
            return False
        if h.client.describe_alias(ALIAS)["collection_name"] == key:
            raise ValueError(f"{model_id!r} is the serving model of store {path} (alias {ALIAS!r}); point the "
                             "alias at another model with set_serving first")
        data = {**h.data, "models": [m for m in h.data["models"] if m["model_id"] != model_id]}
        write_store_file(path, data)  # the commit point
        h.data = data
        h.client.drop_collection(key)
        return True


if TYPE_CHECKING:  # mypy checks MilvusStore against the VectorStore protocol: a signature drift fails type checking
    _milvus_store: type[VectorStore] = MilvusStore
