"""Hard-negative mining: ranks window, positives excluded, seeded."""

import numpy as np
import pytest

from hotswap.training import mine_hard_negatives


def _encode(texts):
    """Texts are numbers: documents near a query's number rank high for it."""
    x = np.array([float(t) for t in texts])
    X = np.stack([np.cos(x / 50), np.sin(x / 50)], axis=1).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_negatives_come_from_the_rank_window_and_skip_positives():
    doc_ids = [f"d{i}" for i in range(100)]
    docs = [str(i) for i in range(100)]
    negs = mine_hard_negatives(_encode, ["50"], [{"d50"}], doc_ids, docs, n=3, ranks=(2, 6), seed=0)
    # ranking without d50: d49/d51 (ranks 0-1), d48/d52 (2-3), d47/d53 (4-5)
    assert len(negs[0]) == 3 and set(negs[0]) <= {"d48", "d52", "d47", "d53"}
    assert negs == mine_hard_negatives(_encode, ["50"], [{"d50"}], doc_ids, docs, n=3, ranks=(2, 6), seed=0)


def test_small_corpus_and_bad_ranks():
    negs = mine_hard_negatives(_encode, ["1"], [{"a"}], ["a", "b"], ["1", "2"], n=3, ranks=(5, 10))
    assert negs == [["b"]]  # the window is empty: fall back to what there is
    assert mine_hard_negatives(_encode, ["1"], [{"a"}], ["a"], ["1"], n=0) == [[]]
    with pytest.raises(ValueError, match="lo < hi"):
        mine_hard_negatives(_encode, ["1"], [{"a"}], ["a", "b"], ["1", "2"], n=1, ranks=(3, 3))
