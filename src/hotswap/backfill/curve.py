"""Backfill curves: search quality measured at fractions of a backfill (Seo et al., WACV 2025, Sec. 5).

``backfill_curve`` runs a ``BackfillRunner`` up to each fraction (0.0, 0.1, ..., 1.0 by default) and calls an
evaluator there; ``QrelsEvaluator`` scores every requested search mode on test queries with qrels: nDCG@10,
R@10 and the negative-flip rate against the old system (old queries on the whole old index). The curve's
summary is its area, ``AUC = mean over the equally spaced points`` (the papers' AUC_mAP / AUC_CMC read the
same way). At 0.0 the ``merged`` mode *is* the old system and at 1.0 the full re-index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotswap.errors import HotswapError
from hotswap.metrics import evaluate_run, negative_flips, run_from_search
from hotswap.search import Searcher
from hotswap.upgrade import Upgrade

CURVE_METRICS = ("ndcg@10", "recall@10")
Evaluate = Callable[[Any], dict[str, dict[str, float]]]  # upgrade -> {mode: {metric: value}}


def parse_every(text: str | float) -> float:
    """``"10%"`` or ``"0.1"`` -> 0.1; must divide the backfill into at least one step."""
    try:
        step = float(str(text).rstrip("%")) / (100 if str(text).endswith("%") else 1)
    except ValueError:
        raise HotswapError(f"--eval-every takes a share such as 10% or 0.1; got {text!r}") from None
    if not 0 < step <= 1:
        raise HotswapError(f"--eval-every must be in (0, 100%]; got {text!r}")
    return step


def fractions_every(step: float) -> list[float]:
    """``0, step, 2*step, ..., 1.0`` (1.0 always included), rounded to 6 digits."""
    n = int(np.floor(1 / step + 1e-9))
    out = [round(i * step, 6) for i in range(n + 1)]
    return out if out[-1] == 1.0 else [*out, 1.0]


@dataclass
class QrelsEvaluator:
    """Scores ``modes`` on an upgrade's current state. ``Q_new`` / ``Q_old``: test-query embeddings of each
    model; ``adapter`` maps new to old (mode ``adapted``); ``blend`` mixes the adapted new query with the old
    one (mode ``blended``, ``hotswap.search.QueryBlend``); ``calibration`` maps new scores to the old scale
    (mode ``calibrated``). Modes a pair of models cannot run, or that lack their part, are skipped."""

    qids: Sequence[str]
    qrels: dict[str, dict[str, int]]
    Q_new: np.ndarray
    Q_old: np.ndarray
    modes: Sequence[str] = ("merged", "adapted")
    adapter: Any | None = None
    calibration: Any | None = None  # a ScoreCalibration, for mode "calibrated"
    blend: Any | None = None  # a QueryBlend, for mode "blended"
    k: int = 100
    skipped: dict[str, str] = field(default_factory=dict)
    _old_run: dict | None = None

    def _queries(self, mode: str) -> Any:
        return (self.Q_new, self.Q_old) if mode in ("merged", "calibrated", "blended") else self.Q_new

    def __call__(self, upgrade: Upgrade) -> dict[str, dict[str, float]]:
        searcher = Searcher.for_upgrade(upgrade, adapter=self.adapter, calibration=self.calibration, blend=self.blend)
        if self._old_run is None:
            self._old_run = run_from_search(self.qids, searcher.search(self.Q_old, self.k, "old",
                                                                       upgrade.old_model_id)[1])
        out = {}
        for mode in self.modes:
            if mode in self.skipped:
                continue
            try:
                I = searcher.search(self._queries(mode), self.k, mode, upgrade.new_model_id)[1]
            except HotswapError as e:
                self.skipped[mode] = str(e)
                continue
            run = run_from_search(self.qids, I)
            scores = evaluate_run(self.qrels, run, CURVE_METRICS)
            flips = negative_flips(self.qrels, self._old_run, run)
            out[mode] = {**scores, "negative_flip_rate": flips.negative_flip_rate}
        return out


def backfill_curve(runner: Any, evaluate: Evaluate, fractions: Sequence[float],
                   on_point: Callable[[float, dict], None] | None = None) -> dict[str, list[dict]]:
    """Backfill to each fraction in turn and evaluate there; returns ``{mode: [{"fraction": f, ...}, ...]}``.

    Fractions the backfill had already passed when called (a resumed run) are skipped: their state is gone.
    A pause (``request_pause``) ends the curve where the backfill stopped.
    """
    curves: dict[str, list[dict]] = {}
    upgrade = runner.upgrade
    with runner.hold() if hasattr(runner, "hold") else nullcontext():  # one live backfill between the points
        for f in sorted(fractions):
            if len(upgrade.new) > round(f * len(upgrade.old)):
                continue
            if f > 0 and runner.run(until=f).done < round(f * len(upgrade.old)):
                break  # paused before reaching f
            point = evaluate(upgrade)
            for mode, scores in point.items():
                curves.setdefault(mode, []).append({"fraction": float(f), "backfilled": len(upgrade.new), **scores})
            if on_point:
                on_point(f, point)
    return curves


def curve_auc(points: Sequence[dict], key: str = "ndcg@10") -> float:
    """Area under a backfill curve: the mean of ``key`` over its (equally spaced) points."""
    return float(np.mean([p[key] for p in points])) if points else float("nan")


def summarise_curve(points: list[dict]) -> dict:
    """AUCs, and whether nDCG@10 never drops from one point to the next (with the largest drop)."""
    y = np.array([p["ndcg@10"] for p in points])
    drops = np.maximum(0.0, y[:-1] - y[1:]) if len(y) > 1 else np.zeros(0)
    return {**{f"auc_{m}": curve_auc(points, m) for m in (*CURVE_METRICS, "negative_flip_rate")},
            "monotone": bool((drops <= 0).all()), "max_drop_ndcg@10": float(drops.max(initial=0.0))}


def curve_rows(policy: str, curves: dict[str, list[dict]]) -> list[dict]:
    """``results/backfill.json`` curve entries of one policy: ``backfill_curve``'s points per mode, summarised."""
    return [{"policy": policy, "mode": mode, "points": points, **summarise_curve(points)}
            for mode, points in curves.items()]
