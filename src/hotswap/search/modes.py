"""Search modes: how a query embedding reaches a partition of the index. One function per mode.

* ``old``     — old-model query -> old index (the system before the upgrade);
* ``adapted`` — new-model query -> adapter (new -> old space) -> old index (upgrade without re-indexing);
* ``new``     — new-model query -> new index (full re-index: the upper bound);
* ``blended`` — (new-model query -> adapter) averaged with the old-model query -> old index
  (``hotswap.search.blend``); its ``queries`` are the pair ``(Q_new, Q_old)``. During a backfill the blended
  query searches the old partition and the new-model query the new one, merged like ``adapted``.

During a backfill (``Partitions.upgrade``, an ``Upgrade``) the gallery is split into an old and a new
partition, and three modes search both and merge by raw score (``hotswap.search.rank_merge``):

* ``merged``  — old-model query -> old partition, new-model query -> new partition (Seo et al.'s distance
  rank merge; ``queries`` is the pair ``(Q_new, Q_old)``);
* ``adapted`` — new-model query -> adapter -> old partition, new-model query -> new partition (one encoding);
* ``calibrated`` — as ``merged``, with the new partition's scores mapped onto the old model's scale first
  (``hotswap.search.score_calibration``; a training-free addition, not part of Seo et al.'s merge);
* ``cross``   — the new-model query compared with every stored vector as it is: only meaningful for models
  trained to be compatible (BCT, d-Simplex; ``hotswap.training``), and refused unless the dims agree.

``old`` still searches the whole old index (the system before the upgrade) and ``new`` the new partition.

* ``cascade`` — top-G candidates of both partitions re-scored by the new model, encoding the missing ones and
  writing them back into the backfill (``hotswap.search.cascade``; options ``candidates``, ``encode_budget``,
  ``candidate_query``; ``queries`` is ``Q_new`` or the pair ``(Q_new, Q_old)``).

A mode checks that the query's model id is the one its index (or adapter) was built for; a mismatch raises
``ModelMismatchError`` naming both models. Adding a mode is one function plus one ``MODES`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotswap.errors import HotswapError, ModelMismatchError
from hotswap.search.cascade import CascadeTotals, search_cascade
from hotswap.search.rank_merge import rank_merge
from hotswap.store import Searchable
from hotswap.upgrade import Upgrade

SearchResult = tuple[np.ndarray, np.ndarray]


@dataclass
class Partitions:
    """What a searcher can reach: the old index, optionally a new index and a fitted adapter."""

    old: Searchable
    new: Searchable | None = None
    adapter: Any | None = None
    blend: Any | None = None  # a QueryBlend, for mode "blended"
    upgrade: Upgrade | None = None  # for the merging modes during a backfill
    calibration: Any | None = None  # a ScoreCalibration, for mode "calibrated"
    write_back: Any | None = None  # a WriteBack (new encoder + texts), for mode "cascade"
    cascade_counts: CascadeTotals = field(default_factory=CascadeTotals)


def _need(obj: Any, what: str, mode: str) -> Any:
    if obj is None:
        raise HotswapError(f"mode {mode!r} needs {what}; pass it to the Searcher")
    return obj


def search_old(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    return p.old.search(queries, k, model_id=model_id)


def search_new(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    if p.upgrade is not None and p.new is None:
        return p.upgrade.new_part.search(queries, k, model_id)
    return _need(p.new, "a new index (built by the new model)", "new").search(queries, k, model_id=model_id)


def _check_target(adapter: Any, old: Any) -> None:
    target = getattr(adapter, "old_model_id_", None)
    if target is not None and target != old.model_id:
        raise ModelMismatchError(
            f"adapter maps into model {target}, but the index was built by {old.model_id}; "
            "fit the adapter against this index's model"
        )


def search_adapted(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    adapter = _need(p.adapter, "a fitted adapter (hotswap fit-adapter)", "adapted")
    _check_target(adapter, p.old)
    mapped = adapter.transform(queries, model_id=model_id)
    if p.upgrade is None:
        return p.old.search(mapped, k, model_id=p.old.model_id)
    up = p.upgrade
    with up.reading():
        old, new = up.old_part.search(mapped, k, up.old_model_id), up.new_part.search(queries, k, model_id)
    return _merge(up, old, new, k)


def _merge(up: Any, old: SearchResult, new: SearchResult, k: int) -> SearchResult:
    return rank_merge(*old, *new, k, metric=up.metric)


def _both_partitions(p: Partitions, queries: Any, k: int, model_id: str, mode: str) -> tuple:
    up = _need(p.upgrade, "an upgrade in progress (hotswap.store.create_upgrade)", mode)
    if not (isinstance(queries, tuple) and len(queries) == 2):
        raise HotswapError(f"mode {mode!r} takes queries as a pair (new-model queries, old-model queries)")
    Q_new, Q_old = queries
    with up.reading():  # one consistent cut of the gallery
        return up, up.old_part.search(Q_old, k, up.old_model_id), up.new_part.search(Q_new, k, model_id)


def search_merged(p: Partitions, queries: Any, k: int, model_id: str) -> SearchResult:
    up, old, new = _both_partitions(p, queries, k, model_id, "merged")
    return _merge(up, old, new, k)


def search_calibrated(p: Partitions, queries: Any, k: int, model_id: str) -> SearchResult:
    cal = _need(p.calibration, "a fitted ScoreCalibration (hotswap.search.score_calibration)", "calibrated")
    up, old, (D_new, I_new) = _both_partitions(p, queries, k, model_id, "calibrated")
    return _merge(up, old, (cal.transform(D_new), I_new), k)


def search_cross(p: Partitions, queries: np.ndarray, k: int, model_id: str) -> SearchResult:
    up = _need(p.upgrade, "an upgrade in progress (hotswap.store.create_upgrade)", "cross")
    if up.old_part.dim != up.new_part.dim:
        raise HotswapError(f"mode 'cross' compares new-model queries with old vectors directly, but the models' "
                           f"dims differ ({up.new_part.dim} vs {up.old_part.dim}); use 'adapted' or 'merged'")
    with up.reading():
        new = up.new_part.search(queries, k, model_id)  # checks that the queries are the new model's
        old = up.old_part.search(queries, k, up.old_model_id)
    return _merge(up, old, new, k)


def search_blended(p: Partitions, queries: Any, k: int, model_id: str) -> SearchResult:
    blend = _need(p.blend, "a QueryBlend (hotswap fit-adapter --kind auto may choose one)", "blended")
    if not (isinstance(queries, tuple) and len(queries) == 2):
        raise HotswapError("mode 'blended' takes queries as a pair (new-model queries, old-model queries)")
    _check_target(blend, p.old)
    mixed = blend.combine(queries[0], queries[1], model_id=model_id)
    if p.upgrade is None:
        return p.old.search(mixed, k, model_id=p.old.model_id)
    up = p.upgrade  # during a backfill: the blended query searches the old partition, the new query the new one
    with up.reading():
        old, new = up.old_part.search(mixed, k, up.old_model_id), up.new_part.search(queries[0], k, model_id)
    return _merge(up, old, new, k)


MODES: dict[str, Callable[..., SearchResult]] = {
    "old": search_old,
    "adapted": search_adapted,
    "new": search_new,
    "blended": search_blended,
    "merged": search_merged,
    "calibrated": search_calibrated,
    "cross": search_cross,
    "cascade": search_cascade,
}
# the keyword options each mode takes (``Searcher.search(..., **options)``); a mode not listed takes none
MODE_OPTIONS: dict[str, tuple[str, ...]] = {"cascade": ("candidates", "encode_budget", "candidate_query")}
