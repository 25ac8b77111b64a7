"""A collection keeps its texts (texts.sqlite): it is served, upgraded and restarted without any dataset."""

from __future__ import annotations

import json

import pytest

from hotswap.errors import CorruptStoreError, HotswapError
from hotswap.serve import SearchService
from hotswap.serve.docstore import DOCSTORE_NAME, DocStore
from tests.serve.toy import MODELS, NEW, corpus, create, loader

N = 50


@pytest.mark.parametrize("backend", ["faiss", "qdrant"])
def test_served_and_upgraded_from_its_own_texts(tmp_path, backend):
    create(tmp_path / "col", N, backend=backend)
    texts = DocStore(tmp_path / "col" / DOCSTORE_NAME)
    assert dict(texts) == corpus(N) and len(texts) == N and "doc-0003" in texts and "nope" not in texts
    assert texts.get_many(["doc-0001", "nope"]) == {"doc-0001": "text of doc 1"}
    texts.close()
    svc = SearchService(tmp_path / "col", models=MODELS, encoder_loader=loader(), batch_size=8)  # no corpus
    assert svc.search(["text of doc 4"], 1)[2][0, 0] == "doc-0004"
    svc.start_upgrade(NEW, batch_size=8)
    svc.thread.join()
    assert svc.commit()["version"] == 2
    svc.close()
    again = SearchService(tmp_path / "col", models=MODELS, encoder_loader=loader(), batch_size=8)
    assert again.search(["text of doc 9"], 1)[2][0, 0] == "doc-0009" and again.status()["version"] == 2
    again.close()


def test_a_collection_without_texts_needs_its_dataset(tmp_path):
    create(tmp_path / "col", N)
    (tmp_path / "col" / DOCSTORE_NAME).unlink()
    with pytest.raises(HotswapError, match="keeps no texts"):
        SearchService(tmp_path / "col", models=MODELS, encoder_loader=loader())
    svc = SearchService(tmp_path / "col", corpus(N), models=MODELS, encoder_loader=loader())
    assert svc.search(["text of doc 2"], 1)[2][0, 0] == "doc-0002"
    svc.close()
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CorruptStoreError, match="not a readable docstore"):
        DocStore(tmp_path / "bad.sqlite")["x"]


def test_serve_reads_a_jsonl_corpus(tmp_path):
    from hotswap.cli.serve import _corpus

    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "text": "alpha"}, {"_id": "b", "title": "Beta",
                                                                                            "text": "bravo"}]) + "\n")
    assert _corpus(str(path), None) == {"a": "alpha", "b": "Beta bravo"}
    path.write_text('{"id": "a"}\n')
    with pytest.raises(HotswapError, match="line 1 needs an 'id' and a non-empty 'text'"):
        _corpus(str(path), None)
