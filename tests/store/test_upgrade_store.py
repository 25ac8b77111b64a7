"""FaissUpgrade: disjoint and complete partitions through a backfill, refusals that write nothing, guarded
reopening, the merging search modes against rank_merge and brute force, and a writer in another thread or
process while this one searches."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hotswap.adapters import make_adapter
from hotswap.errors import (CorruptStoreError, DimensionMismatchError, DuplicateIdError, HotswapError,
                            InvalidVectorsError, ModelMismatchError, UnknownIdError)
from hotswap.search import Searcher, rank_merge
from hotswap.store import FaissStore, create_store, open_store
from hotswap.upgrade import FaissUpgrade, create_upgrade, open_upgrade
from tests.conftest import unit_rows

OLD, NEW = "old-model@1", "new-model@2"
D_OLD, D_NEW = 16, 24


@dataclass
class Gallery:
    ids: list[str]
    X_old: np.ndarray
    X_new: np.ndarray
    old: FaissStore
    metric: str

    @property
    def n(self) -> int:
        return len(self.ids)

    def rows(self, ids) -> np.ndarray:
        return np.array([int(i.split("-")[1]) for i in ids], dtype=np.int64)


def make_gallery(folder: Path, n: int, *, metric: str = "ip", seed: int = 0, d_new: int = D_NEW,
                 linked: bool = False) -> Gallery:
    """An old store of ``n`` items in two segments, and each item's new-model vector (not stored yet).
    ``linked``: new = old mapped by a semi-orthogonal map (an exact procrustes adapter exists)."""
    rng = np.random.default_rng(seed)
    ids = [f"doc-{i}" for i in range(n)]
    X_old = unit_rows(rng, n, D_OLD)
    if linked:
        X_new = X_old @ np.linalg.qr(rng.standard_normal((d_new, d_new)))[0][:D_OLD]
    else:
        X_new = unit_rows(rng, n, d_new)
    old = create_store(folder / "old", model_id=OLD, dim=D_OLD, metric=metric)
    old.add(ids[: n // 3], X_old[: n // 3], OLD)
    old.add(ids[n // 3:], X_old[n // 3:], OLD)
    return Gallery(ids, X_old, X_new.astype(np.float32), old, metric)


def backfill(up: FaissUpgrade, g: Gallery, rows) -> None:
    rows = np.asarray(rows, dtype=np.int64)
    up.add_backfilled([g.ids[r] for r in rows], g.X_new[rows], NEW)


def scores(Q: np.ndarray, X: np.ndarray, metric: str) -> np.ndarray:
    """What FAISS reports: inner products, or squared L2 distances."""
    if metric == "ip":
        return Q @ X.T
    return ((Q[:, None, :].astype(np.float64) - X[None].astype(np.float64)) ** 2).sum(-1)


def brute_merged(g: Gallery, done: set[str], Q_new, Q_old, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k over the whole gallery, each item scored by the model of the partition it is in."""
    new_mask = np.isin(np.array(g.ids, dtype=object), list(done))
    S = np.where(new_mask, scores(Q_new, g.X_new, g.metric), scores(Q_old, g.X_old, g.metric))
    order = np.argsort(-S if g.metric == "ip" else S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, order, 1), np.array(g.ids, dtype=object)[order]


def partition_ids(view, Q: np.ndarray, n_total: int) -> set[str]:
    """Every id of one partition: a search with k = gallery size, whose real ids come first, once each."""
    D, I = view.search(Q, n_total, view.model_id)
    assert D.shape == I.shape == (len(Q), n_total)
    found = set()
    for row in I.tolist():
        real = [i for i in row if i is not None]
        assert row[len(real):] == [None] * (n_total - len(real))  # pads only at the end
        assert len(real) == len(set(real)) == len(view)
        found.add(frozenset(real))
    assert len(found) == 1  # every query sees the same partition
    return set(found.pop())


