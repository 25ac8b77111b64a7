"""Backfill ordering policies: each returns every pending id once; random is seeded; uncertainty backfills the
items the old -> new map predicts worst first; popularity follows a query log; broken policies are caught."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.backfill import ORDERINGS, OrderingContext, backfill_order, plan_backfill, read_plan
from hotswap.backfill.ordering import predicted_uncertainty
from hotswap.errors import HotswapError
from tests.backfill.toy import ToyEncoder, fetch, make_upgrade


def unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def brute_search(ids: list[str], X: np.ndarray):
    """(Q, k) -> ids [nq, k] of the exact inner-product top-k over ``X``."""
    arr = np.array(ids, dtype=object)

    def search(Q: np.ndarray, k: int) -> np.ndarray:
        return arr[np.argsort(-(Q @ X.T), axis=1, kind="stable")[:, :k]]
    return search


def toy_context(n: int = 200, seed: int = 0, **kw) -> OrderingContext:
    """A context with every input a policy may need: old vectors, a new encoder, a query log, a search."""
    rng = np.random.default_rng(42)
    ids = [f"item-{i:04d}" for i in range(n)]
    X = unit(rng.standard_normal((n, 12)))
    A = rng.standard_normal((12, 20))
    old = dict(zip(ids, X))
    new = dict(zip(ids, unit(X @ A + 0.3 * rng.standard_normal((n, 20)))))
    args = dict(ids=ids, old_vectors=lambda q: np.stack([old[i] for i in q]),
                new_vectors=lambda q: np.stack([new[i] for i in q]), query_log=unit(rng.standard_normal((40, 12))),
                search_old=brute_search(ids, X), seed=seed, probe_size=50)
    return OrderingContext(**{**args, **kw})


@pytest.mark.parametrize("policy", ["random", "sequential", "uncertainty", "popularity"])
def test_every_policy_returns_each_pending_id_once(policy):
    ctx = toy_context()
    order = backfill_order(policy, ctx)
    assert len(order) == len(ctx.ids) and sorted(order) == sorted(ctx.ids)
    assert all(isinstance(i, str) for i in order)
    # pending ids are whatever the context lists: a subset (some already backfilled) works the same way
    sub = toy_context(ids=toy_context().ids[::3])
    order = backfill_order(policy, sub)
    assert len(order) == len(sub.ids) and set(order) == set(sub.ids)


def test_random_is_seeded():
    a, b = backfill_order("random", toy_context(seed=7)), backfill_order("random", toy_context(seed=7))
    c = backfill_order("random", toy_context(seed=8))
    assert a == b
    assert a != c and sorted(a) == sorted(c)
    assert a != toy_context().ids  # actually shuffled


def test_sequential_is_old_index_order():
    ctx = toy_context()
    assert backfill_order("sequential", ctx) == list(ctx.ids)
    shuffled = list(reversed(ctx.ids))
    assert backfill_order("sequential", toy_context(ids=shuffled)) == shuffled


def half_noisy_context(n: int = 600, probe: int = 120, seed: int = 3):
    """Old vectors carry a flag in column 0 (+1 noisy, -1 linear); the new vectors are an exact linear map of the
    old ones for the linear half and the same map plus large noise for the noisy half."""
    rng = np.random.default_rng(seed)
    ids = [f"x{i:04d}" for i in range(n)]
    noisy = rng.permutation(n) < n // 2
    X = rng.standard_normal((n, 10))
    X[:, 0] = np.where(noisy, 1.0, -1.0)
    A = rng.standard_normal((10, 24))
    Y = X @ A + np.where(noisy[:, None], 2.0, 0.0) * rng.standard_normal((n, 24))
    old, new = dict(zip(ids, X.astype(np.float32))), dict(zip(ids, Y.astype(np.float32)))
    encoded: list[str] = []

    def new_vectors(q):
        encoded.extend(q)
        return np.stack([new[i] for i in q])
    ctx = OrderingContext(ids=ids, old_vectors=lambda q: np.stack([old[i] for i in q]), new_vectors=new_vectors,
                          seed=seed, probe_size=probe)
    return ctx, dict(zip(ids, noisy)), encoded


def test_uncertainty_probe_first_then_noisy_items():
    ctx, is_noisy, encoded = half_noisy_context()
    order = backfill_order("uncertainty", ctx)
    m = ctx.probe_size
    assert len(encoded) == m and order[:m] == encoded  # the probe (what was encoded) is backfilled first
    rest = order[m:]
    noisy_rank = np.array([r for r, i in enumerate(rest) if is_noisy[i]])
    clean_rank = np.array([r for r, i in enumerate(rest) if not is_noisy[i]])
    assert len(noisy_rank) > 100 and len(clean_rank) > 100
    assert noisy_rank.mean() < 0.5 * clean_rank.mean()
    # near-perfect separation: the first len(noisy) of the rest are (almost) all noisy
    head = rest[:len(noisy_rank)]
    assert np.mean([is_noisy[i] for i in head]) > 0.95
    # random order (the baseline) shows no such effect
    base = [i for i in backfill_order("random", ctx) if i not in set(order[:m])]
    base_noisy = np.mean([r for r, i in enumerate(base) if is_noisy[i]])
    assert abs(base_noisy - (len(base) - 1) / 2) < 0.15 * len(base)


def test_predicted_uncertainty_tracks_true_held_out_error():
    """The noise level of the old -> new map grows with old column 0; the predicted error of held-out items
    must correlate with the error a map fitted on the whole probe actually makes on them."""
    rng = np.random.default_rng(11)
    n_probe, n_held, d_old, d_new = 400, 1000, 6, 32
    X = rng.standard_normal((n_probe + n_held, d_old))
    X[:, 0] = rng.uniform(-1, 1, len(X))
    scale = np.sqrt(0.5 + 0.45 * X[:, 0])  # noise variance linear in x0
    Y = X @ rng.standard_normal((d_old, d_new)) + scale[:, None] * rng.standard_normal((len(X), d_new))
    Xp, Yp, Xh, Yh = X[:n_probe], Y[:n_probe], X[n_probe:], Y[n_probe:]
    pred = predicted_uncertainty(Xp.astype(np.float32), Yp.astype(np.float32), Xh.astype(np.float32))
    assert pred.shape == (n_held,)
    Xb = np.hstack([Xp, np.ones((n_probe, 1))])
    W = np.linalg.lstsq(Xb, Yp, rcond=None)[0]
    true_err = ((np.hstack([Xh, np.ones((n_held, 1))]) @ W - Yh) ** 2).sum(1)
    corr = np.corrcoef(pred, true_err)[0, 1]
    assert corr > 0.5, corr
    rank_corr = np.corrcoef(np.argsort(np.argsort(pred)), np.argsort(np.argsort(true_err)))[0, 1]
    assert rank_corr > 0.5, rank_corr
    assert abs(np.corrcoef(rng.permutation(pred), true_err)[0, 1]) < 0.15  # the test can tell noise from signal


def test_uncertainty_needs_new_encoder_and_small_galleries_fall_back():
    with pytest.raises(HotswapError, match="new encoder"):
        backfill_order("uncertainty", toy_context(new_vectors=None))
    small = toy_context(n=10)
    assert backfill_order("uncertainty", small) == backfill_order("random", small)


def test_popularity_puts_often_hit_items_first():
    ctx = toy_context(n=120, seed=5)
    X = ctx.old_vectors(ctx.ids)
    hot = {"item-0007": 9, "item-0100": 6, "item-0042": 3}  # id -> number of logged queries hitting it
    Q = np.concatenate([np.repeat(X[[ctx.ids.index(i)]], c, 0) for i, c in hot.items()])
    ctx.query_log, ctx.log_k = Q, 1
    order = backfill_order("popularity", ctx)
    assert order[:3] == ["item-0007", "item-0100", "item-0042"]
    assert order[3:] != [i for i in ctx.ids if i not in hot]  # ties (no votes) broken by a seeded shuffle
    assert order == backfill_order("popularity", ctx)
    ctx.seed = 6
    other = backfill_order("popularity", ctx)
    assert other[:3] == order[:3] and other[3:] != order[3:]


def test_popularity_through_plan_backfill_orders_by_votes(tmp_path):
    """With the real old index as the searcher (k=10): the plan's vote counts never increase."""
    up = make_upgrade(tmp_path, 150, plan=False)
    ids, X = up.old.ids, up.old.get(up.old.ids)
    rng = np.random.default_rng(0)
    hot = rng.choice(len(ids), 5, replace=False)
    Q = unit(np.repeat(X[hot], [30, 20, 12, 6, 2], 0) + 0.05 * rng.standard_normal((70, X.shape[1])))
    order = plan_backfill(up, "popularity", ToyEncoder(), fetch, seed=1, query_log=Q)
    assert read_plan(up)["ids"] == order and read_plan(up)["policy"] == "popularity"
    top = np.argsort(-(Q @ X.T), axis=1)[:, :10]
    votes = np.bincount(top.ravel(), minlength=len(ids))
    by_id = dict(zip(ids, votes))
    seq = [by_id[i] for i in order]
    assert all(a >= b for a, b in zip(seq, seq[1:])) and seq[0] > 0 and seq[-1] == 0
    assert {ids[h] for h in hot[:3]} <= set(order[:30])


