"""Latency of merged search mid-backfill against one search of the whole gallery, measured side by side.

A gallery of N items (random unit vectors: speed does not depend on the content) with an old index (d_old)
and, for each backfill fraction, a ``FaissUpgrade`` whose new partition holds that share of the items
(d_new); ``merged`` = ``Searcher.for_upgrade(up).search((Q_new, Q_old), k, "merged", new_id)`` (old-model
query -> old partition, new-model query -> new partition, ``rank_merge``). It is compared with a single
index of the whole gallery: the new model's (a ``FaissStore`` of all N new vectors, new queries; the system
after a full re-index) and the old model's (the old store, old queries; the system before the upgrade).
The merged time is also split into its parts (each partition's search including the id mapping, and the
merge), measured on their own. Batch 1 and batch 256; all cases interleaved over ``--rounds`` rounds, each
case's median per-batch latency per round, best round kept. Warm-up first: the partition indexes are built
lazily on the first search, timed separately, as is ``refresh()`` after a writer (a second ``FaissUpgrade``
on the same folder, as a backfill process holds) adds a batch of 1024 items at 50 %. ``--json`` also
prints the results as one JSON line, ``--out PATH`` writes them to a file (nothing is written by default). The
target: merged <= 1.15x the new model's single index.

Run: ``.venv/bin/python benchmarks/merged_search.py [--n 100000 --dim-old 256 --dim-new 384] [--json] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hotswap.runinfo import hardware
from hotswap.io import atomic_write_json, json_safe
from hotswap.search import Searcher, rank_merge
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade, open_upgrade

from _synthetic import NEW, OLD, rows, unit  # benchmarks/ is on sys.path when run as a script


def latency_ms(fn, Q, batch: int, min_s: float) -> float:
    """Median ms per call of ``fn(batch of queries)``, cycling over the batches of ``Q`` for at least ``min_s``
    seconds and 3 calls."""
    n = len(Q[0]) if isinstance(Q, tuple) else len(Q)
    starts = range(0, n - batch + 1, batch)
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_s or len(times) < 3:
        i = starts[len(times) % len(starts)]
        t = time.perf_counter()
        fn(rows(Q, i, i + batch))
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim-old", type=int, default=256)
    ap.add_argument("--dim-new", type=int, default=384)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    ap.add_argument("--queries", type=int, default=1024)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--min-seconds", type=float, default=0.6, help="per case, batch and round (batch 1: half)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--target", type=float, default=1.15, help="max merged / single (new model) latency")
    ap.add_argument("--refresh-batch", type=int, default=1024)
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    ap.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    k, rng = args.k, np.random.default_rng(0)
    ids = [f"d{i}" for i in range(args.n)]
    X_old, X_new = unit(rng, args.n, args.dim_old), unit(rng, args.n, args.dim_new)
    Q_old, Q_new = unit(rng, args.queries, args.dim_old), unit(rng, args.queries, args.dim_new)
    order = rng.permutation(args.n)
    console = Console(width=max(Console().width, 110))
    with tempfile.TemporaryDirectory() as tmp:
        old = create_store(Path(tmp) / "old", model_id=OLD, dim=args.dim_old)
        old.add(ids, X_old, model_id=OLD)
        new_full = create_store(Path(tmp) / "new-full", model_id=NEW, dim=args.dim_new)
        new_full.add(ids, X_new, model_id=NEW)
        ups, build_s = {}, {}
        for f in args.fractions:
            up = create_upgrade(Path(tmp) / f"up-{f:g}", old, NEW, args.dim_new)
            done = order[: round(f * args.n)]
            for a in range(0, len(done), 10_000):  # the backfill's batches: one segment each
                sel = done[a:a + 10_000]
                up.add_backfilled([ids[i] for i in sel], X_new[sel], NEW)
            t = time.perf_counter()
            Searcher.for_upgrade(up).search((Q_new[:1], Q_old[:1]), k, "merged", NEW)  # builds the partitions
            build_s[f] = time.perf_counter() - t
            ups[f] = up
        single_new = Searcher(old, new_store=new_full)
        single_old = Searcher(old)
        single_new.search(Q_new[:1], k, "new", NEW)  # warm-up: parses the ids
        single_old.search(Q_old[:1], k, "old", OLD)

        part_results = {f: (up.old_part.search(Q_old, k, OLD), up.new_part.search(Q_new, k, NEW))
                        for f, up in ups.items()}  # the merge is timed on these

        def cases(f: float):
            up, (res_old, res_new) = ups[f], part_results[f]
            merged = Searcher.for_upgrade(up)
            yield "merged", (Q_new, Q_old), lambda q: merged.search(q, k, "merged", NEW)
            yield "single new", Q_new, lambda q: single_new.search(q, k, "new", NEW)
            yield "single old", Q_old, lambda q: single_old.search(q, k, "old", OLD)
            yield "old part", Q_old, lambda q: up.old_part.search(q, k, OLD)
            yield "new part", Q_new, lambda q: up.new_part.search(q, k, NEW)
            idx = np.arange(args.queries)  # the merge alone, on precomputed partition results
            yield "merge", idx, lambda i: rank_merge(res_old[0][i], res_old[1][i], res_new[0][i], res_new[1][i], k,
                                                     metric=up.metric)

        best: dict[tuple[float, int, str], float] = {}
        for _ in range(args.rounds):  # interleaved: drift of the machine's speed does not land on one case
            for f in args.fractions:
                for name, Q, fn in cases(f):
                    for batch, min_s in ((1, args.min_seconds / 2), (256, args.min_seconds)):
                        Qb = rows(Q, 0, 128) if batch == 1 else Q
                        ms = latency_ms(fn, Qb, batch, min_s)
                        key = (f, batch, name)
                        best[key] = min(best.get(key, np.inf), ms)

        # refresh(): another writer (a second process would do the same) adds a batch at 50 %
        mid = min(args.fractions, key=lambda f: abs(f - 0.5))
        reader, writer = ups[mid], open_upgrade(ups[mid].path)
        refresh_s, add_s = [], []
        for _ in range(3):
            pending = writer.pending_ids()[: args.refresh_batch]
            if not pending:
                break
            sel = np.array([int(i[1:]) for i in pending], dtype=np.int64)
            t = time.perf_counter()
            writer.add_backfilled(pending, X_new[sel], NEW)
            add_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            reader.refresh()
            refresh_s.append(time.perf_counter() - t)
        assert reader.counts() == writer.counts()

    title = (f"merged search mid-backfill: {args.n:,} docs, old {args.dim_old}-d / new {args.dim_new}-d, k={k}, "
             f"FAISS Flat (exact); median ms per batch, best of {args.rounds} rounds")
    table = Table(title=title)
    for col in ("backfilled", "batch", "merged", "single new", "single old", "merged / new", "merged / old",
                f"<= {args.target:g}x new"):
        table.add_column(col, justify="right")
    parts = Table(title="merged, part by part (each measured on its own, same rounds; ms per batch)")
    for col in ("backfilled", "batch", "old partition", "new partition", "rank_merge", "sum / merged"):
        parts.add_column(col, justify="right")
    results, all_pass = [], True
    for f in args.fractions:
        for batch in (1, 256):
            b = {name: best[(f, batch, name)] for name in
                 ("merged", "single new", "single old", "old part", "new part", "merge")}
            r_new, r_old = b["merged"] / b["single new"], b["merged"] / b["single old"]
            ok = r_new <= args.target
            all_pass &= ok
            table.add_row(f"{f:.0%}", str(batch), f"{b['merged']:.3f}", f"{b['single new']:.3f}",
                          f"{b['single old']:.3f}", f"{r_new:.2f}x", f"{r_old:.2f}x", "PASS" if ok else "FAIL")
            total = b["old part"] + b["new part"] + b["merge"]
            parts.add_row(f"{f:.0%}", str(batch), f"{b['old part']:.3f}", f"{b['new part']:.3f}",
                          f"{b['merge']:.3f}", f"{total / b['merged']:.2f}")
            results.append({"fraction": f, "batch": batch, **{f"{n.replace(' ', '_')}_ms": v for n, v in b.items()},
                            "merged_over_new": r_new, "merged_over_old": r_old, "pass": ok})
    console.print(table)
    console.print(parts)
    upkeep = Table(title="partition upkeep (not in the search latencies above)")
    for col in ("step", "seconds"):
        upkeep.add_column(col, justify="right")
    for f in args.fractions:
        upkeep.add_row(f"first search at {f:.0%} (builds both partition indexes)", f"{build_s[f]:.3f}")
    upkeep.add_row(f"writer add_backfilled({args.refresh_batch}) at {mid:.0%}, median of {len(add_s)}",
                   f"{statistics.median(add_s):.3f}")
    upkeep.add_row(f"reader refresh() after it (moves them), median of {len(refresh_s)}",
                   f"{statistics.median(refresh_s):.3f}")
    console.print(upkeep)
    console.print(f"target merged <= {args.target:g}x the new model's single index: "
                  f"{'PASS' if all_pass else 'FAIL'}")
    summary = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "results": results,
               "build_s": {str(f): s for f, s in build_s.items()}, "add_s": add_s, "refresh_s": refresh_s,
               "pass": all_pass}
    if args.json:
        print(json.dumps(summary))
    if args.out:
        atomic_write_json(args.out, json_safe(summary | {"hardware": hardware()}))
        console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
