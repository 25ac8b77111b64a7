"""The four bundled text sources built by ``scripts/build_text_sources.py`` (FOLDOC, Jargon File, GCIDE,
Python docs): real, offline, split, short queries for long documents."""

import json
from functools import cache

import pytest

from hotswap.data import bundled_path, load_dataset

SOURCES = ("foldoc", "jargon", "gcide", "pydoc")
LICENCE = {"foldoc": "GFDL-1.1+", "jargon": "public domain", "gcide": "GPL-2+", "pydoc": "PSF-2.0"}
PACKAGE = {"foldoc": "dict-foldoc", "jargon": "dict-jargon", "gcide": "dict-gcide", "pydoc": "python3.11-doc"}


@cache
def _load(name):
    return load_dataset(name)


def _relevant(ds, query_text):
    """``(split, [document texts])`` of the query with this exact text, in whichever split it fell."""
    for split, queries, qrels in (("test", ds.queries, ds.qrels), ("train", ds.train_queries, ds.train_qrels)):
        for qid, text in queries.items():
            if text == query_text:
                return split, [ds.corpus[d] for d in qrels[qid]]
    raise AssertionError(f"{ds.name}: no query {query_text!r}")


def test_sources_are_registered_by_name():
    assert all(load_dataset(name).name == name for name in SOURCES)


@pytest.mark.parametrize("name", SOURCES)
def test_source_is_split_and_consistent(name):
    ds = _load(name)
    assert ds.name == name
    assert len(ds.queries) >= 800 and len(ds.train_queries) >= 1_200 and len(ds.corpus) >= 2_000
    assert not set(ds.queries) & set(ds.train_queries)  # train and test never share a query
    assert not set(ds.queries.values()) & set(ds.train_queries.values())  # nor a query text
    for qrels, queries in ((ds.qrels, ds.queries), (ds.train_qrels, ds.train_queries)):
        assert set(qrels) == set(queries)
        assert all(1 <= len(rel) <= 5 and all(d in ds.corpus for d in rel) for rel in qrels.values())
    q_words = sum(len(t.split()) for t in ds.queries.values()) / len(ds.queries)
    d_words = sum(len(t.split()) for t in ds.corpus.values()) / len(ds.corpus)
    assert q_words <= 15 and d_words >= 40 and d_words >= 4 * q_words  # short queries, long documents
    assert min(len(t.split()) for t in ds.corpus.values()) >= 8
    meta = json.loads((bundled_path(name) / "meta.json").read_text())
    assert meta["package"] == PACKAGE[name] and meta["version"] and meta["licence"].startswith(LICENCE[name])
    assert meta["n_docs"] == len(ds.corpus)
    assert meta["n_queries"] == {"train": len(ds.train_queries), "test": len(ds.queries)}


def test_foldoc_and_jargon_define_real_terms():
    foldoc, jargon = _load("foldoc"), _load("jargon")
    _, docs = _relevant(foldoc, "spaghetti code")
    assert any("tangled" in d and "control structure" in d for d in docs)
    assert not any(d.startswith("spaghetti code") for d in docs)  # the headword line is not in the document
    assert "programming" in set(foldoc.domains.values()) and "hardware" in set(foldoc.domains.values())
    # Debian's additions (Dictionary.debian, verbatim-copies-only licence) and FOLDOC's preamble are left out
    assert not any(d.startswith(("A member of the Debian project", "A Debian package without"))
                   or "Permission is granted" in d for d in foldoc.corpus.values())
    _, docs = _relevant(jargon, "daemon")
    assert any("Maxwell's Demon" in d for d in docs)


def test_gcide_and_pydoc_pair_real_content():
    gcide, pydoc = _load("gcide"), _load("pydoc")
    _, docs = _relevant(gcide, "Teakettle")
    assert docs == ["A kettle in which water is boiled for making tea, coffee, etc."]  # header + [1913 Webster] gone
    assert not any("[1913 Webster]" in d or "\\" in d[:40] for d in gcide.corpus.values())
    _, docs = _relevant(pydoc, "Return the absolute value of a number.")
    assert len(docs) == 1 and docs[0].startswith("abs(x) ") and "complex number" in docs[0]
    assert {"library", "c-api"} <= set(pydoc.domains.values())
