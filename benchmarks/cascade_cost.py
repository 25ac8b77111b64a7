"""What cascade search costs on a live stream of queries: latency, new-model encodes and quality, per budget.

    python benchmarks/cascade_cost.py [--n-docs 0 (= all 60,190)] [--queries 2000] [--pool 1000] [--zipf 1.0]
                                      [--budgets none,8] [--candidates 50] [--out results/cascade_cost.json]
                                      [--into results/cascade.json] [--plot results/cascade_cost.png]
                                      [--old static] [--new minilm]

The Debian corpus is indexed by the old model (``--old``, ``static``) and an upgrade to ``--new`` (``minilm``;
bundled names or model folders) is started with nothing backfilled. A seeded stream of ``--queries`` test
queries is drawn from a pool of ``--pool`` of them with Zipf-like repeats (``p(rank r) ~ 1 / r^zipf``), as a real
query log repeats its head. Each query is
served alone (batch 1), end to end through ``Searcher.search_texts`` with the *real* encoders: the query
encoded by the new model (and the old one for the blended candidate query), the search, and for ``cascade``
the new-model encoding of missing candidates, which the write-back commits to the upgrade every 256 items
(later queries find them encoded). One run measures side by side: ``cascade`` at each budget (a fresh upgrade
each), ``adapted`` (new query through the adapter) and ``merged`` (at 0 % backfilled: the old system).

The adapter and its blend weight are fitted on train queries (the demo's slice, ``hotswap_harness.experiments
.cascade_demo.fit_adapter_and_blend``); no test query feeds any choice. Reported at 100, 250, 500, 1000 and
2000 queries served: cumulative nDCG@10 and encodes per query, p50 / p99 latency, and the same over the last
window. A second measurement times the cascade on a *fully backfilled* upgrade of the demo's slice (whose new
vectors are cached) against a search of the new index: the 100 % cost ratio (target <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.encoders.cache import encode_cached
from hotswap.encoders.replay import ReplayEncoder
from hotswap_harness.experiments.cascade_demo import fit_adapter_and_blend
from hotswap.figures import save_png
from hotswap.io import atomic_write_json
from hotswap.metrics import per_query_metrics, run_from_search
from hotswap.search import Searcher
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade

CHECKPOINTS = (100, 250, 500, 1000, 2000)


def parse_budgets(text: str) -> list[int | None]:
    return [None if b.strip().lower() in ("none", "unlimited") else int(b) for b in text.split(",") if b.strip()]


def zipf_stream(pool: list[str], n: int, s: float, seed: int) -> list[str]:
    """``n`` draws from ``pool`` (shuffled, seeded) with ``p(rank r) ~ 1 / r^s``."""
    rng = np.random.default_rng(seed)
    order = [pool[i] for i in rng.permutation(len(pool))]
    p = 1.0 / np.arange(1, len(order) + 1) ** s
    return [order[i] for i in rng.choice(len(order), size=n, p=p / p.sum())]


def serve_stream(searcher: Searcher, stream: list[str], texts: dict[str, str], qrels: dict, mode: str,
                 options: dict, checkpoints: list[int], k: int = 10) -> list[dict]:
    """Serve ``stream`` one query at a time; points at each checkpoint (cumulative and last-window stats)."""
    lat, ndcg, enc = [], [], []
    points, last, encoded = [], 0, 0
    for n, qid in enumerate(stream, 1):
        t0 = time.perf_counter()
        _, I = searcher.search_texts([texts[qid]], k, mode, **options)
        lat.append(1e3 * (time.perf_counter() - t0))
        now = searcher.cascade_stats().get("encodes", 0)
        enc.append(now - encoded)
        encoded = now
        ndcg.append(per_query_metrics({qid: qrels[qid]}, run_from_search([qid], I), ("ndcg@10",))["ndcg@10"][qid])
        if n in checkpoints:
            w = slice(last, n)
            points.append({"queries": n, "ndcg@10": float(np.mean(ndcg)), "encodes_per_query": float(np.mean(enc)),
                           "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                           "window": [last, n], "window_ndcg@10": float(np.mean(ndcg[w])),
                           "window_encodes_per_query": float(np.mean(enc[w])),
                           "window_p50_ms": float(np.percentile(lat[w], 50)),
                           "window_p99_ms": float(np.percentile(lat[w], 99))})
            last = n
    searcher.flush()
    return points


def full_backfill_ratio(slice_ds, old_enc, new_enc, adapter, blend, root: Path, n_queries: int, seed: int) -> dict:
    """Per-query ms of cascade (G = 50) on a fully backfilled upgrade vs the new index, same queries, batch 1."""
    ids = list(slice_ds.corpus)
    docs = [slice_ds.corpus[i] for i in ids]
    D_old, D_new = encode_cached(old_enc, docs)[0], encode_cached(new_enc, docs)[0]
    old = create_store(root / "full_old", model_id=old_enc.id, dim=old_enc.dim)
    old.add(ids, D_old, model_id=old_enc.id)
    new = create_store(root / "full_new", model_id=new_enc.id, dim=new_enc.dim)
    new.add(ids, D_new, model_id=new_enc.id)
    up = create_upgrade(root / "full_up", old, new_enc.id, new_enc.dim)
    replay = ReplayEncoder(new_enc.id, ids, D_new)
    plan_backfill(up, "random", replay, lambda x: x, seed=seed)
    BackfillRunner(up, lambda x: x, LocalExecutor(replay), 1024, progress=False).run()
    qids = list(slice_ds.queries)[:n_queries]
    Qn = encode_cached(new_enc, [slice_ds.queries[q] for q in qids])[0]
    Qo = encode_cached(old_enc, [slice_ds.queries[q] for q in qids])[0]
    cascade = Searcher.for_upgrade(up, old_encoder=old_enc, new_encoder=new_enc, adapter=adapter, blend=blend,
                                   texts=lambda x: [slice_ds.corpus[i] for i in x])
    reindex = Searcher(new, new_store=new)

    def per_query_ms(fn) -> float:
        fn(0)
        t0 = time.perf_counter()
        for r in range(len(qids)):
            fn(r)
        return 1e3 * (time.perf_counter() - t0) / len(qids)

    search_cascade = per_query_ms(lambda r: cascade.search((Qn[r:r + 1], Qo[r:r + 1]), 10, "cascade", new_enc.id,
                                                           candidates=50))
    search_new = per_query_ms(lambda r: reindex.search(Qn[r:r + 1], 10, "new", new_enc.id))
    texts = [slice_ds.queries[q] for q in qids]
    e2e_cascade = per_query_ms(lambda r: cascade.search_texts(texts[r:r + 1], 10, "cascade", candidates=50))
    reindex.new_encoder = new_enc
    e2e_new = per_query_ms(lambda r: reindex.search_texts(texts[r:r + 1], 10, "new"))
    return {"n_docs": len(ids), "n_queries": len(qids), "encodes": cascade.cascade_stats()["encodes"],
            "search_ms": {"cascade": search_cascade, "new": search_new, "ratio": search_cascade / search_new},
            "end_to_end_ms": {"cascade": e2e_cascade, "new": e2e_new, "ratio": e2e_cascade / e2e_new},
            "target_ratio": 1.3}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for s in result["streams"]:
        x = [p["queries"] for p in s["points"]]
        label = s["mode"] + ("" if s["mode"] != "cascade" else
                             f" budget {'unlimited' if s['budget'] is None else s['budget']}")
        a.plot(x, [p["window_encodes_per_query"] for p in s["points"]], marker="o", label=label)
        b.plot(x, [p["window_ndcg@10"] for p in s["points"]], marker="o", label=label)
    a.set_ylabel("new-model encodes per query (window)")
    b.set_ylabel("nDCG@10 (window)")
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("queries served")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"cascade on a live stream: {result['n_docs']} docs, 0 % backfilled")
    fig.tight_layout()
    save_png(fig, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-docs", type=int, default=0, help="seeded corpus subset (0 = the whole corpus)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--pool", type=int, default=1000, help="distinct test queries the stream draws from")
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--budgets", default="none,8")
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--full-queries", type=int, default=300, help="queries of the 100 %% backfilled cost ratio")
    ap.add_argument("--slice-docs", type=int, default=6000, help="the demo's slice (adapter fit, 100 %% ratio)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("results/cascade_cost.json"))
    ap.add_argument("--into", default="results/cascade.json",
                    help="also store the streams in this cascade.json ('' to skip)")
    ap.add_argument("--plot", default="results/cascade_cost.png", help="'' to skip")
    ap.add_argument("--old", default="static", help="the model of the index (a bundled name or a model folder)")
    ap.add_argument("--new", default="minilm", help="the model the upgrade moves to")
    args = ap.parse_args(argv)
    started, console = time.perf_counter(), Console(width=120)
    old_enc, new_enc = load_encoder(args.old), load_encoder(args.new)
    ds = load_dataset("debian", args.n_docs or None, None, None, args.seed)
    slice_ds = load_dataset("debian", args.slice_docs, 3000, 1500, args.seed)
    ids = list(ds.corpus)
    qrels = {q: rel for q, rel in ds.qrels.items() if q in ds.queries and rel}
    checkpoints = sorted({c for c in CHECKPOINTS if c < args.queries} | {args.queries})
    pool = sorted(qrels)
    if len(pool) > args.pool:
        pool = [pool[i] for i in sorted(np.random.default_rng(args.seed).choice(len(pool), args.pool, replace=False))]
    stream = zipf_stream(pool, args.queries, args.zipf, args.seed)
    console.print(f"{len(ids)} docs, stream of {len(stream)} queries ({len(set(stream))} distinct)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        D_old = encode_cached(old_enc, [ds.corpus[i] for i in ids])[0]
        old = create_store(root / "old", model_id=old_enc.id, dim=old_enc.dim)
        old.add(ids, D_old, model_id=old_enc.id)
        index_s = time.perf_counter() - t0
        # adapter + blend: fitted on the demo slice's train queries and documents (cached encodings)
        sdocs = list(slice_ds.corpus)
        fit_ids = [sdocs[i] for i in np.random.default_rng(args.seed).choice(len(sdocs), min(3000, len(sdocs)),
                                                                             replace=False)]
        tq = list(slice_ds.train_queries)
        Tn = encode_cached(new_enc, [slice_ds.train_queries[q] for q in tq])[0]
        To = encode_cached(old_enc, [slice_ds.train_queries[q] for q in tq])[0]
        Dn = encode_cached(new_enc, [slice_ds.corpus[i] for i in fit_ids])[0]
        Do = encode_cached(old_enc, [slice_ds.corpus[i] for i in fit_ids])[0]
        slice_old = create_store(root / "slice_old", model_id=old_enc.id, dim=old_enc.dim)
        slice_old.add(sdocs, encode_cached(old_enc, [slice_ds.corpus[i] for i in sdocs])[0], model_id=old_enc.id)
        adapter, blend = fit_adapter_and_blend("procrustes", Tn, To, Dn, Do, slice_old, tq, slice_ds.train_qrels,
                                               new_enc, old_enc, seed=args.seed)
        new_enc.encode(["warm up"], show_progress=False)
        old_enc.encode(["warm up"], show_progress=False)
        variants = [("cascade", b, {"candidates": args.candidates, "encode_budget": b})
                    for b in parse_budgets(args.budgets)]
        variants += [("adapted", None, {}), ("merged", None, {})]
        streams = []
        for n, (mode, budget, options) in enumerate(variants):
            up = create_upgrade(root / f"up-{n}", old, new_enc.id, new_enc.dim)
            searcher = Searcher.for_upgrade(up, old_encoder=old_enc, new_encoder=new_enc, adapter=adapter,
                                            blend=blend, texts=lambda x: [ds.corpus[i] for i in x])
            t0 = time.perf_counter()
            points = serve_stream(searcher, stream, ds.queries, qrels, mode, options, checkpoints)
            stats = searcher.cascade_stats()
            streams.append({"mode": mode, "budget": budget, "candidates": options.get("candidates"),
                            "points": points, "written_back": stats.get("written", 0),
                            "demanded": stats.get("demanded", 0), "wall_s": time.perf_counter() - t0})
            label = mode if mode != "cascade" else f"cascade budget {'unlimited' if budget is None else budget}"
            last = points[-1]
            console.print(f"{label}: nDCG@10 {last['ndcg@10']:.3f}, {last['encodes_per_query']:.2f} encodes/query, "
                          f"p50 {last['p50_ms']:.1f} ms, p99 {last['p99_ms']:.1f} ms "
                          f"({streams[-1]['wall_s']:.0f} s)")
        full = full_backfill_ratio(slice_ds, old_enc, new_enc, adapter, blend, root, args.full_queries, args.seed)
    result = {"n_docs": len(ids), "old_model": old_enc.id, "new_model": new_enc.id, "queries": len(stream),
              "distinct_queries": len(set(stream)), "pool": args.pool, "zipf": args.zipf, "k": 10,
              "blend_weight": blend.weight, "index_build_s": index_s, "streams": streams,
              "full_backfill": full, "config": vars(args) | {"out": str(args.out)},
              "hardware": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": sys.version.split()[0]},
              "wall_s": time.perf_counter() - started}
    _print(console, result)
    atomic_write_json(args.out, result)
    if args.into:
        _merge_into(Path(args.into), result)
    if args.plot:
        plot(result, Path(args.plot))
    return result


def _print(console: Console, result: dict) -> None:
    table = Table(title=f"stream of {result['queries']} queries ({result['distinct_queries']} distinct), "
                        f"{result['n_docs']} docs, 0 % backfilled; cumulative at each point")
    for col in ("system", "queries", "nDCG@10", "enc/q", "p50 ms", "p99 ms", "window nDCG@10", "window enc/q"):
        table.add_column(col, justify="left" if col == "system" else "right")
    for s in result["streams"]:
        label = s["mode"] if s["mode"] != "cascade" else \
            f"cascade B={'inf' if s['budget'] is None else s['budget']}"
        for p in s["points"]:
            table.add_row(label, str(p["queries"]), f"{p['ndcg@10']:.3f}", f"{p['encodes_per_query']:.2f}",
                          f"{p['p50_ms']:.1f}", f"{p['p99_ms']:.1f}", f"{p['window_ndcg@10']:.3f}",
                          f"{p['window_encodes_per_query']:.2f}")
    console.print(table)
    f = result["full_backfill"]
    console.print(f"100 % backfilled ({f['n_docs']} docs, {f['n_queries']} queries, batch 1): cascade "
                  f"{f['search_ms']['cascade']:.2f} ms vs new index {f['search_ms']['new']:.2f} ms per search "
                  f"({f['search_ms']['ratio']:.2f}x); end to end with query encoding "
                  f"{f['end_to_end_ms']['cascade']:.2f} vs {f['end_to_end_ms']['new']:.2f} ms "
                  f"({f['end_to_end_ms']['ratio']:.2f}x; target <= {f['target_ratio']}); {f['encodes']} documents "
                  "encoded")


def _merge_into(path: Path, result: dict) -> None:
    """Put the streams into ``results/cascade.json``, keeping the rest: ``streams`` holds one cascade stream per
    budget, ``stream`` the first of them, ``stream_baselines`` the adapted and merged streams of the same run."""
    doc = json.loads(path.read_text()) if path.exists() else {}
    cascade = [{"budget": s["budget"], "mode": s["mode"], "candidates": s["candidates"], "points": s["points"]}
               for s in result["streams"] if s["mode"] == "cascade"]
    doc["streams"], doc["stream"] = cascade, cascade[0] if cascade else None
    doc["stream_baselines"] = [{"mode": s["mode"], "points": s["points"]} for s in result["streams"]
                               if s["mode"] != "cascade"]
    doc["stream_run"] = {"n_docs": result["n_docs"], "queries": result["queries"],
                         "distinct_queries": result["distinct_queries"], "full_backfill": result["full_backfill"]}
    atomic_write_json(path, doc)


if __name__ == "__main__":
    main()
