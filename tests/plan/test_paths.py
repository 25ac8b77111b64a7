"""The path measures of ``hotswap plan`` on small matrices whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.plan import paths, pseudo, recommend


def _scores(seed=0, nq=6, n=40):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(nq, n)).astype(np.float32), rng.normal(size=(nq, n)).astype(np.float32)


def test_top_k_is_sorted_argsort():
    S, _ = _scores()
    D, I = paths.top_k(S, 5)
    assert (I == np.argsort(-S, axis=1)[:, :5]).all() and (np.diff(D, axis=1) <= 0).all()


def test_arr_is_one_on_itself_and_zero_on_disjoint_lists():
    I = np.arange(20).reshape(2, 10)
    assert paths.arr_at_k(I, I) == 1.0
    assert paths.arr_at_k(I, I + 100) == 0.0
    assert paths.arr_at_k(np.array([[0, 1, 2, 3, 4, 50, 51, 52, 53, 54]]), np.arange(10)[None]) == 0.5


def test_rank_corr_of_a_monotone_transform_is_one_and_of_its_reverse_minus_one():
    S, _ = _scores()
    assert paths.rank_corr(3 * S + 1, S, depth=20) == pytest.approx(1.0)
    assert paths.rank_corr(-S, S, depth=20) == pytest.approx(-1.0)


def test_cascade_over_everything_is_the_new_ranking_and_counts_its_encodes():
    S_old, S_new = _scores()
    full = paths.cascade(S_old, S_new, candidates=40)
    assert (full.I == paths.top_k(S_new, 10)[1]).all() and full.encodes_per_query == 40
    mask = np.zeros(40, bool)
    mask[:20] = True
    part = paths.cascade(S_old, S_new, candidates=10, backfilled=mask)
    _, cand = paths.top_k(S_old, 10)
    assert part.encodes_per_query == pytest.approx(np.mean((cand >= 20).sum(axis=1)))
    assert set(part.I[0]) == set(cand[0])  # re-ranks the old candidates, adds nothing


def test_merged_runs_from_the_old_ranking_to_the_new_one():
    S_old, S_new = _scores()
    none, every = np.zeros(40, bool), np.ones(40, bool)
    assert (paths.merged(S_old, S_new, none).I == paths.top_k(S_old, 10)[1]).all()
    assert (paths.merged(S_old, S_new, every).I == paths.top_k(S_new, 10)[1]).all()
    half = paths.backfill_mask(40, 0.5, np.random.default_rng(0))
    I = paths.merged(S_old, S_new, half).I
    assert half.sum() == 20 and len(set(I[0])) == 10  # deduplicated


def test_known_item_spans_come_from_their_document():
    ids = [f"d{i}" for i in range(5)]
    texts = [" ".join(f"w{i}_{j}" for j in range(30)) for i in range(4)] + ["too short"]
    qids, queries, qrels = pseudo.known_item_queries(ids, texts, 10, np.random.default_rng(0))
    assert len(qids) == 4 and "pq:d4" not in qrels  # the short text gives no query
    for qid, q in zip(qids, queries):
        (doc,) = qrels[qid]
        assert q in texts[ids.index(doc)] and len(q.split()) == pseudo.SPAN_WORDS
    again = pseudo.known_item_queries(ids, texts, 10, np.random.default_rng(0))
    assert again == (qids, queries, qrels)


def _row(path, kind, arr, ndcg, encodes=0.0, known=0.5):
    return {"path": path, "kind": kind, "arr@10": arr, "ndcg@10": ndcg, "known_item_ndcg@10": known,
            "encodes_per_query": encodes}


def test_with_qrels_the_cheapest_path_within_the_tolerance_wins():
    rows = [_row("old", "stay", 0.3, 0.50), _row("procrustes", "adapter", 0.5, 0.595),
            _row("cascade@50", "cascade", 0.7, 0.60, 50), _row("merged@50%", "curve", 0.6, 0.9, 1),
            _row("new", "backfill", 1.0, 0.60)]
    choice = recommend.cheapest_within(rows, "ndcg@10", "ndcg@10")
    assert choice.path == "procrustes" and choice.best_path in ("cascade@50", "new")  # curves never compete
    rows[1]["ndcg@10"] = 0.55
    assert recommend.cheapest_within(rows, "ndcg@10", "ndcg@10").path == "cascade@50"
    stay = [_row("old", "stay", 0.3, 0.61), *rows[1:]]
    assert recommend.in_words(recommend.cheapest_within(stay, "ndcg@10", "ndcg@10"), "random") == "stay"


def test_without_labels_the_cheapest_path_close_to_the_new_model_else_backfill():
    rows = [_row("old", "stay", 0.3, None), _row("procrustes", "adapter", 0.5, None),
            _row("cascade@20", "cascade", 0.93, None, 20), _row("cascade@50", "cascade", 0.97, None, 50),
            _row("new", "backfill", 1.0, None)]
    assert recommend.in_words(recommend.label_free(rows), "uncertainty") == "cascade:20"
    rows[2]["arr@10"] = rows[3]["arr@10"] = 0.6
    assert recommend.in_words(recommend.label_free(rows), "uncertainty") == "backfill:uncertainty"
    assert "--order uncertainty" in recommend.next_command("backfill:uncertainty", "indexes/old", "minilm")
    assert "--candidates 20" in recommend.next_command("cascade:20", "indexes/old", "minilm")
