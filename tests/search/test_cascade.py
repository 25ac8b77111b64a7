"""Cascade search: equals a brute-force numpy cascade, keeps its encoding budget, writes what it encodes back into
the backfill (once per item across threads, crash-safe under SIGKILL), and feeds the ``demand`` backfill order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hotswap.backfill import write_plan
from hotswap.errors import HotswapError
from hotswap.search import Searcher
from hotswap.search.cascade import calibrate
from hotswap.store import open_store
from hotswap.upgrade import open_upgrade
from hotswap.store.demand_log import DemandLog
from tests.backfill.toy import (NEW_DIM, NEW_MODEL, OLD_DIM, OLD_MODEL, ToyEncoder, fetch, gallery_ids, make_upgrade,
                                plan_order, runner)

N = 200
ROOT = Path(__file__).resolve().parents[2]


class LinearAdapter:
    """A fixed new -> old map (what a fitted adapter does), for candidate_query='adapted'."""

    old_model_id_, new_model_id_ = OLD_MODEL, NEW_MODEL

    def __init__(self, seed: int = 1) -> None:
        self.W = np.random.default_rng(seed).standard_normal((NEW_DIM, OLD_DIM)).astype(np.float32)

    def transform(self, Q: np.ndarray, model_id: str | None = None) -> np.ndarray:
        assert model_id == NEW_MODEL
        return (np.asarray(Q, np.float32) @ self.W).astype(np.float32)


def queries(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, NEW_DIM)).astype(np.float32), rng.standard_normal((n, OLD_DIM)).astype(np.float32))


def backfill_part(up, fraction: float) -> None:
    """Store the toy new vectors of the first ``fraction`` of the plan order, as a backfill would."""
    ids = plan_order(N)[:int(fraction * N)]
    if ids:
        up.add_backfilled(ids, ToyEncoder().encode(fetch(ids)), NEW_MODEL)


def brute_cascade(up, Q_new: np.ndarray, Q_c: np.ndarray, G: int, k: int) -> list[list[str]]:
    """Top-k by <f_new(q), f_new(d)> of (top-G old index by Q_c) U (top-G new partition by Q_new), in numpy."""
    every, done = up.old.ids, up.new.ids
    X_old = up.old.get(every)
    X_done = up.new.get(done) if done else np.empty((0, NEW_DIM), np.float32)
    enc, out = ToyEncoder(), []
    for q_new, q_c in zip(Q_new, Q_c):
        cand = [every[j] for j in np.argsort(-(X_old @ q_c), kind="stable")[:G]]
        cand = list(dict.fromkeys(cand + [done[j] for j in np.argsort(-(X_done @ q_new), kind="stable")[:G]]))
        s = enc.encode(fetch(cand)) @ q_new
        out.append([cand[j] for j in np.argsort(-s, kind="stable")[:k]])
    return out


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9, 1.0])
@pytest.mark.parametrize("how", ["old", "adapted"])
def test_cascade_equals_brute_force(tmp_path, fraction, how):
    up = make_upgrade(tmp_path, N, plan=False)
    backfill_part(up, fraction)
    adapter = LinearAdapter()
    searcher = Searcher.for_upgrade(up, new_encoder=ToyEncoder(), texts=fetch, adapter=adapter)
    Q_new, Q_old = queries(12)
    D, I = searcher.search((Q_new, Q_old), 8, "cascade", NEW_MODEL, candidates=20, candidate_query=how)
    Q_c = Q_old if how == "old" else adapter.transform(Q_new, NEW_MODEL)
    assert I.tolist() == brute_cascade(up, Q_new, Q_c, 20, 8)
    # scores are the new model's inner products, best first
    X = ToyEncoder().encode(fetch(I[0]))
    np.testing.assert_allclose(D[0], X @ Q_new[0], rtol=1e-5, atol=1e-6)
    assert (np.diff(D, axis=1) <= 1e-6).all()
    stats = searcher.cascade_stats()
    assert stats["queries"] == 12 and stats["encodes"] <= 12 * 20
    assert stats["encodes"] == (0 if fraction == 1.0 else stats["encoded"]) and stats["encoded"] > 0 or fraction == 1.0


def test_budget_is_never_exceeded_and_nothing_is_dropped(tmp_path):
    up = make_upgrade(tmp_path, N, plan=False)
    enc = ToyEncoder()
    searcher = Searcher.for_upgrade(up, new_encoder=enc, texts=fetch)
    Q_new, Q_old = queries(10)
    for r in range(10):  # one query per call: each call encodes at most the budget
        before = sum(map(len, enc.calls))
        _, I = searcher.search((Q_new[r:r + 1], Q_old[r:r + 1]), 30, "cascade", NEW_MODEL, candidates=20,
                               encode_budget=3)
        assert sum(map(len, enc.calls)) - before <= 3
        assert None not in I[0] and len(set(I[0])) == 30  # k filled: over-budget and past-G items keep a place
    Q_new, Q_old = queries(10, seed=9)
    before = sum(map(len, enc.calls))
    searcher.search((Q_new, Q_old), 10, "cascade", NEW_MODEL, candidates=20, encode_budget=3)
    assert sum(map(len, enc.calls)) - before <= 30
    assert searcher.cascade_stats()["calibrated"] > 0


def test_budget_zero_keeps_the_old_order_and_logs_the_demand(tmp_path):
    up = make_upgrade(tmp_path, N, plan=False)
    enc = ToyEncoder()
    searcher = Searcher.for_upgrade(up, new_encoder=enc, texts=fetch)
    Q_new, Q_old = queries(3)
    _, I = searcher.search((Q_new, Q_old), 10, "cascade", NEW_MODEL, candidates=15, encode_budget=0,
                           candidate_query="old")
    _, I_old = up.old.search(Q_old, 15, OLD_MODEL)
    assert enc.calls == [] and I.tolist() == I_old[:, :10].tolist()  # nothing encoded: the old ranking
    demanded = DemandLog(up.path).read_new()
    assert demanded == list(dict.fromkeys(I_old.ravel()))  # every candidate over the budget, once, in order


def test_calibration_line():
    assert calibrate(np.array([]), np.array([])) == (1.0, 0.0)
    assert calibrate(np.array([0.5]), np.array([0.8])) == pytest.approx((1.0, 0.3))
    a, b = calibrate(np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.5, 0.7]))
    assert (a, b) == pytest.approx((2.0, 0.1))
    assert calibrate(np.array([0.1, 0.2, 0.3]), np.array([0.7, 0.5, 0.3]))[0] == 0.0  # never reverses the old order


def test_write_back_feeds_the_backfill(tmp_path):
    up = make_upgrade(tmp_path, N)
    searcher = Searcher.for_upgrade(up, new_encoder=ToyEncoder(), texts=fetch, flush_every=10_000)
    Q_new, Q_old = queries(6)
    searcher.search((Q_new, Q_old), 10, "cascade", NEW_MODEL, candidates=25)
    encoded = searcher.cascade_stats()["encoded"]
    assert encoded > 0 and len(up.new) == 0  # buffered, not yet committed
    assert searcher.flush() == encoded and len(up.new) == encoded == up.counts()["new"]
    cached = set(up.new.ids)
    r = runner(up, 32)
    assert r.run().state == "done"
    runner_encoded = [i for call in r.executor.encoder.calls for i in call]
    assert not {f"text of {i}" for i in cached} & set(runner_encoded)  # the runner skipped the written-back items
    assert len(runner_encoded) == N - encoded
    _assert_exactly_once(up)
    # searching again encodes nothing: every candidate has a stored vector now
    searcher.search((Q_new, Q_old), 10, "cascade", NEW_MODEL, candidates=25)
    assert searcher.cascade_stats()["encoded"] == encoded


def _assert_exactly_once(up, n: int = N) -> None:
    store = open_store(up.path / "new", verify=True)
    ids = [i for seg in store.manifest.segments for i in json.loads((store.path / seg.ids_file).read_text())]
    assert len(ids) == len(set(ids)) == len(store) == n and set(ids) == set(gallery_ids(n))
    np.testing.assert_array_equal(store.get(ids), ToyEncoder().encode(fetch(ids)))


def test_runner_and_cascade_at_the_same_time(tmp_path):
    up = make_upgrade(tmp_path, N)
    searcher = Searcher.for_upgrade(up, new_encoder=ToyEncoder(), texts=fetch, flush_every=4)
    r = runner(up, 16, delay=0.01)
    thread = threading.Thread(target=r.run)
    thread.start()
    rng = np.random.default_rng(5)
    while thread.is_alive():
        Q_new, Q_old = rng.standard_normal((2, NEW_DIM)), rng.standard_normal((2, OLD_DIM))
        _, I = searcher.search((Q_new.astype(np.float32), Q_old.astype(np.float32)), 10, "cascade", NEW_MODEL,
                               candidates=12)
        assert all(len(set(row)) == 10 for row in I)
    thread.join()
    searcher.flush()
    assert searcher.cascade_stats()["written"] > 0
    _assert_exactly_once(up)


def test_two_threads_encode_a_missing_item_once(tmp_path):
    up = make_upgrade(tmp_path, N, plan=False)
    enc = ToyEncoder(delay=0.2)  # the first search is still encoding when the second asks
    searcher = Searcher.for_upgrade(up, new_encoder=enc, texts=fetch)
    Q_new, Q_old = queries(1)
    out, barrier = [], threading.Barrier(2)

    def search() -> None:
        barrier.wait()
        out.append(searcher.search((Q_new, Q_old), 5, "cascade", NEW_MODEL, candidates=10, candidate_query="old"))

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    encoded = [i for call in enc.calls for i in call]
    assert len(encoded) == len(set(encoded)) == 10  # each candidate encoded by one search only
    assert out[0][1].tolist() == out[1][1].tolist()
    stats = searcher.cascade_stats()
    assert stats["encoded"] == 10 and stats["waited"] in (0, 10)  # 10 unless the second came after the first ended


def test_demand_order_backfills_what_queries_asked_for_first(tmp_path):
    up = make_upgrade(tmp_path, N, plan=False)
    write_plan(up, plan_order(N), "demand", 0, then="random")
    searcher = Searcher.for_upgrade(up, new_encoder=ToyEncoder(), texts=fetch)
    Q_new, Q_old = queries(2)
    searcher.search((Q_new, Q_old), 5, "cascade", NEW_MODEL, candidates=8, encode_budget=2, candidate_query="old")
    demanded = DemandLog(up.path).read_new()
    assert 0 < len(demanded) <= 12
    r = runner(up, 32)
    status = r.run(until=0.25)
    assert status.done == 50
    first = [i.removeprefix("text of ") for i in r.executor.encoder.calls[0]]
    assert first[:len(demanded)] == demanded  # demanded items lead, then the plan's order
    rest = [i for i in plan_order(N) if i not in set(demanded)]
    assert first[len(demanded):] == rest[:32 - len(demanded)]
    assert r.run().state == "done"
    _assert_exactly_once(up)


def test_write_back_survives_sigkill(tmp_path):
    n = 1000
    up = make_upgrade(tmp_path, n)
    for attempt in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "tests.search.cascade_child", str(up.path), str(attempt)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "searching", proc.stderr.read()
        time.sleep(np.random.default_rng(attempt).uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        again = open_upgrade(up.path)  # consistent: opens, and every stored vector is the toy model's
        store = open_store(again.path / "new", verify=True)
        ids = store.ids
        assert 0 < len(ids) == len(set(ids)) < n
        np.testing.assert_array_equal(store.get(ids), ToyEncoder().encode(fetch(ids)))
    again = open_upgrade(up.path)
    stored = set(again.new.ids)
    r = runner(again, 32)
    assert r.run().state == "done"
    assert len([i for call in r.executor.encoder.calls for i in call]) == n - len(stored)
    _assert_exactly_once(again, n)


def test_refusals_name_the_problem(tmp_path):
    up = make_upgrade(tmp_path, N, plan=False)
    Q = queries(2)
    plain = Searcher.for_upgrade(up)
    with pytest.raises(HotswapError, match="texts=.*new_encoder"):
        plain.search(Q, 5, "cascade", NEW_MODEL)
    s = Searcher.for_upgrade(up, new_encoder=ToyEncoder(), texts=fetch)
    with pytest.raises(HotswapError, match="takes no option 'candidates'"):
        s.search(Q, 5, "merged", NEW_MODEL, candidates=5)
    with pytest.raises(HotswapError, match="candidate_query 'blended' needs a QueryBlend"):
        s.search(Q, 5, "cascade", NEW_MODEL, candidate_query="blended")
    with pytest.raises(HotswapError, match="unknown candidate_query"):
        s.search(Q, 5, "cascade", NEW_MODEL, candidate_query="best")
    with pytest.raises(HotswapError, match="encode_budget"):
        s.search(Q, 5, "cascade", NEW_MODEL, encode_budget=-1)
    with pytest.raises(HotswapError, match="candidates must be a positive"):
        s.search(Q, 5, "cascade", NEW_MODEL, candidates=0)
    with pytest.raises(HotswapError, match="takes queries as a pair"):
        s.search(Q[0], 5, "cascade", NEW_MODEL, candidate_query="old")
    with pytest.raises(HotswapError, match="needs new_encoder"):
        Searcher.for_upgrade(up, texts=fetch)
    with pytest.raises(ValueError, match="upgrade is to"):
        Searcher.for_upgrade(up, new_encoder=ToyEncoder(name="other"), texts=fetch)


def test_a_repeated_query_encodes_nothing_once_written_back(tmp_path):
    up = make_upgrade(tmp_path, N, plan=False)
    enc = ToyEncoder()
    searcher = Searcher.for_upgrade(up, new_encoder=enc, texts=fetch, flush_every=1)  # written back at once
    Q = queries(1)
    first = searcher.search(Q, 5, "cascade", NEW_MODEL, candidates=20, candidate_query="old")
    assert sum(map(len, enc.calls)) == 20 and len(up.new) == 20  # its candidates left the old partition
    again = searcher.search(Q, 5, "cascade", NEW_MODEL, candidates=20, candidate_query="old")
    assert sum(map(len, enc.calls)) == 20  # the same candidates, all stored now: nothing more to encode
    assert again[1].tolist() == first[1].tolist()
    np.testing.assert_allclose(again[0], first[0], rtol=1e-6)
