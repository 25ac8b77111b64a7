"""``plan_upgrade`` end to end on a synthetic collection (unit test: two toy bag-of-words encoders, so that
the new model is the better one by construction); it reads the index and never writes to it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from hotswap.errors import HotswapError
from hotswap.plan import plan_upgrade
from hotswap.store import create_store

VOCAB = 400


class _Bow:
    """Texts of words ``w<k>`` -> a fixed random projection of their word counts (plus noise words for the
    weaker model), L2-normalised. A stand-in encoder for unit tests only."""

    def __init__(self, model_id: str, dim: int, seed: int, keep: float) -> None:
        rng = np.random.default_rng(seed)
        self.id, self.name, self.dim = model_id, model_id.split("@")[0], dim
        self.P = rng.normal(size=(VOCAB, dim)).astype(np.float32)
        self.P[rng.random(VOCAB) > keep] = 0.0  # the weaker model ignores some words

    def encode(self, texts, batch_size=64, show_progress=None):
        X = np.zeros((len(texts), VOCAB), np.float32)
        for r, t in enumerate(texts):
            for w in t.split():
                X[r, int(w[1:]) % VOCAB] += 1.0
        Y = X @ self.P
        return Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-9)


def _corpus(n_docs=300, seed=0):
    rng = np.random.default_rng(seed)
    topics = [rng.choice(VOCAB, size=25, replace=False) for _ in range(30)]
    docs = {f"d{i}": " ".join(f"w{w}" for w in rng.choice(topics[i % 30], size=20)) for i in range(n_docs)}
    queries = {f"q{i}": " ".join(f"w{w}" for w in rng.choice(topics[i % 30], size=4)) for i in range(120)}
    qrels = {f"q{i}": {f"d{j}": 1 for j in range(i % 30, n_docs, 30)} for i in range(120)}
    return docs, queries, qrels


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTSWAP_HOME", str(tmp_path / "home"))  # the embedding cache
    docs, queries, qrels = _corpus()
    old, new = _Bow("old@1", 16, 1, keep=0.5), _Bow("new@1", 32, 2, keep=1.0)
    ids = sorted(docs)
    store = create_store(tmp_path / "index", old.id, old.dim)
    store.add(ids, old.encode([docs[i] for i in ids]), old.id)
    yield store, old, new, docs, queries, qrels
    store.close()


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_label_free_plan_scores_every_path_and_leaves_the_index_alone(world):
    store, old, new, docs, queries, _ = world
    before = _digest(Path(store.path))
    plan = plan_upgrade(store, old, new, lambda ids: [docs[i] for i in ids], queries=list(queries.values()),
                        sample=200, seed=0)
    rows = {r["path"]: r for r in plan.paths}
    assert plan.sample == 200 and plan.collection_size == 300 and plan.queries == "log"
    assert rows["new"]["arr@10"] == 1.0 and rows["old"]["arr@10"] < 1.0
    assert {"procrustes", "affine", "cascade@20", "cascade@50", "cascade@100", "merged@50%"} <= set(rows)
    assert "drift" not in rows  # 32 -> 16 dims: a drift adapter needs equal dims
    assert rows["cascade@100"]["arr@10"] >= rows["cascade@20"]["arr@10"]
    assert rows["cascade@50 at 75%"]["encodes_per_query"] < rows["cascade@50"]["encodes_per_query"] == 50
    assert all(r["ndcg@10"] is None for r in plan.paths) and plan.spearman is None
    assert plan.recommendation == plan.recommendation_label_free and plan.recommendation != "stay"
    assert plan.backfill_hours > 0 and plan.encode_rate > 0 and plan.not_measurable
    assert _digest(Path(store.path)) == before


def test_with_qrels_it_ranks_by_ndcg_and_reports_the_gain(world):
    store, old, new, docs, queries, qrels = world
    test = {q: qrels[q] for q in list(qrels)[:60]}
    log = [queries[q] for q in list(queries)[60:]]
    plan = plan_upgrade(store, old, new, lambda ids: [docs[i] for i in ids], queries=log, qrels=test,
                        qrel_queries=queries, sample=100, seed=1)
    rows = {r["path"]: r for r in plan.paths}
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in plan.paths)
    assert plan.gain_new_over_old == pytest.approx(rows["new"]["ndcg@10"] - rows["old"]["ndcg@10"])
    assert plan.gain_new_over_old > 0  # the new toy model sees every word
    ends = [r for r in plan.paths if r["kind"] != "curve"]
    assert plan.best_by_qrels == max(ends, key=lambda r: r["ndcg@10"])["path"]
    assert plan.spearman is not None and -1.0 <= plan.spearman <= 1.0


def test_without_a_log_spans_of_the_texts_are_the_queries(world):
    store, old, new, docs, _, _ = world
    plan = plan_upgrade(store, old, new, lambda ids: [docs[i] for i in ids], sample=150)
    assert plan.queries == "known-item spans" and plan.n_score_queries > 0


def test_bad_inputs_are_refused_before_encoding(world):
    store, old, new, docs, queries, qrels = world
    texts = lambda ids: [docs[i] for i in ids]  # noqa: E731
    with pytest.raises(HotswapError, match="built with old@1"):
        plan_upgrade(store, new, old, texts)
    with pytest.raises(HotswapError, match="texts of their queries"):
        plan_upgrade(store, old, new, texts, qrels=qrels)
    with pytest.raises(HotswapError, match="no qrels query"):
        plan_upgrade(store, old, new, texts, qrels={"x": {"nope": 1}}, qrel_queries={"x": "w1 w2"})


@pytest.mark.parametrize("backend", ["qdrant", "milvus", "pg"])
def test_every_backend_gives_the_faiss_plan(world, tmp_path, backend):
    store, old, new, docs, queries, _ = world
    ids = sorted(docs)
    other = create_store(f"{backend}://{tmp_path / backend}", old.id, old.dim)
    try:
        other.add(ids, store.get(ids), old.id)
        texts = lambda xs: [docs[i] for i in xs]  # noqa: E731
        kwargs = {"queries": list(queries.values())[:40], "sample": 120, "seed": 3}
        a, b = plan_upgrade(store, old, new, texts, **kwargs), plan_upgrade(other, old, new, texts, **kwargs)
        assert [(r["path"], round(r["arr@10"], 4)) for r in a.paths] == \
            [(r["path"], round(r["arr@10"], 4)) for r in b.paths]
        assert len(other) == len(ids)
    finally:
        other.close()
