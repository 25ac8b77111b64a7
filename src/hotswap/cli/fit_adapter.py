"""``hotswap fit-adapter``: fit (or choose by validation) a new->old query adapter for one index."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from hotswap.adapters import Adapter
from hotswap.adapters.presets import PRESETS, make_preset, needs_equal_dims
from hotswap.adapters.selection import select_by_validation
from hotswap.cli.options import DATASET, INDEX
from hotswap.data import load_dataset
from hotswap.encoders import encoder_for_model_id, load_encoder
from hotswap.search import QueryBlend
from hotswap.store import open_store

console = Console()
BLENDABLE = ("procrustes", "residual_mlp+infonce")  # also tried blended with the old model's query under --kind auto


def fit_adapter(
    index: Path = INDEX,
    new: str = typer.Option(..., help="the new encoder whose queries will be mapped into the index's space"),
    kind: str = typer.Option("procrustes", help=f"adapter: {', '.join(PRESETS)}, or 'auto' (validated choice)"),
    out: Path = typer.Option(..., help="folder to save the fitted adapter"),
    dataset: str = DATASET,
    fit_docs: int = typer.Option(3000, help="indexed documents sampled as extra fit pairs"),
    max_train_queries: int = typer.Option(3000, help="train queries used as fit pairs (test queries never are)"),
    seed: int = typer.Option(0),
) -> None:
    """Fit a new->old query adapter on train queries and a sample of indexed documents, and save it.

    With --kind auto every adapter (and procrustes / residual_mlp+infonce blended with the old model's query,
    weight chosen there too) is fitted on 80% of the train queries and scored (nDCG@10) on the other 20%
    against the old model's own queries on this index; the best is refitted on all pairs and saved only if it
    beats the old model, else nothing is saved and you should keep serving old-model queries.

    Example: hotswap fit-adapter --index indexes/old --new minilm --kind auto --out adapters/best
    """
    store = open_store(index)
    old_enc, new_enc = encoder_for_model_id(store.model_id), load_encoder(new)
    ds = load_dataset(dataset).restrict(store.ids, max_train_queries=max_train_queries,
                                        rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    doc_ids = sorted(rng.choice(store.ids, size=min(fit_docs, len(store)), replace=False).tolist())
    qids = list(ds.train_queries)
    Q_new, Q_old = new_enc.encode([ds.train_queries[q] for q in qids]), old_enc.encode([ds.train_queries[q] for q in qids])
    D_new, D_old = new_enc.encode([ds.corpus[d] for d in doc_ids]), store.get(doc_ids)

    def fit(label: str, rows) -> Adapter:
        X_new, X_old = np.vstack([Q_new[rows], D_new]), np.vstack([Q_old[rows], D_old])
        return make_preset(label, seed).fit(X_new, X_old, new_model_id=new_enc.id, old_model_id=store.model_id)

    weight = None
    if kind == "auto":
        labels = [p for p in PRESETS if not (needs_equal_dims(p) and new_enc.dim != old_enc.dim)]
        sel, weights = select_by_validation(fit, labels, store, qids, Q_new, Q_old, ds.train_qrels, new_enc.id,
                                            BLENDABLE, seed=seed)
        console.print(f"validation {sel.metric} on {sel.n_queries} held-out train queries:")
        for name, score in sel.scores.items():
            console.print(f"  {name:<28} {score:.4f}", highlight=False)
        if not sel.upgrade:
            console.print(f"[yellow]no adapter beats the old model on {sel.n_queries} held-out train queries: keep "
                          "serving old-model queries (mode old) until the index is backfilled; nothing saved[/]")
            return
        kind = sel.choice.removesuffix("+blend")
        weight = weights.get(kind) if sel.choice.endswith("+blend") else None
    start = time.perf_counter()
    adapter = fit(kind, list(range(len(qids))))
    (adapter if weight is None else QueryBlend(adapter, weight)).save(out)
    how = "" if weight is None else f", blended with old-model queries at weight {weight} (search with --mode blended)"
    console.print(f"fitted {kind} ({new_enc.id} -> {store.model_id}) on {adapter.n_fit_pairs_} pairs "
                  f"in {time.perf_counter() - start:.2f} s{how}; saved to {out}")
