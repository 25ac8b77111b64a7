"""``QdrantStore``: vectors in a qdrant-client *local mode* database (``QdrantClient(path=...)``), no server.

Layout::

    store/hotswap-store.json            backend, and per model: model_id, vector name, dim, metric, count,
                                        deleted (see ``hotswap.store.db.common``)
    store/meta.json                     qdrant's collection config (vector names, sizes, distances)
    store/collection/gallery/storage.sqlite   qdrant's points: one sqlite row per point
    store/.lock                         qdrant's lock: one client per folder at a time

One collection, ``gallery``; each model is a *named vector* (``model_key(model_id)``, e.g.
``m_minilm_1a2b3c_<sha1[:8]>``) on the same points, so a point can hold an item's old and new embedding.
``add_model_vector`` adds a model with qdrant's ``create_vector_name``, which local mode supports (the new
name starts out absent on every existing point); ``remove_model_vector`` takes one away again (from each point,
then ``delete_vector_name``). A ``QdrantStore`` is a view of one named vector.

Ids: a point's id is ``uuid5(NAMESPACE, id)``; its payload is ``{"id": id, "seq": {vector name: n}}``, where
``n`` is the row's insertion number for that model (a point added by two models has two, independent).
A point counts for a model only if it has that model's vector; ``ids`` sorts them by ``seq``.
``upsert`` of a stored id replaces only that model's vector (``update_vectors``; seq and other models' vectors
stay). ``delete`` strips that model's vector and seq from each point, and deletes a point no model is left on.

Metrics: "ip" is ``Distance.DOT`` (scores are inner products, as in FAISS). "l2" is ``Distance.EUCLID``,
which reports plain Euclidean distance; scores are squared here to match FAISS's squared distances
(float32 rounding makes them differ from FAISS's in the 7th significant digit).

Crash safety: qdrant local mode commits each point in its own sqlite transaction, so a process killed
mid-``add`` leaves some of the batch's points on disk. The store file is the commit point: it is replaced
(``atomic_write_json``) only after every point is written, and points whose ``seq`` for a model is at or past
that model's count are removed (or lose just that vector) when the model is next opened or an ``add``
fails, so readers see the old state or the new one. A ``delete`` records its seqs in the store file before
stripping points and is finished at the next open if it dies midway; an ``upsert`` killed midway leaves each
point with its old or its new vector. qdrant's ``meta.json`` is replaced whole by qdrant.

Differs from FaissStore: the folder is locked to one client (one process) while open, so views of it in
one process share a client and ``close()`` (or ``with``) must be called before another process can open it;
writes cost one sqlite commit per point (local mode is meant for up to ~10^5 points; use a qdrant server
beyond); qdrant stores each point as a pickle in sqlite, so open only folders you trust.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from hotswap.errors import CorruptStoreError
from hotswap.store.base import VectorStore
from hotswap.store.db.common import (
    append_model,
    check_new_store,
    model_entry,
    model_key,
    new_model_entry,
    write_store_file,
)
from hotswap.store.db.store import DbStore, Hits

COLLECTION = "gallery"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "hotswap:qdrant-point")  # fixed forever: point ids depend on it
DISTANCE = {"ip": qm.Distance.DOT, "l2": qm.Distance.EUCLID}
_PAGE = 10_000


def _payload(p: qm.Record) -> dict[str, Any]:
    """``p``'s payload: every read here asks for it (``with_payload=True``), so it is never None."""
    return cast(dict[str, Any], p.payload)


def _vectors(p: qm.Record) -> dict[str, Any]:
    """``p``'s named vectors (each model is one): the reads that use them ask for them (``with_vectors=True``)."""
    return cast(dict[str, Any], p.vector)


def point_id(id: str) -> str:
    """The qdrant point id of string id ``id``: ``uuid5(NAMESPACE, id)``."""
    return str(uuid.uuid5(NAMESPACE, id))