@pytest.mark.parametrize("log", [None, np.empty((0, 12), np.float32)])
def test_popularity_refused_without_a_log(log):
    with pytest.raises(HotswapError) as e:
        backfill_order("popularity", toy_context(query_log=log))
    msg = str(e.value)
    assert "query log" in msg and "--query-log" in msg and "uncertainty" in msg


def test_unknown_policy_refused():
    with pytest.raises(HotswapError) as e:
        backfill_order("fastest", toy_context())
    assert "'fastest'" in str(e.value)
    for name in ("random", "sequential", "uncertainty", "popularity"):
        assert name in str(e.value)


@pytest.mark.parametrize("broken", [
    lambda ctx: list(ctx.ids)[1:],  # loses an id
    lambda ctx: list(ctx.ids)[:-1] + [ctx.ids[0]],  # loses one, repeats another (same length)
    lambda ctx: list(ctx.ids) + [ctx.ids[0]],  # repeats one
    lambda ctx: list(ctx.ids)[:-1] + ["stranger"],  # invents one
], ids=["lost", "swapped", "repeated", "invented"])
def test_backfill_order_catches_a_broken_policy(monkeypatch, broken):
    monkeypatch.setitem(ORDERINGS, "broken", broken)
    with pytest.raises(HotswapError, match="'broken' did not return every pending id exactly once"):
        backfill_order("broken", toy_context())
    monkeypatch.setitem(ORDERINGS, "fine", lambda ctx: list(reversed(ctx.ids)))
    assert backfill_order("fine", toy_context()) == list(reversed(toy_context().ids))
