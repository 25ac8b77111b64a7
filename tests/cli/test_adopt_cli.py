"""``hotswap adopt`` on a pgvector table of real Debian texts embedded by the static model: adopted in place,
refused for a model of another width and for vectors that are not the named model's, then upgraded to minilm
in place by ``hotswap backfill --dataset store`` (texts read from the table)."""

from __future__ import annotations

import pytest

from hotswap.cli import app
from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.store import open_store
from hotswap.upgrade import open_upgrade
from tests.cli.helpers import ok as _ok, runner
from tests.conftest import postgres_uri

pytestmark = pytest.mark.realmodel
pytest.importorskip("pgserver")
N = 40


@pytest.fixture
def docs_table(pg_server_uri, tmp_path):
    """``(uri, connection)``: table ``docs``-like (text ids, body, embedding vector(256)) of N Debian documents."""
    import psycopg
    from pgvector.psycopg import register_vector

    corpus = load_dataset("debian").corpus
    ids = sorted(corpus)[:N]
    X = load_encoder("static").encode([corpus[i] for i in ids])
    uri = postgres_uri(pg_server_uri, tmp_path)
    name = uri.rsplit("table=", 1)[1]
    conn = psycopg.connect(pg_server_uri, autocommit=True)
    register_vector(conn)
    conn.execute(f"CREATE TABLE {name} (pkg text PRIMARY KEY, body text NOT NULL, embedding vector(256))")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s)", [(i, corpus[i], x) for i, x in zip(ids, X)])
    yield uri, name, conn
    conn.close()


ARGS = ["--vector-field", "embedding", "--text-field", "body", "--id-field", "pkg"]


def test_adopt_refuses_wrong_models_then_adopts_and_upgrades_in_place(docs_table, tmp_path):
    uri, name, conn = docs_table
    res = runner.invoke(app, ["adopt", "--store", uri, "--model", "minilm", *ARGS])
    assert res.exit_code == 2 and "256-d vectors but model minilm makes 384-d" in " ".join(res.output.split())
    conn.execute(f"UPDATE {name} SET body = 'a package about ' || pkg")  # texts no longer the embedded ones
    res = runner.invoke(app, ["adopt", "--store", uri, "--model", "static", *ARGS])
    assert res.exit_code == 2 and "not model static's" in " ".join(res.output.split())
    corpus = load_dataset("debian").corpus
    with conn.cursor() as cur:  # the embedded texts back
        cur.executemany(f"UPDATE {name} SET body = %s WHERE pkg = %s", [(corpus[i], i) for i in sorted(corpus)[:N]])
    out = " ".join(_ok(["adopt", "--store", uri, "--model", "static", *ARGS]).split())
    assert f"{N}" in out and "1.0000" in out and "next: hotswap backfill" in out
    up = tmp_path / "up"
    _ok(["backfill", "--index", uri, "--upgrade", str(up), "--new", "minilm", "--dataset", "store",
         "--batch-size", "16"])
    done = open_upgrade(up)
    try:
        assert done.counts() == {"old": 0, "new": N} and done.new.dim == 384
    finally:
        done.close()
    with open_store(uri) as old:
        assert old.model_id.startswith("static@") and len(old) == N  # still served until a commit
    assert conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == N
