"""The online-backfill protocol (Seo et al., WACV 2025): quality along a backfill, per ordering policy.

The corpus is indexed by the old model. For each ordering policy a fresh upgrade re-embeds it with the new
model in batches; at 0 %, 10 %, ..., 100 % the *test* queries are searched in each mode of
``hotswap.search.modes`` that merges the two partitions — ``merged`` (old query -> old partition, new query ->
new partition, distance rank merge), ``calibrated`` (the same with the new partition's scores mapped onto
the old model's scale, ``ScoreCalibration``, fitted on train queries and ``calibration_docs`` documents of the
fit sample), ``adapted`` (adapter-mapped new query -> old partition; needs only the new encoder) and
``cross`` (compatible models only) — and scored by nDCG@10, R@10 and the negative-flip rate
against the old system. ``AUC`` is the mean over the curve's points.

The new model encodes the corpus once (``encode_cached``) and each policy's backfill replays those vectors
(``ReplayEncoder``). Throughput is measured with the real encoder on ``throughput_docs`` documents: raw
``encoder.encode`` against the full ``BackfillRunner`` path (plan, batches, atomic segment writes).
The ``popularity`` policy uses the *train* queries as its query log; the adapter is fitted on train queries
and a corpus sample (as in ``upgrade_demo``); no test query feeds any choice.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.backfill.curve import QrelsEvaluator, backfill_curve, curve_rows, fractions_every
from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.encoders.cache import encode_cached
from hotswap.encoders.replay import ReplayEncoder
from hotswap.plan.cost import encode_rate
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.search import ScoreCalibration
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade
from hotswap_harness.experiments.upgrade_demo import UpgradeSlice, fit_adapters


@dataclass
class BackfillConfig(UpgradeSlice):
    policies: tuple[str, ...] = ("random", "uncertainty", "sequential", "popularity")
    modes: tuple[str, ...] = ("merged", "calibrated", "adapted", "cross")
    adapter: str = "procrustes"
    calibration_docs: int = 1024  # documents with both embeddings for the score calibration (a first batch)
    batch_size: int = 256
    eval_every: float = 0.1
    probe_size: int = 1024
    throughput_docs: int = 512
    k: int = 100
    seed: int = 0
    cache_dir: str | None = None


def measure_throughput(new_enc, ids: list[str], texts: list[str], old_vectors: np.ndarray, old_id: str,
                       batch_size: int, root: Path) -> dict:
    """items/s of raw ``encode`` and of the runner (LocalExecutor) on the same texts, measured in one run."""
    text_of = dict(zip(ids, texts))
    new_enc.encode(texts[:8], show_progress=False)  # warm-up (lazy weights, tokenizer)
    raw = encode_rate(new_enc, texts, n=None, warm_up=False)
    old = create_store(root / "tp_old", model_id=old_id, dim=old_vectors.shape[1])
    old.add(ids, old_vectors, model_id=old_id)
    up = create_upgrade(root / "tp_upgrade", old, new_enc.id, new_enc.dim)
    fetch = lambda batch: [text_of[i] for i in batch]  # noqa: E731
    plan_backfill(up, "random", new_enc, fetch)
    start = time.perf_counter()
    BackfillRunner(up, fetch, LocalExecutor(new_enc), batch_size=batch_size, progress=False).run()
    runner = len(texts) / (time.perf_counter() - start)
    return {"runner_items_s": runner, "raw_encode_items_s": raw, "ratio": runner / raw, "n_docs": len(texts),
            "encoder": new_enc.id}


def run_backfill_experiment(cfg: BackfillConfig, progress=None) -> dict:
    """Run the protocol; returns the ``results/backfill.json`` dict."""
    timer, started = StageTimer(), time.perf_counter()
    with timer("load data"):
        ds = load_dataset(cfg.dataset, cfg.max_docs, cfg.max_train_queries, cfg.max_test_queries, cfg.seed)
        old_enc, new_enc = load_encoder(cfg.old), load_encoder(cfg.new)
    doc_ids, qids = list(ds.corpus), list(ds.queries)
    docs = [ds.corpus[d] for d in doc_ids]

    def enc(e, texts):
        return encode_cached(e, texts, cfg.cache_dir)[0]

    with timer("encode"):
        D_old, D_new = enc(old_enc, docs), enc(new_enc, docs)
        Qo, Qn = enc(old_enc, list(ds.queries.values())), enc(new_enc, list(ds.queries.values()))
        To, Tn = enc(old_enc, list(ds.train_queries.values())), enc(new_enc, list(ds.train_queries.values()))
    sample = np.random.default_rng(cfg.seed).choice(len(doc_ids), min(cfg.fit_docs, len(doc_ids)), replace=False)
    with timer("fit adapter and calibration"):
        adapters, _ = fit_adapters([cfg.adapter], np.vstack([Tn, D_new[sample]]), np.vstack([To, D_old[sample]]),
                                   new_enc, old_enc, cfg.seed)
        few = sample[:cfg.calibration_docs]
        calibration = ScoreCalibration().fit_paired(Tn, D_new[few], To, D_old[few])
    replay = ReplayEncoder(new_enc.id, doc_ids, D_new, name=new_enc.name)
    evaluator = QrelsEvaluator(qids, ds.qrels, Qn, Qo, modes=cfg.modes, adapter=adapters.get(cfg.adapter), k=cfg.k,
                               calibration=calibration)
    fractions = fractions_every(cfg.eval_every)
    curves = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old = create_store(root / "old", model_id=old_enc.id, dim=old_enc.dim)
        old.add(doc_ids, D_old, model_id=old_enc.id)
        for policy in cfg.policies:
            with timer(f"backfill {policy}"):
                up = create_upgrade(root / f"upgrade-{policy}", old, new_enc.id, new_enc.dim)
                plan_backfill(up, policy, replay, lambda ids: ids, seed=cfg.seed, query_log=To,
                              probe_size=cfg.probe_size)
                runner = BackfillRunner(up, lambda ids: ids, LocalExecutor(replay), cfg.batch_size, progress=False)
                curves += curve_rows(policy, backfill_curve(runner, evaluator, fractions))
                if progress:
                    progress(policy, curves)
        with timer("throughput"):
            n = min(cfg.throughput_docs, len(doc_ids))
            throughput = measure_throughput(new_enc, doc_ids[:n], docs[:n], D_old[:n], old_enc.id, cfg.batch_size,
                                            root)
    return {
        "dataset": ds.name, "old_model": old_enc.id, "new_model": new_enc.id, "curves": curves,
        "throughput": throughput, "skipped_modes": dict(evaluator.skipped), "fractions": fractions,
        "n_docs": len(doc_ids), "n_test_queries": len(qids), "dataset_checksum": ds.checksum,
        "adapter": cfg.adapter, "config": asdict(cfg), "timings_s": {**timer.seconds,
                                                                     "total": round(time.perf_counter() - started, 3)},
        "versions": versions(), "hardware": hardware(),
    }
