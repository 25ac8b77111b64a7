"""Cascade search on the demo's upgrade: day-0 rows and curves across an online backfill (``results/cascade.json``).

Protocol. The corpus is indexed by the old model (as in ``upgrade_demo``). The candidate queries come from what
``hotswap fit-adapter --kind auto`` would serve: a Procrustes-family adapter (``adapter``) fitted on train
queries + a corpus sample, and its blend with the old query, the weight chosen on 20 % of the train queries
held out from a refit (``select_by_validation``). No test query feeds any choice; ``G`` and the budgets are
fixed in the config, not tuned.

* **Rows** (0 % backfilled): cascade with ``candidates`` G in ``grid`` x ``budgets`` (unlimited and 8) with the
  ``auto`` candidate query, plus G = 50 unlimited with the ``old`` and ``adapted`` candidate queries. All test
  queries are searched in one call on a fresh searcher, so a budgeted row is the *cold* cost: no encoding is
  shared with earlier queries (``benchmarks/cascade_cost.py`` measures a warm stream). ``encodes_per_query``
  is the new-model document encodings each query asks for on its own (cold);
  ``unique_encodes_per_query`` counts each document once across the whole call (what one batch costs).
* **Curves**: for each ordering policy the gallery is backfilled in steps of ``eval_every``; at each point the
  test queries are searched in ``merged``, ``adapted`` and ``cascade`` (G = 50, unlimited and budget 8).
  The cascade here runs with ``persist=False``: its encodings stay in the searcher's memory and are dropped
  after the point, so the measurement does not change the backfill it measures.

The new model's document vectors are encoded once (``encode_cached``) and replayed (``ReplayEncoder``); the
cascade's encoding *cost* is measured in the benchmark, with the real encoder.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.backfill.curve import backfill_curve, fractions_every, summarise_curve
from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.encoders.cache import encode_cached
from hotswap.encoders.replay import ReplayEncoder
from hotswap.metrics import evaluate_run, negative_flips, run_from_search
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.search import QueryBlend, Searcher
from hotswap.search.cascade import resolve_candidate_query
from hotswap.search.selection import select_by_validation
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade
from hotswap_harness.experiments.upgrade_demo import UpgradeSlice, fit_adapters

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@dataclass
class CascadeConfig(UpgradeSlice):
    adapter: str = "procrustes"
    grid: tuple[int, ...] = (20, 50, 100)
    budgets: tuple[int | None, ...] = (None, 8)
    compare_queries: tuple[str, ...] = ("old", "adapted")  # candidate queries also shown at G = 50, unlimited
    curve_candidates: int = 50
    policies: tuple[str, ...] = ("random", "uncertainty")
    eval_every: float = 0.1
    batch_size: int = 256
    k: int = 100
    val_fraction: float = 0.2
    seed: int = 0
    cache_dir: str | None = None


def _gap(value: float, old: float, new: float) -> float | None:
    return (value - old) / (new - old) if abs(new - old) > 1e-12 else None


class _Scorer:
    """Scores a run of the test queries: metrics, and the negative-flip rate against the old system."""

    def __init__(self, qids: list[str], qrels: dict, run_old: dict) -> None:
        self.qids, self.qrels, self.run_old = qids, qrels, run_old

    def __call__(self, I: np.ndarray) -> dict[str, float]:
        run = run_from_search(self.qids, I)
        return {**evaluate_run(self.qrels, run, METRICS),
                "negative_flip_rate": negative_flips(self.qrels, self.run_old, run).negative_flip_rate}


def fit_adapter_and_blend(name: str, Tn: np.ndarray, To: np.ndarray, Dn: np.ndarray, Do: np.ndarray, old_store: Any,
                          tqids: list[str], train_qrels: dict, new_enc: Any, old_enc: Any, val_fraction: float = 0.2,
                          seed: int = 0) -> tuple[Any, QueryBlend]:
    """The adapter ``name`` fitted on all train queries (``Tn`` / ``To``, rows of ``tqids``) + document pairs
    (``Dn`` / ``Do``), and its ``QueryBlend`` with the weight chosen on held-out train queries after a refit on
    the rest (``select_by_validation``; test queries are never seen)."""
    def fit(rows: list[int]) -> Any:
        X_new, X_old = np.vstack([Tn[rows], Dn]), np.vstack([To[rows], Do])
        return fit_adapters([name], X_new, X_old, new_enc, old_enc, seed)[0][name]

    adapter = fit(list(range(len(tqids))))
    _, weights = select_by_validation(lambda _, rows: fit(rows), [name], old_store, tqids, Tn, To, train_qrels,
                                      new_enc.id, [name], val_fraction, seed)
    return adapter, QueryBlend(adapter, weights[name])


def run_cascade_experiment(cfg: CascadeConfig) -> dict:
    """Run the protocol (module docstring); returns the ``results/cascade.json`` dict."""
    timer, started = StageTimer(), time.perf_counter()
    with timer("load data"):
        ds = load_dataset(cfg.dataset, cfg.max_docs, cfg.max_train_queries, cfg.max_test_queries, cfg.seed)
        old_enc, new_enc = load_encoder(cfg.old), load_encoder(cfg.new)
    doc_ids, qids, tqids = list(ds.corpus), list(ds.queries), list(ds.train_queries)
    docs = [ds.corpus[d] for d in doc_ids]

    def enc(e: Any, texts: list[str]) -> np.ndarray:
        return encode_cached(e, texts, cfg.cache_dir)[0]

    with timer("encode"):
        D_old, D_new = enc(old_enc, docs), enc(new_enc, docs)
        Qo, Qn = enc(old_enc, [ds.queries[q] for q in qids]), enc(new_enc, [ds.queries[q] for q in qids])
        To, Tn = enc(old_enc, [ds.train_queries[q] for q in tqids]), enc(new_enc, [ds.train_queries[q] for q in tqids])
    sample = np.random.default_rng(cfg.seed).choice(len(doc_ids), min(cfg.fit_docs, len(doc_ids)), replace=False)

    replay = ReplayEncoder(new_enc.id, doc_ids, D_new, name=new_enc.name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old = create_store(root / "old", model_id=old_enc.id, dim=old_enc.dim)
        old.add(doc_ids, D_old, model_id=old_enc.id)
        new = create_store(root / "new", model_id=new_enc.id, dim=new_enc.dim)
        new.add(doc_ids, D_new, model_id=new_enc.id)
        with timer("fit adapter and blend (train queries only)"):
            adapter, blend = fit_adapter_and_blend(cfg.adapter, Tn, To, D_new[sample], D_old[sample], old, tqids,
                                                   ds.train_qrels, new_enc, old_enc, cfg.val_fraction, cfg.seed)
        I_old = old.search(Qo, cfg.k, old_enc.id)[1]
        score = _Scorer(qids, ds.qrels, run_from_search(qids, I_old))
        base = {"old": score(I_old), "new": score(new.search(Qn, cfg.k, new_enc.id)[1])}

        def searcher(up: Any) -> Searcher:
            return Searcher.for_upgrade(up, old_encoder=old_enc, new_encoder=replay, texts=lambda ids: ids,
                                        adapter=adapter, blend=blend, persist=False)

        with timer("rows (0 % backfilled)"):
            up = create_upgrade(root / "rows", old, new_enc.id, new_enc.dim)
            settings = [("auto", g, b) for g in cfg.grid for b in cfg.budgets]
            settings += [(how, cfg.curve_candidates, None) for how in cfg.compare_queries]
            rows: list[dict[str, Any]] = []
            for how, g, budget in settings:
                s = searcher(up)
                t0 = time.perf_counter()
                _, I = s.search((Qn, Qo), cfg.k, "cascade", new_enc.id, candidates=g, encode_budget=budget,
                                candidate_query=how)
                took = time.perf_counter() - t0
                stats = s.cascade_stats()
                rows.append({"candidate_query": how, "resolved_query": resolve_candidate_query(s.partitions, how),
                             "candidates": g, "encode_budget": budget, **score(I),
                             "encodes_per_query": stats["requested_per_query"],
                             "unique_encodes_per_query": stats["encodes_per_query"],
                             "share_already_encoded": stats["share_already_encoded"],
                             "search_ms_per_query": 1e3 * took / len(qids)})
            for r in rows:
                r["recovered_ndcg@10"] = _gap(r["ndcg@10"], base["old"]["ndcg@10"], base["new"]["ndcg@10"])
            baselines = {"adapted": score(searcher(up).search(Qn, cfg.k, "adapted", new_enc.id)[1]),
                         "blended": score(Searcher(old, blend=blend).search((Qn, Qo), cfg.k, "blended",
                                                                            new_enc.id)[1])}

        variants: dict[str, tuple[str, dict[str, Any]]] = {"merged": ("merged", {}), "adapted": ("adapted", {})}
        variants |= {f"cascade{'' if b is None else f' B={b}'}": ("cascade", {"candidates": cfg.curve_candidates,
                                                                             "encode_budget": b})
                     for b in cfg.budgets}

        def evaluate(upgrade: Any) -> dict[str, dict[str, float]]:
            out = {}
            for name, (mode, options) in variants.items():  # a fresh searcher each: nothing encoded is shared
                queries = Qn if mode == "adapted" else (Qn, Qo)
                out[name] = score(searcher(upgrade).search(queries, cfg.k, mode, new_enc.id, **options)[1])
            return out

        curves = []
        for policy in cfg.policies:
            with timer(f"curve {policy}"):
                up = create_upgrade(root / f"curve-{policy}", old, new_enc.id, new_enc.dim)
                plan_backfill(up, policy, replay, lambda ids: ids, seed=cfg.seed)
                runner = BackfillRunner(up, lambda ids: ids, LocalExecutor(replay), cfg.batch_size, progress=False)
                for name, points in backfill_curve(runner, evaluate, fractions_every(cfg.eval_every)).items():
                    mode, options = variants[name]
                    curves.append({"mode": mode, "label": name, "policy": policy, "points": points,
                                   "candidates": options.get("candidates"),
                                   "encode_budget": options.get("encode_budget"), **summarise_curve(points)})
    return {
        "dataset": ds.name, "old_model": old_enc.id, "new_model": new_enc.id, "n_docs": len(doc_ids),
        "n_test_queries": len(qids), "n_train_queries": len(tqids), "dataset_checksum": ds.checksum,
        "old_ndcg@10": base["old"]["ndcg@10"], "new_ndcg@10": base["new"]["ndcg@10"],
        "old": base["old"], "new": base["new"], "baselines": baselines, "blend_weight": blend.weight,
        "adapter": cfg.adapter, "rows": rows, "curves": curves, "config": asdict(cfg),
        "timings_s": {**timer.seconds, "total": round(time.perf_counter() - started, 3)},
        "versions": versions(), "hardware": hardware(),
    }
