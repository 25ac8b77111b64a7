"""``hotswap serve`` refuses a collection it cannot serve with exit code 2 and a message naming the problem."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.cli.helpers import runner
from hotswap.cli import app
from tests.serve.toy import create


def serve(store: str) -> tuple[int, str]:
    res = runner.invoke(app, ["serve", "--store", store])
    return res.exit_code, " ".join(res.output.split())  # rich wraps long lines


def test_corrupt_state_file_is_a_clear_startup_error(tmp_path):
    create(tmp_path / "col", 20)
    (tmp_path / "col" / "serving.json").write_text('{"format_version": 1, "vers')
    code, out = serve(str(tmp_path / "col"))
    assert code == 2 and "cannot serve" in out and "cannot be read as JSON" in out


def test_missing_collection_and_wrong_scheme(tmp_path):
    code, out = serve(str(tmp_path / "nowhere"))
    assert code == 2 and "has no collection state" in out and "--model NAME" in out
    code, out = serve(f"redis://{tmp_path}")
    assert code == 2 and "redis" in out
    create(tmp_path / "col", 20)  # a faiss collection served as qdrant://
    code, out = serve(f"qdrant://{tmp_path / 'col'}")
    assert code == 2 and "is a faiss collection, not qdrant" in out


def test_a_faiss_index_served_as_another_backend_is_refused_unchanged(tmp_path):
    from tests.serve.test_adopt_index import plain_index, snapshot

    plain_index(tmp_path / "idx", 20)
    before = snapshot(tmp_path / "idx")
    code, out = serve(f"qdrant://{tmp_path / 'idx'}")
    assert code == 2 and "is a FAISS index; serve it as faiss://" in out
    assert snapshot(tmp_path / "idx") == before


@pytest.mark.realmodel
def test_serve_adopts_an_encoded_index_in_place_without_re_encoding(tmp_path, monkeypatch):
    import uvicorn
    from fastapi.testclient import TestClient

    from tests.cli.helpers import ok
    from tests.serve.test_adopt_index import snapshot, vectors

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    idx = tmp_path / "idx"
    ok(["encode", "--model", "static", "--index", str(idx), "--dataset", "debian", "--max-docs", "300"])
    ids, X = vectors(f"faiss://{idx}")
    before = snapshot(idx)
    # refusals first: they leave the index as it was
    code, out = serve_args(["--store", str(idx), "--dataset", "foldoc"])
    assert code == 2 and re.search(r"\d+ of the 300 vectors .* have no text in dataset foldoc", out)
    assert "--dataset" in out
    code, out = serve_args(["--store", str(idx), "--model", "minilm"])
    assert code == 2 and "was built with static@" in out
    assert snapshot(idx) == before and not (idx / "serving.json").exists()
    code, out = serve_args(["--store", str(idx)])
    assert code == 0, out
    assert "adopted 300 vectors of static@" in out and "without re-encoding" in out
    assert "texts from dataset debian, as the index records" in out
    state = json.loads((idx / "serving.json").read_text())
    assert state["model"] == "static" and state["index"] == "v1"
    ids2, X2 = vectors(f"faiss://{idx / 'v1'}")
    assert ids2 == ids and np.array_equal(X2, X)
    with TestClient(apps[-1]) as c:
        hit = c.post("/search", json={"query": "python web framework", "k": 3}).json()["results"][0][0]
        assert hit["id"] in ids and hit["text"]
    code, out = serve_args(["--store", str(idx)])  # now a collection: served as it is
    assert code == 0 and "adopted" not in out and len(apps) == 2


def serve_args(args: list[str]) -> tuple[int, str]:
    res = runner.invoke(app, ["serve", *args])
    return res.exit_code, " ".join(res.output.split())


def test_creating_a_collection_names_its_dataset(tmp_path):
    res = runner.invoke(app, ["serve", "--store", str(tmp_path / "col"), "--model", "static"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "needs --dataset" in out and not (tmp_path / "col").exists()
