"""``Collection``: the on-disk state of a served index across model upgrades (``serving.json``).

Layout of a collection folder (``hotswap serve --store PATH``)::

    PATH/serving.json        which index serves, built by which model; the upgrade in progress, if any; history
    PATH/texts.sqlite        every item's text (``hotswap.serve.docstore``): what a backfill re-encodes
    PATH/v1/                 the first index, built by ``Collection.create``: a ``FaissStore`` folder, or the
                             database (``backend``: qdrant, milvus, pg) that later models' vectors join
    PATH/upgrade-2-<tag>/    the upgrade (``hotswap.upgrade.create_upgrade``): plan, checkpoint, and for FAISS
    PATH/upgrade-2-<tag>/new/ the version-2 index; after commit it is the serving index (for a database
                             the new vectors live in ``v1/``'s database and ``index`` stays ``v1``)
    PATH/adapters/NAME/      registered adapters and blends (``hotswap.serve.adapter_registry``)
    PATH/queries.json        the last queries answered (``hotswap.serve.query_log``; the popularity order)

An existing FAISS index folder (``hotswap encode``: ``manifest.json`` + segment files, no ``serving.json``)
becomes a collection in place, its vectors kept (``Collection.adopt_index``): ``.adopting.json`` is written
first, then ``texts.sqlite``, then the store's files move into ``v1/`` (``manifest.json`` last), and
``serving.json`` last of all. A process killed before ``serving.json`` leaves the marker, and the next start
(``recover_adoption``) moves the files back: the folder is the plain index again, and the adoption starts over.

``serving.json`` is the single source of truth and is only ever replaced atomically (``atomic_write_json``):
a process killed at any moment leaves either the state before a transition or the one after it. Its shape::

    {"format_version": 1, "version": 1, "backend": "faiss", "model": "static", "model_id": "static@...", "index": "v1",
     "upgrade": null | {"folder": "upgrade-2-1f0c9a2e", "model": "minilm", "model_id": "minilm@...",
                        "adapter": null | "path", "order": "random", "batch_size": 256, "state": "running",
                        "cascade": null | {"candidates": 50, "encode_budget": null, "candidate_query": "auto"},
                        "started_at": "..."},
     "query": null | {"model": "mpnet", "model_id": "...", "adapters": ["path", ...],
                      "chain": ["mpnet@...", "minilm@...", "static@..."]},
     "history": [{"version": 1, "model_id": "...", "index": "v1", "served_from": "..."}]}

``query`` is an upgrade without re-indexing: queries of a newer model reach the unchanged index through an
adapter, or through a chain of adapters (v3 -> v2 -> v1, ``hotswap.adapters.chain.ComposedAdapter``) whose
model ids ``chain`` records, newest first.

Transitions: ``start_upgrade`` writes the upgrade record *after* the upgrade folder exists; ``commit`` points
``index`` at ``upgrade-N-<tag>/new`` in one write, once that index opened and verified; ``rollback`` drops the
record first and deletes the folder after, and ``sweep`` removes an ``upgrade-*`` folder that no record names (a
rollback killed between the two steps).
The serving index itself is never modified by an upgrade, so a rollback loses nothing.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hotswap.errors import CorruptStoreError, HotswapError
from hotswap.io import atomic_write_json, fsync_dir, read_json_object, utc_now
from hotswap.serve.docstore import DOCSTORE_NAME, DocStore
from hotswap.store import create_store, open_store

SERVING_NAME = "serving.json"
LOCK_NAME = ".serve.lock"
ADOPT_MARK = ".adopting.json"  # an adoption in progress (``Collection.adopt_index``)
STORE_MANIFEST = "manifest.json"  # what marks a FAISS store folder
FORMAT_VERSION = 1


class Collection:
    """Read and transition ``PATH/serving.json``; every method that changes state writes it atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.state = self._read()

    # ---- construction -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, model: str, encoder: Any, corpus: Mapping[str, str],
               batch_size: int = 1024, backend: str = "faiss") -> Collection:
        """Build version 1: encode every document of ``corpus`` with ``encoder`` into ``PATH/v1`` (``backend``:
        a registered store backend: faiss, qdrant, milvus or pg)."""
        path = Path(path)
        if (path / SERVING_NAME).exists():
            raise FileExistsError(f"{path} already holds a collection; serve it without --model")
        if path.exists() and any(p.name != "v1" and not p.name.startswith(DOCSTORE_NAME) for p in path.iterdir()):
            raise FileExistsError(f"{path} is not empty; choose an empty or new folder")
        shutil.rmtree(path / "v1", ignore_errors=True)  # a create killed before serving.json was written
        for leftover in path.glob(f"{DOCSTORE_NAME}*") if path.is_dir() else []:
            leftover.unlink()
        path.mkdir(parents=True, exist_ok=True)
        _write_texts(path, corpus, list(corpus))
        store = create_store(f"{backend}://{path / 'v1'}", model_id=encoder.id, dim=encoder.dim)
        try:
            ids = list(corpus)
            for start in range(0, len(ids), batch_size):
                chunk = ids[start:start + batch_size]
                store.add(chunk, encoder.encode([corpus[i] for i in chunk]), model_id=encoder.id)
        finally:
            store.close()  # a database folder admits one client at a time
        atomic_write_json(path / SERVING_NAME, _first_state(backend, model, encoder.id))  # last: a folder
        return cls(path)  # without it is no collection

    @staticmethod
    def is_plain_index(path: str | Path) -> bool:
        """Whether ``path`` is a FAISS store folder that is no collection (``hotswap encode`` made it), or one
        whose adoption was cut short (``recover_adoption`` restores it)."""
        path = Path(path)
        if (path / SERVING_NAME).exists():
            return False
        return (path / STORE_MANIFEST).is_file() or (path / ADOPT_MARK).is_file()

    @classmethod
    def adopt_index(cls, path: str | Path, model: str, model_id: str, corpus: Mapping[str, str]) -> Collection:
        """Make the FAISS store folder ``path`` a collection in place, without re-encoding: its vectors become
        ``v1`` (files moved, not copied), ``corpus`` (every stored id's text) fills ``texts.sqlite``, and
        ``model`` (a bundled name or a model folder, whose id must be the store's ``model_id``) serves it.

        Refused before anything changes when the store does not open and verify, was built by another model,
        has an upgrade in progress, or holds ids without a text. Crash-safe: see the module docstring."""
        path = Path(path)
        cls.recover_adoption(path)
        ids = _adoptable(path, model_id)
        if missing := [i for i in ids if not isinstance(corpus.get(i), str)]:
            raise HotswapError(f"{len(missing):,} of the {len(ids):,} vectors in {path} have no text in the given "
                               f"corpus (e.g. {', '.join(map(repr, missing[:3]))}); pass --dataset: the dataset "
                               "the index was built from")
        lock = ServeLock(path / LOCK_NAME)
        try:
            if (path / SERVING_NAME).exists() or not (path / STORE_MANIFEST).is_file():
                raise HotswapError(f"{path} changed while it was being adopted; start again")
            atomic_write_json(path / ADOPT_MARK, {"model": model, "model_id": model_id, "started_at": utc_now()})
            for leftover in path.glob(f"{DOCSTORE_NAME}*"):
                leftover.unlink()
            _write_texts(path, corpus, ids)
            _move_store(path, path / "v1")
            atomic_write_json(path / SERVING_NAME, _first_state("faiss", model, model_id))  # the collection
            (path / ADOPT_MARK).unlink(missing_ok=True)
        finally:
            lock.close()
        return cls(path)

    @staticmethod
    def recover_adoption(path: str | Path) -> bool:
        """Undo an adoption cut short (``.adopting.json`` without ``serving.json``): the store's files go back
        from ``v1/`` to ``path``, the texts and the marker go. Returns whether there was one to undo. With
        ``serving.json`` written the adoption had finished: only a stale marker is removed."""
        path = Path(path)
        mark = path / ADOPT_MARK
        if not mark.is_file():
            return False
        if (path / SERVING_NAME).exists():
            mark.unlink(missing_ok=True)
            return False
        lock = ServeLock(path / LOCK_NAME)
        try:
            if (path / "v1").is_dir():
                _move_store(path / "v1", path)
                (path / "v1").rmdir()
            for leftover in path.glob(f"{DOCSTORE_NAME}*"):
                leftover.unlink()
            fsync_dir(path)
            mark.unlink()  # last: until it is gone, the next start undoes the rest again
            fsync_dir(path)
        finally:
            lock.close()
        return True

    def _read(self) -> dict:
        state = read_json_object(self.path / SERVING_NAME, what="collection state",
                                 fix="create the collection with 'hotswap serve --store PATH --model NAME "
                                     "--dataset DATASET'")
        missing = [k for k in ("version", "model", "model_id", "index", "upgrade", "history") if k not in state]
        if missing or state.get("format_version") != FORMAT_VERSION:
            raise CorruptStoreError(f"{self.path / SERVING_NAME} is not a hotswap collection state (missing "
                                    f"{missing or 'nothing'}, format_version {state.get('format_version')!r}); "
                                    "restore it from a backup or create a new collection")
        return state

    # ---- reading ----------------------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return _inside(self.path, self.state["index"])

    def lock(self) -> ServeLock:
        """Hold ``PATH/.serve.lock`` until the returned lock is closed: one process serves or writes to a
        collection at a time (a killed process lets go at once). Refuses when another process holds it."""
        return ServeLock(self.path / LOCK_NAME)

    def texts(self) -> DocStore | None:
        """The collection's docstore (``texts.sqlite``), or ``None`` for one created before collections kept texts."""
        return DocStore(self.path / DOCSTORE_NAME) if (self.path / DOCSTORE_NAME).is_file() else None

    @property
    def backend(self) -> str:
        return self.state.get("backend", "faiss")

    @property
    def upgrade(self) -> dict | None:
        return self.state["upgrade"]

    @property
    def upgrade_path(self) -> Path | None:
        return None if self.upgrade is None else _inside(self.path, self.upgrade["folder"])

    def open_index(self, index: str | None = None, model_id: str | None = None, verify: bool = True):
        """The serving store (or ``index``, relative to the collection, of ``model_id``); refuses one whose model
        is not the one expected, and with ``verify`` one whose files fail their checksums (a corruption that
        kept the file sizes: the check costs one read of the index)."""
        path = self.index_path if index is None else _inside(self.path, index)
        model_id = model_id or self.state["model_id"]
        store = open_store(f"{self.backend}://{path}", model_id=model_id)
        try:
            if store.model_id != model_id:
                raise CorruptStoreError(f"the index {path} holds vectors of {store.model_id!r}, not "
                                        f"{model_id!r}; restore the collection folder")
            if verify:
                store.verify()
        except BaseException:
            store.close()
            raise
        return store

    # ---- transitions ------------------------------------------------------------------------------------
    def _write(self, change: Callable[[dict], None]) -> None:
        state = {**self.state, "history": list(self.state["history"])}
        change(state)
        atomic_write_json(self.path / SERVING_NAME, state)
        self.state = state

    def next_upgrade_folder(self) -> str:
        """A folder no earlier upgrade used (version + a random tag): a late writer of a rolled-back upgrade can
        never write into the next one's."""
        return f"upgrade-{self.state['version'] + 1}-{secrets.token_hex(4)}"

    def record_upgrade(self, record: dict) -> None:
        if self.upgrade is not None:
            raise HotswapError(f"an upgrade to {self.upgrade['model_id']} is already in progress; commit or roll "
                               "it back first")
        self._write(lambda s: s.update(upgrade={**record, "started_at": utc_now()}))

    def set_upgrade_state(self, state: str) -> None:
        if self.upgrade is not None and self.upgrade["state"] != state:
            self._write(lambda s: s.update(upgrade={**s["upgrade"], "state": state}))

    def set_query(self, record: dict | None) -> None:
        """Serve queries of another model through an adapter (chain) on the unchanged index; ``None``: stop."""
        self._write(lambda s: s.update(query=record))

    def commit(self, index: str) -> None:
        """Serve the upgrade's new index (``index``, relative to the collection) from now on: one atomic write."""
        up = self.upgrade
        if up is None:
            raise HotswapError("no upgrade in progress; nothing to commit")

        def change(s: dict) -> None:
            version = s["version"] + 1
            s.update(version=version, model=up["model"], model_id=up["model_id"], index=index, upgrade=None,
                     query=None)
            s["history"].append({"version": version, "model_id": up["model_id"], "index": index,
                                 "served_from": utc_now(), "adapter": up.get("adapter")})
        self._write(change)

    def rollback(self) -> None:
        """Forget the upgrade (serving.json first), then delete its folder; the serving index is untouched."""
        folder = self.upgrade_path
        if folder is None:
            raise HotswapError("no upgrade in progress; nothing to roll back")
        self._write(lambda s: s.update(upgrade=None))
        shutil.rmtree(folder, ignore_errors=True)

    def sweep(self) -> list[str]:
        """Delete ``upgrade-*`` folders that neither the upgrade record nor any served index names."""
        keep = {self.upgrade["folder"]} if self.upgrade else set()
        keep |= {h["index"].split("/")[0] for h in self.state["history"]}
        gone = [p.name for p in self.path.glob("upgrade-*") if p.is_dir() and p.name not in keep]
        for name in gone:
            shutil.rmtree(self.path / name, ignore_errors=True)
        (self.path / ADOPT_MARK).unlink(missing_ok=True)  # an adoption killed after serving.json was written
        return gone


