"""Where a store came from: the dataset whose corpus it indexes and each model that wrote its vectors.

``record_provenance(store_or_uri, dataset=..., models=[...])`` merges a record into ``provenance.json`` in the
store's folder (a database server store: a file named after its URI under ``$HOTSWAP_HOME/provenance/``), written
atomically; ``read_provenance`` returns it (``{}`` for a store that has none). Later commands read the dataset
from here instead of asking for ``--dataset`` again, and find a model's folder by its weight hash instead of by
its folder name. Shape::

    {"dataset": {"name": "debian" | "/abs/beir/folder", "max_docs": 6000 | null, "seed": 0},
     "models": {"<model id>": {"name": "minilm", "location": "/abs/folder", "weights_sha256": "..."}},
     "upgrade": "/abs/upgrade/folder" (while one is in progress), "updated_at": "2026-12-04T07:00:00Z"}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hotswap.encoders.assets import cache_home
from hotswap.io import atomic_write_json, read_json_object, utc_now
from hotswap.store.base import VectorStore
from hotswap.store.registry import store_location

PROVENANCE_NAME = "provenance.json"


def provenance_path(store: VectorStore | str | Path) -> Path:
    """The file holding ``store``'s provenance: in its folder, or (a server's URI) under ``$HOTSWAP_HOME``."""
    _, where = store_location(store)
    if isinstance(where, Path):
        return where / PROVENANCE_NAME
    return cache_home() / "provenance" / f"{hashlib.sha256(str(where).encode()).hexdigest()[:20]}.json"


def read_provenance(store: VectorStore | str | Path) -> dict[str, Any]:
    """The store's provenance record, or ``{}`` where none was written (a store made by an older hotswap)."""
    path = provenance_path(store)
    if not path.is_file():
        return {}
    return read_json_object(path, what="provenance record", fix="delete it; later commands then ask for --dataset")


def dataset_spec(name: str | Path, max_docs: int | None = None, seed: int = 0) -> dict[str, Any]:
    """A dataset reference that reads the same from any working folder: a bundled name, or an absolute path."""
    text = str(name)
    if Path(text).exists():
        text = str(Path(text).resolve())
    return {"name": text, "max_docs": max_docs, "seed": seed}


def record_provenance(store: VectorStore | str | Path, *, dataset: Mapping[str, Any] | None = None,
                      models: Iterable[Mapping[str, Any]] = (), **fields: Any) -> dict[str, Any]:
    """Merge ``dataset`` (see ``dataset_spec``), ``models`` (each with at least ``id``) and other ``fields``
    (e.g. ``upgrade``: the folder of the upgrade in progress; None forgets it) into the store's record."""
    record = read_provenance(store)
    if dataset is not None:
        record["dataset"] = dict(dataset)
    for key, value in fields.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    known = record.setdefault("models", {})
    for model in models:
        known[model["id"]] = {key: v for key, v in model.items() if key != "id"}
    record["updated_at"] = utc_now()
    atomic_write_json(provenance_path(store), record)
    return record


__all__ = ["PROVENANCE_NAME", "dataset_spec", "provenance_path", "read_provenance", "record_provenance"]
