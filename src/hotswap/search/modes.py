"""Search modes: how a query embedding reaches a partition of the index. One function per mode.

* ``old``     — old-model query -> old index (the system before the upgrade);
* ``adapted`` — new-model query -> adapter (new -> old space) -> old index (upgrade without re-indexing);
* ``new``     — new-model query -> new index (full re-index: the upper bound).

A mode checks that the query's model id is the one its index (or adapter) was built for; a mismatch raises
``ModelMismatchError`` naming both models. Adding a mode is one function plus one ``MODES`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotswap.errors import HotswapError, ModelMismatchError

SearchResult = tuple[np.ndarray, np.ndarray]


@dataclass
class Partitions:
    """What a searcher can reach: the old index, optionally a new index and a fitted adapter."""

    old: Any
    new: Any | None = None
    adapter: Any | None = None


def _need(obj: Any, what: str, mode: str) -> Any:
    if obj is None:
        raise HotswapError(f"mode {mode!r} needs {what}; pass it to the Searcher")
    return obj


def search_old(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    return p.old.search(queries, k, model_id=model_id)


def search_new(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    return _need(p.new, "a new index (built by the new model)", "new").search(queries, k, model_id=model_id)


def search_adapted(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    adapter = _need(p.adapter, "a fitted adapter (hotswap fit-adapter)", "adapted")
    target = getattr(adapter, "old_model_id_", None)
    if target is not None and target != p.old.model_id:
        raise ModelMismatchError(
            f"adapter maps into model {target}, but the index was built by {p.old.model_id}; "
            "fit the adapter against this index's model"
        )
    mapped = adapter.transform(queries, model_id=model_id)
    return p.old.search(mapped, k, model_id=p.old.model_id)


MODES: dict[str, Callable[[Partitions, np.ndarray, int, str], SearchResult]] = {
    "old": search_old,
    "adapted": search_adapted,
    "new": search_new,
}