def assert_valid_results(g: Gallery, D: np.ndarray, I: np.ndarray, Q_new, Q_old) -> None:
    """Full rows of distinct gallery ids, best first, each score the id's score under one of the models."""
    pos = {i: r for r, i in enumerate(g.ids)}
    S_new, S_old = scores(Q_new, g.X_new, g.metric), scores(Q_old, g.X_old, g.metric)
    key = -D if g.metric == "ip" else D
    assert (key[:, 1:] >= key[:, :-1]).all()
    for q, row in enumerate(I.tolist()):
        assert None not in row and len(set(row)) == len(row)
        assert all(i in pos for i in row)
        cols = [pos[i] for i in row]
        ok = np.isclose(D[q], S_new[q, cols], atol=1e-4) | np.isclose(D[q], S_old[q, cols], atol=1e-4)
        assert ok.all()


# ---- partitions through a backfill --------------------------------------------------------------------------

@pytest.mark.parametrize("metric, seed", [("ip", 1), ("l2", 2), ("ip", 3)])
def test_partitions_stay_disjoint_and_complete_through_a_backfill(tmp_path, metric, seed):
    g = make_gallery(tmp_path, 150, metric=metric, seed=seed)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    rng = np.random.default_rng(seed)
    Q_old, Q_new = unit_rows(rng, 3, D_OLD), unit_rows(rng, 3, D_NEW)
    order, done, step = rng.permutation(g.n), 0, 0
    lazy_from = int(seed == 3) * 40  # seed 3: the partition indexes are first built mid-backfill
    while True:
        assert up.counts() == {"old": g.n - done, "new": done}
        assert up.fraction == pytest.approx(done / g.n) and len(up) == g.n
        expected_new = {g.ids[r] for r in order[:done]}
        assert up.backfilled_ids() == expected_new
        assert up.pending_ids() == [i for i in g.ids if i not in expected_new]  # old-store order
        if done >= lazy_from:
            old_ids, new_ids = partition_ids(up.old_part, Q_old, g.n), partition_ids(up.new_part, Q_new, g.n)
            assert new_ids == expected_new and old_ids == set(g.ids) - expected_new
            assert not old_ids & new_ids
            # the partitions' top-k are the right neighbours with the right scores
            D, I = Searcher.for_upgrade(up).search((Q_new, Q_old), 7, "merged", NEW)
            D_ref, I_ref = brute_merged(g, expected_new, Q_new, Q_old, 7)
            assert I.tolist() == I_ref.tolist()
            np.testing.assert_allclose(D, D_ref, rtol=1e-4, atol=1e-4)
        if step % 4 == 2:  # another reader opening the folder now sees the same cut
            other = open_upgrade(up.path)
            assert other.counts() == up.counts() and other.backfilled_ids() == expected_new
            assert partition_ids(other.new_part, Q_new, g.n) == expected_new
        if done == g.n:
            break
        size = int(rng.integers(1, 25))
        backfill(up, g, order[done:done + size])
        done, step = min(g.n, done + size), step + 1
    assert step >= 6


# ---- refusals ---------------------------------------------------------------------------------------------

@pytest.fixture
def half(tmp_path):
    g = make_gallery(tmp_path, 60)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    backfill(up, g, range(0, 30, 2))  # the even items below 30
    return g, up


def _state(up: FaissUpgrade, g: Gallery) -> tuple:
    Q_old, Q_new = g.X_old[:2], g.X_new[:2]
    return (up.counts(), up.new.manifest.checksum, sorted(p.name for p in (up.path / "new").iterdir()),
            partition_ids(up.old_part, Q_old, g.n), partition_ids(up.new_part, Q_new, g.n))


def _bad(g: Gallery, case: str):
    X = g.X_new
    return {
        "model": (["doc-1", "doc-3"], X[[1, 3]], "other-model@9", ModelMismatchError, ["other-model@9", NEW]),
        "dim": (["doc-1", "doc-3"], np.ones((2, D_NEW + 2), np.float32), NEW, DimensionMismatchError,
                [f"dimension {D_NEW + 2}", str(D_NEW)]),
        "nan": (["doc-1", "doc-3"], np.where(np.arange(D_NEW) == 5, np.nan, X[[1, 3]]), NEW, InvalidVectorsError,
                ["NaN"]),
        "unknown": (["doc-1", "nope-7"], X[[1, 2]], NEW, UnknownIdError, ["nope-7", "old index"]),
        "twice-stored": (["doc-1", "doc-4"], X[[1, 4]], NEW, DuplicateIdError, ["doc-4"]),
        "twice-in-batch": (["doc-1", "doc-3", "doc-1"], X[[1, 3, 1]], NEW, DuplicateIdError, ["doc-1"]),
    }[case]


