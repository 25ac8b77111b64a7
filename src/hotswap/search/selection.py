"""Pick the adapter to serve with, or none, on held-out *train* queries: "never worse than not upgrading".

Fitting minimises a reconstruction loss, not retrieval quality, and on a pair of close models every adapter
can rank below simply keeping the old model's queries (see the results page, minilm -> mpnet). ``select_adapter``
therefore scores each fitted candidate by a retrieval metric on validation queries that no fit has seen,
searching the real old index, and compares with the old system on the same queries. It returns the best
candidate only if it beats the old system by at least ``margin``; otherwise the choice is ``"old"``: keep
encoding queries with the old model until the gallery is backfilled.

``validated_choice`` is the one validated choice (adapter, blend weight, or old) that ``hotswap demo`` and
``hotswap fit-adapter --kind auto`` both make; with ``train_query_ids`` and ``fit_doc_sample`` they also fit on
the same train queries and the same documents, in the same order, so on the same data and seed they choose
the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotswap.metrics import evaluate_run, run_from_search

OLD = "old"
BLEND_GRID = (0.25, 0.4, 0.5, 0.6, 0.75)
BLENDABLE = ("procrustes", "residual_mlp+infonce")  # also tried blended with the old model's query


@dataclass(frozen=True)
class Selection:
    choice: str  # a candidate's name, or "old"
    metric: str
    scores: dict[str, float]  # validation score of "old" and of every candidate
    n_queries: int

    @property
    def upgrade(self) -> bool:
        """True when serving adapted new-model queries beats keeping the old model on validation."""
        return self.choice != OLD


def validation_split(ids: Sequence[str], fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded split of (train) query ids into ``(fit_ids, validation_ids)``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1); got {fraction!r}")
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = max(1, int(round(len(ids) * fraction)))
    return [ids[i] for i in sorted(order[n_val:])], [ids[i] for i in sorted(order[:n_val])]


def select_adapter(
    candidates: Mapping[str, Any], old_store: Any, qids: Sequence[str], Q_new: np.ndarray, Q_old: np.ndarray,
    qrels: Mapping[str, Mapping[str, int]], new_model_id: str, metric: str = "ndcg@10", k: int = 100,
    margin: float = 0.0,
) -> Selection:
    """Score ``old`` (``Q_old`` on the old index) and each fitted candidate (``Q_new`` through it; a
    ``QueryBlend`` candidate combines ``Q_new`` and ``Q_old``) by
    ``metric`` on the validation queries ``qids``; choose the best candidate if it beats ``old`` by more
    than ``margin``, else ``"old"``. Ties go to ``old`` (no change without evidence)."""
    gold = {q: dict(qrels[q]) for q in qids}

    def score(Q: np.ndarray, model_id: str) -> float:
        _, I = old_store.search(Q, k, model_id=model_id)
        return evaluate_run(gold, run_from_search(list(qids), I), (metric,))[metric]

    scores = {OLD: score(Q_old, old_store.model_id)}
    for name, cand in candidates.items():
        mapped = (cand.combine(Q_new, Q_old, model_id=new_model_id) if hasattr(cand, "combine")
                  else cand.transform(Q_new, model_id=new_model_id))
        scores[name] = score(mapped, old_store.model_id)
    best = max(candidates, key=lambda n: scores[n], default=None)
    choice = best if best is not None and scores[best] > scores[OLD] + margin else OLD
    return Selection(choice, metric, scores, len(qids))


def choose_blend_weight(
    adapter: Any, old_store: Any, qids: Sequence[str], Q_new: np.ndarray, Q_old: np.ndarray,
    qrels: Mapping[str, Mapping[str, int]], new_model_id: str, grid: Sequence[float] = BLEND_GRID,
    metric: str = "ndcg@10",
) -> tuple[float, dict[float, float]]:
    """The weight ``w`` of ``hotswap.search.blend.QueryBlend`` that scores best on validation queries
    (``grid`` excludes 0 and 1: those are the old and the adapted systems, scored on their own)."""
    from hotswap.search.blend import QueryBlend

    blends = {str(w): QueryBlend(adapter, w) for w in grid}
    sel = select_adapter(blends, old_store, qids, Q_new, Q_old, qrels, new_model_id, metric)
    scores = {float(w): s for w, s in sel.scores.items() if w != OLD}
    return max(scores, key=lambda w: scores[w]), scores


def select_by_validation(
    fit: Callable[[str, list[int]], Any], labels: Sequence[str], old_store: Any, qids: Sequence[str],
    Q_new: np.ndarray, Q_old: np.ndarray, qrels: Mapping[str, Mapping[str, int]], new_model_id: str,
    blendable: Sequence[str] = (), val_fraction: float = 0.2, seed: int = 0,
) -> tuple[Selection, dict[str, float]]:
    """The whole validated choice: split the train queries ``qids`` (rows of ``Q_new`` / ``Q_old``), fit each
    label on the fit part (``fit(label, rows)`` -> fitted adapter), choose a blend weight for each label in
    ``blendable`` and add ``"<label>+blend"`` candidates, then ``select_adapter`` on the held-out part.
    Returns ``(selection, {label: blend weight})``."""
    from hotswap.search.blend import QueryBlend

    fit_q, val_q = validation_split(qids, val_fraction, seed)
    pos = {q: i for i, q in enumerate(qids)}
    candidates = {label: fit(label, [pos[q] for q in fit_q]) for label in labels}
    val = [pos[q] for q in val_q]
    args = (old_store, val_q, Q_new[val], Q_old[val], qrels, new_model_id)
    weights = {b: choose_blend_weight(candidates[b], *args)[0] for b in blendable if b in candidates}
    candidates |= {f"{b}+blend": QueryBlend(candidates[b], w) for b, w in weights.items()}
    return select_adapter(candidates, *args), weights


def train_query_ids(train_queries: Mapping[str, str], cap: int | None = None, seed: int = 0) -> list[str]:
    """The train queries adapters are fitted on: all of them (sorted), or a seeded sample of ``cap``.

    Drawn from its own ``default_rng(seed)``, so the sample does not depend on what else was sampled before
    (the demo's test-query cap used to shift it)."""
    ids = sorted(train_queries)
    if cap is not None and cap < len(ids):
        ids = sorted(np.random.default_rng(seed).choice(ids, size=cap, replace=False).tolist())
    return ids


def fit_doc_sample(doc_ids: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """The indexed documents added as fit pairs: a seeded sample of ``n`` of ``sorted(doc_ids)``, in sorted
    order (the order of the pairs matters to the MLP adapters' shuffles and early-stopping split)."""
    ids = sorted(doc_ids)
    rows = np.random.default_rng(seed).choice(len(ids), size=min(max(n, 0), len(ids)), replace=False)
    return [ids[i] for i in sorted(rows.tolist())]


@dataclass(frozen=True)
class FitPairs:
    """Aligned embeddings of the same texts by both models: train queries (rows of ``Q_new`` / ``Q_old``, ids
    ``qids``) and a document sample (``D_new`` / ``D_old``, the old side read from the index)."""

    qids: list[str]
    Q_new: np.ndarray
    Q_old: np.ndarray
    D_new: np.ndarray
    D_old: np.ndarray
    new_model_id: str
    old_model_id: str

    def stacked(self, query_rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(X_new, X_old)``: the queries ``query_rows`` followed by every sampled document."""
        rows = list(query_rows)
        return np.vstack([self.Q_new[rows], self.D_new]), np.vstack([self.Q_old[rows], self.D_old])

    def fit(self, label: str, query_rows: Sequence[int], seed: int = 0) -> Any:
        """The preset ``label`` (``hotswap.adapters.presets``) fitted on ``stacked(query_rows)``."""
        from hotswap.adapters.presets import make_preset

        X_new, X_old = self.stacked(query_rows)
        return make_preset(label, seed).fit(X_new, X_old, new_model_id=self.new_model_id,
                                            old_model_id=self.old_model_id)


def validated_choice(
    labels: Sequence[str], pairs: FitPairs, old_store: Any, qrels: Mapping[str, Mapping[str, int]],
    blendable: Sequence[str] = BLENDABLE, val_fraction: float = 0.2, seed: int = 0,
) -> tuple[Selection, dict[str, float]]:
    """The validated choice shared by ``hotswap demo`` and ``hotswap fit-adapter --kind auto``: every preset in
    ``labels`` fitted on ``1 - val_fraction`` of the train queries (+ the document sample), blend weights chosen
    for ``blendable``, all scored against the old model on the held-out queries. Returns
    ``(selection, {label: blend weight})`` (see ``select_by_validation``)."""
    return select_by_validation(lambda label, rows: pairs.fit(label, rows, seed), labels, old_store, pairs.qids,
                                pairs.Q_new, pairs.Q_old, qrels, pairs.new_model_id, blendable, val_fraction, seed)
