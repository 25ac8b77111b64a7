"""``SearchService``: a collection that answers queries while its model is upgraded (the core of ``hotswap serve``).

Upgrade life cycle: ``state`` in ``GET /status`` is ``idle`` without an upgrade, else the one state of
``hotswap.upgrade.lifecycle`` (``upgrade_state``; the CLI's ``hotswap upgrade status`` reads it the same way).
Each step is one atomic write of ``serving.json`` (``hotswap.serve.collection``)::

    idle --start_upgrade--> backfilling <--pause/resume--> paused
                               |   (the server stopped or was killed while it ran, and started with
                               |    --no-resume: interrupted; resume continues it; a backfill error: failed)
                               v
                            complete --commit--> idle on the new model (version + 1)
    backfilling / paused / interrupted / complete / failed --rollback--> idle on the old model, the upgrade
                                                                         folder deleted

``pause``, ``resume``, ``commit`` and ``rollback`` are allowed where ``lifecycle.check_action`` allows them, else
refused with ``ConflictError`` (HTTP 409). ``upgrade.requested`` in the status is the recorded intent
(``running`` or ``paused``), never a state of its own.

Search mode by state (a request may name another): ``idle`` -> ``old`` (the serving index with the serving
model's queries; ``adapted`` or ``blended`` while a query model is set, ``set_query_model``); during an
upgrade -> ``cascade`` when the upgrade was started with ``cascade`` (old-index candidates re-scored by the new
model, ``hotswap.search.cascade``), else ``blended`` when the registered adapter is a blend (``hotswap
fit-adapter --kind auto``: w * adapter(new query) + (1 - w) * old query searches the old partition, the new
query the new one; two encodings), else ``adapted`` when an adapter was given (one new-model encoding: the
adapted query searches the old partition, the new query the new one) else ``merged`` (Seo et al.'s distance
rank merge, two encodings); ``complete`` -> ``new``. Documents a cascade
search encodes are written back into the upgrade's new partition (``WriteBack``: batches of
``WRITE_BACK_EVERY``, the rest at pause and shutdown), and the backfill thread skips them; the ``demand``
order backfills first what cascade queries asked for beyond their budget. Every merged search sees one
consistent cut of the gallery (``Upgrade.reading``), so an item is never returned twice nor missed while
it moves.

A restart reads ``serving.json``: an upgrade whose recorded state is ``running`` resumes by itself from the
last committed batch (the runner skips stored ids), a ``paused`` one stays paused.

Backfill orders: every policy of ``hotswap.backfill.ORDERINGS``. ``popularity`` ranks items by the queries
that retrieve them: the client's ``queries``, else the texts of the last queries this service answered
(``hotswap.serve.query_log``, kept in ``queries.json``), encoded with the serving model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.adapters import load_adapter
from hotswap.backfill import ORDERINGS, BackfillRunner, LocalExecutor, plan_backfill
from hotswap.backfill.niced_executor import NicedExecutor
from hotswap.encoders import BUNDLED, as_model_id, load_encoder
from hotswap.errors import HotswapError, ModelMismatchError, UpgradeStateError
from hotswap.search import QueryBlend, Searcher
from hotswap.search.blend import is_blend_folder
from hotswap.serve import adapter_registry
from hotswap.serve.backfill_thread import BackfillThread
from hotswap.serve.collection import Collection
from hotswap.serve.query_log import QUERY_LOG_NAME, QueryLog
from hotswap.store import drop_model, serve_model
from hotswap.upgrade import Upgrade, create_upgrade, open_upgrade
from hotswap.upgrade.lifecycle import check_action, upgrade_state

SERVICE_ORDERS = tuple(ORDERINGS)  # every policy the library has (popularity: a query log, see start_upgrade)
SEARCH_MODES = ("old", "adapted", "blended", "merged", "new", "cross", "cascade")
SNIPPET_CHARS = 200  # characters of a document's text returned with each hit
CASCADE_DEFAULTS = {"candidates": 50, "encode_budget": None, "candidate_query": "auto"}
WRITE_BACK_EVERY = 64


class ConflictError(HotswapError):
    """A request that the service's current upgrade state does not allow (HTTP 409)."""


class NotFoundError(HotswapError):
    """The collection holds no document of that id (HTTP 404)."""