@pytest.mark.parametrize("case", ["model", "dim", "nan", "unknown", "twice-stored", "twice-in-batch"])
def test_add_backfilled_refusals_write_nothing(half, case):
    g, up = half
    before = _state(up, g)
    ids, X, model, exc, words = _bad(g, case)
    with pytest.raises(exc) as e:
        up.add_backfilled(ids, X, model)
    for w in words:
        assert w in str(e.value)
    assert _state(up, g) == before and _state(open_upgrade(up.path), g) == before
    backfill(up, g, [1, 3])  # still works afterwards
    assert up.counts() == {"old": g.n - 17, "new": 17}


# ---- create / open ----------------------------------------------------------------------------------------

def test_create_upgrade_refusals(tmp_path):
    g = make_gallery(tmp_path, 20)
    with pytest.raises(HotswapError, match="already built"):
        create_upgrade(tmp_path / "same", g.old, OLD, D_OLD)
    assert not (tmp_path / "same").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="open_upgrade"):
        create_upgrade(tmp_path / "busy", g.old, NEW, D_NEW)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="dim"):
        create_upgrade(tmp_path / "bad-dim", g.old, NEW, 0)
    assert not (tmp_path / "bad-dim" / "upgrade.json").exists()
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    with pytest.raises(FileExistsError):  # a started upgrade is not started twice
        create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    (tmp_path / "empty").mkdir()
    by_path = create_upgrade(tmp_path / "empty", str(g.old.path), NEW, D_NEW)  # empty folder, store by path
    for u in (up, by_path):
        assert (u.old_model_id, u.new_model_id, u.new.dim, u.metric) == (OLD, NEW, D_NEW, "ip")
        assert u.counts() == {"old": 20, "new": 0}


def test_open_upgrade_resumes_where_it_was(tmp_path):
    g = make_gallery(tmp_path, 40)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    backfill(up, g, [5, 9, 30])
    again = open_upgrade(tmp_path / "up")
    assert again.counts() == {"old": 37, "new": 3} and again.backfilled_ids() == {"doc-5", "doc-9", "doc-30"}
    backfill(again, g, [0])
    with pytest.raises(DuplicateIdError):
        backfill(again, g, [9])


def _swap_store(path: Path, model: str, dim: int, ids: list[str], X: np.ndarray | None = None) -> None:
    shutil.rmtree(path)
    s = create_store(path, model_id=model, dim=dim)
    if ids:
        s.add(ids, X if X is not None else unit_rows(np.random.default_rng(9), len(ids), dim), model)


@pytest.mark.parametrize("swap, exc, words", [
    ("new-model", ModelMismatchError, ["other-model@9", NEW, "new index"]),
    ("new-dim", ModelMismatchError, [f"dim {D_NEW + 8}", f"dim {D_NEW}", "new index"]),
    ("old-model", ModelMismatchError, ["other-model@9", OLD, "old index"]),
    ("old-lost-items", CorruptStoreError, ["lost 1 backfilled", "doc-0"]),
    ("no-upgrade-json", CorruptStoreError, ["create_upgrade"]),
])
def test_open_upgrade_refuses_a_swapped_index_or_one_that_lost_backfilled_items(tmp_path, swap, exc, words):
    g = make_gallery(tmp_path, 30)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    backfill(up, g, [0, 1])
    if swap == "new-model":
        _swap_store(up.path / "new", "other-model@9", D_NEW, ["doc-0", "doc-1"])
    elif swap == "new-dim":
        _swap_store(up.path / "new", NEW, D_NEW + 8, ["doc-0", "doc-1"])
    elif swap == "old-model":
        _swap_store(g.old.path, "other-model@9", D_OLD, g.ids, g.X_old)
    elif swap == "old-lost-items":  # a backfilled item vanished from the old index behind the upgrade's back
        _swap_store(g.old.path, OLD, D_OLD, g.ids[1:], g.X_old[1:])
    else:
        (up.path / "upgrade.json").unlink()
    with pytest.raises(exc) as e:
        open_upgrade(up.path)
    for w in words:
        assert w in str(e.value)


