"""The pg backend beyond the shared contract: every write one transaction with the state row (so a process
killed mid-write leaves nothing to recover), state in the database, stores on a user's server by
``postgres://...?table=NAME``, and an upgrade's commit and rollback as one transaction each."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from hotswap.errors import DuplicateIdError, InvalidVectorsError, ModelMismatchError, UnknownIdError
from hotswap.store import create_store, drop_model, open_store, serve_model
from hotswap.upgrade import create_upgrade, open_upgrade
from tests.conftest import postgres_uri
from tests.store.test_db_writes import IDS, MODEL, OTHER, assert_holds, rand, search_all

pytest.importorskip("pgserver")


@pytest.fixture(params=["pg", "postgres"])
def uri(request, tmp_path) -> str:
    if request.param == "pg":
        return f"pg://{tmp_path / 's'}"
    return postgres_uri(request.getfixturevalue("pg_server_uri"), tmp_path)


@pytest.fixture
def store(uri):
    s = create_store(uri, MODEL, 8)
    s.add(IDS, rand(len(IDS), seed=0), MODEL)
    yield s
    s.close()


X = rand(len(IDS), seed=0)


def test_upserts_and_deletes_keep_ids_counts_and_vectors(store, uri):
    Y = rand(3, seed=1)
    assert store.upsert(["new-a", IDS[0], "new-b"], Y, MODEL) == 3
    expected = np.vstack([Y[1:2], X[1:], Y[[0, 2]]])
    assert_holds(store, [*IDS, "new-a", "new-b"], expected)  # replaced in place, new ones appended
    assert store.delete([IDS[3], "unknown", IDS[3]]) == 1 and len(store) == 11
    keep = [r for r in range(12) if r != 3]
    assert_holds(store, [[*IDS, "new-a", "new-b"][r] for r in keep], expected[keep])
    with pytest.raises(UnknownIdError, match=IDS[3]):
        store.get([IDS[3]])
    store.close()
    again = open_store(uri)
    assert_holds(again, [[*IDS, "new-a", "new-b"][r] for r in keep], expected[keep])
    again.close()


@pytest.mark.parametrize("bad", ["model", "dup", "nan"])
def test_refused_writes_write_nothing(store, bad):
    args = {"model": (["n-1"], rand(1, 2), OTHER), "dup": ([IDS[0], "n-1", IDS[0]], rand(3, 2), MODEL),
            "nan": (["n-1", IDS[0]], np.array([[0.5] * 8, [np.nan] * 8]), MODEL)}[bad]
    with pytest.raises((ModelMismatchError, DuplicateIdError, InvalidVectorsError)):
        store.upsert(*args)
    with pytest.raises(DuplicateIdError, match=IDS[1]):
        store.add([IDS[1]], rand(1, 3), MODEL)
    assert_holds(store, IDS, X)


def test_other_views_see_each_write_at_once(store, uri):
    other = open_store(uri)
    try:
        assert other.ids == IDS
        store.upsert(["new-a"], rand(1, 4), MODEL)
        store.delete([IDS[2]])
        assert "new-a" in other and IDS[2] not in other and len(other) == 10
        np.testing.assert_array_equal(other.get(["new-a"]), rand(1, 4))
        other.add(["new-b"], rand(1, 5), MODEL)
        assert store.ids[-2:] == ["new-a", "new-b"] and len(store) == 11
    finally:
        other.close()


def test_state_lives_in_the_database_not_in_a_file(store, uri, tmp_path):
    assert not list(tmp_path.rglob("hotswap-store.json"))
    row = store.client.conn.execute("SELECT state FROM hotswap_store WHERE name = %s",
                                    (store.target.name,)).fetchone()[0]
    assert row["serving"] == MODEL and row["models"][0]["count"] == 10 and row["backend"] == "postgres"


def test_two_stores_share_one_server_by_table_name(pg_server_uri, tmp_path):
    a = create_store(postgres_uri(pg_server_uri, tmp_path / "a"), MODEL, 8)
    b = create_store(postgres_uri(pg_server_uri, tmp_path / "b"), OTHER, 4)
    try:
        a.add(IDS[:3], X[:3], MODEL)
        b.add(IDS[:2], rand(2, 6, dim=4), OTHER)
        assert (len(a), len(b), a.table != b.table) == (3, 2, True)
        with pytest.raises(FileExistsError, match="already exists"):
            create_store(a.uri, MODEL, 8)
    finally:
        a.close()
        b.close()


def test_a_server_uri_needs_a_table_and_a_reachable_server(pg_server_uri):
    with pytest.raises(ValueError, match=r"\?table=NAME"):
        open_store(pg_server_uri.replace("postgresql://", "postgres://"))
    with pytest.raises(ValueError, match=r"\?table=NAME"):
        open_store(f"{pg_server_uri}&table=bad-name;drop")
    with pytest.raises(ConnectionError, match="cannot connect"):
        open_store("postgres://nobody@127.0.0.1:1/none?table=docs&connect_timeout=2")


def _kill_mid_add(uri: str, n: int, model: str = MODEL) -> None:
    """Run an add of ``n`` rows in a child and SIGKILL it while its transaction is still writing."""
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from hotswap.store import open_store
        s = open_store({uri!r}, {model!r})
        X = np.random.default_rng(1).standard_normal(({n}, 8)).astype(np.float32)
        print("go", flush=True)
        s.add([f"bulk-{{i}}" for i in range({n})], X, {model!r})
        print("done", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == -signal.SIGKILL and "done" not in out, "the add finished before the kill"


def test_sigkill_mid_add_leaves_the_store_as_it_was(store, uri):
    store.close()
    _kill_mid_add(uri, 400_000)
    again = open_store(uri)
    try:
        again.verify()  # rows and the state row agree: nothing to recover
        assert_holds(again, IDS, X)
        again.add(["after"], rand(1, 7), MODEL)
        assert len(again) == 11
    finally:
        again.close()


def test_upgrade_sigkill_mid_batch_then_commit_and_rollback(store, uri, tmp_path):
    up = create_upgrade(tmp_path / "up", store, OTHER, 8)
    up.add_backfilled(IDS[:4], rand(4, 8), OTHER)
    up.close()
    _kill_mid_add(uri, 400_000, OTHER)  # a batch of the new model killed before its commit
    again = open_upgrade(tmp_path / "up")
    try:
        assert again.counts() == {"old": 6, "new": 4} and again.new.ids == IDS[:4]
        again.add_backfilled(IDS[4:], rand(6, 9), OTHER)
        serve_model(again.new, OTHER)  # the commit: one transaction
        assert open_store(uri).model_id == OTHER
        with pytest.raises(ValueError, match="serving model"):
            drop_model(uri, OTHER)
        serve_model(uri, MODEL)
        assert drop_model(uri, OTHER) and open_store(uri).model_id == MODEL  # the rollback drops the table
    finally:
        again.close()
    with pytest.raises(ModelMismatchError, match=OTHER):
        open_store(uri, OTHER)


def test_hnsw_partition_search_is_filtered_in_sql(uri, tmp_path):
    s = create_store(uri, MODEL, 8, index="hnsw")
    up = None
    try:
        s.add(IDS, X, MODEL)
        up = create_upgrade(tmp_path / "up", s, OTHER, 8)
        up.add_backfilled(IDS[:7], X[:7], OTHER)
        I = search_all(s, X[:1])[1]
        assert set(I[0][:10]) == set(IDS)
        D, I = up.search_partition("old", X, 5, MODEL)
        assert {i for i in I.ravel() if i is not None} == set(IDS[7:]) and (I[:, 3:] == None).all()  # noqa: E711
    finally:
        if up is not None:
            up.close()
        s.close()
