"""Backfill ordering policies: which items to re-embed first. One function per policy, found by name.

Each policy takes an ``OrderingContext`` and returns every pending id exactly once, first to backfill first.

* ``random``      — a seeded permutation (the baseline of the backfilling papers).
* ``sequential``  — the old index's insertion order (what a naive batch job does).
* ``uncertainty`` — items whose old embedding is least reliable first: FastFill's idea (Jaeckle et al.,
  ICLR 2023, "FastFill: efficient compatible model update", Sec. 3.3). FastFill learns a transformation
  ``h`` from old to new embeddings together with an uncertainty head that predicts, per item, how far ``h``
  lands from the true new embedding, and backfills the items with the largest predicted error first, since
  those are the ones the old side serves worst. Here both are closed-form and fitted on a *probe*: a seeded
  sample of ``probe_size`` items encoded with the new model (they are backfilled first, so no encoding is
  wasted). ``h`` is ridge regression old -> new; the per-item error ``e_i = ||h(x_i) - y_i||^2`` is taken
  out of fold (5-fold) so it is not shrunk by overfitting; the uncertainty head is a ridge regression of
  ``e`` on the old embedding, which scores every other item from its old vector alone. Items are sorted by
  predicted error, largest first.
* ``popularity``  — items most often retrieved by a query log first: each logged query (old-model embedding)
  votes for its top-``k`` items in the old index; ties are broken by a seeded permutation. Without a log it
  is refused (use ``uncertainty`` or ``random``).
* ``demand``      — query-driven: the items that cascade searches asked for and could not encode within their
  budget (``hotswap.store.demand_log``) first, as they arrive, then every other item in the order of the
  policy ``then`` (``random`` by default). The plan holds ``then``'s order; the runner puts the demanded items
  in front of it batch by batch (``BackfillRunner.pending_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hotswap.errors import HotswapError
from hotswap.linalg import ridge_fit


@dataclass
class OrderingContext:
    """What a policy may read. ``old_vectors(ids)`` and ``new_vectors(ids)`` return float32 rows."""

    ids: Sequence[str]  # pending ids, in old-index order
    old_vectors: Callable[[Sequence[str]], np.ndarray]
    new_vectors: Callable[[Sequence[str]], np.ndarray] | None = None  # encodes with the new model (probe)
    query_log: np.ndarray | None = None  # old-model embeddings of logged queries (popularity)
    search_old: Callable[[np.ndarray, int], np.ndarray] | None = None  # (Q, k) -> ids [nq, k] in the old index
    seed: int = 0
    probe_size: int = 1024
    log_k: int = 10
    then: str = "random"  # under ``demand``: the order of the items no query asked for


def order_random(ctx: OrderingContext) -> list[str]:
    perm = np.random.default_rng(ctx.seed).permutation(len(ctx.ids))
    return [ctx.ids[i] for i in perm]


def order_sequential(ctx: OrderingContext) -> list[str]:
    return list(ctx.ids)


def predicted_uncertainty(X_probe: np.ndarray, Y_probe: np.ndarray, X: np.ndarray, alpha: float = 1.0,
                          folds: int = 5, seed: int = 0) -> np.ndarray:
    """FastFill-style uncertainty of each row of ``X`` (old embeddings): the predicted squared error of the
    old -> new ridge transformation, learnt from a probe with both embeddings (see the module docstring).
    Both regressions are ``hotswap.linalg.ridge_fit`` (unpenalised bias) in float64."""
    Xp, Yp = X_probe.astype(np.float64), Y_probe.astype(np.float64)
    fold = np.random.default_rng(seed).permutation(len(Xp)) % folds
    err = np.empty(len(Xp))
    for f in range(folds):
        test = fold == f
        h = ridge_fit(Xp[~test], Yp[~test], alpha)
        err[test] = ((Xp[test] @ h.W + h.b - Yp[test]) ** 2).sum(1)
    head = ridge_fit(Xp, err[:, None], alpha)
    return (X.astype(np.float64) @ head.W + head.b)[:, 0]


def order_uncertainty(ctx: OrderingContext) -> list[str]:
    if ctx.new_vectors is None:
        raise HotswapError("ordering 'uncertainty' needs the new encoder to embed a probe sample; pass new_vectors")
    ids = list(ctx.ids)
    m = min(ctx.probe_size, len(ids))
    if m < 20:  # too few items to fit anything: nothing to gain from ordering
        return order_random(ctx)
    perm = np.random.default_rng(ctx.seed).permutation(len(ids))
    probe, rest = [ids[i] for i in perm[:m]], [ids[i] for i in perm[m:]]
    if not rest:
        return probe
    score = predicted_uncertainty(ctx.old_vectors(probe), ctx.new_vectors(probe), ctx.old_vectors(rest),
                                  seed=ctx.seed)
    return probe + [rest[i] for i in np.argsort(-score, kind="stable")]


def order_popularity(ctx: OrderingContext) -> list[str]:
    if ctx.query_log is None or ctx.search_old is None or len(ctx.query_log) == 0:
        raise HotswapError("ordering 'popularity' needs a query log (old-model query embeddings) and the old "
                           "index to search; pass --query-log, or use 'uncertainty' or 'random'")
    hits = ctx.search_old(ctx.query_log, ctx.log_k).ravel()
    pos = {i: n for n, i in enumerate(ctx.ids)}
    votes = np.zeros(len(ctx.ids))
    np.add.at(votes, [pos[h] for h in hits if h in pos], 1.0)
    tiebreak = np.random.default_rng(ctx.seed).permutation(len(ctx.ids))
    order = np.lexsort((tiebreak, -votes))
    return [ctx.ids[i] for i in order]


def order_demand(ctx: OrderingContext) -> list[str]:
    if ctx.then == "demand" or ctx.then not in ORDERINGS:
        raise HotswapError(f"ordering 'demand' backfills the rest in another policy's order; got then={ctx.then!r}, "
                           f"choose one of {', '.join(p for p in ORDERINGS if p != 'demand')}")
    return ORDERINGS[ctx.then](ctx)


ORDERINGS: dict[str, Callable[[OrderingContext], list[str]]] = {
    "random": order_random,
    "sequential": order_sequential,
    "uncertainty": order_uncertainty,
    "popularity": order_popularity,
    "demand": order_demand,
}


def backfill_order(policy: str, ctx: OrderingContext) -> list[str]:
    """Every id of ``ctx.ids`` once, in the order ``policy`` backfills them."""
    if policy not in ORDERINGS:
        raise HotswapError(f"unknown ordering policy {policy!r}; available: {', '.join(ORDERINGS)}")
    order = ORDERINGS[policy](ctx)
    if len(order) != len(ctx.ids) or set(order) != set(ctx.ids):
        raise HotswapError(f"ordering {policy!r} did not return every pending id exactly once (a bug)")
    return order