def test_open_upgrade_accepts_an_old_index_that_grew(tmp_path):
    g = make_gallery(tmp_path, 30)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    g.old.add(["late-1"], unit_rows(np.random.default_rng(4), 1, D_OLD), OLD)
    again = open_upgrade(up.path)
    assert again.counts() == {"old": 31, "new": 0} and "late-1" in again.pending_ids()


# ---- search modes over an upgrade -------------------------------------------------------------------------

@pytest.fixture
def mid(tmp_path):
    """40 % backfilled; new = old mapped exactly, so a procrustes adapter fitted on the pairs is exact."""
    g = make_gallery(tmp_path, 150, linked=True, seed=7)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    order = np.random.default_rng(7).permutation(g.n)
    backfill(up, g, order[:25])
    backfill(up, g, order[25:60])
    adapter = make_adapter("procrustes").fit(g.X_new[:100], g.X_old[:100], new_model_id=NEW, old_model_id=OLD)
    noise = np.random.default_rng(8)
    Q_old = g.X_old[:12] + 0.05 * noise.standard_normal((12, D_OLD)).astype(np.float32)
    Q_new = g.X_new[:12] + 0.05 * noise.standard_normal((12, D_NEW)).astype(np.float32)
    return g, up, adapter, Q_new, Q_old, set(g.ids[r] for r in order[:60])


def test_merged_is_rank_merge_of_the_partition_searches(mid):
    g, up, _, Q_new, Q_old, done = mid
    D, I = Searcher.for_upgrade(up).search((Q_new, Q_old), 10, "merged", NEW)
    D_ref, I_ref = rank_merge(*up.old_part.search(Q_old, 10, OLD), *up.new_part.search(Q_new, 10, NEW), 10)
    assert I.tolist() == I_ref.tolist()
    np.testing.assert_array_equal(D, D_ref)
    D_bf, I_bf = brute_merged(g, done, Q_new, Q_old, 10)
    assert I.tolist() == I_bf.tolist()
    np.testing.assert_allclose(D, D_bf, rtol=1e-5, atol=1e-5)
    assert set(I.ravel()) & done and set(I.ravel()) - done  # both partitions contribute


def test_adapted_merges_mapped_queries_on_old_with_new_queries_on_new(mid):
    g, up, adapter, Q_new, _, done = mid
    D, I = Searcher.for_upgrade(up, adapter=adapter).search(Q_new, 10, "adapted", NEW)
    mapped = adapter.transform(Q_new, model_id=NEW)
    D_ref, I_ref = rank_merge(*up.old_part.search(mapped, 10, OLD), *up.new_part.search(Q_new, 10, NEW), 10)
    assert I.tolist() == I_ref.tolist()
    np.testing.assert_array_equal(D, D_ref)
    # the adapter is exact here: every item, backfilled or not, finds itself first from its new vector
    _, I_self = Searcher.for_upgrade(up, adapter=adapter).search(g.X_new, 1, "adapted", NEW)
    assert I_self[:, 0].tolist() == g.ids
    with pytest.raises(HotswapError, match="adapter"):
        Searcher.for_upgrade(up).search(Q_new, 10, "adapted", NEW)


def test_cross_is_refused_when_dims_differ_and_merges_raw_queries_when_they_agree(mid, tmp_path):
    _, up, _, Q_new, _, _ = mid
    with pytest.raises(HotswapError, match=f"dims differ \\({D_NEW} vs {D_OLD}\\)"):
        Searcher.for_upgrade(up).search(Q_new, 5, "cross", NEW)
    g = make_gallery(tmp_path / "same-dim", 50, d_new=D_OLD, seed=11)
    same = create_upgrade(tmp_path / "same-dim" / "up", g.old, NEW, D_OLD)
    backfill(same, g, range(0, 50, 3))
    Q = g.X_new[:6]
    D, I = Searcher.for_upgrade(same).search(Q, 8, "cross", NEW)
    D_ref, I_ref = rank_merge(*same.old_part.search(Q, 8, OLD), *same.new_part.search(Q, 8, NEW), 8)
    assert I.tolist() == I_ref.tolist()
    np.testing.assert_array_equal(D, D_ref)
    assert I[[0, 3], 0].tolist() == ["doc-0", "doc-3"]  # backfilled: found by their own new vector
    with pytest.raises(ModelMismatchError, match=OLD):
        Searcher.for_upgrade(same).search(g.X_old[:2], 8, "cross", OLD)


