import numpy as np
import pytest

from hotswap.adapters import make_adapter
from hotswap.errors import HotswapError, ModelMismatchError
from hotswap.search import Searcher
from hotswap.store import create_store
from tests.conftest import unit_rows

OLD, NEW = "old-model@1", "new-model@2"


@pytest.fixture
def setup(tmp_path, rng):
    """An old 16-d index and a new 24-d index of the same 200 items; new = old mapped by a known map."""
    ids = [f"doc{i}" for i in range(200)]
    X_old = unit_rows(rng, 200, 16)
    M = np.linalg.qr(rng.standard_normal((24, 24)))[0][:16]  # 16x24, orthonormal rows
    X_new = X_old @ M
    old = create_store(tmp_path / "old", model_id=OLD, dim=16)
    old.add(ids, X_old, model_id=OLD)
    new = create_store(tmp_path / "new", model_id=NEW, dim=24)
    new.add(ids, X_new, model_id=NEW)
    adapter = make_adapter("procrustes").fit(X_new, X_old, new_model_id=NEW, old_model_id=OLD)
    return ids, X_old, X_new, old, new, adapter


def test_modes_agree_when_the_adapter_is_exact(setup):
    ids, X_old, X_new, old, new, adapter = setup
    s = Searcher(old, adapter=adapter, new_store=new)
    q_old, q_new = X_old[:20], X_new[:20]
    _, I_old = s.search(q_old, 5, "old", OLD)
    _, I_ad = s.search(q_new, 5, "adapted", NEW)
    _, I_new = s.search(q_new, 5, "new", NEW)
    assert (I_old[:, 0] == np.array(ids[:20], dtype=object)).all()  # each item finds itself first
    assert (I_ad == I_old).all() and (I_new == I_old).all()


def test_cross_model_search_without_adapter_names_both_models(setup):
    _, _, X_new, old, _, _ = setup
    with pytest.raises(ModelMismatchError) as e:
        Searcher(old).search(X_new[:, :16], 5, "old", NEW)
    assert OLD in str(e.value) and NEW in str(e.value)


def test_adapter_for_another_index_is_refused(setup, rng):
    _, X_old, X_new, old, _, _ = setup
    other = make_adapter("procrustes").fit(X_new, X_old, new_model_id=NEW, old_model_id="someone-else@3")
    with pytest.raises(ModelMismatchError, match="someone-else@3"):
        Searcher(old, adapter=other).search(X_new[:3], 5, "adapted", NEW)


def test_missing_parts_and_unknown_mode(setup):
    _, _, X_new, old, _, _ = setup
    s = Searcher(old)
    with pytest.raises(HotswapError, match="adapter"):
        s.search(X_new[:2], 3, "adapted", NEW)
    with pytest.raises(HotswapError, match="new index"):
        s.search(X_new[:2], 3, "new", NEW)
    with pytest.raises(HotswapError, match="unknown search mode"):
        s.search(X_new[:2], 3, "sideways", NEW)
    with pytest.raises(HotswapError, match="encoder"):
        s.search_texts(["q"], 3, "old")


def test_numpy_blas_is_capped_during_search_and_faiss_blas_is_not(setup):
    from threadpoolctl import threadpool_info

    def threads():
        return {("numpy" if "numpy" in i["filepath"] else "other"): i["num_threads"]
                for i in threadpool_info() if i["user_api"] == "blas"}

    before = threads()
    if before.get("numpy", 1) < 2:
        pytest.skip("numpy's BLAS runs one thread here: nothing to cap")
    seen = {}

    class Spy:
        model_id = OLD

        def search(self, Q, k, model_id):
            seen.update(threads())
            return np.zeros((len(Q), k), np.float32), np.full((len(Q), k), None, dtype=object)

    Searcher(Spy()).search(setup[1][:2], 3, "old", OLD)
    assert seen["numpy"] == 1 and threads() == before  # capped inside, restored after
    if "other" in before:
        assert seen["other"] == before["other"]  # FAISS's own OpenBLAS keeps its threads
    Searcher(Spy(), blas_threads=None).search(setup[1][:2], 3, "old", OLD)
    assert seen["numpy"] == before["numpy"]
