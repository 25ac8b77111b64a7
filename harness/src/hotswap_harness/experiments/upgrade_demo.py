"""The main job: upgrade a live text index from an old to a new embedding model without re-indexing.

Protocol: the corpus is indexed by the old model. Every adapter is fitted on paired embeddings of
the *train* queries plus a random sample of corpus documents (both models encode the same texts); the *test*
queries are never seen by any fitting. Rows: ``old`` (old queries -> old index), ``new`` (new queries ->
new index, the full re-index upper bound), ``adapted`` (new queries -> adapter -> old index) per adapter.
For each adapted row we report the recovered share of the gap ``(adapted - old) / (new - old)`` and the
ratio ``adapted / new``; negative flips are counted against the ``old`` row.

The ``auto`` row is what a careful operator would serve: every adapter is fitted again on 80 % of the train
queries (+ the corpus sample) and scored by nDCG@10 on the other 20 % against the old system
(``hotswap.search.selection.validated_choice``, the same call ``hotswap fit-adapter --kind auto`` makes, on the
same train queries and document sample); the best one is served if it beats the old system there, else the old
model keeps encoding queries (``auto_choice = "old"``). Its test numbers are those of the chosen system.
Rows ``<adapter>+blend`` average the old model's query with the adapted new-model query
(``hotswap.search.blend``), with the weight chosen on the same held-out train queries; they are candidates of
the ``auto`` choice too.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotswap.adapters.presets import PRESETS, make_preset, needs_equal_dims
from hotswap.data import RetrievalDataset, load_dataset
from hotswap.encoders import load_encoder
from hotswap.encoders.cache import encode_cached
from hotswap.metrics import evaluate_run, negative_flips, run_from_search
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.search import QueryBlend, Searcher
from hotswap.search.selection import (
    BLENDABLE,
    FitPairs,
    Selection,
    fit_doc_sample,
    train_query_ids,
    validated_choice,
)
from hotswap.store import create_store

ADAPTERS = tuple(PRESETS)  # every preset is a row; "drift" is skipped when the dims differ
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@dataclass
class UpgradeSlice:
    """Which upgrade on which data: the models, the dataset and the seeded slice of it (shared by the protocols)."""

    dataset: str = "debian"
    old: str = "static"
    new: str = "minilm"
    max_docs: int | None = 6000
    max_train_queries: int | None = 3000
    max_test_queries: int | None = 1500
    fit_docs: int = 3000


@dataclass
class DemoConfig(UpgradeSlice):
    adapters: tuple[str, ...] = ADAPTERS
    k: int = 100
    seed: int = 0
    select: bool = True  # add the "auto" row: the adapter chosen on held-out train queries, or "old"
    blend: tuple[str, ...] = BLENDABLE  # adapters also shown blended (needs select)
    val_fraction: float = 0.2
    workdir: str | None = None
    cache_dir: str | None = None


def _encode(encoder, texts: list[str], cfg: DemoConfig) -> np.ndarray:
    return encode_cached(encoder, texts, cfg.cache_dir)[0]


def _build_store(folder: Path, encoder, ids: list[str], X: np.ndarray):
    store = create_store(folder, model_id=encoder.id, dim=encoder.dim, metric="ip")
    store.add(ids, X, model_id=encoder.id)
    return store


def _row(mode: str, adapter: str | None, scores: dict[str, float], flips) -> dict:
    return {"mode": mode, "adapter": adapter, **scores, "negative_flip_rate": flips.negative_flip_rate,
            "hit_flip_rate": flips.hit_flip_rate, "positive_flip_rate": flips.positive_flip_rate}


def _gap_shares(rows: list[dict]) -> None:
    old = next(r for r in rows if r["mode"] == "old")
    new = next(r for r in rows if r["mode"] == "new")
    for r in rows:
        for m in ("ndcg@10", "recall@10", "mrr@10"):
            gap = new[m] - old[m]
            r[f"recovered_{m}"] = (r[m] - old[m]) / gap if abs(gap) > 1e-12 else None
            r[f"ratio_{m}"] = r[m] / new[m] if new[m] > 0 else None


def fit_adapters(names, X_new: np.ndarray, X_old: np.ndarray, new_enc, old_enc, seed: int,
                 timer: StageTimer | None = None, stage: str = "fit") -> tuple[dict, dict[str, str]]:
    """Fit each preset of ``hotswap.adapters.presets``; returns ``({name: adapter}, {skipped name: why})``."""
    fitted, skipped = {}, {}
    for name in names:
        if needs_equal_dims(name) and old_enc.dim != new_enc.dim:
            skipped[name] = f"needs equal dims (new {new_enc.dim} != old {old_enc.dim})"
            continue
        with timer(f"{stage} {name}") if timer else nullcontext():
            fitted[name] = make_preset(name, seed).fit(X_new, X_old, new_model_id=new_enc.id, old_model_id=old_enc.id)
    return fitted, skipped


def load_demo_data(cfg: UpgradeSlice) -> RetrievalDataset:
    """The slice the demo runs on: ``max_docs`` seeded documents (what ``hotswap encode --max-docs`` indexes with
    the same seed) and ``max_test_queries`` test queries; the train queries are capped later, by
    ``train_query_ids`` (as ``hotswap fit-adapter`` does), not here."""
    return load_dataset(cfg.dataset, cfg.max_docs, None, cfg.max_test_queries, getattr(cfg, "seed", 0))


def run_upgrade_demo(cfg: DemoConfig, data: RetrievalDataset | None = None,
                     announce: Callable[[RetrievalDataset], None] | None = None) -> dict:
    """Run the protocol and return the ``results/demo.json`` dict (see the module docstring); ``announce`` is
    called with the loaded data before any encoding (the CLI prints its real size)."""
    timer, started = StageTimer(), time.perf_counter()
    with timer("load data"):
        ds = data or load_demo_data(cfg)
    if announce is not None:
        announce(ds)
    with timer("load models"):
        old_enc, new_enc = load_encoder(cfg.old), load_encoder(cfg.new)
    doc_ids, qids = list(ds.corpus), list(ds.queries)
    tqids = train_query_ids(ds.train_queries, cfg.max_train_queries, cfg.seed)
    docs = [ds.corpus[d] for d in doc_ids]
    with timer("encode corpus (old)"):
        D_old = _encode(old_enc, docs, cfg)
    with timer("encode corpus (new)"):
        D_new = _encode(new_enc, docs, cfg)
    with timer("encode queries"):
        Q = {(side, split): _encode(enc, [src[q] for q in ids], cfg)
             for side, enc in (("old", old_enc), ("new", new_enc))
             for split, src, ids in (("test", ds.queries, qids), ("train", ds.train_queries, tqids))}
    pos = {d: i for i, d in enumerate(doc_ids)}
    sample = [pos[d] for d in fit_doc_sample(doc_ids, cfg.fit_docs, cfg.seed)]
    pairs = FitPairs(tqids, Q["new", "train"], Q["old", "train"], D_new[sample], D_old[sample], new_enc.id, old_enc.id)
    X_new, X_old = pairs.stacked(range(len(tqids)))
    adapters, skipped = fit_adapters(cfg.adapters, X_new, X_old, new_enc, old_enc, cfg.seed, timer)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(cfg.workdir or tmp)
        with timer("build indexes"):
            old_store = _build_store(root / "old_index", old_enc, doc_ids, D_old)
            new_store = _build_store(root / "new_index", new_enc, doc_ids, D_new)
        searcher = Searcher(old_store, new_store=new_store)
        with timer("search"):
            runs = {"old": searcher.search(Q["old", "test"], cfg.k, "old", old_enc.id)[1],
                    "new": searcher.search(Q["new", "test"], cfg.k, "new", new_enc.id)[1]}
            for name, adapter in adapters.items():
                searcher.partitions.adapter = adapter
                runs[name] = searcher.search(Q["new", "test"], cfg.k, "adapted", new_enc.id)[1]
        selection: Selection | None = None
        weights: dict[str, float] = {}
        if cfg.select and adapters:
            with timer("select on validation"):
                selection, weights = validated_choice(list(adapters), pairs, old_store, ds.train_qrels, cfg.blend,
                                                      cfg.val_fraction, cfg.seed)
            with timer("search"):
                for name, w in weights.items():
                    searcher.partitions.blend = QueryBlend(adapters[name], w)
                    runs[f"{name}+blend"] = searcher.search((Q["new", "test"], Q["old", "test"]), cfg.k, "blended",
                                                            new_enc.id)[1]
    run_of = {name: run_from_search(qids, I) for name, I in runs.items()}

    def row(label: str, mode: str, adapter: str | None, **extra) -> dict:
        return {**_row(mode, adapter, evaluate_run(ds.qrels, run_of[label], METRICS),
                       negative_flips(ds.qrels, run_of["old"], run_of[label])), **extra}

    rows = [row("old", "old", None), row("new", "new", None)]
    rows += [row(name, "adapted", name) for name in adapters]
    rows += [row(f"{name}+blend", "adapted", f"{name}+blend", blend_weight=w) for name, w in weights.items()]
    if selection is not None:
        rows.append(row(selection.choice, "adapted", "auto", auto_choice=selection.choice))
    _gap_shares(rows)
    return {
        "dataset": ds.name, "dataset_note": ds.note, "dataset_checksum": ds.checksum,
        "n_docs": len(doc_ids), "n_test_queries": len(qids), "n_train_queries": len(tqids),
        "n_fit_pairs": int(X_new.shape[0]), "old_model": old_enc.id, "new_model": new_enc.id,
        "old_dim": old_enc.dim, "new_dim": new_enc.dim, "seed": cfg.seed, "rows": rows,
        "skipped_adapters": skipped,
        "selection": None if selection is None else {**asdict(selection), "validation_queries": selection.n_queries},
        "timings_s": {**timer.seconds, "total": round(time.perf_counter() - started, 3)},
        "config": asdict(cfg), "versions": versions(), "hardware": hardware(),
    }
