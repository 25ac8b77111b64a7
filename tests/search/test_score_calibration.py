"""ScoreCalibration: a monotone quantile map onto the old model's score scale, and the ``calibrated`` mode."""

import numpy as np
import pytest

from hotswap.errors import HotswapError, NotFittedError
from hotswap.search import ScoreCalibration, Searcher, rank_merge
from hotswap.search.score_calibration import top_scores
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade


def test_maps_one_distribution_onto_the_other_and_keeps_order():
    rng = np.random.default_rng(0)
    new, old = rng.normal(0.3, 0.05, 5000), rng.normal(0.7, 0.1, 5000)
    cal = ScoreCalibration(n_quantiles=201).fit(new, old)
    mapped = cal.transform(new)
    assert mapped.mean() == pytest.approx(0.7, abs=0.01) and mapped.std() == pytest.approx(0.1, abs=0.01)
    s = np.sort(rng.normal(0.3, 0.2, 1000))  # includes values beyond the fitted range: extrapolated
    assert np.all(np.diff(cal.transform(s)) >= 0)
    assert cal.transform(np.array([[-np.inf, 0.3]]))[0, 0] == -np.inf


def test_top_scores_are_each_querys_largest():
    rng = np.random.default_rng(1)
    Q, X = rng.normal(size=(4, 8)), rng.normal(size=(30, 8))
    expected = np.sort(Q @ X.T, axis=1)[:, -5:]
    assert np.allclose(np.sort(top_scores(Q, X, 5).reshape(4, 5), axis=1), expected, atol=1e-5)


def test_save_load_roundtrip_and_unfitted(tmp_path):
    with pytest.raises(NotFittedError):
        ScoreCalibration().transform(np.zeros(3))
    cal = ScoreCalibration(n_quantiles=11).fit(np.linspace(0, 1, 50), np.linspace(2, 4, 50))
    cal.save(tmp_path)
    again = ScoreCalibration.load(tmp_path)
    s = np.linspace(-0.5, 1.5, 9)
    assert np.allclose(again.transform(s), cal.transform(s)) and np.allclose(cal.transform(s), 2 + 2 * s, atol=1e-6)


def test_calibrated_mode_is_merged_with_mapped_new_scores(tmp_path):
    rng = np.random.default_rng(2)
    ids = [f"d{i}" for i in range(80)]
    unit = lambda X: (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    Xo, Xn = unit(rng.normal(size=(80, 6))), unit(rng.normal(size=(80, 10)))
    old = create_store(tmp_path / "old", "old@1", 6)
    old.add(ids, Xo, "old@1")
    up = create_upgrade(tmp_path / "up", old, "new@1", 10)
    up.add_backfilled(ids[:40], Xn[:40], "new@1")
    Qo, Qn = unit(rng.normal(size=(5, 6))), unit(rng.normal(size=(5, 10)))
    cal = ScoreCalibration().fit(np.linspace(-1, 1, 100), np.linspace(-0.2, 0.2, 100))
    D, I = Searcher.for_upgrade(up, calibration=cal).search((Qn, Qo), 10, "calibrated", "new@1")
    Do, Io = up.old_part.search(Qo, 10, "old@1")
    Dn, In = up.new_part.search(Qn, 10, "new@1")
    D2, I2 = rank_merge(Do, Io, cal.transform(Dn), In, 10)
    assert (I == I2).all() and np.allclose(D, D2)
    with pytest.raises(HotswapError, match="ScoreCalibration"):
        Searcher.for_upgrade(up).search((Qn, Qo), 10, "calibrated", "new@1")
