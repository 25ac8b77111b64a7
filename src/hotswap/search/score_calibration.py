"""``ScoreCalibration``: put the new model's scores on the old model's scale before a rank merge.

Distance rank merge (``rank_merge``) compares raw scores of two models. When one model's similarities run
higher (a static model's cosines are larger than a transformer's), its partition fills the merged top-k and
the backfill's gain shows only at the very end. Seo et al. (WACV 2025) fix this by training the models to be
metric-compatible; this is the training-free alternative their ablation compares against ("calibrating each
system separately"): a monotone map ``g`` with ``g(s_new) ~ s_old`` in distribution, learnt by quantile
matching of the two models' top-``k`` scores on the same queries over the same documents:

    g = F_old^{-1} o F_new,   F_m = empirical CDF of model m's top-k scores (linear beyond the end quantiles)

``g`` is increasing, so it never reorders one partition's own results; it only decides how the two
partitions interleave. The fit needs paired data only: some queries encoded by both models and some
documents with both embeddings (e.g. the first backfilled batches).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hotswap.errors import NotFittedError
from hotswap.io import atomic_write_json


def top_scores(Q: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """Each query's ``k`` largest inner products with the rows of ``X``, flattened."""
    S = np.asarray(Q, np.float32) @ np.asarray(X, np.float32).T
    k = min(k, S.shape[1])
    return np.partition(S, S.shape[1] - k, axis=1)[:, -k:].ravel()


class ScoreCalibration:
    """Quantile map from new-model scores to the old model's scale (``fit`` / ``transform`` / ``save`` / ``load``)."""

    def __init__(self, n_quantiles: int = 101, k: int = 10) -> None:
        self.n_quantiles, self.k = n_quantiles, k

    def fit(self, new_scores: np.ndarray, old_scores: np.ndarray) -> ScoreCalibration:
        """Learn ``g`` from two samples of scores (e.g. ``top_scores`` of the same queries and documents)."""
        new_scores, old_scores = np.ravel(new_scores), np.ravel(old_scores)
        if len(new_scores) < 2 or len(old_scores) < 2:
            raise ValueError("need at least two scores of each model to calibrate")
        q = np.linspace(0.0, 1.0, self.n_quantiles)
        self.new_quantiles_ = np.quantile(new_scores, q)
        self.old_quantiles_ = np.quantile(old_scores, q)
        return self

    def fit_paired(self, Q_new: np.ndarray, X_new: np.ndarray, Q_old: np.ndarray,
                   X_old: np.ndarray) -> ScoreCalibration:
        """Fit on queries encoded by both models against documents embedded by both (rows aligned)."""
        return self.fit(top_scores(Q_new, X_new, self.k), top_scores(Q_old, X_old, self.k))

    def transform(self, scores: np.ndarray) -> np.ndarray:
        """``g(scores)``, same shape; ``-inf`` padding stays ``-inf``."""
        if not hasattr(self, "new_quantiles_"):
            raise NotFittedError("ScoreCalibration is not fitted; call fit or fit_paired first")
        s = np.asarray(scores, np.float64)
        xq, yq = self.new_quantiles_, self.old_quantiles_
        out = np.interp(s, xq, yq)
        lo_slope = _slope(xq[:2], yq[:2])
        hi_slope = _slope(xq[-2:], yq[-2:])
        out = np.where(s < xq[0], yq[0] + (s - xq[0]) * lo_slope, out)
        out = np.where(s > xq[-1], yq[-1] + (s - xq[-1]) * hi_slope, out)
        return np.where(np.isfinite(s), out, s).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """``path/calibration.json``."""
        return atomic_write_json(Path(path) / "calibration.json", {
            "kind": "quantile", "k": self.k, "n_quantiles": self.n_quantiles,
            "new_quantiles": self.new_quantiles_.tolist(), "old_quantiles": self.old_quantiles_.tolist()})

    @classmethod
    def load(cls, path: str | Path) -> ScoreCalibration:
        d = json.loads((Path(path) / "calibration.json").read_text())
        cal = cls(d["n_quantiles"], d["k"])
        cal.new_quantiles_, cal.old_quantiles_ = np.array(d["new_quantiles"]), np.array(d["old_quantiles"])
        return cal


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float((y[1] - y[0]) / (x[1] - x[0])) if x[1] > x[0] else 1.0
