"""Adopting a pgvector table hotswap did not create: registered in place after a model check that refuses
another model's vectors and another width, then upgraded in place (new model's table beside it, backfilled
from the table's own texts, committed) while the user's table stays exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.errors import CorruptStoreError, DimensionMismatchError, ModelMismatchError
from hotswap.store import open_store, serve_model
from hotswap.store.adopt import adopt_store, model_check, text_fetch
from hotswap.upgrade import create_upgrade
from tests.backfill.toy import ToyEncoder
from tests.conftest import postgres_uri

pytest.importorskip("pgserver")

N = 50
OLD = ToyEncoder(dim=8, name="toy-old")
TEXTS = [f"document number {i} about topic {i % 7}" for i in range(N)]


@pytest.fixture
def table(pg_server_uri, tmp_path):
    """A user's table: bigint ids, a text column, an 8-d embedding column with its own HNSW index."""
    import psycopg
    from pgvector.psycopg import register_vector

    uri = postgres_uri(pg_server_uri, tmp_path)
    name = uri.rsplit("table=", 1)[1]
    conn = psycopg.connect(pg_server_uri, autocommit=True)
    register_vector(conn)
    conn.execute(f"CREATE TABLE {name} (doc_id bigint PRIMARY KEY, body text, embedding vector(8), extra int)")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, 1)",
                        [(i, t, v) for i, (t, v) in enumerate(zip(TEXTS, OLD.encode(TEXTS)))])
    conn.execute(f"CREATE INDEX ON {name} USING hnsw (embedding vector_ip_ops)")
    yield uri, name, conn
    conn.close()


def _adopt(uri: str, encoder: ToyEncoder, **kw):
    return adopt_store(uri, OLD.id, "embedding", "body", "doc_id",
                       check=model_check(encoder.name, encoder.dim, encoder.encode, sample=16), **kw)


def _snapshot(conn, name: str) -> list:
    return conn.execute(f"SELECT doc_id, body, embedding::text, extra FROM {name} ORDER BY doc_id").fetchall()


def test_adopted_table_is_a_store_in_place(table):
    uri, name, conn = table
    before = _snapshot(conn, name)
    with _adopt(uri, OLD) as store:
        assert (len(store), store.dim, store.index, store.model_id) == (N, 8, "hnsw", OLD.id)
        assert sorted(store.ids, key=int) == [str(i) for i in range(N)]
        np.testing.assert_allclose(store.get(["3"]), OLD.encode(TEXTS[3:4]), atol=1e-6)
        assert store.texts(["3", "4"]) == {"3": TEXTS[3], "4": TEXTS[4]}
        D, I = store.search(OLD.encode(TEXTS[10:11]), 3, OLD.id)
        assert I[0, 0] == "10" and D[0, 0] == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(FileExistsError, match="already registered"):
            _adopt(uri, OLD)
    assert _snapshot(conn, name) == before  # nothing copied, nothing altered


def test_another_models_vectors_are_refused_and_nothing_is_registered(table):
    uri, _, _ = table
    other = ToyEncoder(dim=8, name="toy-other")
    with pytest.raises(ModelMismatchError, match=r"not model toy-other's.*median cosine"):
        _adopt(uri, other)
    with pytest.raises(DimensionMismatchError, match=r"8-d vectors but model toy-wide makes 12-d"):
        _adopt(uri, ToyEncoder(dim=12, name="toy-wide"))
    with pytest.raises(CorruptStoreError, match="no hotswap store"):
        open_store(uri)


def test_bad_tables_are_refused_naming_the_problem(table):
    uri, name, conn = table
    with pytest.raises(ValueError, match="no column 'vec'"):
        adopt_store(uri, OLD.id, "vec", "body", "doc_id")
    with pytest.raises(ValueError, match="is text, not a pgvector"):
        adopt_store(uri, OLD.id, "body", "body", "doc_id")
    with pytest.raises(ValueError, match="repeated or NULL ids"):
        adopt_store(uri, OLD.id, "embedding", "body", "extra")
    with pytest.raises(FileNotFoundError, match="no table"):
        adopt_store(uri.replace(name, name + "_missing"), OLD.id, "embedding", "body", "doc_id")


def test_adopted_table_is_upgraded_in_place(table, tmp_path):
    uri, name, conn = table
    before = _snapshot(conn, name)
    new = ToyEncoder(dim=12, name="toy-new")
    with _adopt(uri, OLD) as store:
        up = create_upgrade(tmp_path / "up", store, new.id, new.dim)
        fetch = text_fetch(store)
        plan_backfill(up, "random", new, fetch, seed=0)
        status = BackfillRunner(up, fetch, LocalExecutor(new), batch_size=16).run()
        assert status.done == N and up.counts() == {"old": 0, "new": N}
        np.testing.assert_allclose(up.new.get(["7"]), new.encode(TEXTS[7:8]), atol=1e-6)  # from the table's text
        D, I = up.search_partition("new", new.encode(TEXTS[5:6]), 1, new.id)
        assert I[0, 0] == "5"
        serve_model(up.new, new.id)
        up.close()
    with open_store(uri) as served:
        assert served.model_id == new.id and len(served) == N and served.table != name
    assert _snapshot(conn, name) == before  # the user's table is untouched by the whole upgrade
