"""``hotswap fit-adapter``: fit (or choose by validation) a new->old query adapter for one index."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional

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
    index: str = INDEX,
    new: str = typer.Option(..., help="the new encoder whose queries will be mapped into the index's space"),
    kind: str = typer.Option("procrustes", help=f"adapter: {', '.join(PRESETS)}, or 'auto' (validated choice)"),
    out: Path = typer.Option(None, help="folder to save the fitted adapter"),
    into: Optional[tuple[str, str]] = typer.Option(  # noqa: UP007 (typer reads Optional, not "X | None", here)
        None, "--into", help="COLLECTION NAME: also register the adapter in a served collection under NAME (what "
        "its clients name)"),
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
    (for a served collection: --into collections/debian minilm-auto; clients then send "adapter": "minilm-auto")
    """
    into = into or (None, None)
    if out is None and into[0] is None:
        raise typer.BadParameter("give --out FOLDER, or --into COLLECTION NAME (or both)")
    if into[0] is not None:
        from hotswap.serve.adapter_registry import check_name, registered

        if not (Path(into[0]) / "serving.json").is_file():
            raise typer.BadParameter(f"{into[0]} is not a collection (no serving.json); create it with hotswap serve")
        if check_name(into[1]) in registered(Path(into[0])):
            raise typer.BadParameter(f"adapter {into[1]!r} is already registered in {into[0]}; choose another name")
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
    fitted = adapter if weight is None else QueryBlend(adapter, weight)
    with tempfile.TemporaryDirectory() as tmp:
        target = out or Path(tmp) / "adapter"
        fitted.save(target)
        where = [str(out)] if out else []
        if into[0] is not None:
            from hotswap.serve.adapter_registry import register

            where.append(f"registered as {into[1]!r} in {register(Path(into[0]), into[1], target).parent.parent}")
    how = "" if weight is None else f", blended with old-model queries at weight {weight} (search with --mode blended)"
    console.print(f"fitted {kind} ({new_enc.id} -> {store.model_id}) on {adapter.n_fit_pairs_} pairs "
                  f"in {time.perf_counter() - start:.2f} s{how}; saved to {' and '.join(where)}")
