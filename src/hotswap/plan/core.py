"""``plan_upgrade``: measure, before anything is re-embedded, which upgrade path to take and what it costs.

1. A seeded sample of the collection (plus, with qrels, the documents they judge) is the gallery: its old
   vectors are read from the index, its new ones encoded (the only new-model encoding ``plan`` does besides
   the queries, all through the embedding cache).
2. Queries: the user's query log (texts), split in two halves by a seeded shuffle: adapters are fitted on the
   first half (both models' encodings, plus the pairs of half the gallery), every path is scored on the second.
   Without a log, spans of the gallery's own texts stand in (``hotswap.plan.pseudo``; flagged as weaker).
   Known-item spans are scored in both cases: a label-free nDCG@10 that can rank old against new.
3. Every path (``hotswap.plan.paths``) is scored by ARR@10 against the new model's exact search on the
   gallery, by rank correlation, by known-item nDCG@10, and with qrels by nDCG@10 / R@10.
4. Cost (``hotswap.plan.cost``) from the encode rate measured here; the recommendation
   (``hotswap.plan.recommend``) is the cheapest path within 0.01 of the best one's quality.

Nothing is written to the index; the store is only read (``ids``, ``get``), so every backend works.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hotswap.adapters.presets import make_preset, needs_equal_dims
from hotswap.encoders.cache import encode_cached
from hotswap.errors import HotswapError
from hotswap.metrics import evaluate_run, run_from_search
from hotswap.plan import cost, paths, pseudo, recommend
from hotswap.search import QueryBlend

ADAPTERS = ("procrustes", "affine", "low_rank", "residual_mlp+infonce", "drift")
BLEND_GRID = (0.25, 0.5, 0.75)
CASCADE_G = (20, 50, 100)
FRACTIONS = (0.25, 0.5, 0.75)
MAX_LOG_QUERIES = 2000
KNOWN_ITEMS = 500
MAX_QRELS_QUERIES = 500

NOT_MEASURABLE = (
    "whether the new model serves your users better than the old one: ARR@10 measures agreement with the new "
    "model, and known-item search on the collection's own text spans is only a proxy for real queries",
    "quality on documents outside the sample (the sample is a seeded random one)",
)


@dataclass
class UpgradePlan:
    """What ``plan_upgrade`` measured. ``paths`` rows: ``path``, ``kind`` (stay, adapter, blend, cascade,
    curve, backfill), ``arr@10``, ``rank_corr``, ``known_item_ndcg@10``, ``ndcg@10`` / ``recall@10`` (with
    qrels, else None), ``encodes_per_query``, ``overhead_ms`` (per query, adapters)."""

    old_model: str
    new_model: str
    collection_size: int
    sample: int
    queries: str  # "log" or "known-item spans"
    n_score_queries: int
    paths: list[dict]
    recommendation: str  # by nDCG@10 with qrels, else label_free
    recommendation_label_free: str  # what plan says without the qrels (``recommend.label_free``)
    reason: str
    next_command: str
    best_by_qrels: str | None
    gain_new_over_old: float | None  # nDCG@10 with qrels
    spearman: float | None  # the label-free ranking of the end paths (ARR@10) vs their ranking by nDCG@10
    spearman_known_item: float | None  # the known-item nDCG@10 ranking vs the nDCG@10 ranking
    encode_rate: float
    backfill_hours: float
    backfill_cost: float | None
    not_measurable: list[str] = field(default_factory=lambda: list(NOT_MEASURABLE))
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = paths.ranks(np.asarray(a, float)), paths.ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _unit(X: np.ndarray) -> np.ndarray:
    return (X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class _Gallery:
    """The sample: ids, texts, both models' vectors."""

    def __init__(self, store: Any, ids: list[str], texts: list[str], new: Any) -> None:
        self.ids, self.texts = ids, texts
        self.D_old = _unit(np.asarray(store.get(ids), np.float32))
        self.D_new = _unit(encode_cached(new, texts)[0])


class _Queries:
    """One query set encoded by both models, with optional qrels."""

    def __init__(self, qids: list[str], texts: list[str], old: Any, new: Any,
                 qrels: dict[str, dict[str, int]] | None = None) -> None:
        self.qids, self.texts, self.qrels = qids, texts, qrels
        self.Q_old = _unit(encode_cached(old, texts)[0]) if texts else np.zeros((0, old.dim), np.float32)
        self.Q_new = _unit(encode_cached(new, texts)[0]) if texts else np.zeros((0, new.dim), np.float32)
        self._scores: tuple[np.ndarray, np.ndarray] | None = None

    def against(self, gallery: _Gallery) -> tuple[np.ndarray, np.ndarray]:
        """``(S_old, S_new)``: each model's scores of these queries over the gallery, computed once."""
        if self._scores is None:
            self._scores = (self.Q_old @ gallery.D_old.T, self.Q_new @ gallery.D_new.T)
        return self._scores