class QdrantStore(DbStore):
    """One model's named vector in a qdrant local folder; build with ``create_qdrant_store`` / ``open_qdrant_store``."""

    backend = "qdrant"
    opener = "open_qdrant_store"

    @staticmethod
    def _connect(folder: Path) -> QdrantClient:
        return QdrantClient(path=str(folder))

    @staticmethod
    def _disconnect(client: QdrantClient, folder: Path) -> None:
        client.close()

    def _open(self) -> None:
        exists = self.client.collection_exists(COLLECTION)
        params = (exists and self.client.get_collection(COLLECTION).config.params.vectors or {}).get(self.key)
        if params is None or (params.size, params.distance) != (self.dim, DISTANCE[self.metric]):
            raise CorruptStoreError(f"qdrant database in {self.path} lacks vector {self.key!r} of model "
                                    f"{self.model_id} (dim {self.dim}, {self.metric}) in collection "
                                    f"{COLLECTION!r}; restore the folder from a backup")

    def _scroll(self, flt: qm.Filter, vectors: bool = False) -> list[qm.Record]:
        out, offset = [], None
        while True:
            page, offset = self.client.scroll(COLLECTION, scroll_filter=flt, limit=_PAGE, offset=offset,
                                              with_payload=True, with_vectors=vectors)
            out += page
            if offset is None:
                return out

    def _seq_filter(self, **rng: int) -> qm.Filter:
        return qm.Filter(must=[qm.FieldCondition(key=f"seq.{self.key}", range=qm.Range(**rng))])

    def _scan(self) -> list[tuple[str, int]]:
        return [(_payload(p)["id"], _payload(p)["seq"][self.key]) for p in self._scroll(self._seq_filter(gte=0))]

    def _write(self, ids: list[str], X: np.ndarray, start: int) -> None:
        pids = [point_id(i) for i in ids]
        old = {p.id: p for p in self.client.retrieve(COLLECTION, pids, with_payload=True, with_vectors=True)}
        points = []
        for n, (i, pid, x) in enumerate(zip(ids, pids, X)):
            p = old.get(pid)  # a point another model already wrote: keep its vectors and seqs
            vector: dict[str, Any] = {**(_vectors(p) if p else {}), self.key: x.tolist()}
            seq = {**(_payload(p)["seq"] if p else {}), self.key: start + n}
            points.append(qm.PointStruct(id=pid, vector=vector, payload={"id": i, "seq": seq}))
        self.client.upsert(COLLECTION, points)

    def _replace(self, ids: list[str], X: np.ndarray, seqs: list[int]) -> None:
        self.client.update_vectors(COLLECTION, [qm.PointVectors(id=point_id(i), vector={self.key: x.tolist()})
                                                for i, x in zip(ids, X)])

    def _remove(self, seqs: list[int]) -> None:
        for a in range(0, len(seqs), _PAGE):
            flt = qm.Filter(must=[qm.FieldCondition(key=f"seq.{self.key}", match=qm.MatchAny(any=seqs[a:a + _PAGE]))])
            self._strip(self._scroll(flt, vectors=True))

    def _purge(self, count: int) -> None:
        self._strip(self._scroll(self._seq_filter(gte=count), vectors=True))

    def _strip(self, points: list[qm.Record]) -> None:
        """Take this model's vector and seq off ``points``; delete those no other model's vector is left on."""
        keep, drop = [], []
        for p in points:
            seq = {k: v for k, v in _payload(p)["seq"].items() if k != self.key}
            if seq:
                vector = {k: v for k, v in _vectors(p).items() if k != self.key}
                keep.append(qm.PointStruct(id=p.id, vector=vector, payload={**_payload(p), "seq": seq}))
            else:
                drop.append(p.id)
        if keep:
            self.client.upsert(COLLECTION, keep)
        if drop:
            self.client.delete(COLLECTION, points_selector=qm.PointIdsList(points=drop))

    def _query(self, Q: np.ndarray, limit: int) -> Hits:
        reqs = [qm.QueryRequest(query=q.tolist(), using=self.key, limit=limit, with_payload=["id"]) for q in Q]
        square = self.metric == "l2"
        return [[(p.payload["id"], p.score * p.score if square else p.score) for p in r.points]
                for r in self.client.query_batch_points(COLLECTION, requests=reqs)]

    def _fetch(self, ids: list[str], rows: list[int]) -> dict[str, np.ndarray]:
        points = self.client.retrieve(COLLECTION, [point_id(i) for i in ids], with_payload=["id"],
                                      with_vectors=[self.key])
        return {p.payload["id"]: np.asarray(p.vector[self.key], dtype=np.float32) for p in points}


