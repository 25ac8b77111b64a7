"""QueryBlend and the 'blended' mode: averaging the old query with the adapted new one."""

import numpy as np
import pytest

from hotswap.adapters import make_adapter
from hotswap.search.selection import choose_blend_weight, select_adapter
from hotswap.errors import HotswapError
from hotswap.search import QueryBlend, Searcher
from hotswap.store import create_store
from tests.conftest import unit_rows

OLD, NEW = "old@1", "new@2"


@pytest.fixture
def world(tmp_path, rng):
    """Old queries and adapted new queries are two noisy views of the target doc, with independent noise."""
    docs = unit_rows(rng, 400, 16)
    R = np.linalg.qr(rng.standard_normal((16, 16)))[0].astype(np.float32)
    store = create_store(tmp_path / "old", model_id=OLD, dim=16)
    store.add([f"d{i}" for i in range(400)], docs, model_id=OLD)
    target = rng.integers(0, 400, 200)
    Q_old = docs[target] + 0.9 * unit_rows(rng, 200, 16)
    Q_new = (docs[target] + 0.9 * unit_rows(rng, 200, 16)) @ R
    adapter = make_adapter("procrustes").fit(docs @ R, docs, new_model_id=NEW, old_model_id=OLD)
    qids = [f"q{i}" for i in range(200)]
    return store, adapter, qids, Q_new, Q_old, {q: {f"d{t}": 1} for q, t in zip(qids, target)}, docs


def test_combine_is_the_weighted_mean_of_unit_views(world):
    store, adapter, _, Q_new, Q_old, _, _ = world
    n = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
    mixed = QueryBlend(adapter, 0.25).combine(Q_new, Q_old, model_id=NEW)
    np.testing.assert_allclose(mixed, 0.75 * n(Q_old) + 0.25 * n(adapter.transform(Q_new)), atol=1e-6)
    np.testing.assert_allclose(QueryBlend(adapter, 1.0).combine(Q_new, Q_old), n(adapter.transform(Q_new)), atol=1e-6)


def test_two_independent_views_beat_either_and_weight_is_chosen_inside(world):
    store, adapter, qids, Q_new, Q_old, qrels, _ = world
    w, scores = choose_blend_weight(adapter, store, qids, Q_new, Q_old, qrels, NEW)
    assert set(scores) == {0.25, 0.4, 0.5, 0.6, 0.75} and w in scores
    sel = select_adapter({"adapted": adapter, "blend": QueryBlend(adapter, w)}, store, qids, Q_new, Q_old, qrels, NEW)
    assert sel.choice == "blend" and sel.scores["blend"] > max(sel.scores["adapted"], sel.scores["old"])


def test_blended_mode_through_the_searcher(world, tmp_path):
    store, adapter, qids, Q_new, Q_old, _, _ = world
    blend = QueryBlend(adapter, 0.5)
    s = Searcher(store, blend=blend)
    _, I = s.search((Q_new[:5], Q_old[:5]), 3, "blended", NEW)
    _, I_direct = store.search(blend.combine(Q_new[:5], Q_old[:5]), 3, model_id=OLD)
    assert (I == I_direct).all()
    with pytest.raises(HotswapError, match="pair"):
        s.search(Q_new[:5], 3, "blended", NEW)
    with pytest.raises(HotswapError, match="old encoder"):
        s.search_texts(["q"], 3, "blended")
    loaded = QueryBlend.load(blend.save(tmp_path / "saved"))
    assert loaded.weight == 0.5
    np.testing.assert_array_equal(loaded.combine(Q_new, Q_old), blend.combine(Q_new, Q_old))
    with pytest.raises(ValueError, match="weight"):
        QueryBlend(adapter, 1.5)
    with pytest.raises(ValueError, match="same queries"):
        blend.combine(Q_new[:4], Q_old[:5])
