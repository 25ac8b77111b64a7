"""BackfillRunner: exactly-once batches, split runs equal a clean run, pause, status/ETA/cost, plans, and real
SIGKILLs of a backfilling process at random moments followed by a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hotswap.backfill import (BackfillRunner, LocalExecutor, gallery_checksum, read_plan, request_pause,
                              write_plan)
from hotswap.backfill.runner import CHECKPOINT_NAME, PAUSE_NAME
from hotswap.errors import HotswapError
from hotswap.store import open_store
from hotswap.upgrade import open_upgrade
from hotswap.store.faiss.manifest import read_manifest
from tests.backfill.toy import ToyEncoder, fetch, gallery_ids, make_upgrade, plan_order, runner

N, B = 300, 32
ROOT = Path(__file__).resolve().parents[2]


def assert_complete(up, n: int = N) -> None:
    """Every old id is stored in the new store exactly once, with the toy encoder's vector."""
    store = open_store(up.path / "new", verify=True)
    ids = [i for seg in store.manifest.segments for i in json.loads((store.path / seg.ids_file).read_text())]
    assert len(ids) == len(set(ids)) == len(store) == n
    assert set(ids) == set(gallery_ids(n))
    np.testing.assert_array_equal(store.get(ids), ToyEncoder().encode(fetch(ids)))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Checksum of one uninterrupted backfill of the toy gallery (N items)."""
    up = make_upgrade(tmp_path_factory.mktemp("clean"), N)
    status = runner(up, B).run()
    assert status.state == "done" and status.done == status.total == N
    return gallery_checksum(up)


def test_full_run_stores_every_id_once_in_plan_order(tmp_path, clean):
    up = make_upgrade(tmp_path, N)
    assert gallery_checksum(up) != clean  # empty gallery
    r = runner(up, B)
    status = r.run()
    assert (status.state, status.done, status.total, status.fraction) == ("done", N, N, 1.0)
    assert_complete(up)
    assert up.new.ids == read_plan(up)["ids"] == plan_order(N)  # batches committed in plan order
    assert len(up.new.manifest.segments) == -(-N // B)  # one segment per batch
    assert [len(c) for c in r.executor.encoder.calls] == [B] * (N // B) + [N % B]
    assert gallery_checksum(up) == clean
    assert json.loads((up.path / CHECKPOINT_NAME).read_text())["state"] == "done"
    assert runner(up, B).run().state == "done" and len(open_store(up.path / "new")) == N  # nothing to redo


def test_runs_split_by_until_equal_a_clean_run(tmp_path, clean):
    up = make_upgrade(tmp_path, N)
    r = runner(up, B)
    s1 = r.run(until=0.3)
    assert (s1.state, s1.done) == ("paused", round(0.3 * N))  # 90: cuts inside the third batch
    assert gallery_checksum(up) != clean
    s2 = runner(open_upgrade(up.path), B).run(until=0.6)
    assert (s2.state, s2.done) == ("paused", round(0.6 * N))
    s3 = runner(open_upgrade(up.path), B).run()
    assert (s3.state, s3.done) == ("done", N)
    assert_complete(up)
    assert gallery_checksum(open_upgrade(up.path)) == clean


def test_pause_from_on_batch_stops_after_the_current_batch(tmp_path, clean):
    up = make_upgrade(tmp_path, N)
    seen = []

    def on_batch(status):
        seen.append((status.done, status.state))
        if len(seen) == 2:
            request_pause(up.path)
            assert (up.path / PAUSE_NAME).exists()

    status = runner(up, B).run(on_batch=on_batch)
    assert seen == [(B, "running"), (2 * B, "running")]
    assert (status.state, status.done) == ("paused", 2 * B)
    assert not (up.path / PAUSE_NAME).exists()
    assert len(open_store(up.path / "new")) == 2 * B
    assert json.loads((up.path / CHECKPOINT_NAME).read_text())["state"] == "paused"
    status = runner(up, B).run()
    assert (status.state, status.done) == ("done", N)
    assert_complete(up)
    assert gallery_checksum(up) == clean


def test_status_eta_and_cost_survive_a_new_runner(tmp_path):
    up = make_upgrade(tmp_path, N)
    fresh = runner(up, B, cost_per_hour=3.6).status()
    assert (fresh.done, fresh.total, fresh.state, fresh.eta_s, fresh.cost_left) == (0, N, "planned", None, None)
    r = runner(up, B, delay=0.002, cost_per_hour=3.6)
    r.run(until=0.5)
    s = r.status()
    assert (s.done, s.total, s.state) == (N // 2, N, "paused")
    assert s.items_per_s > 0 and s.elapsed_s > 0
    assert s.eta_s == pytest.approx((N - N // 2) / s.items_per_s)
    assert s.cost_left == pytest.approx(s.eta_s / 3600 * 3.6)
    ck = json.loads((up.path / CHECKPOINT_NAME).read_text())
    assert (ck["done"], ck["total"], ck["state"]) == (N // 2, N, "paused")

    later = runner(open_upgrade(up.path), B, cost_per_hour=7.2).status()  # another process: checkpoint only
    assert (later.done, later.total, later.state) == (N // 2, N, "paused")
    assert later.items_per_s == pytest.approx(ck["items_per_s"]) and later.elapsed_s == pytest.approx(ck["elapsed_s"])
    assert later.eta_s == pytest.approx((N - N // 2) / ck["items_per_s"])
    assert later.cost_left == pytest.approx(later.eta_s / 3600 * 7.2)
    assert runner(open_upgrade(up.path), B).status().cost_left is None  # no price, no cost

    r2 = runner(open_upgrade(up.path), B, delay=0.002)
    done = r2.run()
    assert (done.state, done.done, done.eta_s) == ("done", N, 0)
    assert done.elapsed_s > later.elapsed_s  # elapsed accumulates over runs
    assert runner(open_upgrade(up.path), B).status().state == "done"


def test_write_plan_refuses_a_second_plan_and_partial_plans(tmp_path):
    up = make_upgrade(tmp_path, 50, plan=False)
    with pytest.raises(HotswapError, match="start the backfill first"):
        read_plan(up)
    ids = gallery_ids(50)
    for bad in (ids[1:], ids[:-1] + ids[:1], ids + ids[:1], ids[:-1] + ["stranger"]):
        with pytest.raises(HotswapError, match="every id of the old index exactly once"):
            write_plan(up, bad, "random", 0)
        assert not (up.path / "plan.json").exists()
    write_plan(up, ids[::-1], "sequential", 0)
    with pytest.raises(HotswapError, match="already has a plan.*--resume"):
        write_plan(up, ids, "random", 1)
    assert read_plan(up)["ids"] == ids[::-1] and read_plan(up)["policy"] == "sequential"


def test_plan_is_resumed_in_the_same_order_after_reopening(tmp_path, clean):
    up = make_upgrade(tmp_path, N, seed=4)
    order = plan_order(N, seed=4)
    assert order != gallery_ids(N) and order != plan_order(N)
    runner(up, B).run(until=0.4)
    again = open_upgrade(up.path)
    assert read_plan(again)["ids"] == order
    r = runner(again, B)
    pending = [i for ids, _ in r.pending_batches() for i in ids]
    assert pending == order[round(0.4 * N):]
    r.run()
    assert open_store(up.path / "new").ids == order
    assert gallery_checksum(again) == clean  # the checksum does not depend on the order


def test_run_on_a_stale_upgrade_object_skips_what_another_process_stored(tmp_path, clean):
    """An upgrade opened before another process backfilled part of the plan (e.g. a crashed job)."""
    up = make_upgrade(tmp_path, N)
    stale = open_upgrade(up.path)
    runner(up, B).run(until=0.5)
    status = runner(stale, B).run()
    assert (status.state, status.done) == ("done", N)
    assert_complete(up)
    assert gallery_checksum(open_upgrade(up.path)) == clean


# ---- kill -9 and resume --------------------------------------------------------------------------------------
KILL_N, KILL_B, DELAY = 400, 16, 0.02


def spawn(path: Path, *extra: str, delay: float = DELAY) -> subprocess.Popen:
    """A child process that opens the upgrade and backfills it with a toy encoder sleeping ``delay`` s a batch."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.backfill.toy", str(path), str(KILL_B), str(delay), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def stored(path: Path) -> int:
    return read_manifest(path / "new").count