def test_old_mode_searches_the_whole_old_index_and_new_mode_the_new_partition(mid):
    g, up, _, Q_new, Q_old, done = mid
    s = Searcher.for_upgrade(up)
    D, I = s.search(g.X_old, 1, "old", OLD)
    assert I[:, 0].tolist() == g.ids  # backfilled items are still in the old index
    D, I = s.search(Q_old, 20, "old", OLD)
    D_ref, I_ref = g.old.search(Q_old, 20, OLD)
    assert I.tolist() == I_ref.tolist()
    np.testing.assert_array_equal(D, D_ref)
    D, I = s.search(Q_new, 60, "new", NEW)
    assert all(set(row) == done for row in I.tolist())  # exactly the backfilled items
    D, I = s.search(Q_new, 70, "new", NEW)
    assert (I[:, 60:] == None).all() and (D[:, 60:] == -np.inf).all()  # noqa: E711 - object array comparison
    D_ref, I_ref = brute_merged(g, set(g.ids), Q_new, Q_old, 150)
    keep = [[i for i in row if i in done][:60] for row in I_ref.tolist()]
    assert I[:, :60].tolist() == keep


def test_other_models_queries_on_a_partition_raise_naming_both(mid):
    g, up, _, Q_new, Q_old, _ = mid
    with pytest.raises(ModelMismatchError) as e:
        up.old_part.search(Q_new[:, :D_OLD], 5, NEW)
    assert OLD in str(e.value) and NEW in str(e.value) and "old partition" in str(e.value)
    with pytest.raises(ModelMismatchError) as e:
        up.new_part.search(np.pad(Q_old, ((0, 0), (0, D_NEW - D_OLD))), 5, OLD)
    assert OLD in str(e.value) and NEW in str(e.value) and "new partition" in str(e.value)
    with pytest.raises(ModelMismatchError) as e:  # merged with the pair's model id wrong
        Searcher.for_upgrade(up).search((Q_new, Q_old), 5, "merged", OLD)
    assert OLD in str(e.value) and NEW in str(e.value)
    with pytest.raises(DimensionMismatchError):
        up.new_part.search(Q_old, 5, NEW)
    with pytest.raises(HotswapError, match="pair"):
        Searcher.for_upgrade(up).search(Q_new, 5, "merged", NEW)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_a_bad_k_is_refused_as_a_store_refuses_it(mid, k):
    _, up, _, Q_new, Q_old, _ = mid
    s = Searcher.for_upgrade(up)
    calls = [lambda: up.old_part.search(Q_old, k, OLD), lambda: up.new_part.search(Q_new, k, NEW),
             lambda: s.search((Q_new, Q_old), k, "merged", NEW), lambda: s.search(Q_new, k, "new", NEW)]
    for call in calls:
        with pytest.raises(ValueError, match="k must be a positive integer"):
            call()


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_merged_equals_the_old_system_at_0_and_the_new_system_at_100_percent(tmp_path, metric):
    g = make_gallery(tmp_path, 120, metric=metric, seed=12)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    new_system = create_store(tmp_path / "full-new", model_id=NEW, dim=D_NEW, metric=metric)
    new_system.add(g.ids, g.X_new, NEW)
    rng = np.random.default_rng(13)
    Q_old, Q_new = unit_rows(rng, 9, D_OLD), unit_rows(rng, 9, D_NEW)
    s = Searcher.for_upgrade(up)
    D, I = s.search((Q_new, Q_old), 15, "merged", NEW)
    D_ref, I_ref = g.old.search(Q_old, 15, OLD)
    assert I.tolist() == I_ref.tolist()
    np.testing.assert_allclose(D, D_ref, rtol=1e-5, atol=1e-5)
    order = rng.permutation(g.n)
    for a in range(0, g.n, 50):
        backfill(up, g, order[a:a + 50])
    D, I = s.search((Q_new, Q_old), 15, "merged", NEW)
    D_ref, I_ref = new_system.search(Q_new, 15, NEW)
    assert I.tolist() == I_ref.tolist()
    np.testing.assert_allclose(D, D_ref, rtol=1e-5, atol=1e-5)


# ---- concurrency ------------------------------------------------------------------------------------------

