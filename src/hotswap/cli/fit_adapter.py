"""``hotswap fit-adapter``: fit (or choose by validation) a new->old query adapter for one index.

Everything that can be wrong is checked before anything is encoded: the kind, the output folders, the index,
the dataset (``--dataset``, else the one the index records) and its train queries among the indexed documents,
the adapter's dimensions and the number of pairs it needs. Every encoding goes through the embedding cache
(``hotswap.encoders.cache``), so a second call with another ``--kind`` encodes nothing. ``--kind auto`` makes
the same validated choice as ``hotswap demo`` (``hotswap.search.selection.validated_choice``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from hotswap.cli import context
from hotswap.cli.options import INDEX
from hotswap.cli.output import JSON, emit_json, say
from hotswap.errors import HotswapError

console = Console()
AUTO = "auto"
MIN_AUTO_QUERIES = 10  # --kind auto holds out 20 % of the train queries to validate on


def fit_adapter(
    index: str = INDEX,
    new: str = typer.Option(..., help="the new encoder whose queries will be mapped into the index's space"),
    old: Optional[str] = typer.Option(  # noqa: UP007 (typer reads Optional here)
        None, help="the encoder that built the index (bundled name or folder); default: found from the index's "
        "model id"),
    kind: str = typer.Option("procrustes", help="adapter: procrustes, affine, low_rank, residual_mlp, "
                             "residual_mlp+infonce, drift, or 'auto' (validated choice)"),
    out: Path = typer.Option(None, help="a new (or empty) folder to save the fitted adapter in"),
    into: Optional[tuple[str, str]] = typer.Option(  # noqa: UP007 (typer reads Optional, not "X | None", here)
        None, "--into", help="COLLECTION NAME: also register the adapter in a served collection under NAME (what "
        "its clients name)"),
    dataset: Optional[str] = typer.Option(  # noqa: UP007
        None, help="bundled dataset name or BEIR folder the index was built from (default: what the index records)"),
    fit_docs: int = typer.Option(3000, min=0, help="indexed documents sampled as extra fit pairs"),
    max_train_queries: int = typer.Option(3000, min=0, help="train queries used as fit pairs (test queries never "
                                          "are)"),
    docs_only: bool = typer.Option(False, "--docs-only", help="fit on indexed documents alone, without train "
                                   "queries (for a dataset that has none; no validation, so not with --kind auto)"),
    seed: int = typer.Option(0),
    json_output: bool = JSON,
) -> None:
    """Fit a new->old query adapter on train queries and a sample of indexed documents, and save it.

    With --kind auto every adapter (and procrustes / residual_mlp+infonce blended with the old model's query,
    weight chosen there too) is fitted on 80% of the train queries and scored (nDCG@10) on the other 20%
    against the old model's own queries on this index; the best is refitted on all pairs and saved only if it
    beats the old model, else nothing is saved and you should keep serving old-model queries.

    Example: hotswap fit-adapter --index indexes/old --new minilm --kind auto --out adapters/best
    (for a served collection: --into collections/debian minilm-auto; clients then send "adapter": "minilm-auto")
    """
    started = time.perf_counter()
    print_ = say if json_output else _stdout
    col, name = into or (None, None)
    _check_kind(kind, docs_only)
    _check_outputs(out, col, name)
    target = context.open_target(index, None)  # a served collection: its current version, read only
    try:
        store = target.store
        plan = _plan(target, new, old, kind, dataset, fit_docs, max_train_queries, docs_only, seed, print_)
        pairs, timings, cached = _encode(plan, store, print_)
        summary = {**_fit_and_save(plan, pairs, store, out, col, name, timings, print_), "cached": cached}
    finally:
        target.close()
    summary["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    if json_output:
        emit_json(summary)


# ---- checks before any encoding ----------------------------------------------------------------------------------
def _stdout(text: str) -> None:
    console.print(text, highlight=False)


def _check_kind(kind: str, docs_only: bool) -> None:
    """Refuse an unknown kind, and --kind auto without train queries to validate on."""
    from hotswap.adapters.presets import PRESETS
    from hotswap.adapters.registry import available_adapters

    known = sorted({*PRESETS, *available_adapters()})
    if kind != AUTO and kind not in known:
        raise HotswapError(f"unknown adapter kind {kind!r}; pass --kind with one of {', '.join(known)}, or auto")
    if kind == AUTO and docs_only:
        raise HotswapError("--kind auto validates on held-out train queries, which --docs-only leaves out; drop "
                           "--docs-only, or pass --kind procrustes (or another kind)")


def _check_outputs(out: Path | None, col: str | None, name: str | None) -> None:
    """A destination is given, --out is new or empty, and --into names a collection and a free adapter name."""
    if out is None and col is None:
        raise typer.BadParameter("give --out FOLDER, or --into COLLECTION NAME (or both)")
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HotswapError(f"{out} already exists and is not empty; pass another --out folder (or delete it)")
    if col is not None:
        from hotswap.serve.adapter_registry import check_name, registered

        if not (Path(col) / "serving.json").is_file():
            raise typer.BadParameter(f"{col} is not a collection (no serving.json); create it with hotswap serve")
        assert name is not None  # --into gives COLLECTION and NAME together
        if check_name(name) in registered(Path(col)):
            raise typer.BadParameter(f"adapter {name!r} is already registered in {col}; choose another name")


@dataclass
class _Plan:
    """What will be encoded and fitted, decided (and checked) before any encoding."""

    index: str  # the index's location, as the summary names it
    kind: str
    labels: list[str]  # the adapter kinds to fit
    skipped: dict[str, str]  # kind -> why it is not fitted
    ds: Any  # the dataset, restricted to the indexed documents
    qids: list[str]  # train queries of the fit
    doc_ids: list[str]  # indexed documents of the fit
    new_enc: Any
    old_enc: Any  # None: fitting on documents alone
    seed: int


def _plan(target: context.Target, new: str, old: str | None, kind: str, dataset: str | None, fit_docs: int,
          max_train_queries: int, docs_only: bool, seed: int, print_: Any) -> _Plan:
    from hotswap.encoders import load_encoder
    from hotswap.search.selection import fit_doc_sample, train_query_ids

    store = target.store
    new_enc = load_encoder(new)
    # the model that built the index (checked against its id); fitting on documents alone needs none
    old_enc = context.old_encoder(target, old) if old is not None or not docs_only else None
    labels, skipped = _labels_for_dims(kind, new_enc.dim, store.dim)
    ds = context.restricted(context.dataset_of(target, dataset), store.ids)
    qids = [] if docs_only else train_query_ids(ds.train_queries, max_train_queries, seed)
    if not qids and not docs_only:
        raise HotswapError(
            f"dataset {ds.name} has no train queries (qrels/train.tsv) for the indexed documents; add them, or "
            "pass --docs-only to fit on indexed documents alone (no validation, so not with --kind auto)")
    if kind == AUTO and len(qids) < MIN_AUTO_QUERIES:
        raise HotswapError(f"--kind auto needs at least {MIN_AUTO_QUERIES} train queries to validate on; dataset "
                           f"{ds.name} has {len(qids)} for the indexed documents (raise --max-train-queries, or "
                           "pass --kind procrustes)")
    doc_ids = fit_doc_sample(store.ids, fit_docs, seed)
    labels, skipped = _check_pairs(kind, labels, skipped, len(qids), len(doc_ids), len(store), new_enc.dim,
                                   store.dim, seed)
    for label, why in skipped.items():
        print_(f"skipped {label}: {why}")
    return _Plan(index=target.location, kind=kind, labels=labels, skipped=skipped, ds=ds, qids=qids, doc_ids=doc_ids,
                 new_enc=new_enc, old_enc=old_enc, seed=seed)


def _labels_for_dims(kind: str, new_dim: int, old_dim: int) -> tuple[list[str], dict[str, str]]:
    """The kinds to fit (auto: every preset that works with these dims) and those skipped, with why."""
    from hotswap.adapters.presets import PRESETS, needs_equal_dims

    if kind != AUTO:
        if needs_equal_dims(kind) and new_dim != old_dim:
            works = [p for p in PRESETS if not needs_equal_dims(p)]
            raise HotswapError(f"the {kind} adapter needs equal dimensions, but the new model is {new_dim}-d and "
                               f"the index {old_dim}-d; pass --kind with one of {', '.join(works)}, or auto")
        return [kind], {}
    labels, skipped = [], {}
    for label in PRESETS:
        if needs_equal_dims(label) and new_dim != old_dim:
            skipped[label] = f"needs equal dims (new {new_dim} != old {old_dim})"
        else:
            labels.append(label)
    return labels, skipped


def _check_pairs(kind: str, labels: list[str], skipped: dict[str, str], n_queries: int, n_docs: int,
                 n_indexed: int, new_dim: int, old_dim: int, seed: int) -> tuple[list[str], dict[str, str]]:
    """Enough aligned pairs for each kind: a plain fit refuses, ``auto`` skips the kinds that lack them (their
    fits see 80 % of the train queries) and refuses when none is left."""
    from hotswap.adapters.presets import make_preset
    from hotswap.search.selection import validation_split

    n_fit = n_queries + n_docs
    if kind == AUTO:
        n_fit = len(validation_split([str(i) for i in range(n_queries)], seed=seed)[0]) + n_docs
    left, skipped = [], dict(skipped)
    for label in labels:
        need = make_preset(label, seed).min_pairs(new_dim, old_dim)
        if n_fit >= need:
            left.append(label)
            continue
        why = (f"needs at least {need} aligned pairs, this fit has {n_fit} ({n_queries} train queries"
               f"{' (80 % of them)' if kind == AUTO else ''} + {n_docs} of the {n_indexed} indexed documents)")
        if kind != AUTO:
            raise HotswapError(f"the {label} adapter {why}; raise --fit-docs or --max-train-queries, or pass "
                               "--kind procrustes")
        skipped[label] = why
    if not left:
        raise HotswapError(f"no adapter has enough aligned pairs: {n_fit} ({n_queries} train queries + {n_docs} "
                           "documents); raise --fit-docs or --max-train-queries")
    return left, skipped


# ---- encoding (cached), fitting, saving ----------------------------------------------------------------------------
def _encode(plan: _Plan, store: Any, print_: Any) -> tuple[Any, dict[str, float], bool]:
    """The fit pairs: train queries by both models and the document sample by the new model, all through the
    embedding cache; the old side of the documents is read from the index. Returns ``(pairs, timings, all
    cached)``."""
    import numpy as np

    from hotswap.encoders.cache import encode_cached
    from hotswap.search.selection import FitPairs

    def cached(encoder: Any, texts: list[str]) -> tuple[Any, bool]:
        if not texts:
            return np.zeros((0, encoder.dim), dtype=np.float32), True
        return encode_cached(encoder, texts)

    start = time.perf_counter()
    queries = [plan.ds.train_queries[q] for q in plan.qids]
    Q_new, hit_qn = cached(plan.new_enc, queries)
    Q_old, hit_qo = (cached(plan.old_enc, queries) if plan.old_enc is not None
                     else (np.zeros((0, store.dim), dtype=np.float32), True))
    D_new, hit_d = cached(plan.new_enc, [plan.ds.corpus[d] for d in plan.doc_ids])
    D_old = store.get(plan.doc_ids) if plan.doc_ids else np.zeros((0, store.dim), dtype=np.float32)
    took, hits = time.perf_counter() - start, (hit_qn, hit_qo, hit_d)
    state = "all cached" if all(hits) else "none cached" if not any(hits) else f"{sum(hits)} of 3 parts cached"
    print_(f"encoded {len(plan.qids)} train queries (both models) and {len(plan.doc_ids)} documents (new model) "
           f"in {took:.2f} s ({state})")
    old_id = store.model_id
    pairs = FitPairs(list(plan.qids), Q_new, Q_old, D_new, D_old, plan.new_enc.id, old_id)
    return pairs, {"encode": round(took, 3)}, all(hits)


def _fit_and_save(plan: _Plan, pairs: Any, store: Any, out: Path | None, col: str | None, name: str | None,
                  timings: dict, print_: Any) -> dict:
    """Choose (``auto``), fit on all pairs, save; returns the ``--json`` summary."""
    from hotswap.search import QueryBlend
    from hotswap.search.selection import validated_choice

    kind, weight, validation = plan.kind, None, None
    summary = {"index": plan.index, "dataset": plan.ds.name, "old_model": store.model_id,
               "new_model": plan.new_enc.id, "kind": plan.kind, "train_queries": len(plan.qids),
               "documents": len(plan.doc_ids), "skipped": plan.skipped}
    if plan.kind == AUTO:
        start = time.perf_counter()
        sel, weights = validated_choice(plan.labels, pairs, store, plan.ds.train_qrels, seed=plan.seed)
        timings["select"] = round(time.perf_counter() - start, 3)
        validation = {"metric": sel.metric, "n_queries": sel.n_queries, "scores": sel.scores, "choice": sel.choice,
                      "blend_weights": weights}
        print_(f"validation {sel.metric} on {sel.n_queries} held-out train queries "
               f"({len(plan.labels)} kinds fitted and scored in {timings['select']:.2f} s):")
        for label, score in sel.scores.items():
            print_(f"  {label:<28} {score:.4f}")
        if not sel.upgrade:
            print_(f"no adapter beats the old model on {sel.n_queries} held-out train queries: keep serving "
                   "old-model queries (mode old) until the index is backfilled; nothing saved")
            return {**summary, "choice": "old", "adapter": None, "blend_weight": None, "upgrade": False,
                    "validation": validation, "pairs": None, "saved": [], "timings_s": timings}
        kind = sel.choice.removesuffix("+blend")
        weight = weights.get(kind) if sel.choice.endswith("+blend") else None
    start = time.perf_counter()
    adapter = pairs.fit(kind, range(len(plan.qids)), plan.seed)
    timings["fit"] = round(time.perf_counter() - start, 3)
    fitted = adapter if weight is None else QueryBlend(adapter, weight)
    where = _save(fitted, out, col, name)
    how = "" if weight is None else f", blended with old-model queries at weight {weight} (search with --mode blended)"
    print_(f"fitted {kind} ({plan.new_enc.id} -> {store.model_id}) on {adapter.n_fit_pairs_} pairs in "
           f"{timings['fit']:.2f} s (fit only){how}; {_in_words(where)}")
    return {**summary, "choice": kind if weight is None else f"{kind}+blend", "adapter": kind,
            "blend_weight": weight, "upgrade": True, "validation": validation, "pairs": int(adapter.n_fit_pairs_),
            "saved": where, "timings_s": timings}


def _in_words(where: list[str]) -> str:
    return " and ".join(w if w.startswith("registered as") else f"saved to {w}" for w in where)


def _save(fitted: Any, out: Path | None, col: str | None, name: str | None) -> list[str]:
    """Save to ``out`` and/or register in the collection ``col`` as ``name``; returns where, in words."""
    with tempfile.TemporaryDirectory() as tmp:
        target = out or Path(tmp) / "adapter"
        fitted.save(target)
        where = [str(out)] if out else []
        if col is not None:
            from hotswap.serve.adapter_registry import register

            assert name is not None  # --into gives COLLECTION and NAME together
            where.append(f"registered as {name!r} in {register(Path(col), name, target).parent.parent}")
    return where