class SearchService:
    """Serve ``Collection(path)``; ``corpus`` maps every indexed id to its text (what a backfill re-encodes),
    by default the texts the collection keeps (``texts.sqlite``)."""

    def __init__(self, path: str | Path, corpus: Mapping[str, str] | None = None, *,
                 encoder_loader: Callable[[str], Any] = load_encoder, batch_size: int = 256,
                 resume: bool = True, models: Iterable[str] = BUNDLED, queries_first: bool = False) -> None:
        self.models = tuple(models)  # what clients may name: the operator's choice, never a path they send
        self._own_texts: Any = None
        # queries_first: the backfill encodes in a worker process of the lowest CPU priority (NicedExecutor;
        # measured in benchmarks/load.py --queries-first)
        self.queries_first = queries_first
        self.collection = Collection(path)
        self._serving = self.collection.lock()  # one process serves (or writes to) a collection at a time
        self.collection.sweep()
        if corpus is None:
            corpus = self._own_texts = self.collection.texts()
            if corpus is None:
                raise HotswapError(f"collection {path} keeps no texts (created by an older hotswap); serve it with "
                                   "the dataset it was built from (--dataset)")
        self.corpus, self.load_encoder, self.batch_size = corpus, encoder_loader, batch_size
        self._lock = threading.RLock()
        self.query_log = QueryLog(self.collection.path / QUERY_LOG_NAME)
        self.encoder = self._encoder(self.collection.state["model"], self.collection.state["model_id"])
        self.index = self.collection.open_index()
        self.upgrade: Upgrade | None = None  # an upgrade in progress, with its encoder, adapter, thread, searcher
        self.new_encoder: Any = None
        self.adapter: Any = None
        self.thread: BackfillThread | None = None
        self.upgrade_searcher: Searcher | None = None
        self.executor: Any = None
        self.query_encoder: Any = None
        self.query_adapter: Any = None
        if self.collection.state.get("query"):
            self._attach_query(self.collection.state["query"])
        if self.collection.upgrade is not None:
            self._attach_upgrade()
        self._replay()
        if self.upgrade is not None and resume and self._record()["state"] == "running":
            self._active()[1].start()
        self._view = self._make_view()

    # ---- wiring -----------------------------------------------------------------------------------------
    def _encoder(self, spec: str, expected_id: str | None = None) -> Any:
        return self._encoder_from(self.load_encoder, spec, expected_id)

    @staticmethod
    def _encoder_from(load: Callable[[str], Any], spec: str, expected_id: str | None = None) -> Any:
        loaded = load(spec)
        if expected_id is None:
            return loaded
        encoder = as_model_id(loaded, expected_id)
        if encoder is None:
            raise ModelMismatchError(f"model {spec!r} loads as {loaded.id!r}, but the collection was built with "
                                     f"{expected_id!r}; install the same weights")
        return encoder

    def fetch(self, ids: Sequence[str]) -> list[str]:
        """The texts of ``ids``. From the collection's own texts, an id deleted a moment ago reads as "" (its
        encoding is then dropped: a backfilled batch keeps only ids the old index still holds)."""
        if self._writable:  # the corpus is the collection's DocStore
            found = self._own_texts.get_many(list(ids))
            return [found.get(i, "") for i in ids]
        try:
            return [self.corpus[i] for i in ids]
        except KeyError as e:
            raise HotswapError(f"id {e.args[0]!r} is indexed but has no text in the served corpus; serve the "
                               "collection with the dataset it was built from") from None

    def _record(self) -> dict:
        """The collection's record of its upgrade in progress; ``ConflictError`` when there is none."""
        rec = self.collection.upgrade
        if rec is None:
            raise ConflictError("no upgrade in progress")
        return rec

    def _active(self) -> tuple[Upgrade, BackfillThread, Searcher]:
        """The upgrade in progress, its backfill thread and its searcher; ``ConflictError`` when there is none."""
        if self.upgrade is None or self.thread is None or self.upgrade_searcher is None:
            raise ConflictError("no upgrade in progress")
        return self.upgrade, self.thread, self.upgrade_searcher

    def _attach_upgrade(self) -> None:
        rec, path = self._record(), self.collection.upgrade_path
        assert path is not None  # the collection records an upgrade, so it names its folder
        up = self.upgrade = open_upgrade(path)
        self.new_encoder = self._encoder(rec["model"], rec["model_id"])
        self.adapter = self._load_adapter(rec["adapter"]) if rec.get("adapter") else None
        if self.queries_first:  # a worker process at the lowest CPU priority: the kernel serves queries first
            executor: Any = NicedExecutor(self.load_encoder, rec["model"], rec["model_id"])
            threading.Thread(target=_quietly, args=(executor.warm,), daemon=True).start()  # load it now
        else:  # an encoder object of its own, so queries never queue behind its batches
            fresh = getattr(self.load_encoder, "__wrapped__", self.load_encoder)  # past load_encoder's cache
            executor = LocalExecutor(self._encoder_from(fresh, rec["model"], rec["model_id"]))
        self.executor = executor
        runner = BackfillRunner(up, self.fetch, executor,
                                rec.get("batch_size", self.batch_size), progress=False)
        self.thread = BackfillThread(runner)
        self.upgrade_searcher = Searcher.for_upgrade(up, adapter=_plain(self.adapter),
                                                     blend=_blend(self.adapter), old_encoder=self.encoder,
                                                     new_encoder=self.new_encoder, texts=self.fetch,
                                                     flush_every=WRITE_BACK_EVERY)

    def _load_adapter(self, name: str) -> Any:
        """The adapter registered in the collection as ``name`` (checksums verified; ``adapter_registry``): a
        ``QueryBlend`` when its folder holds ``blend.json`` (``hotswap fit-adapter --kind auto`` chose a blend)."""
        path = adapter_registry.folder(self.collection.path, name)
        try:
            return QueryBlend.load(path) if is_blend_folder(path) else load_adapter(path)
        except HotswapError:
            raise
        except (OSError, TypeError, ValueError) as e:
            raise HotswapError(f"cannot load the registered adapter {name!r}: {e}") from e

    def _offered(self, model: str) -> str:
        if model not in self.models:
            raise HotswapError(f"unknown model {model!r}; this server offers {', '.join(self.models)} (an operator "
                               "adds a model folder with 'hotswap serve --allow-model NAME=FOLDER')")
        return model

    def _detach_upgrade(self) -> None:
        _close(self.upgrade, self.executor)
        self.upgrade = self.new_encoder = self.adapter = self.thread = self.upgrade_searcher = self.executor = None

    def _make_view(self) -> tuple[Searcher, str]:
        """The searcher and default mode for the current state (replaced whole: readers never see a mix)."""
        if self.upgrade is None and self.query_adapter is not None:
            return (Searcher(self.index, adapter=_plain(self.query_adapter), blend=_blend(self.query_adapter),
                             old_encoder=self.encoder, new_encoder=self.query_encoder),
                    "blended" if _blend(self.query_adapter) is not None else "adapted")
        if self.upgrade is None:
            return Searcher(self.index, old_encoder=self.encoder), "old"
        up, _, searcher = self._active()  # one searcher per upgrade: its write-back buffer and cascade counts live on
        if len(up.new) == len(up.old):
            return searcher, "new"
        if self._record().get("cascade"):
            return searcher, "cascade"
        if self.adapter is None:
            return searcher, "merged"
        return searcher, "blended" if _blend(self.adapter) is not None else "adapted"

    # ---- queries ----------------------------------------------------------------------------------------
    @property
    def default_mode(self) -> str:
        self._refresh_default()
        return self._view[1]

    def _refresh_default(self) -> None:
        if self.upgrade is not None and self._view[1] != "new" and len(self.upgrade.new) == len(self.upgrade.old):
            self._view = self._make_view()  # the backfill just completed: serve the new index

    def search(self, texts: Sequence[str], k: int, mode: str | None = None,
               **cascade: Any) -> tuple[str, np.ndarray, np.ndarray]:
        """``(mode used, D [n, k], I [n, k] string ids, None = fewer than k items)``; ``cascade`` options
        (``candidates``, ``encode_budget``, ``candidate_query``; None = the upgrade's setting) apply to that mode."""
        self._refresh_default()
        searcher, default = self._view
        mode = mode or default
        if mode not in SEARCH_MODES:
            raise HotswapError(f"unknown mode {mode!r}; the service answers in {', '.join(SEARCH_MODES)}")
        if mode not in ("old", default) and self.upgrade is None:
            raise ConflictError(f"mode {mode!r} needs an upgrade in progress; the collection serves "
                                f"{self.collection.state['model_id']} alone (mode 'old')")
        given = {key: v for key, v in cascade.items() if v is not None}
        if given and mode != "cascade":
            raise HotswapError(f"{', '.join(sorted(given))} are options of mode 'cascade', not of {mode!r}")
        options = self._cascade_options(given) if mode == "cascade" else {}
        D, I = searcher.search_texts(list(texts), k, mode, **options)
        self.query_log.add(texts)  # answered: what the popularity order ranks by
        return mode, D, I

    def snippets(self, ids: Iterable[str | None]) -> dict[str, str]:
        """The first ``SNIPPET_CHARS`` characters of the text of each of ``ids`` that has one (one batched read
        of the collection's texts, or lookups in the served corpus); an id without a text is left out."""
        wanted = list(dict.fromkeys(i for i in ids if i is not None))
        if not wanted:
            return {}
        if self._writable:  # the corpus is the collection's DocStore
            found = self._own_texts.get_many(wanted, chars=SNIPPET_CHARS)
        else:
            found = {i: self.corpus[i] for i in wanted if i in self.corpus}
        return {i: t[:SNIPPET_CHARS] for i, t in found.items() if isinstance(t, str)}

    def _cascade_options(self, given: dict) -> dict:
        """The upgrade's cascade settings (or the defaults), overridden by the request's."""
        rec = (self.collection.upgrade or {}).get("cascade") or {}
        return {**CASCADE_DEFAULTS, **{key: v for key, v in rec.items() if key in CASCADE_DEFAULTS}, **given}

    # ---- writes -----------------------------------------------------------------------------------------
    @property
    def items(self) -> int:
        """Items the collection holds (the old index's count while an upgrade dual-writes into it)."""
        return len(self.upgrade.old if self.upgrade is not None else self.index)

    @property
    def _writable(self) -> bool:
        """Whether the service reads the collection's own texts (what writes and their replay need)."""
        return self._own_texts is not None and self.corpus is self._own_texts

    def _docs(self) -> Any:
        if not self._writable:
            raise ConflictError("this server reads its texts from a dataset (--dataset), not from the collection: "
                                "writes need the collection's own texts; serve it without --dataset")
        return self._own_texts

    def upsert_documents(self, documents: Sequence[tuple[str, str]]) -> dict:
        """Insert or replace ``(id, text)`` documents (a repeated id: its last text). Durable when it returns:
        the texts are committed (and journaled) first, then each index the collection serves or is building
        gets its model's vectors (during an upgrade: both, ``UpgradeCommon.write``)."""
        docs, batch = self._docs(), dict(documents)
        ids, texts = list(batch), list(batch.values())
        with self._lock:
            vectors = self._encode(texts)
            docs.stage(upserts=list(batch.items()))
            self._write_vectors(ids, *vectors)
            docs.settle(ids)
            return {"upserted": len(ids), "items": self.items}

    def delete_documents(self, ids: Sequence[str]) -> dict:
        """Delete documents by id (unknown ids are ignored) from the texts and every index; durable on return."""
        docs, ids = self._docs(), list(dict.fromkeys(ids))
        with self._lock:
            docs.stage(deletes=ids)
            deleted = self._delete_vectors(ids)
            docs.settle(ids)
            return {"deleted": deleted, "items": self.items}

    def get_document(self, id: str) -> dict:
        try:
            return {"id": id, "text": self._docs()[id]}
        except KeyError:
            raise NotFoundError(f"no document {id!r} in this collection") from None

    def _encode(self, texts: list[str]) -> tuple[Any, Any]:
        """The serving model's vectors of ``texts`` and, during an upgrade, the new model's (else None)."""
        return self.encoder.encode(texts), None if self.upgrade is None else self.new_encoder.encode(texts)

    def _delete_vectors(self, ids: list[str]) -> int:
        return (self.upgrade if self.upgrade is not None else self.index).delete(ids)

    def _write_vectors(self, ids: list[str], X_old: Any, X_new: Any) -> None:
        if self.upgrade is not None:
            self.upgrade.write(ids, X_old, X_new)
        else:
            self.index.upsert(ids, X_old, self.encoder.id)

    def _replay(self, chunk: int = 256) -> None:
        """Finish writes a killed process staged but did not apply: make the indexes follow the texts of every
        pending id (re-encode the ones that have a text, delete the others)."""
        if not self._writable:
            return
        pending = self._own_texts.pending()
        for start in range(0, len(pending), chunk):
            ids = pending[start:start + chunk]
            found = self._own_texts.get_many(ids)
            if live := [i for i in ids if i in found]:
                self._write_vectors(live, *self._encode([found[i] for i in live]))
            if gone := [i for i in ids if i not in found]:
                self._delete_vectors(gone)
            self._own_texts.settle(ids)

    # ---- upgrade control --------------------------------------------------------------------------------
    def start_upgrade(self, model: str, adapter: str | None = None, order: str = "random",
                      batch_size: int | None = None, seed: int = 0, cascade: dict | None = None,
                      queries: Sequence[str] | None = None) -> dict:
        """Start re-embedding the collection with ``model``; ``cascade`` (``{}`` for the defaults, or any of
        ``candidates``, ``encode_budget``, ``candidate_query``) makes cascade search the default meanwhile.
        ``adapter``: a registered adapter (mode ``adapted``) or blend (mode ``blended``). ``order``: any policy
        of ``hotswap.backfill.ORDERINGS``; ``popularity`` ranks by ``queries`` (a query log), else by the
        queries this service answered."""
        if order not in SERVICE_ORDERS:
            raise HotswapError(f"unknown order {order!r}; the service plans with {', '.join(SERVICE_ORDERS)}")
        if queries and order != "popularity":
            raise HotswapError(f"'queries' is the query log of order 'popularity', not of {order!r}; send it with "
                               "\"order\": \"popularity\"")
        with self._lock:
            if self.collection.upgrade is not None:
                raise ConflictError(f"an upgrade to {self.collection.upgrade['model_id']} is in progress; commit "
                                    "or roll it back first")
            new = self._encoder(self._offered(model))
            if new.id == self.encoder.id:
                raise ConflictError(f"the collection is already served by {new.id}; nothing to upgrade")
            if adapter is not None:
                self._check_adapter(self._load_adapter(adapter), new.id)
            query_log = self._popularity_log(queries) if order == "popularity" else None
            folder = self.collection.next_upgrade_folder()
            self.collection.sweep()  # a start killed before its record was written left this folder
            up = create_upgrade(self.collection.path / folder, self.index, new.id, new.dim)
            try:
                plan_backfill(up, order, new, self.fetch, seed=seed, query_log=query_log)
            except BaseException:
                _close(up)  # no record names its folder: the next start_upgrade (or restart) sweeps it away
                raise
            self.collection.record_upgrade({"folder": folder, "model": model, "model_id": new.id, "adapter": adapter,
                                            "order": order, "batch_size": batch_size or self.batch_size,
                                            "state": "running",
                                            "cascade": None if cascade is None else {**CASCADE_DEFAULTS, **cascade}})
            self._attach_upgrade()
            self._view = self._make_view()
            self._active()[1].start()
            return self.status()

    def _popularity_log(self, queries: Sequence[str] | None) -> np.ndarray:
        """The serving model's encodings of ``queries``, else of the queries this service answered."""
        texts = list(queries or []) or self.query_log.texts()
        if not texts:
            raise ConflictError("order 'popularity' ranks items by the queries that retrieve them, and there are "
                                "none yet: send 'queries' (a query log) with the upgrade, or serve some searches "
                                "first")
        return np.asarray(self.encoder.encode(texts), dtype=np.float32)

    def _drop_leftover_vectors(self, model_id: str) -> None:
        """A database may hold vectors of ``model_id`` that no upgrade record names (a rollback killed before it
        dropped them); nothing serves them, so they go."""
        try:
            drop_model(self.index, model_id)
        except ValueError as e:  # e.g. qdrant's first model: it cannot be dropped from its own database
            raise ConflictError(f"cannot upgrade to {model_id}: {e}") from e

    def _check_adapter(self, adapter: Any, query_model_id: str) -> None:
        """``adapter`` (one, or a chain) must map ``query_model_id``'s queries into the serving index's model."""
        ids = (getattr(adapter, "new_model_id_", None), getattr(adapter, "old_model_id_", None))
        if ids != (query_model_id, self.encoder.id):
            raise ModelMismatchError(f"the adapter maps {ids[0]} -> {ids[1]}, but queries of {query_model_id} must "
                                     f"reach the index of {self.encoder.id}; fit one with 'hotswap fit-adapter'")

    def _stop_backfill(self, action: str, timeout: float = 600.0) -> None:
        """Pause the backfill thread and wait for it; refuse ``action`` while it still runs (it would write on)."""
        thread = self._active()[1]
        thread.pause(timeout)
        if thread.alive:
            raise ConflictError(f"the backfill is still finishing its batch; cannot {action} until it stops: "
                                "retry in a moment")

    def _need_upgrade(self, action: str) -> None:
        if self.upgrade is None:
            raise ConflictError(f"no upgrade in progress; nothing to {action}")

    @property
    def state(self) -> str:
        """``idle`` without an upgrade, else its ``hotswap.upgrade.lifecycle`` state (from the backfill's
        progress, whether it runs now, the recorded intent and its error)."""
        if self.upgrade is None:
            return "idle"
        backfill = self._active()[1].as_dict()
        return self._state_of(backfill)

    def _state_of(self, backfill: dict) -> str:
        return upgrade_state(backfill["done"], backfill["total"], running=backfill["running"],
                             intent=self._record()["state"], error=backfill["error"])

    def _allow(self, action: str) -> str:
        """Refuse ``action`` (``ConflictError``, HTTP 409) unless there is an upgrade whose state allows it."""
        self._need_upgrade({"rollback": "roll back"}.get(action, action))
        backfill = self._active()[1].as_dict()
        state = self._state_of(backfill)
        try:
            check_action(state, action)
        except UpgradeStateError as e:
            raise ConflictError(f"{e} ({backfill['done']}/{backfill['total']} items re-embedded)") from e
        return state

    def pause(self) -> dict:
        """Stop the backfill after its batch (only a running one)."""
        with self._lock:
            self._allow("pause")
            _, thread, searcher = self._active()
            thread.pause()
            searcher.flush()  # a pause keeps what cascade searches encoded
            self.collection.set_upgrade_state("paused")
            return self.status()

    def resume(self) -> dict:
        """Run a paused, interrupted or failed backfill on from its last committed batch."""
        with self._lock:
            self._allow("resume")
            self.collection.set_upgrade_state("running")
            self._active()[1].start()
            return self.status()

    def rollback(self) -> dict:
        """Stop the backfill and serve the old model alone; its index was never modified."""
        with self._lock:
            self._allow("rollback")
            self._stop_backfill("roll back")
            new_model_id = self._active()[0].new_model_id
            self._detach_upgrade()  # closes a database upgrade's views first
            self.collection.rollback()  # serving.json forgets the upgrade, then its folder goes
            drop_model(self.index, new_model_id)  # a database's new vectors (FAISS: in the upgrade folder, gone)
            self.index.refresh()  # see what writes during the upgrade changed
            self._view = self._make_view()
            return self.status()

    def commit(self) -> dict:
        """Serve the new model and its index from now on; only once the backfill is complete."""
        with self._lock:
            self._allow("commit")
            up, thread, _ = self._active()
            done, total = len(up.new), len(up.old)
            if done < total:  # the state read the backfill's progress; the indexes are what commit switches to
                raise ConflictError(f"the backfill is at {done}/{total} ({done / total:.0%}); commit needs every "
                                    "item re-embedded: wait, or resume it if paused")
            thread.join()
            index = os.path.relpath(str(up.new.path), self.collection.path)
            # the new index must open and verify before serving.json points at it: a bad one leaves all as it was
            new_index = self.collection.open_index(index, up.new_model_id, verify=True)
            self.collection.commit(index)
            serve_model(up.new, up.new_model_id)  # e.g. milvus: its alias follows
            self.encoder, old_index = self.new_encoder, self.index
            self._detach_upgrade()
            self.index = new_index
            _close(old_index)
            self.query_encoder = self.query_adapter = None  # the committed model answers its own queries
            self._view = self._make_view()
            return self.status()

    def set_query_model(self, model: str, adapters: Sequence[str]) -> dict:
        """Answer queries of ``model`` on the unchanged index, mapped by ``adapters`` (``model`` -> ... -> the
        index's model, applied in order: one direct adapter, or a chain v3 -> v2 -> v1). No re-embedding. A
        single registered blend serves mode ``blended`` (it also encodes each query with the index's model)."""
        with self._lock:
            if self.upgrade is not None:
                raise ConflictError("a backfill upgrade is in progress; commit or roll it back first")
            encoder = self._encoder(self._offered(model))
            adapter = self._compose(adapters)
            self._check_adapter(adapter, encoder.id)
            chain = getattr(adapter, "model_chain", [encoder.id, self.encoder.id])
            record = {"model": model, "model_id": encoder.id, "chain": chain, "adapters": list(adapters)}
            self.collection.set_query(record)
            self._attach_query(record, encoder, adapter)
            self._view = self._make_view()
            return self.status()

    def reset_query_model(self) -> dict:
        """Answer queries with the index's own model again."""
        with self._lock:
            self.collection.set_query(None)
            self.query_encoder = self.query_adapter = None
            self._view = self._make_view()
            return self.status()

    def _compose(self, names: Sequence[str]) -> Any:
        """One adapter, or the ``ComposedAdapter`` of several (links checked: each maps into the next's source)."""
        from hotswap.adapters.chain import ComposedAdapter

        links = [self._load_adapter(n) for n in names]
        if len(links) > 1 and any(_blend(link) is not None for link in links):
            blends = [n for n, link in zip(names, links) if _blend(link) is not None]
            raise HotswapError(f"{', '.join(blends)} is a blend (it mixes in the index model's own query): it is "
                               "served alone, not as a link of a chain; chain plain adapters, or name the blend alone")
        return links[0] if len(links) == 1 else ComposedAdapter(links)

    def _attach_query(self, record: dict, encoder: Any = None, adapter: Any = None) -> None:
        self.query_adapter = adapter or self._compose(record["adapters"])
        self.query_encoder = encoder or self._encoder(record["model"], record["model_id"])

    def close(self, timeout: float = 60.0) -> None:
        """Stop a running backfill after its batch; its recorded state stays ``running``, so a restart resumes."""
        if self.thread is not None:
            self.thread.pause(timeout)
            if self.upgrade_searcher is not None:
                self.upgrade_searcher.flush()
        self.query_log.save()
        _close(self.upgrade, self.executor, self.index, self._own_texts)
        self._serving.close()

    # ---- status -----------------------------------------------------------------------------------------
    def status(self) -> dict:
        """The collection and its upgrade. ``state`` is the only field naming where the upgrade stands (``idle``
        or a ``hotswap.upgrade.lifecycle`` state); ``upgrade.requested`` is the recorded intent."""
        s = self.collection.state
        out: dict[str, Any] = {"version": s["version"], "model_id": s["model_id"], "items": self.items,
                               "mode": self.default_mode, "state": "idle", "upgrade": None,
                               "query": s.get("query"), "queries_logged": len(self.query_log),
                               "history": s["history"]}
        if self.upgrade is not None:
            _, thread, searcher = self._active()
            rec, backfill = self._record(), thread.as_dict()
            backfill.pop("state", None)  # the runner's own word for it: the state is out["state"] alone
            out["state"] = self._state_of(backfill)
            blend = _blend(self.adapter)
            out["upgrade"] = {"model_id": rec["model_id"], "adapter": rec.get("adapter"),
                              "blend_weight": None if blend is None else float(blend.weight), "order": rec["order"],
                              "requested": rec["state"], **backfill,
                              "worker": "niced process" if self.queries_first else "thread"}
            out["cascade"] = {"settings": self._cascade_options({}), **searcher.cascade_stats()}
        return out


def _blend(adapter: Any) -> QueryBlend | None:
    """``adapter`` when it is a blend (mode ``blended``), else None."""
    return adapter if isinstance(adapter, QueryBlend) else None


def _plain(adapter: Any) -> Any:
    """The new -> old adapter inside ``adapter`` (a blend's own adapter; a plain adapter or None as it is)."""
    return adapter.adapter if isinstance(adapter, QueryBlend) else adapter


def _quietly(call: Callable[[], Any]) -> None:
    """Run ``call``, ignoring its failure (a warm-up: the real call repeats it and reports the error)."""
    try:
        call()
    except Exception:  # noqa: BLE001
        pass


def _close(*things: Any) -> None:
    """Close each of ``things`` that is there and can be closed (stores, upgrades, executors, the docstore)."""
    for thing in things:
        getattr(thing, "close", lambda: None)()
