import gzip
import json

import pytest

from hotswap.data import load_dataset
from hotswap.errors import AssetMissingError


def _write_beir(folder, gz=False):
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "NumPy", "text": "array computing"}, {"_id": "d2", "text": "a game"},
              {"_id": "d3", "text": "fonts", "domain": "fonts"}]
    queries = [{"_id": "q1", "text": "arrays"}, {"_id": "q2", "text": "play"}, {"_id": "q3", "text": "train q"}]
    opener = (lambda p: gzip.open(str(p) + ".gz", "wt")) if gz else (lambda p: open(p, "w"))
    with opener(folder / "corpus.jsonl") as f:
        f.writelines(json.dumps(r) + "\n" for r in corpus)
    with opener(folder / "queries.jsonl") as f:
        f.writelines(json.dumps(r) + "\n" for r in queries)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n")
    (folder / "qrels" / "train.tsv").write_text("q3\td3\t1\n")


@pytest.mark.parametrize("gz", [False, True])
def test_beir_folder_round_trip(tmp_path, gz):
    _write_beir(tmp_path / "mine", gz)
    ds = load_dataset(tmp_path / "mine")
    assert ds.corpus["d1"] == "NumPy array computing"  # title joined as BEIR does
    assert ds.queries == {"q1": "arrays", "q2": "play"}
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    assert ds.train_queries == {"q3": "train q"} and ds.train_qrels == {"q3": {"d3": 1}}
    assert ds.domains == {"d3": "fonts"}


def test_beir_errors_name_the_problem(tmp_path):
    with pytest.raises(AssetMissingError, match="queries.jsonl"):
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "corpus.jsonl").write_text("")
        load_dataset(tmp_path / "x")
    _write_beir(tmp_path / "bad")
    (tmp_path / "bad" / "qrels" / "test.tsv").write_text("q1\tnope\t1\n")
    with pytest.raises(ValueError, match="not in the corpus"):
        load_dataset(tmp_path / "bad")
    _write_beir(tmp_path / "trunc")
    (tmp_path / "trunc" / "corpus.jsonl").write_text('{"_id": "d1", "text": "arr')
    with pytest.raises(ValueError, match="truncated"):
        load_dataset(tmp_path / "trunc")
    with pytest.raises(AssetMissingError, match="unknown dataset"):
        load_dataset("no-such-dataset")


def test_bundled_debian_is_real_and_split():
    ds = load_dataset("debian")
    assert len(ds.corpus) > 60_000 and len(ds.queries) > 20_000 and len(ds.train_queries) > 30_000
    assert not set(ds.queries) & set(ds.train_queries)  # train and test never share a query
    assert "python" in set(ds.domains.values()) and "games" in set(ds.domains.values())
    rel = ds.qrels[next(q for q in ds.queries if "Python" in ds.queries[q])]
    assert all(d in ds.corpus for d in rel)


def test_subset_is_seeded_and_consistent():
    a = load_dataset("debian", max_docs=500, max_train_queries=100, max_test_queries=50, seed=3)
    b = load_dataset("debian", max_docs=500, max_train_queries=100, max_test_queries=50, seed=3)
    c = load_dataset("debian", max_docs=500, seed=4)
    assert a.checksum == b.checksum != c.checksum
    assert len(a.corpus) == 500 and len(a.queries) == 50 and len(a.train_queries) == 100
    assert all(d in a.corpus for rel in (*a.qrels.values(), *a.train_qrels.values()) for d in rel)
    r = a.restrict(list(a.corpus)[:100])
    assert set(r.corpus) == set(list(a.corpus)[:100])
    assert all(rel and set(rel) <= set(r.corpus) for rel in r.qrels.values())
    with pytest.raises(ValueError, match="not in dataset"):
        a.restrict(["nope"])