def create_qdrant_store(path: str | Path, model_id: str, dim: int, metric: str = "ip") -> QdrantStore:
    """Create a qdrant local database in ``path`` (new or empty folder) with a named vector for ``model_id``."""
    path = check_new_store(path, model_id, dim, metric, opener="open_qdrant_store")
    path.mkdir(parents=True, exist_ok=True)
    entry = model_entry(model_id, dim, metric)
    client = QdrantClient(path=str(path))
    try:
        client.create_collection(COLLECTION, vectors_config={
            entry["key"]: qm.VectorParams(size=int(dim), distance=DISTANCE[metric])})
    finally:
        client.close()
    write_store_file(path, {"backend": "qdrant", "format_version": 1, "collection": COLLECTION, "models": [entry]})
    return QdrantStore(path, model_id)


def open_qdrant_store(path: str | Path, model_id: str | None = None) -> QdrantStore:
    """Open the view of ``model_id``'s vectors (None: the folder's first model) in a qdrant store folder."""
    path = Path(path)
    with QdrantStore.handle(path) as h:
        return QdrantStore(path, h.data["models"][0]["model_id"] if model_id is None else model_id)


def add_model_vector(path: str | Path, model_id: str, dim: int, metric: str | None = None) -> QdrantStore:
    """Add a named vector for ``model_id`` to an existing qdrant store (``metric`` defaults to the first
    model's) and return its (empty) view; existing points get the vector when ``add`` is given their ids."""
    path = Path(path)
    with QdrantStore.handle(path) as h:
        entry = new_model_entry(h.data, path, model_id, dim, metric, "open_qdrant_store")
        if not hasattr(h.client, "create_vector_name"):
            raise RuntimeError("this qdrant-client cannot add a named vector to an existing collection; "
                               "upgrade it (hotswap is tested with qdrant-client 1.20)")
        if entry["key"] in (h.client.get_collection(COLLECTION).config.params.vectors or {}):
            h.client.delete_vector_name(COLLECTION, entry["key"])  # left by a call that died: start afresh
        h.client.create_vector_name(COLLECTION, entry["key"], qm.DenseVectorNameConfig(
            dense=qm.DenseVectorConfig(size=int(dim), distance=DISTANCE[entry["metric"]])))
        append_model(h, path, entry)
        return QdrantStore(path, model_id)


def serve_model_vector(path: str | Path, model_id: str) -> None:
    """Make ``model_id`` the model the store opens by default (first in the store file): a committed upgrade.
    One atomic write of the store file; the vectors are untouched."""
    path = Path(path)
    with QdrantStore.handle(path) as h:
        models = h.data["models"]
        if not any(m["model_id"] == model_id for m in models):
            raise ValueError(f"store {path} holds no vectors of model {model_id!r}; backfill them first")
        data = {**h.data, "models": sorted(models, key=lambda m: m["model_id"] != model_id)}
        write_store_file(path, data)
        h.data = data


def remove_model_vector(path: str | Path, model_id: str) -> bool:
    """Remove ``model_id``'s named vector (from every point, the collection and the store file): the rollback
    of ``add_model_vector``. Refuses the folder's first model; ``False`` if the model was not there. Killed
    midway, it may leave the model listed with no rows (``CorruptStoreError`` on reading it): run it again."""
    path = Path(path)
    with QdrantStore.handle(path) as h:
        if not any(m["model_id"] == model_id for m in h.data["models"]):
            key = model_key(model_id)  # a drop killed after its commit leaves the vector name
            if key in (h.client.get_collection(COLLECTION).config.params.vectors or {}):
                h.client.delete_vector_name(COLLECTION, key)
            return False
        if h.data["models"][0]["model_id"] == model_id:
            raise ValueError(f"{model_id!r} is the first model of store {path} (opened by default); it cannot "
                             "be removed, only later ones can")
        view = QdrantStore(path, model_id)
        try:
            view._purge(0)  # strip the vector and its seq from each point (points only it wrote are deleted)
        finally:
            view.close()
        data = {**h.data, "models": [m for m in h.data["models"] if m["model_id"] != model_id]}
        write_store_file(path, data)  # the commit point
        h.data = data
        h.client.delete_vector_name(COLLECTION, view.key)
        return True


if TYPE_CHECKING:  # mypy checks QdrantStore against the VectorStore protocol: a signature drift fails type checking
    _qdrant_store: type[VectorStore] = QdrantStore