def test_a_thread_backfills_while_another_searches_merged(tmp_path):
    g = make_gallery(tmp_path, 400, seed=21)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    s = Searcher.for_upgrade(up)
    rng = np.random.default_rng(21)
    Q_old, Q_new = unit_rows(rng, 16, D_OLD), unit_rows(rng, 16, D_NEW)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            order, done = np.random.default_rng(22).permutation(g.n), 0
            while done < g.n:
                size = int(rng.integers(1, 30))
                backfill(up, g, order[done:done + size])
                done += size
                time.sleep(0.002)
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    t = threading.Thread(target=writer)
    seen, searches = set(), 0
    t.start()
    try:
        while t.is_alive() or searches == 0:
            D, I = s.search((Q_new, Q_old), 10, "merged", NEW)
            assert_valid_results(g, D, I, Q_new, Q_old)
            seen.add(up.counts()["new"])
            searches += 1
    finally:
        t.join()
    assert not errors, errors
    assert any(0 < c < g.n for c in seen), seen  # the searches did overlap the backfill
    assert up.counts() == {"old": 0, "new": g.n}
    _, I = s.search((Q_new, Q_old), 10, "merged", NEW)
    assert I.tolist() == brute_merged(g, set(g.ids), Q_new, Q_old, 10)[1].tolist()


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from hotswap.upgrade import open_upgrade

    up = open_upgrade(sys.argv[1])
    X = np.load(sys.argv[2])
    ids = up.old.ids
    rng = np.random.default_rng(31)
    order, done = rng.permutation(len(ids)), 0
    while done < len(ids):
        sel = order[done:done + int(rng.integers(1, 25))]
        up.add_backfilled([ids[r] for r in sel], X[sel], sys.argv[3])
        done += len(sel)
        time.sleep(0.02)
""")


def test_a_writer_process_backfills_while_this_one_refreshes_and_searches(tmp_path):
    g = make_gallery(tmp_path, 300, seed=30)
    up = create_upgrade(tmp_path / "up", g.old, NEW, D_NEW)
    np.save(tmp_path / "x_new.npy", g.X_new)  # row r is the new vector of old-store row r (ids[r])
    rng = np.random.default_rng(30)
    Q_old, Q_new = unit_rows(rng, 4, D_OLD), unit_rows(rng, 4, D_NEW)
    s = Searcher.for_upgrade(up)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(up.path), str(tmp_path / "x_new.npy"), NEW],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    snapshots, previous = [], set()
    try:
        while True:
            finished = proc.poll() is not None
            up.refresh()
            c = up.counts()
            assert c["old"] + c["new"] == g.n
            old_ids, new_ids = partition_ids(up.old_part, Q_old, g.n), partition_ids(up.new_part, Q_new, g.n)
            assert (len(old_ids), len(new_ids)) == (c["old"], c["new"])
            assert not old_ids & new_ids and old_ids | new_ids == set(g.ids)
            assert new_ids == set(up.new.ids) and new_ids >= previous  # the new partition only grows
            D, I = s.search((Q_new, Q_old), 10, "merged", NEW)
            assert_valid_results(g, D, I, Q_new, Q_old)
            D_bf, I_bf = brute_merged(g, new_ids, Q_new, Q_old, 10)  # a snapshot: exactly its cut's ranking
            assert I.tolist() == I_bf.tolist()
            snapshots.append(c["new"])
            previous = new_ids
            if finished:
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert any(0 < n < g.n for n in snapshots), snapshots  # snapshots taken mid-backfill
    up.refresh()
    assert up.counts() == {"old": 0, "new": g.n} and snapshots[-1] == g.n
    assert partition_ids(up.new_part, Q_new, g.n) == set(g.ids)
    assert open_store(up.path / "new").ids == up.new.ids


def test_create_upgrade_clears_a_start_cut_short_by_a_crash(tmp_path):
    old = create_store(tmp_path / "old", "old@1", 4)
    old.add(["a", "b"], np.eye(4, dtype=np.float32)[:2], "old@1")
    create_store(tmp_path / "up" / "new", "new@1", 4)  # what a crash before upgrade.json leaves
    up = create_upgrade(tmp_path / "up", old, "new@1", 4)
    assert (tmp_path / "up" / "upgrade.json").is_file() and len(up.new) == 0
    with pytest.raises(FileExistsError):  # a real upgrade is never cleared
        create_upgrade(tmp_path / "up", old, "new@1", 4)
