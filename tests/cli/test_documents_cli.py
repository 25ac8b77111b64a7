"""``hotswap upsert`` / ``hotswap delete`` on a collection of real Debian texts encoded by the static model."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from hotswap.cli import app
from tests.cli.helpers import ok, runner

pytestmark = pytest.mark.realmodel


@pytest.fixture
def collection(tmp_path):
    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.serve import Collection

    corpus = load_dataset("debian", max_docs=80).corpus
    Collection.create(tmp_path / "col", "static", load_encoder("static"), corpus)
    return tmp_path / "col", corpus


def test_upsert_and_delete_reach_texts_and_index(collection, tmp_path):
    from hotswap.encoders import load_encoder
    from hotswap.serve import SearchService

    col, corpus = collection
    first, second = list(corpus)[:2]
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in [
        {"id": first, "text": corpus[second]}, {"_id": "added", "title": "Added", "text": "a package to add"}]))
    assert "upserted 2 documents; the collection holds 81" in ok(["upsert", "--store", str(col), str(docs)])
    assert "upserted 1" in ok(["upsert", "--store", str(col), "--id", "one", "--text", "one more package"])
    out = ok(["delete", "--store", str(col), second, "never-there"])
    assert "deleted 1 of 2 ids; the collection holds 81" in out
    service = SearchService(col)
    try:
        assert service.get_document("added")["text"] == "Added a package to add"
        assert second not in service.index and service.items == 81
        static = load_encoder("static")
        np.testing.assert_allclose(service.index.get([first]), static.encode([corpus[second]]), atol=1e-5)
    finally:
        service.close()


def flat(res) -> str:
    return " ".join(res.output.split())  # rich wraps long lines


def test_refusals_name_the_problem(collection, tmp_path):
    col, _ = collection
    res = runner.invoke(app, ["upsert", "--store", str(col)])
    assert res.exit_code == 2 and "JSONL file, or --id and --text" in flat(res)
    res = runner.invoke(app, ["delete", "--store", str(tmp_path / "nowhere"), "x"])
    assert res.exit_code == 2 and "is not a collection" in flat(res)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from hotswap.serve import Collection; "
                               "lock = Collection(sys.argv[1]).lock(); print('held', flush=True); time.sleep(60)",
                               str(col)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = runner.invoke(app, ["delete", "--store", str(col), "x"])
        assert res.exit_code == 2 and "another process is serving or writing" in flat(res)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert "deleted 0 of 1" in ok(["delete", "--store", str(col), "x"])  # the lock went with the process