class ServeLock:
    """An ``flock`` on a collection's lock file, held by this process while any ``ServeLock`` of it is open
    (``flock`` is per open file: the process keeps one, counted, so its own services share it)."""

    _held: dict[str, list] = {}  # resolved lock path -> [open file, count]
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.key = str(path.resolve())
        with self._guard:
            if (held := self._held.get(self.key)) is None:
                fh = open(path, "a")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    raise HotswapError(f"another process is serving or writing to the collection {path.parent}; "
                                       "send writes to that server (POST /documents) or stop it first") from None
                held = self._held[self.key] = [fh, 0]
            held[1] += 1
        self._open = True

    def close(self) -> None:
        with self._guard:
            if not self._open:
                return
            self._open = False
            held = self._held[self.key]
            held[1] -= 1
            if held[1] == 0:
                del self._held[self.key]
                held[0].close()  # closing the file drops the flock


def _first_state(backend: str, model: str, model_id: str) -> dict:
    """``serving.json`` of version 1: ``model`` serves ``v1``."""
    return {"format_version": FORMAT_VERSION, "version": 1, "backend": backend, "model": model, "model_id": model_id,
            "index": "v1", "upgrade": None,
            "history": [{"version": 1, "model_id": model_id, "index": "v1", "served_from": utc_now()}]}


