"""Queries per second of each search mode on the same index, measured side by side in one run.

An old index of N x d_old and a new index of N x d_new (random unit vectors: speed does not depend on the
content); adapters fitted on random pairs. ``old`` = old queries -> old index; ``adapted (<name>)`` = new
queries -> adapter -> old index; ``new`` = new queries -> new index; ``blended`` = old query averaged with
the procrustes-adapted new query -> old index (the old query's own encoding is not timed). Batch 1 and
batch 256; modes interleaved over ``--rounds`` rounds, best round kept. ``--out`` also writes the rows as JSON
(nothing is written by default).

Run: ``.venv/bin/python benchmarks/search_modes.py [--n 100000 --dim-old 256 --dim-new 384] [--out PATH]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hotswap.adapters import make_adapter
from hotswap.runinfo import hardware
from hotswap.io import atomic_write_json, json_safe
from hotswap.search import QueryBlend, Searcher
from hotswap.store import create_store

from _synthetic import NEW, OLD, rows, unit  # benchmarks/ is on sys.path when run as a script


def qps(searcher: Searcher, Q, mode: str, model_id: str, batch: int, k: int, min_s: float) -> float:
    n = len(Q[0]) if isinstance(Q, tuple) else len(Q)
    searcher.search(rows(Q, 0, batch), k, mode, model_id)  # warm-up (builds the FAISS index lazily)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_s:
        for i in range(0, n - batch + 1, batch):
            searcher.search(rows(Q, i, i + batch), k, mode, model_id)
            done += batch
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim-old", type=int, default=256)
    ap.add_argument("--dim-new", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1024)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    ids = [f"d{i}" for i in range(args.n)]
    X_old, X_new = unit(rng, args.n, args.dim_old), unit(rng, args.n, args.dim_new)
    Q_old, Q_new = unit(rng, args.queries, args.dim_old), unit(rng, args.queries, args.dim_new)
    with tempfile.TemporaryDirectory() as tmp:
        old = create_store(Path(tmp) / "old", model_id=OLD, dim=args.dim_old)
        old.add(ids, X_old, model_id=OLD)
        new = create_store(Path(tmp) / "new", model_id=NEW, dim=args.dim_new)
        new.add(ids, X_new, model_id=NEW)
        fit = slice(0, 5000)
        cases = [("old", "old", None, Q_old, OLD), ("new", "new", None, Q_new, NEW)]
        for name in ("procrustes", "affine", "low_rank", "residual_mlp"):
            adapter = make_adapter(name).fit(X_new[fit], X_old[fit], new_model_id=NEW, old_model_id=OLD)
            cases.append((f"adapted ({name})", "adapted", adapter, Q_new, NEW))
        blend = QueryBlend(cases[2][2], 0.5)  # procrustes, w = 0.5 (old query encoding not included)
        cases.append(("blended (procrustes)", "blended", blend, (Q_new, Q_old), NEW))
        table = Table(title=f"search modes: {args.n:,} docs, old {args.dim_old}-d / new {args.dim_new}-d, "
                            f"k={args.k}, FAISS Flat (exact)")
        for col in ("mode", "q/s batch 1", "q/s batch 256", "vs old (batch 256)"):
            table.add_column(col, justify="right")
        # modes are interleaved over several rounds and the best round kept, so drift of the machine's
        # speed during the run does not land on one mode
        best: dict[str, list[float]] = {c[0]: [0.0, 0.0] for c in cases}
        for _ in range(args.rounds):
            for label, mode, adapter, Q, model_id in cases:
                s = Searcher(old, adapter=adapter, new_store=new, blend=adapter if mode == "blended" else None)
                q1 = qps(s, Q[:128], mode, model_id, 1, args.k, args.min_seconds / 2)
                q256 = qps(s, Q, mode, model_id, 256, args.k, args.min_seconds)
                best[label] = [max(best[label][0], q1), max(best[label][1], q256)]
        base = best["old"][1]
        for label, (q1, q256) in best.items():
            table.add_row(label, f"{q1:,.0f}", f"{q256:,.0f}", f"{q256 / base:.2f}x")
        Console().print(table)
    if args.out:
        rows_out = [{"mode": label, "qps_batch_1": q1, "qps_batch_256": q256, "vs_old_batch_256": q256 / base}
                    for label, (q1, q256) in best.items()]
        atomic_write_json(args.out, json_safe({"rows": rows_out, "hardware": hardware(), "config": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}))
        Console().print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