def kill(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, f"the backfill ended before the kill: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()


def check_after_kill(path: Path, before: set[str]) -> set[str]:
    """The new store opens and verifies, holds no id twice, and lost nothing committed before the kill."""
    store = open_store(path / "new", verify=True)
    ids = [i for seg in store.manifest.segments for i in json.loads((store.path / seg.ids_file).read_text())]
    assert len(ids) == len(set(ids)) == len(store)
    assert before <= set(ids) <= set(gallery_ids(KILL_N))
    assert len(store) % KILL_B == 0  # whole batches only
    return set(ids)


@pytest.fixture(scope="module")
def kill_clean(tmp_path_factory):
    up = make_upgrade(tmp_path_factory.mktemp("kill-clean"), KILL_N)
    runner(up, KILL_B).run()
    return gallery_checksum(up)


def resume_and_check(path: Path, kill_clean: str) -> None:
    up = open_upgrade(path)
    status = BackfillRunner(up, fetch, LocalExecutor(ToyEncoder()), batch_size=KILL_B, progress=False).run()
    assert (status.state, status.done) == ("done", KILL_N)
    assert_complete(up, KILL_N)
    assert gallery_checksum(up) == kill_clean


def test_sigkill_before_any_batch_lands(tmp_path, kill_clean):
    up = make_upgrade(tmp_path, KILL_N)
    proc = spawn(up.path, delay=1.0)  # the first batch takes a second to encode: the kill lands before it
    assert proc.stdout.readline().strip() == "start"  # the upgrade is open, the first batch is encoding
    kill(proc)
    assert stored(up.path) == 0 and check_after_kill(up.path, set()) == set()
    resume_and_check(up.path, kill_clean)


def test_sigkill_between_segment_and_manifest(tmp_path, kill_clean):
    """Killed on the 4th batch after its segment files are written but before the manifest lists them."""
    up = make_upgrade(tmp_path, KILL_N)
    proc = spawn(up.path, "--kill-at-manifest", "4")
    assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    files = os.listdir(up.path / "new")
    assert stored(up.path) == 3 * KILL_B and "seg-000004.vectors.npy" in files  # an orphan batch on disk
    check_after_kill(up.path, set())
    resume_and_check(up.path, kill_clean)
    assert not [f for f in os.listdir(up.path / "new") if f.endswith(".tmp")]


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_moments_then_resume(tmp_path, kill_clean, seed):
    """Two real SIGKILLs of two successive backfill processes, each at a random moment after some progress
    (a random stored count, then a random extra delay within a batch), then a resume in this process."""
    rng = np.random.default_rng(seed)
    up = make_upgrade(tmp_path, KILL_N)
    kept: set[str] = set()
    for low, high in ((0.05, 0.35), (0.45, 0.75)):
        target = int(rng.uniform(low, high) * KILL_N)
        proc = spawn(up.path)
        deadline = time.monotonic() + 30
        while stored(up.path) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, DELAY))
        kill(proc)
        count = stored(up.path)
        assert target <= count < KILL_N
        now = check_after_kill(up.path, kept)
        assert len(now) >= len(kept)
        kept = now
    resume_and_check(up.path, kill_clean)