def plan_upgrade(store: Any, old: Any, new: Any, texts: Callable[[list[str]], list[str]], *,
                 queries: Sequence[str] | None = None, qrels: Mapping[str, Mapping[str, int]] | None = None,
                 qrel_queries: Mapping[str, str] | None = None, sample: int = 2000,
                 cost_per_hour: float | None = None, seed: int = 0, order: str | None = None,
                 labels: tuple[str, str] | None = None, max_log_queries: int = MAX_LOG_QUERIES,
                 max_qrels_queries: int = MAX_QRELS_QUERIES, known_items: int = KNOWN_ITEMS) -> UpgradePlan:
    """Measure every upgrade path of ``store`` (built by ``old``) to ``new`` on a seeded sample (module doc).

    ``texts(ids)`` gives the documents' texts; ``queries`` is a query log (texts); ``qrels`` (``{qid: {doc:
    grade}}``) with ``qrel_queries`` (``{qid: text}``) adds nDCG@10 / R@10. ``order``: the backfill order to
    recommend (default ``uncertainty``: it needs no queries); ``labels``: how the next command
    names the index and the new model (default: the store's URI and the model's name). The ``max_*`` caps
    bound the queries encoded (a slow new model on a CPU)."""
    started = time.perf_counter()
    if old.id != store.model_id:
        raise HotswapError(f"the index was built with {store.model_id}, but the old model given is {old.id}; pass "
                           "the model that built it")
    rng = np.random.default_rng(seed)
    all_ids = sorted(store.ids)
    if not all_ids:
        raise HotswapError("the index is empty: nothing to plan")
    picked = sorted(rng.choice(len(all_ids), size=min(sample, len(all_ids)), replace=False).tolist())
    gallery_ids = [all_ids[i] for i in picked]
    judged = _judged(qrels, qrel_queries, set(all_ids), rng, max_qrels_queries)
    if judged:
        gallery_ids = sorted(set(gallery_ids) | {d for rel in judged.values() for d in rel})
    gallery = _Gallery(store, gallery_ids, list(texts(gallery_ids)), new)

    log = [t for t in (queries or []) if t and t.strip()]
    if len(log) > max_log_queries:
        log = [log[i] for i in sorted(rng.choice(len(log), size=max_log_queries, replace=False).tolist())]
    ki_ids, ki_texts, ki_qrels = pseudo.known_item_queries(gallery.ids, gallery.texts, known_items, rng)
    if log:
        perm = rng.permutation(len(log))
        half = len(log) // 2
        fit_q = _Queries([], [log[i] for i in perm[:half]], old, new)
        score_q = _Queries([f"log:{i}" for i in perm[half:]], [log[i] for i in perm[half:]], old, new)
        known = _Queries(ki_ids, ki_texts, old, new, ki_qrels)
    else:
        half = len(ki_ids) // 2
        fit_q = _Queries(ki_ids[:half], ki_texts[:half], old, new)
        score_q = known = _Queries(ki_ids[half:], ki_texts[half:], old, new, {q: ki_qrels[q] for q in ki_ids[half:]})
    if len(score_q.texts) == 0:
        raise HotswapError("no queries to score the paths on: give a query log (--queries) or documents with "
                           f"at least {pseudo.MIN_WORDS} words")
    labelled = None
    if judged and qrel_queries is not None:  # _judged refuses qrels without their queries' texts
        labelled = _Queries(list(judged), [qrel_queries[q] for q in judged], old, new, judged)

    fit_docs = np.sort(rng.choice(len(gallery.ids), size=len(gallery.ids) // 2, replace=False))
    fitted = _fit_adapters(gallery, fit_q, fit_docs, old, new, seed)
    blends = _blends(fitted, fit_q, gallery)

    rows = _score_paths(gallery, score_q, known, labelled, fitted, blends, rng)
    rate = cost.encode_rate(new, gallery.texts)
    hours = cost.backfill_hours(len(all_ids), rate)
    for row in rows:
        if row["kind"] == "cascade":
            row["seconds_per_query"] = row["encodes_per_query"] / rate
        if row["kind"] == "backfill":
            row["one_off_hours"] = hours

    use_qrels = labelled is not None
    order = order or "uncertainty"
    free = recommend.label_free(rows)
    choice = recommend.cheapest_within(rows, "ndcg@10", "ndcg@10") if use_qrels else free
    words = recommend.in_words(choice, order)
    ends = [r for r in rows if r["kind"] != "curve"]
    best_q = max(ends, key=lambda r: r["ndcg@10"])["path"] if use_qrels else None
    by = {r["path"]: r for r in rows}
    return UpgradePlan(
        old_model=old.id, new_model=new.id, collection_size=len(all_ids), sample=len(gallery.ids),
        queries="log" if log else "known-item spans", n_score_queries=len(score_q.texts), paths=rows,
        recommendation=words, recommendation_label_free=recommend.in_words(free, order),
        reason=_reason(choice, by), next_command=recommend.next_command(
            words, *(labels or (str(getattr(store, "uri", "INDEX")), getattr(new, "name", new.id)))),
        best_by_qrels=best_q,
        gain_new_over_old=(by["new"]["ndcg@10"] - by["old"]["ndcg@10"]) if use_qrels else None,
        spearman=_spearman([r["arr@10"] for r in ends], [r["ndcg@10"] for r in ends]) if use_qrels else None,
        spearman_known_item=_spearman([r["known_item_ndcg@10"] for r in ends], [r["ndcg@10"] for r in ends])
        if use_qrels else None,
        encode_rate=rate, backfill_hours=hours, backfill_cost=None if cost_per_hour is None else hours * cost_per_hour,
        wall_s=round(time.perf_counter() - started, 2))


def _judged(qrels: Mapping | None, qrel_queries: Mapping | None, indexed: set[str],
            rng: np.random.Generator, cap: int) -> dict[str, dict[str, int]]:
    """The labelled queries with a text and a relevant document in the index (a seeded sample, capped)."""
    if not qrels:
        return {}
    if not qrel_queries:
        raise HotswapError("qrels need the texts of their queries: pass the queries file whose ids they name")
    kept = {q: {d: g for d, g in rel.items() if d in indexed and g > 0} for q, rel in qrels.items()
            if q in qrel_queries}
    kept = {q: rel for q, rel in kept.items() if rel}
    if not kept:
        raise HotswapError("no qrels query has a text and a relevant document in the index; check that the qrels "
                           "and the queries file belong to this collection")
    qids = sorted(kept)
    if len(qids) > cap:
        qids = sorted(rng.choice(qids, size=cap, replace=False).tolist())
    return {q: kept[q] for q in qids}


def _fit_adapters(gallery: _Gallery, fit_q: _Queries, docs: np.ndarray, old: Any, new: Any,
                  seed: int) -> dict[str, Any]:
    X_new = np.vstack([fit_q.Q_new, gallery.D_new[docs]])
    X_old = np.vstack([fit_q.Q_old, gallery.D_old[docs]])
    fitted = {}
    for label in ADAPTERS:
        if needs_equal_dims(label) and new.dim != old.dim:
            continue
        try:
            fitted[label] = make_preset(label, seed).fit(X_new, X_old, new_model_id=new.id, old_model_id=old.id)
        except (ValueError, HotswapError):
            continue  # e.g. too few pairs for a low-rank fit: the path is not offered
    return fitted


def _blends(fitted: Mapping[str, Any], fit_q: _Queries, gallery: _Gallery) -> dict[str, QueryBlend]:
    """For procrustes and the contrastive MLP, the blend weight with the best ARR@10 on the fit queries."""
    out: dict[str, QueryBlend] = {}
    if len(fit_q.texts) == 0:
        return out
    ref = paths.exhaustive(fit_q.Q_new, gallery.D_new).I
    for label in ("procrustes", "residual_mlp+infonce"):
        if label not in fitted:
            continue
        scored = {w: paths.arr_at_k(paths.exhaustive(QueryBlend(fitted[label], w).combine(fit_q.Q_new, fit_q.Q_old),
                                                     gallery.D_old).I, ref) for w in BLEND_GRID}
        out[label] = QueryBlend(fitted[label], max(scored, key=lambda w: scored[w]))
    return out


def _score_paths(gallery: _Gallery, score_q: _Queries, known: _Queries, labelled: _Queries | None,
                 fitted: Mapping[str, Any], blends: Mapping[str, QueryBlend], rng: np.random.Generator) -> list[dict]:
    """One row per path: ARR@10 and rank correlation on ``score_q``, known-item nDCG@10 on ``known``, nDCG@10
    and R@10 on ``labelled``."""
    masks = {f: paths.backfill_mask(len(gallery.ids), f, rng) for f in FRACTIONS}
    Search = Callable[[_Queries], paths.Ranking]

    def adapted(a: Any) -> Search:
        return lambda q: paths.exhaustive(_unit(a.transform(q.Q_new)), gallery.D_old)

    def blended(b: QueryBlend) -> Search:
        return lambda q: paths.exhaustive(b.combine(q.Q_new, q.Q_old), gallery.D_old)

    def cascade(g: int, backfilled: np.ndarray | None = None) -> Search:
        return lambda q: paths.cascade(*q.against(gallery), g, backfilled=backfilled)

    def merged(m: np.ndarray) -> Search:
        return lambda q: paths.merged(*q.against(gallery), m)

    specs: list[tuple[str, str, Search, float | None]] = [
        ("old", "stay", lambda q: paths.ranked(q.against(gallery)[0]), None)]
    for label, adapter in fitted.items():
        specs.append((label, "adapter", adapted(adapter), cost.per_query_ms(adapter.transform, score_q.Q_new)))
    for label, blend in blends.items():
        specs.append((f"{label}+blend", "blend", blended(blend), None))
    for g in paths_g(len(gallery.ids)):
        specs.append((f"cascade@{g}", "cascade", cascade(g), None))
    for f, mask in masks.items():
        specs.append((f"merged@{f:.0%}", "curve", merged(mask), None))
        specs.append((f"cascade@50 at {f:.0%}", "curve", cascade(50, mask), None))
    specs.append(("new", "backfill", lambda q: paths.ranked(q.against(gallery)[1]), None))

    S_new = score_q.against(gallery)[1]
    I_new = paths.top_k(S_new, paths.K)[1]
    rows = []
    for name, kind, search, overhead in specs:
        ranked = search(score_q)
        row = {"path": name, "kind": kind, "arr@10": paths.arr_at_k(ranked.I, I_new),
               "rank_corr": None if ranked.scores is None else paths.rank_corr(ranked.scores, S_new),
               "known_item_ndcg@10": _ndcg(search(known) if known is not score_q else ranked, known, gallery)[0],
               "ndcg@10": None, "recall@10": None, "encodes_per_query": ranked.encodes_per_query,
               "overhead_ms": overhead}
        if labelled is not None:
            row["ndcg@10"], row["recall@10"] = _ndcg(search(labelled), labelled, gallery)
        rows.append(row)
    return rows


def paths_g(n: int) -> list[int]:
    """The cascade depths that are smaller than the gallery."""
    return [g for g in CASCADE_G if g < n]


def _ndcg(ranked: paths.Ranking, q: _Queries, gallery: _Gallery) -> tuple[float, float]:
    assert q.qrels is not None  # called for the known-item and labelled query sets, which carry qrels
    run = run_from_search(q.qids, paths.ids_of(ranked.I, gallery.ids))
    scores = evaluate_run(q.qrels, run, ("ndcg@10", "recall@10"))
    return scores["ndcg@10"], scores["recall@10"]


def _reason(choice: recommend.Choice, by: Mapping[str, dict]) -> str:
    old, chosen = by["old"], by[choice.path]
    if choice.measure == "ndcg@10":
        text = (f"{choice.path} reaches nDCG@10 {choice.quality:.3f} (best: {choice.best_path} "
                f"{choice.best_quality:.3f}; old {old['ndcg@10']:.3f}): the cheapest path within "
                f"{recommend.TOLERANCE} of the best")
        return text + (": nothing beats the old model by more than that" if choice.kind == "stay" else "")
    if choice.kind == "backfill":
        best = max((r["arr@10"] for r in by.values() if r["kind"] in ("adapter", "blend", "cascade")), default=0.0)
        return (f"no path without re-embedding returns {recommend.ARR_GOOD:.0%} of the new model's top-10 (best "
                f"ARR@10 {best:.2f}); whether to upgrade at all needs labels (--qrels)")
    return (f"{choice.path} returns {chosen['arr@10']:.0%} of the new model's top-10 without re-embedding the "
            "collection (the cheapest such path); whether to upgrade at all needs labels (--qrels)")
