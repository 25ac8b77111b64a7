"""select_adapter: serve an adapter only when it beats the old system on held-out queries."""

import numpy as np
import pytest

from hotswap.adapters import make_adapter
from hotswap.search.selection import select_adapter, validation_split
from hotswap.store import create_store

OLD, NEW = "old@1", "new@2"


def _unit(rng, n, d):
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture
def world(tmp_path):
    """300 docs; each query is a noisy copy of one doc in the old space; the new space is a rotation of it."""
    rng = np.random.default_rng(0)
    docs = _unit(rng, 300, 12)
    R = np.linalg.qr(rng.standard_normal((12, 12)))[0].astype(np.float32)
    store = create_store(tmp_path / "old", model_id=OLD, dim=12)
    store.add([f"d{i}" for i in range(300)], docs, model_id=OLD)
    target = rng.integers(0, 300, 80)
    Q_old = docs[target] + 0.8 * _unit(rng, 80, 12)  # the old model's queries are noisy
    Q_new = (docs[target] + 0.05 * _unit(rng, 80, 12)) @ R  # the new model's are sharp, in a rotated space
    qids = [f"q{i}" for i in range(80)]
    qrels = {q: {f"d{t}": 1} for q, t in zip(qids, target)}
    good = make_adapter("procrustes").fit(docs @ R, docs, new_model_id=NEW, old_model_id=OLD)
    bad = make_adapter("procrustes").fit(_unit(rng, 300, 12), docs, new_model_id=NEW, old_model_id=OLD)
    return store, qids, Q_new, Q_old, qrels, good, bad


def test_picks_the_adapter_that_beats_old(world):
    store, qids, Q_new, Q_old, qrels, good, bad = world
    sel = select_adapter({"good": good, "bad": bad}, store, qids, Q_new, Q_old, qrels, NEW)
    assert sel.choice == "good" and sel.upgrade
    assert sel.scores["good"] > sel.scores["old"] > sel.scores["bad"]
    assert sel.n_queries == 80


def test_keeps_old_when_no_adapter_beats_it(world):
    store, qids, Q_new, Q_old, qrels, _, bad = world
    sel = select_adapter({"bad": bad}, store, qids, Q_new, Q_old, qrels, NEW)
    assert sel.choice == "old" and not sel.upgrade
    # a margin larger than any possible gain also keeps the old system
    _, _, _, _, _, good, _ = world
    assert select_adapter({"good": good}, store, qids, Q_new, Q_old, qrels, NEW, margin=1.0).choice == "old"


def test_validation_split_is_seeded_and_disjoint():
    ids = [f"q{i}" for i in range(50)]
    fit, val = validation_split(ids, 0.2, seed=1)
    assert len(val) == 10 and len(fit) == 40 and not set(fit) & set(val) and set(fit) | set(val) == set(ids)
    assert validation_split(ids, 0.2, seed=1) == (fit, val) != validation_split(ids, 0.2, seed=2)
    with pytest.raises(ValueError, match="fraction"):
        validation_split(ids, 1.5)


def test_train_queries_and_document_sample_are_seeded_sorted_and_capped():
    from hotswap.search.selection import fit_doc_sample, train_query_ids

    queries = {f"q{i:02d}": "text" for i in range(40)}
    assert train_query_ids(queries) == sorted(queries) == train_query_ids(queries, 100)
    capped = train_query_ids(queries, 10, seed=3)
    assert len(capped) == 10 and capped == sorted(capped) == train_query_ids(queries, 10, seed=3)
    docs = [f"d{i:03d}" for i in range(300)][::-1]  # the index's order does not matter
    sample = fit_doc_sample(docs, 50, seed=1)
    assert len(sample) == 50 and sample == sorted(sample) == fit_doc_sample(sorted(docs), 50, seed=1)
    assert fit_doc_sample(docs, 1000) == sorted(docs) and fit_doc_sample(docs, 0) == []


def test_validated_choice_fits_on_queries_then_documents(world):
    from hotswap.search.selection import FitPairs, validated_choice

    store, qids, Q_new, Q_old, qrels, _, _ = world
    docs = store.get(store.ids[:100])
    R = np.linalg.lstsq(Q_old[:12], Q_new[:12], rcond=None)[0]  # any new-side view of the documents
    pairs = FitPairs(list(qids), Q_new, Q_old, docs @ R, docs, NEW, OLD)
    X_new, X_old = pairs.stacked([0, 1, 2])
    assert X_new.shape == (103, 12) and np.array_equal(X_old[3:], docs) and np.array_equal(X_old[:3], Q_old[:3])
    sel, weights = validated_choice(["procrustes", "affine"], pairs, store, qrels, blendable=("procrustes",))
    assert set(sel.scores) == {"old", "procrustes", "affine", "procrustes+blend"} and set(weights) == {"procrustes"}
    assert sel.n_queries == 16
    again = validated_choice(["procrustes", "affine"], pairs, store, qrels, blendable=("procrustes",))
    assert again == (sel, weights)  # deterministic: the demo and fit-adapter get the same answer
