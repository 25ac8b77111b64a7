"""An upgrade chain v1 -> v2 -> v3 (static -> minilm -> mpnet) served from the v1 index: composed vs direct.

    .venv/bin/python benchmarks/upgrade_chain.py [--kind procrustes|affine] [--max-docs 6000] [--out PATH]
        [--models static,minilm,mpnet]

The corpus is indexed once by v1 (``static``). Adapters are fitted as in the demo
(``hotswap_harness.experiments.upgrade_demo``): on paired embeddings of the *train* queries plus a seeded sample of
``--fit-docs`` corpus documents, the same sample for every adapter; *test* queries are never fitted on.
Rows (nDCG@10 and recall@10 on the test queries):

* ``old``          v1 queries -> v1 index (nobody upgraded);
* ``v2 adapted``   v2 queries -> ``A_{2→1}`` -> v1 index (the first upgrade);
* ``v3 composed``  v3 queries -> ``A_{3→1} = A_{2→1} ∘ A_{3→2}`` -> v1 index (``ComposedAdapter``, saved,
  recorded in the store's ``chain.json`` and loaded back before serving);
* ``v3 direct``    v3 queries -> ``A_{3→1}`` fitted directly on (v3, v1) pairs -> v1 index;
* ``v2 re-index`` / ``v3 re-index``  queries on an index rebuilt by that model (the upper bounds).

``µs/q`` is the adapter's ``transform`` per query (median of repeats) at batch 1 and over the whole test set;
``cos→v1`` is the mean cosine between a mapped test query and the v1 embedding of the same query, a direct
measure of how far the adapter path lands from where v1 would have put it (errors compound along a chain).
Embeddings come from the cache under ``$HOTSWAP_HOME/embeddings``. ``--models`` names v1, v2 and v3 (bundled
names or model folders).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hotswap.adapters import load_adapter
from hotswap.adapters.chain import ComposedAdapter
from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap_harness.experiments.upgrade_demo import DemoConfig, UpgradeSlice, _build_store, _encode, fit_adapters
from hotswap.io import atomic_write_json, json_safe
from hotswap.metrics import evaluate_run, run_from_search
from hotswap.search import Searcher
from hotswap.store.chain import read_chain, record_chain

from adapter_overhead import per_query_us  # benchmarks/ is on sys.path when run as a script

MODELS = ("static", "minilm", "mpnet")  # v1, v2, v3 by default
METRICS = ("ndcg@10", "recall@10")
SLICE = UpgradeSlice()


def mean_cosine(A: np.ndarray, B: np.ndarray) -> float:
    num = np.sum(A * B, axis=1)
    return float(np.mean(num / np.maximum(np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1), 1e-12)))


def run(args: argparse.Namespace) -> dict:
    timer, started = StageTimer(), time.perf_counter()
    cfg = DemoConfig(max_docs=args.max_docs, max_train_queries=args.max_train_queries,
                     max_test_queries=args.max_test_queries, fit_docs=args.fit_docs, seed=args.seed)
    with timer("load data"):
        ds = load_dataset(cfg.dataset, cfg.max_docs, cfg.max_train_queries, cfg.max_test_queries, cfg.seed)
    with timer("load models"):
        enc = dict(zip(("v1", "v2", "v3"), (load_encoder(m) for m in args.models)))
    doc_ids, qids, tqids = list(ds.corpus), list(ds.queries), list(ds.train_queries)
    docs = [ds.corpus[d] for d in doc_ids]
    D, Q, T = {}, {}, {}
    for v, e in enc.items():
        with timer(f"encode {e.name}"):
            Q[v] = _encode(e, [ds.queries[q] for q in qids], cfg)
            T[v] = _encode(e, [ds.train_queries[q] for q in tqids], cfg)
            D[v] = _encode(e, docs, cfg)
    sample = np.random.default_rng(cfg.seed).choice(len(doc_ids), size=min(cfg.fit_docs, len(doc_ids)), replace=False)

    def fit(new: str, old: str):  # the demo's protocol: train queries + the document sample
        X_new, X_old = np.vstack([T[new], D[new][sample]]), np.vstack([T[old], D[old][sample]])
        fitted, _ = fit_adapters([args.kind], X_new, X_old, enc[new], enc[old], cfg.seed, timer, f"fit {new}->{old}")
        return fitted[args.kind]

    a21, a32, a31 = fit("v2", "v1"), fit("v3", "v2"), fit("v3", "v1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with timer("build indexes"):
            stores = {v: _build_store(root / f"index_{v}", enc[v], doc_ids, D[v]) for v in ("v1", "v2", "v3")}
        # serve the chain the way an operator would: save the links, record them on the v1 store, load back
        paths = [str(a21.save(root / "a21")), str(a32.save(root / "a32"))]
        record_chain(root / "index_v1", [enc[v].id for v in ("v1", "v2", "v3")], paths)
        recorded = read_chain(root / "index_v1")
        assert recorded is not None
        a21_disk, a32_disk = (load_adapter(p) for p in recorded.adapters)
        composed = load_adapter(ComposedAdapter([a32_disk, a21_disk]).save(root / "a31_composed"))
        name = {v: e.name for v, e in enc.items()}
        paths_by_method = {
            "v2 adapted": ("v2", a21, f"{name['v2']} -> {name['v1']}"),
            "v3 composed": ("v3", composed, f"{name['v3']} -> {name['v2']} -> {name['v1']}"),
            "v3 direct": ("v3", a31, f"{name['v3']} -> {name['v1']}"),
        }
        runs, rows_extra = {}, {}
        with timer("search"):
            v1 = Searcher(stores["v1"])
            runs["old"] = v1.search(Q["v1"], args.k, "old", enc["v1"].id)[1]
            rows_extra["old"] = {"path": f"{name['v1']} -> {name['v1']} index", "us_per_query": None,
                                 "us_per_query_batch": None, "cos_to_v1": 1.0}
            for method, (v, adapter, path) in paths_by_method.items():
                runs[method] = Searcher(stores["v1"], adapter=adapter).search(Q[v], args.k, "adapted", enc[v].id)[1]
                cos = mean_cosine(adapter.transform(Q[v]), Q["v1"])
                rows_extra[method] = {"path": f"{path} index", "cos_to_v1": cos}
            for v in ("v2", "v3"):
                runs[f"{v} re-index"] = Searcher(stores[v]).search(Q[v], args.k, "old", enc[v].id)[1]
                rows_extra[f"{v} re-index"] = {"path": f"{enc[v].name} -> {enc[v].name} index", "us_per_query": None,
                                               "us_per_query_batch": None, "cos_to_v1": None}
    with timer("time adapters"):
        for method, (v, adapter, _) in paths_by_method.items():
            q1 = np.ascontiguousarray(Q[v][:1])
            rows_extra[method]["us_per_query"] = per_query_us(lambda: adapter.transform(q1), 1, args.repeats)
            rows_extra[method]["us_per_query_batch"] = per_query_us(lambda: adapter.transform(Q[v]), len(Q[v]),
                                                                    max(5, args.repeats // 50))
    order = ["old", "v2 adapted", "v3 composed", "v3 direct", "v2 re-index", "v3 re-index"]
    rows = [{"method": m, **evaluate_run(ds.qrels, run_from_search(qids, runs[m]), METRICS), **rows_extra[m]}
            for m in order]
    return {
        "dataset": ds.name, "dataset_note": ds.note, "dataset_checksum": ds.checksum, "rows": rows,
        "kind": args.kind, "models": {v: enc[v].id for v in enc}, "dims": {v: enc[v].dim for v in enc},
        "n_docs": len(doc_ids), "n_test_queries": len(qids), "n_train_queries": len(tqids),
        "n_fit_pairs": len(tqids) + len(sample), "k": args.k, "seed": cfg.seed, "max_docs": cfg.max_docs,
        "composed_chain": composed.model_chain, "wall_s": round(time.perf_counter() - started, 1),
        "timings_s": timer.seconds, "versions": versions(), "hardware": hardware(),
    }


def table(result: dict, names: list[str]) -> Table:
    old = result["rows"][0]
    v1, v2, v3 = names
    t = Table(title=f"upgrade chain {v1} -> {v2} -> {v3} served from the {v1} index ({result['kind']}); "
                    f"{result['dataset']}: {result['n_docs']} docs, {result['n_test_queries']} test queries")
    for col in ("method", "path", "nDCG@10", "R@10", "ΔnDCG vs old", "cos→v1", "µs/q b=1",
                f"µs/q b={result['n_test_queries']}"):
        t.add_column(col, justify="left" if col in ("method", "path") else "right")
    fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
    for r in result["rows"]:
        t.add_row(r["method"], r["path"], f"{r['ndcg@10']:.3f}", f"{r['recall@10']:.3f}",
                  f"{r['ndcg@10'] - old['ndcg@10']:+.3f}", fmt(r["cos_to_v1"], ".3f"), fmt(r["us_per_query"], ".2f"),
                  fmt(r["us_per_query_batch"], ".3f"))
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=("procrustes", "affine"), default="procrustes")
    ap.add_argument("--max-docs", type=int, default=SLICE.max_docs)
    ap.add_argument("--max-train-queries", type=int, default=SLICE.max_train_queries)
    ap.add_argument("--max-test-queries", type=int, default=SLICE.max_test_queries)
    ap.add_argument("--fit-docs", type=int, default=SLICE.fit_docs)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2000, help="timing repeats at batch 1 (whole batch: a 50th)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/upgrade_chain.json")
    ap.add_argument("--models", type=lambda t: t.split(","), default=list(MODELS),
                    help="v1,v2,v3: bundled names or model folders (default static,minilm,mpnet)")
    args = ap.parse_args(argv)
    if len(args.models) != 3:
        ap.error("--models takes three models: v1,v2,v3")
    result = run(args)
    names = [load_encoder(m).name for m in args.models]  # loaded by run() already (cached)
    Console(width=160).print(table(result, names))
    print(f"wall {result['wall_s']:.1f} s; models {result['models']}; fit pairs {result['n_fit_pairs']}")
    atomic_write_json(args.out, json_safe(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
