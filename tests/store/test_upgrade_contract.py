"""The upgrade contract, one suite over faiss (``FaissUpgrade``), qdrant, milvus and pg (``DbUpgrade``): disjoint
and complete partitions, partition and merged searches against numpy brute force, the backfill runner (clean
and resumed), refusals, reopening, and the rollback of a database upgrade (``drop_model``)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hotswap.backfill import BackfillRunner, LocalExecutor, gallery_checksum, plan_backfill, read_plan
from hotswap.errors import CorruptStoreError, HotswapError, ModelMismatchError, UnknownIdError
from hotswap.search import Searcher, rank_merge
from hotswap.store import create_store, drop_model, open_store
from hotswap.upgrade import create_upgrade, open_upgrade
from hotswap.store.db.common import model_key
from tests.backfill.toy import ToyEncoder, fetch, gallery_ids, unit_vector

pytest.importorskip("qdrant_client")
pytest.importorskip("milvus_lite")

OLD, NEW = "toy-old@1", "toy-new@1"  # NEW is ToyEncoder's id, so the runner accepts the upgrade
D_OLD, D_NEW, N = 8, 12, 60
IDS = gallery_ids(N)
X_OLD = np.stack([unit_vector(i, D_OLD, OLD) for i in IDS])
X_NEW = ToyEncoder(dim=D_NEW).encode(fetch(IDS))


def close(*objs) -> None:
    for o in objs:
        getattr(o, "close", lambda: None)()  


@pytest.fixture(params=["faiss", "qdrant", "milvus", "pg"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def make(tmp_path, backend):
    """``make(name, metric)``: an old store of the toy gallery (two adds) and an upgrade of it to NEW."""
    opened = []

    def _make(name: str = "g", metric: str = "ip"):
        old = create_store(f"{backend}://{tmp_path / name / 'old'}", OLD, D_OLD, metric)
        old.add(IDS[:25], X_OLD[:25], OLD)
        old.add(IDS[25:], X_OLD[25:], OLD)
        up = create_upgrade(tmp_path / name / "up", old, NEW, D_NEW)
        opened.extend([old, up])
        return old, up

    _make.opened = opened
    yield _make
    close(*opened)


def brute(Q: np.ndarray, X: np.ndarray, ids: list[str], k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """FAISS-style top-k of ``ids`` (rows of ``X``), padded with the worst score and ``None``."""
    S = Q @ X.T if metric == "ip" else ((Q[:, None, :].astype(np.float64) - X[None]) ** 2).sum(-1)
    order = np.argsort(-S if metric == "ip" else S, axis=1, kind="stable")[:, :k]
    D = np.full((len(Q), k), -np.inf if metric == "ip" else np.inf, np.float32)
    I = np.full((len(Q), k), None, object)
    D[:, :order.shape[1]] = np.take_along_axis(S, order, 1)
    I[:, :order.shape[1]] = np.array(ids, object)[order] if ids else I[:, :0]
    return D, I


def expected(up, Q_old, Q_new, k):
    """Brute force over the old vectors of pending ids and the new vectors of backfilled ids."""
    done = up.backfilled_ids()
    rows = {s: [j for j, i in enumerate(IDS) if (i in done) == (s == "new")] for s in ("old", "new")}
    return (brute(Q_old, X_OLD[rows["old"]], [IDS[j] for j in rows["old"]], k, up.metric),
            brute(Q_new, X_NEW[rows["new"]], [IDS[j] for j in rows["new"]], k, up.metric))


def assert_same(got, want) -> None:
    assert got[1].tolist() == want[1].tolist()
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-4)


def snapshot(up, k: int = 5):
    """Counts, backfilled ids, and both partitions' and the merged search's results for fixed queries."""
    rng = np.random.default_rng(5)
    Q_old, Q_new = rng.standard_normal((4, D_OLD)), rng.standard_normal((4, D_NEW))
    merged = Searcher.for_upgrade(up).search((Q_new, Q_old), k, "merged", NEW)
    return (up.counts(), sorted(up.backfilled_ids()), up.search_partition("old", Q_old, k, OLD),
            up.search_partition("new", Q_new, k, NEW), merged)


def assert_snapshot(got, want) -> None:
    assert got[:2] == want[:2]
    for g, w in zip(got[2:], want[2:]):
        assert_same(g, w)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_partitions_and_searches_through_a_backfill(make, metric):
    _, up = make(metric=metric)
    order = np.random.default_rng(1).permutation(N)
    rng = np.random.default_rng(2)
    Q_old, Q_new = rng.standard_normal((6, D_OLD)), rng.standard_normal((6, D_NEW))
    done = 0
    for size in [0, 7, 13, 10, 1, 19, 10]:  # 0 %, ..., 50 % (30 items), ..., 100 %
        if size:
            up.add_backfilled([IDS[j] for j in order[done:done + size]], X_NEW[order[done:done + size]], NEW)
            done += size
        want_new = {IDS[j] for j in order[:done]}
        assert up.counts() == {"old": N - done, "new": done} and up.fraction == pytest.approx(done / N)
        assert up.backfilled_ids() == want_new and up.pending_ids() == [i for i in IDS if i not in want_new]
        parts = {}
        for side, Q, model in (("old", Q_old, OLD), ("new", Q_new, NEW)):  # k = N: every id of the partition
            I = getattr(up, f"{side}_part").search(Q, N, model)[1]
            parts[side] = {i for i in I[0] if i is not None}
            assert all({i for i in row if i is not None} == parts[side] for row in I)
            assert sum(i is not None for i in I[0]) == len(parts[side]) == up.counts()[side]
        assert parts["new"] == want_new and parts["old"] == set(IDS) - want_new  # disjoint and complete
        for k in (1, 5):
            bf_old, bf_new = expected(up, Q_old, Q_new, k)
            assert_same(up.search_partition("old", Q_old, k, OLD), bf_old)
            assert_same(up.search_partition("new", Q_new, k, NEW), bf_new)
            assert_same(Searcher.for_upgrade(up).search((Q_new, Q_old), k, "merged", NEW),
                        rank_merge(*bf_old, *bf_new, k, metric=metric))


def test_runner_completes_and_a_resumed_run_equals_a_clean_one(make, backend, tmp_path):
    def runner(up):
        return BackfillRunner(up, fetch, LocalExecutor(ToyEncoder(dim=D_NEW)), batch_size=8, progress=False)

    checksums = []
    for name in ("clean", "split"):
        old, up = make(name)
        plan_backfill(up, "random", ToyEncoder(dim=D_NEW), fetch, seed=3)
        if name == "split":
            assert runner(up).run(until=0.5).state == "paused" and up.counts() == {"old": 30, "new": 30}
            close(up, old)
            up = open_upgrade(tmp_path / name / "up")
            make.opened.append(up)
        status = runner(up).run()
        assert (status.state, status.done, status.total) == ("done", N, N) and up.counts() == {"old": 0, "new": N}
        assert up.new.ids == read_plan(up)["ids"]  # committed in plan order
        np.testing.assert_array_equal(up.new.get(IDS), X_NEW)
        checksums.append(gallery_checksum(up))
    assert checksums[0] == checksums[1]


def test_refusals(make, backend, tmp_path):
    old, up = make()
    up.add_backfilled(IDS[:10], X_NEW[:10], NEW)
    before = snapshot(up)
    with pytest.raises(UnknownIdError, match="nope-1"):
        up.add_backfilled([IDS[20], "nope-1"], X_NEW[:2], NEW)
    with pytest.raises(ModelMismatchError, match="other@9"):
        up.add_backfilled(IDS[20:22], X_NEW[20:22], "other@9")
    with pytest.raises(ModelMismatchError, match="adapter"):
        up.search_partition("old", X_NEW[:1], 3, NEW)
    assert_snapshot(snapshot(up), before)  # nothing written
    with pytest.raises(FileExistsError, match="open_"):  # a second upgrade in the same (non-empty) folder
        create_upgrade(up.path, old, NEW, D_NEW)
    with pytest.raises(HotswapError, match="already built"):
        create_upgrade(tmp_path / "same", old, OLD, D_OLD)
    if backend != "faiss":  # the database already holds NEW's vectors: a second folder may not fill them too
        with pytest.raises(FileExistsError, match="drop_model"):
            create_upgrade(tmp_path / "other", old, NEW, D_NEW)
    assert not (tmp_path / "same").exists() and not (tmp_path / "other" / "upgrade.json").exists()
    up.add_backfilled(IDS[20:22], X_NEW[20:22], NEW)  # still works
    assert up.counts() == {"old": N - 12, "new": 12}


@pytest.mark.parametrize("swap, exc, words", [(None, None, []),
                                              ("model", ModelMismatchError, ["other@9", OLD]),
                                              ("lost", CorruptStoreError, ["lost 1 backfilled", IDS[0]])])
def test_reopen(make, backend, tmp_path, swap, exc, words):
    old, up = make()
    up.add_backfilled(IDS[::2], X_NEW[::2], NEW)
    before, text = snapshot(up, k=7), repr(up)
    close(up, old)
    if swap:
        if swap == "model":
            shutil.rmtree(old.path)
            s = create_store(f"{backend}://{old.path}", "other@9", D_OLD)
            s.add(IDS, X_OLD, "other@9")
        else:  # a backfilled item vanished from the old index behind the upgrade's back
            s = open_store(f"{backend}://{old.path}", OLD)
            s.delete([IDS[0]])
        close(s)
        with pytest.raises(exc) as e:
            open_upgrade(up.path)
        assert all(w in str(e.value) for w in words), str(e.value)
        return
    again = open_upgrade(up.path)
    make.opened.append(again)
    assert type(again) is type(up) and repr(again) == text
    assert_snapshot(snapshot(again, k=7), before)


def test_drop_upgrade_vectors_rolls_back(make, backend, tmp_path):
    old, up = make()
    up.add_backfilled(IDS[:30], X_NEW[:30], NEW)
    Q = np.random.default_rng(7).standard_normal((5, D_OLD))
    uri = f"{backend}://{old.path}"
    before = old.search(Q, 10, OLD)
    close(up)
    if backend != "faiss":  # the old model is the first (qdrant) / serving (milvus) one: never dropped
        with pytest.raises(ValueError, match="first model|serving model"):
            drop_model(old, OLD)
    assert drop_model(uri, NEW) is (backend != "faiss")  # faiss: the new vectors live in up/
    assert drop_model(uri, NEW) is False  # nothing left to drop
    if backend != "faiss":
        with pytest.raises(ModelMismatchError, match=NEW):
            open_store(uri, NEW)
        key = model_key(NEW)
        if backend == "qdrant":  # the named vector is gone from the collection and from every point
            assert key not in old.client.get_collection("gallery").config.params.vectors
            assert not [p for p in old.client.scroll("gallery", limit=100, with_vectors=True)[0] if key in p.vector]
        elif backend == "milvus":
            assert not old.client.has_collection(key)
        else:  # pg: the table is gone
            assert old.client.conn.execute("SELECT to_regclass(%s)", (key,)).fetchone()[0] is None
        with pytest.raises(ModelMismatchError, match="gone"):
            open_upgrade(up.path)
    assert_same(old.search(Q, 10, OLD), before)
    assert old.ids == IDS and len(old) == N
    np.testing.assert_array_equal(old.get(IDS), X_OLD)
    again = create_upgrade(tmp_path / "retry", uri, NEW, D_NEW)  # the upgrade can start over (from a URI)
    make.opened.append(again)
    assert again.counts() == {"old": N, "new": 0}
    assert_same(again.search_partition("old", Q, 10, OLD), before)


@pytest.mark.parametrize("backend", ["qdrant", "milvus"])  # pg: tests/store/test_pg_store.py
def test_sigkill_mid_batch_is_undone_at_the_next_open(make, backend, tmp_path):
    """A process killed after writing a batch's rows but before the store file counts them: the next open
    deletes the rows, the partitions are as before the batch, and the batch can be stored again."""
    old, up = make()
    up.add_backfilled(IDS[:10], X_NEW[:10], NEW)
    before = snapshot(up)
    close(up, old)  # the database folder admits one process at a time
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        import hotswap.store.db.store as db_store
        from hotswap.upgrade import open_upgrade
        db_store.write_store_file = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        up = open_upgrade({str(up.path)!r})
        up.add_backfilled({IDS[10:20]!r}, np.ones((10, {D_NEW}), np.float32), {NEW!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    again = open_upgrade(up.path)
    make.opened.append(again)
    assert_snapshot(snapshot(again), before)
    again.add_backfilled(IDS[10:20], X_NEW[10:20], NEW)
    assert again.counts() == {"old": N - 20, "new": 20}
    np.testing.assert_array_equal(again.new.get(IDS[:20]), X_NEW[:20])