def _write_texts(path: Path, corpus: Mapping[str, str], ids: list[str]) -> None:
    """``PATH/texts.sqlite`` holding the texts of ``ids`` from ``corpus`` (batches of 10,000)."""
    texts = DocStore(path / DOCSTORE_NAME, create=True)
    try:
        for start in range(0, len(ids), 10_000):
            texts.put_many((i, corpus[i]) for i in ids[start:start + 10_000])
    finally:
        texts.close()


def _adoptable(path: Path, model_id: str) -> list[str]:
    """The ids of the FAISS store ``path``, once it opened and verified as ``model_id``'s with no upgrade."""
    from hotswap.store.provenance import read_provenance

    if (path / SERVING_NAME).exists():
        raise FileExistsError(f"{path} already holds a collection; serve it as it is")
    if not (path / STORE_MANIFEST).is_file():
        raise HotswapError(f"{path} is not a FAISS index folder (no {STORE_MANIFEST}); build one with "
                           "'hotswap encode', or create a collection with 'hotswap serve --store PATH --model NAME "
                           "--dataset DATASET'")
    if (path / "v1").exists():
        raise FileExistsError(f"{path} holds both an index and a v1 folder; move v1 away to adopt the index")
    upgrade = read_provenance(path).get("upgrade")
    if upgrade:
        raise HotswapError(f"{path} has an upgrade in progress ({upgrade}); finish it first with 'hotswap upgrade "
                           f"commit --index {path}' or 'hotswap upgrade rollback --index {path}'")
    store = open_store(f"faiss://{path}")
    try:
        if store.model_id != model_id:
            raise HotswapError(f"{path} holds vectors of {store.model_id}, not {model_id}; serve it with the model "
                               "that built it")
        store.verify()
        return list(store.ids)
    finally:
        store.close()


def _store_files(folder: Path) -> list[Path]:
    """The files of the store in ``folder`` (every plain file but the collection's own), manifest last."""
    ours = {SERVING_NAME, LOCK_NAME, ADOPT_MARK}
    files = [p for p in folder.iterdir() if p.is_file() and p.name not in ours
             and not p.name.startswith((DOCSTORE_NAME, f".{SERVING_NAME}.", f".{ADOPT_MARK}."))]
    return sorted(files, key=lambda p: (p.name == STORE_MANIFEST, p.name))


def _move_store(source: Path, dest: Path) -> None:
    """Rename the store's files from ``source`` into ``dest`` (same file system), ``manifest.json`` last: a
    folder with a manifest holds every segment it lists."""
    dest.mkdir(exist_ok=True)
    fsync_dir(dest.parent)
    for f in _store_files(source):
        os.replace(f, dest / f.name)
        if f.name == STORE_MANIFEST:
            fsync_dir(dest)
            fsync_dir(source)
    fsync_dir(dest)
    fsync_dir(source)


def _inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused unless it stays inside ``root`` (paths read from state files are confined)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise CorruptStoreError(f"{root / SERVING_NAME} names {relative!r}, outside the collection; restore it")
    return path
