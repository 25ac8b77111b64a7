"""PostgreSQL + pgvector (HNSW) against FAISS HNSW at scale, side by side in one run, on real embeddings.

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python benchmarks/backend_scale.py [--n 1000000 --queries 1000]
        [--flat-queries 100 --fraction 0.5 --batch 50000 --no-pg-flat --out results/backend_scale.json]
        [--model static384|static]

Data: texts from the bundled Debian package descriptions, in a seeded random order of the units (each document's
long description and each *train* query's short description): every sentence and every sliding window of 12
words (stride 1), deduplicated, until ``--n`` texts (if the corpus yields fewer, all of them, and ``n`` records
how many). Queries: ``--queries`` (+ 20 warm-up) seeded *test* queries (short descriptions), never data. Both
are encoded by a 384-d model2vec static model distilled (PCA to 384) from the bundled all-MiniLM-L6-v2, cached
in ``$HOTSWAP_HOME/models/static-minilm-pca384`` (``--model static``: the project's 256-d ``static`` model
instead, no distillation); the matrices are cached under ``$HOTSWAP_HOME/bench/backend_scale/`` keyed by n (and
the model), so a rerun skips the encoding. Rows are L2-normalised; the
metric is inner product. Ground truth: exact top-10 by ``faiss.IndexFlatIP``. Recall@10 counts a returned item
as a hit when its true score reaches the 10th exact score (minus 1e-5), so ties (texts that encode alike)
do not count as misses.

Rows (k = 10, one query at a time, latency p50/p99 over the scored queries after the warm-up ones):

* ``postgres/hnsw``: ``create_store("pg://DIR", ..., index="hnsw")`` (pgvector's HNSW: m=16,
  ef_construction=64; the store's ef_search), ``add`` in batches of ``--batch`` (COPY). The index exists before
  the rows arrive, so ``build_s`` is the insert time with the index present (``"build": "incremental"``;
  the store has no bulk build).
* ``postgres/flat``: the same with ``index="flat"``: an exact sequential scan (recall 1.0; no build). Searched
  with the first ``--flat-queries`` queries only (a scan of the whole table each). Afterwards, for comparison,
  ``CREATE INDEX ... USING hnsw`` over its loaded table (``--maintenance-work-mem``, ``--workers`` parallel
  maintenance workers; then dropped) gives the ``postgres/hnsw`` row's ``bulk_build_s``: what a bulk build would
  cost, a path the store does not offer (``--no-bulk-build`` skips it).
* ``faiss/hnsw``: ``faiss.IndexHNSWFlat`` (M=32, efConstruction=40: FAISS's defaults, what hotswap's "HNSW32"
  factory builds), added in batches of ``--batch``; ``build_s`` = that time (the graph is built on add), searched
  with ``efSearch`` = the pg store's ``ef_search`` so both graphs read the same number of candidates.

The upgrade's partition filter ("the old partition": items not backfilled yet): a seeded ``--fraction`` of the
items is backfilled into an upgrade's new model. The new-model vectors are the same vectors (this measures the
filter's cost, not a second model). pg: ``create_upgrade`` + ``add_backfilled`` (batches of ``--batch``),
then ``up.search_partition("old", q, 10, old_model)`` (the store's SQL anti-join against the new table, with
its widened ef_search and exact re-ask of short rows). FAISS: the same index searched with
``SearchParametersHNSW(sel=IDSelectorNot(IDSelectorBitmap(backfilled)))``, as ``PartitionIndex`` masks removed
items, at ``ef = ef_search / (1 - fraction)`` (the pg store's widening rule, capped at 1000), and again at
``PartitionIndex``'s own rule (``partition_index_*`` fields). Filtered recall is against exact search over the
not-backfilled items only. ``filtered_ratio`` = filtered p50 / unfiltered p50; ``filtered_short_rows``: queries
answered with fewer than k items; ``filtered_exact_fallbacks`` (pg): queries the store re-asked with an exact
scan; ``backfill_s`` (pg): the ``add_backfilled`` time (the new table has the old one's index). No setting is
tuned on the queries: every ef is a fixed rule, recorded per row.

Cost on 2 cores: pgvector's incremental HNSW inserts (~600 rows/s) dominate; n = 100,000 takes ~7 minutes in
all, n = 500,000 about 35.

Writes ``--out`` (default ``results/backend_scale.json``): ``{"n", "dim", "rows": [{"backend", "index",
"insert_per_s", "build_s", "recall@10", "p50_ms", "p99_ms", "filtered_p50_ms", ...}], "config", "hardware",
"data", "wall_s"}`` and prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

ROOT = Path(__file__).resolve().parents[1]
MODEL = "debian-static384@bench"
NEW_MODEL = "debian-static384-new@bench"
WIDTH = 12  # words per sliding window
WARMUP = 20  # queries run before the timed ones (not scored)
RECIPE = "sentences+windows12-stride1-v1"  # the text recipe, part of the cache key
FAISS_M, FAISS_EF_CONSTRUCTION = 32, 40
TIE_EPS = 1e-5
SENTENCE = re.compile(r"(?<=[.!?])\s+")


# ---- texts -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Texts:
    data: list[str]
    queries: list[str]  # WARMUP warm-up queries first, then the scored ones
    exhausted: bool  # the corpus yielded fewer distinct texts than asked
    units_used: int  # documents / train queries read


def pieces(text: str) -> Iterator[str]:
    """Every sentence of ``text`` and every window of ``WIDTH`` consecutive words (stride 1)."""
    for s in SENTENCE.split(text):
        if s.strip():
            yield " ".join(s.split())
    words = text.split()
    for i in range(max(1, len(words) - WIDTH + 1)):
        yield " ".join(words[i:i + WIDTH])


def load_texts(n: int, n_queries: int, seed: int) -> Texts:
    """Up to ``n`` distinct data texts and ``WARMUP + n_queries`` held-out test queries (see the docstring)."""
    from hotswap.data import load_dataset

    ds = load_dataset("debian")
    rng = np.random.default_rng(seed)
    test = sorted({" ".join(t.split()) for t in ds.queries.values()})
    queries = [test[i] for i in rng.choice(len(test), size=min(len(test), WARMUP + n_queries), replace=False)]
    units = [ds.corpus[d] for d in sorted(ds.corpus)] + [ds.train_queries[q] for q in sorted(ds.train_queries)]
    seen, data, used = set(queries), [], 0
    for u in rng.permutation(len(units)):
        used += 1
        for p in pieces(units[u]):
            if p not in seen:
                seen.add(p)
                data.append(p)
        if len(data) >= n:
            break
    return Texts(data[:n], queries, len(data) < n, used)


# ---- embeddings ----------------------------------------------------------------------------------------------
def encoder(model: str = "static384") -> tuple[Any, str]:
    """The 384-d static model (distilled once, cached), or the project's 256-d ``static`` if that fails or if
    ``model`` is ``"static"``."""
    from hotswap.encoders.assets import cache_home, minilm_folder, static_folder
    from model2vec import StaticModel

    if model == "static":
        return StaticModel.from_pretrained(str(static_folder())), static_folder().name
    target = cache_home() / "models" / "static-minilm-pca384"
    try:
        if not (target / "model.safetensors").is_file():
            from model2vec.distill import distill

            model = distill(model_name=str(minilm_folder()), pca_dims=384, device="cpu")
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                model.save_pretrained(tmp + "/m")
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp + "/m", target)
        return StaticModel.from_pretrained(str(target)), target.name
    except Exception as e:  # noqa: BLE001 - any failure of the distillation: fall back, recorded by name
        print(f"distilling at 384 dims failed ({e!r}); using the 256-d static model", file=sys.stderr)
        return StaticModel.from_pretrained(str(static_folder())), static_folder().name


def encode(model: Any, texts: list[str], batch: int = 8192) -> np.ndarray:
    """L2-normalised float32 rows."""
    parts = [model.encode(texts[i:i + batch], batch_size=1024, use_multiprocessing=False)
             for i in range(0, len(texts), batch)]
    X = np.ascontiguousarray(np.concatenate(parts).astype(np.float32))
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return X


def embeddings(n: int, n_queries: int, seed: int, log: Callable[[str], None],
               model: str = "static384") -> tuple[np.ndarray, np.ndarray, dict]:
    """``(X, Q, info)``, from the cache when this n, query count, seed and model were encoded before."""
    from hotswap.encoders.assets import cache_home

    which = "" if model == "static384" else f"|{model}"  # the default model's cache keys predate the option
    key = hashlib.sha256(f"{RECIPE}|{n}|{n_queries}|{seed}{which}".encode()).hexdigest()[:10]
    folder = cache_home() / "bench" / "backend_scale" / f"n{n}-q{n_queries}-s{seed}{which.replace('|', '-')}-{key}"
    if (folder / "info.json").is_file():
        log(f"embeddings from the cache {folder}")
        info = json.loads((folder / "info.json").read_text())
        return np.load(folder / "data.npy"), np.load(folder / "queries.npy"), info
    t = time.perf_counter()
    texts = load_texts(n, n_queries, seed)
    log(f"{len(texts.data):,} texts from {texts.units_used:,} units in {time.perf_counter() - t:.1f} s"
        + (" (corpus exhausted)" if texts.exhausted else ""))
    encoding, name = encoder(model)
    t = time.perf_counter()
    X, Q = encode(encoding, texts.data), encode(encoding, texts.queries)
    info = {"model": name, "dim": int(X.shape[1]), "n": len(X), "asked_n": n, "corpus_exhausted": texts.exhausted,
            "units_read": texts.units_used, "encode_s": round(time.perf_counter() - t, 2), "recipe": RECIPE,
            "examples": texts.data[:3], "query_examples": texts.queries[WARMUP:WARMUP + 3]}
    log(f"encoded {len(X):,} + {len(Q):,} texts ({name}, {X.shape[1]}-d) in {info['encode_s']} s")
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "data.npy", X)
    np.save(folder / "queries.npy", Q)
    (folder / "info.json").write_text(json.dumps(info, indent=2))
    return X, Q, info


# ---- ground truth and scoring --------------------------------------------------------------------------------
def exact(X: np.ndarray, Q: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """Exact top-k scores ``[nq, k]`` over ``X`` (or only its ``rows``)."""
    import faiss

    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X if rows is None else X[rows])
    return index.search(Q, k)[0]


def recall(X: np.ndarray, Q: np.ndarray, found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the k exact neighbours found: a row in ``found`` (-1: none) is a hit when its true score
    reaches the k-th exact score (ties count); each hit matched at most once, so the share is at most 1."""
    k, hits = truth.shape[1], 0
    for q, rows, best in zip(Q, found, truth):
        rows = np.unique(rows[rows >= 0])
        hits += min(k, int(np.sum(X[rows] @ q >= best[-1] - TIE_EPS)))
    return hits / (k * len(Q))


def timed(search: Callable[[np.ndarray], np.ndarray], Q: np.ndarray,
          warm: Callable[[], None] = lambda: None) -> tuple[np.ndarray, np.ndarray]:
    """Rows found per query and ms per query, one query at a time, after ``WARMUP`` untimed queries (then
    ``warm()`` is called)."""
    for q in Q[:WARMUP]:
        search(q[None])
    warm()
    found, ms = [], []
    for q in Q[WARMUP:]:
        t = time.perf_counter()
        found.append(search(q[None])[0])
        ms.append(1000 * (time.perf_counter() - t))
    return np.array(found, dtype=np.int64), np.array(ms)


def pct(ms: np.ndarray, p: float) -> float:
    return round(float(np.percentile(ms, p)), 3)


@dataclass(frozen=True)
class Bench:
    """What every backend gets: the data, the queries (warm-up first) and the exact answers."""
    X: np.ndarray
    Q: np.ndarray
    k: int
    truth: np.ndarray  # exact top-k scores of the scored queries
    pending: np.ndarray  # rows not backfilled, sorted
    done: np.ndarray  # rows backfilled, sorted
    truth_pending: np.ndarray  # exact top-k scores over the pending rows
    batch: int

    @property
    def fraction(self) -> float:
        return len(self.done) / len(self.X)


def make_bench(X: np.ndarray, Q: np.ndarray, k: int, fraction: float, seed: int, batch: int) -> Bench:
    order = np.random.default_rng(seed + 1).permutation(len(X))
    done, pending = np.sort(order[:round(fraction * len(X))]), np.sort(order[round(fraction * len(X)):])
    scored = Q[WARMUP:]
    return Bench(X, Q, k, exact(X, scored, k), pending, done, exact(X, scored, k, pending), batch)


def scores(b: Bench, found: np.ndarray, found_f: np.ndarray, nq: int, ms: np.ndarray, ms_f: np.ndarray) -> dict:
    """The row fields shared by every backend."""
    Qs = b.Q[WARMUP:WARMUP + nq]
    bad = np.isin(found_f, b.done) & (found_f >= 0)
    return {"recall@10": round(recall(b.X, Qs, found, b.truth[:nq]), 4), "p50_ms": pct(ms, 50),
            "p99_ms": pct(ms, 99), "filtered_p50_ms": pct(ms_f, 50), "filtered_p99_ms": pct(ms_f, 99),
            "filtered_recall@10": round(recall(b.X, Qs, found_f, b.truth_pending[:nq]), 4),
            "filtered_ratio": round(pct(ms_f, 50) / max(pct(ms, 50), 1e-9), 3),
            "filtered_short_rows": int(np.sum((found_f < 0).any(axis=1))),
            "filtered_backfilled_returned": int(bad.sum()), "fraction_backfilled": round(b.fraction, 4),
            "queries": nq, "k": b.k}


# ---- FAISS ----------------------------------------------------------------------------------------------------
def partition_index_ef(n_removed: int, n_kept: int) -> int:
    """``PartitionIndex._params``'s efSearch for an HNSW index with ``n_removed`` items masked (its rule)."""
    return int(min(1024, max(64, 32 * (1 + n_removed / max(1, n_kept)))))


def faiss_row(b: Bench, ef: int, log: Callable[[str], None]) -> dict:
    import faiss

    index = faiss.IndexHNSWFlat(b.X.shape[1], FAISS_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = FAISS_EF_CONSTRUCTION
    t = time.perf_counter()
    for s in range(0, len(b.X), b.batch):
        index.add(b.X[s:s + b.batch])
    build = time.perf_counter() - t
    log(f"faiss hnsw: built over {len(b.X):,} in {build:.1f} s")
    bitmap = np.zeros((len(b.X) + 7) // 8, np.uint8)
    np.bitwise_or.at(bitmap, b.done >> 3, (1 << (b.done & 7)).astype(np.uint8))
    keep = faiss.IDSelectorNot(faiss.IDSelectorBitmap(len(bitmap) * 8, faiss.swig_ptr(bitmap)))

    def run(params: faiss.SearchParametersHNSW) -> tuple[np.ndarray, np.ndarray]:
        return timed(lambda q: index.search(q, b.k, params=params)[1], b.Q)

    ef_f = min(1000, math.ceil(ef * len(b.X) / max(1, len(b.pending))))
    ef_pi = partition_index_ef(len(b.done), len(b.pending))
    found, ms = run(faiss.SearchParametersHNSW(efSearch=ef))
    found_f, ms_f = run(faiss.SearchParametersHNSW(sel=keep, efSearch=ef_f))
    found_pi, ms_pi = run(faiss.SearchParametersHNSW(sel=keep, efSearch=ef_pi))
    nq = len(found)
    return {"backend": "faiss", "index": "hnsw", "build": "incremental", "insert_per_s": round(len(b.X) / build, 1),
            "build_s": round(build, 2), **scores(b, found, found_f, nq, ms, ms_f), "m": FAISS_M,
            "ef_construction": FAISS_EF_CONSTRUCTION, "ef_search": ef, "filtered_ef_search": ef_f,
            "partition_index_ef_search": ef_pi, "partition_index_p50_ms": pct(ms_pi, 50),
            "partition_index_recall@10": round(recall(b.X, b.Q[WARMUP:], found_pi, b.truth_pending), 4),
            "threads": faiss.omp_get_max_threads()}


# ---- PostgreSQL -----------------------------------------------------------------------------------------------
def rows_of(ids: np.ndarray) -> np.ndarray:
    """Store ids ``"w<row>"`` back to rows (``None`` -> -1)."""
    return np.array([-1 if i is None else int(i[1:]) for i in ids], dtype=np.int64)


def pg_ef() -> tuple[int, int]:
    """The pg store's HNSW ``ef_search`` and pgvector's cap on it."""
    from hotswap.store.pg.store import EF_MAX, EF_SEARCH

    return EF_SEARCH, EF_MAX


def pg_versions(store: Any) -> dict[str, str]:
    conn = store.client.conn
    return {"postgres": conn.execute("SHOW server_version").fetchone()[0],
            "pgvector": conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0],
            "pg_shared_buffers": conn.execute("SHOW shared_buffers").fetchone()[0]}


def pg_load(store: Any, X: np.ndarray, rows: np.ndarray, batch: int, add: Callable) -> float:
    """Seconds to write ``X[rows]`` under ids ``w<row>`` with ``add(ids, vectors)`` in batches."""
    t = time.perf_counter()
    for s in range(0, len(rows), batch):
        part = rows[s:s + batch]
        add([f"w{r}" for r in part], X[part])
    return time.perf_counter() - t


def pg_row(b: Bench, folder: Path, index: str, nq: int, log: Callable[[str], None],
           after: Callable[[Any], dict] | None = None) -> tuple[dict, dict, dict]:
    """One pg row (``index`` "hnsw" or "flat"), the server's versions and what ``after(store)`` returns (run
    on the loaded store once the row is measured)."""
    from hotswap.store import create_store
    from hotswap.upgrade import create_upgrade

    store = create_store(f"pg://{folder / 'db'}", MODEL, b.X.shape[1], metric="ip", index=index)
    up = None
    try:
        versions = pg_versions(store)
        secs = pg_load(store, b.X, np.arange(len(b.X)), b.batch, lambda i, v: store.add(i, v, MODEL))
        log(f"pg {index}: {len(b.X):,} rows in {secs:.1f} s")
        Q = b.Q[:WARMUP + nq]
        found, ms = timed(lambda q: rows_of(store.search(q, b.k, MODEL)[1][0])[None], Q)
        log(f"pg {index}: {len(Q)} searches, p50 {pct(ms, 50)} ms")
        up = create_upgrade(folder / "upgrade", store, NEW_MODEL, b.X.shape[1])
        fill = pg_load(store, b.X, b.done, b.batch, lambda i, v: up.add_backfilled(i, v, NEW_MODEL))
        log(f"pg {index}: backfilled {len(b.done):,} rows in {fill:.1f} s")
        calls = count_exact(up.old)  # the store's exact re-ask of rows the HNSW filter left short
        found_f, ms_f = timed(lambda q: rows_of(up.search_partition("old", q, b.k, MODEL)[1][0])[None], Q,
                              warm=lambda: calls.__setitem__(0, 0))
        log(f"pg {index}: {len(Q)} filtered searches, p50 {pct(ms_f, 50)} ms")
        row = {"backend": "postgres", "index": index, "build": "incremental" if index == "hnsw" else "none",
               "insert_per_s": round(len(b.X) / secs, 1), "build_s": round(secs if index == "hnsw" else 0.0, 2),
               **scores(b, found, found_f, nq, ms, ms_f), "backfill_s": round(fill, 2),
               "filtered_exact_fallbacks": calls[0]}
        if index == "hnsw":
            ef, ef_max = pg_ef()
            row |= {"m": 16, "ef_construction": 64, "ef_search": ef,
                    "filtered_ef_search": min(ef_max, math.ceil(ef * len(b.X) / max(1, len(b.pending))))}
        if up is not None:
            up.close()
            up = None
        return row, versions, after(store) if after else {}
    finally:
        if up is not None:
            up.close()
        store.close()


def pg_bulk_build(store: Any, mem: str, workers: int, log: Callable[[str], None]) -> dict:
    """Seconds of ``CREATE INDEX ... USING hnsw`` (pgvector defaults m=16, ef_construction=64) over the loaded
    table of a flat store: what a bulk build would cost (the store itself offers none); the index is dropped."""
    from psycopg import sql

    table = store.table  # "schema.table" allowed
    schema, _, base = table.rpartition(".")
    index = f"{schema}.{base}_bulk_hnsw" if schema else f"{base}_bulk_hnsw"
    conn = store.client.conn
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(mem)))
    conn.execute(sql.SQL("SET max_parallel_maintenance_workers = {}").format(sql.Literal(int(workers))))
    t = time.perf_counter()
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING hnsw (vec vector_ip_ops)").format(
        sql.Identifier(f"{base}_bulk_hnsw"), sql.Identifier(*table.split("."))))
    secs = time.perf_counter() - t
    size = conn.execute("SELECT pg_relation_size(%s::regclass)", (index,)).fetchone()[0]
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(*index.split("."))))
    log(f"pg bulk hnsw build over {len(store):,} rows: {secs:.1f} s")
    return {"bulk_build_s": round(secs, 2), "bulk_build_maintenance_work_mem": mem,
            "bulk_build_parallel_workers": workers, "index_mib": round(size / 2**20, 1)}


def count_exact(store: Any) -> list[int]:
    """Count the pg store's exact re-asks (``_query(..., exact=True)``) by wrapping that method on this
    instance (a measurement hook); the returned one-item list is the count."""
    method, count = store._query, [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += bool(kwargs.get("exact"))
        return method(*args, **kwargs)
    store._query = counted
    return count


# ---- report ---------------------------------------------------------------------------------------------------
def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"backend_scale: {result['n']:,} x {result['dim']} ({result['data']['model']}), k=10, "
                    f"filter: {result['config']['fraction']:.0%} backfilled")
    cols = [("backend", "backend"), ("index", "index"), ("build", "build"), ("insert/s", "insert_per_s"),
            ("build s", "build_s"), ("recall@10", "recall@10"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
            ("filt p50 ms", "filtered_p50_ms"), ("filt/unfilt", "filtered_ratio"),
            ("filt recall", "filtered_recall@10"), ("ef / filt ef", None), ("queries", "queries")]
    for name, _ in cols:
        t.add_column(name, justify="left" if name in ("backend", "index", "build") else "right")
    for r in result["rows"]:
        ef = f"{r['ef_search']} / {r['filtered_ef_search']}" if "ef_search" in r else "-"
        t.add_row(*[ef if key is None else (f"{r[key]:,.3f}".rstrip("0").rstrip(".") if isinstance(r[key], float)
                                             else str(r[key])) for _, key in cols])
    Console(width=160).print(t)


# ---- main -----------------------------------------------------------------------------------------------------
def code() -> dict[str, str]:
    """Where the hotswap package ran from and the repository's commit (``git describe --dirty``)."""
    import subprocess

    import hotswap

    head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return {"hotswap": str(Path(hotswap.__file__).parent), "git": head.stdout.strip() or "unknown"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="data vectors (fewer if the corpus runs out)")
    p.add_argument("--queries", type=int, default=1000, help="scored queries (plus 20 warm-up ones)")
    p.add_argument("--flat-queries", type=int, default=100, help="scored queries for postgres/flat (a full scan each)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--fraction", type=float, default=0.5, help="share of items backfilled for the filtered search")
    p.add_argument("--batch", type=int, default=50_000, help="rows per add / add_backfilled / FAISS add")
    p.add_argument("--no-pg-flat", action="store_true", help="skip the postgres/flat row")
    p.add_argument("--no-pg", action="store_true", help="skip postgres altogether (FAISS only)")
    p.add_argument("--no-bulk-build", action="store_true",
                   help="skip timing a bulk CREATE INDEX ... USING hnsw over the flat row's loaded table")
    p.add_argument("--maintenance-work-mem", default="4GB", help="for the bulk build (the graph should fit)")
    p.add_argument("--workers", type=int, default=max(0, (os.cpu_count() or 1) - 1),
                   help="max_parallel_maintenance_workers for the bulk build (default: CPUs - 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", help="work folder for the pg databases (default: a temp folder, removed afterwards)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "backend_scale.json")
    p.add_argument("--model", choices=("static384", "static"), default="static384",
                   help="static384: minilm distilled to 384 dims (once, cached); static: the 256-d static model")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    from hotswap.runinfo import hardware, versions
    from hotswap.io import atomic_write_json, json_safe

    a, started, source = parse(argv), time.perf_counter(), code()  # the commit when the run starts

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {msg}", flush=True)

    X, Q, info = embeddings(a.n, a.queries, a.seed, log, a.model)
    b = make_bench(X, Q, a.k, a.fraction, a.seed, a.batch)
    log(f"exact answers for {len(Q) - WARMUP} queries")
    rows, pg_info = [faiss_row(b, pg_ef()[0], log)], {}
    work = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="hotswap-backend-scale-"))
    bulk = None if a.no_bulk_build else lambda store: pg_bulk_build(store, a.maintenance_work_mem, a.workers, log)
    try:
        if not a.no_pg:
            hnsw, pg_info, _ = pg_row(b, work / "pg-hnsw", "hnsw", len(Q) - WARMUP, log)
            rows.append(hnsw)
            log("pg hnsw: closed")
        if not (a.no_pg or a.no_pg_flat):
            flat, _, extra = pg_row(b, work / "pg-flat", "flat", min(len(Q) - WARMUP, a.flat_queries), log, bulk)
            rows.append(flat)
            hnsw |= extra
    finally:
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    rows.sort(key=lambda r: (r["backend"] != "postgres", r["index"] != "hnsw"))
    result = json_safe({"n": len(X), "dim": int(X.shape[1]), "rows": rows,
                        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
                        | {"warmup_queries": WARMUP, "window_words": WIDTH, "tie_eps": TIE_EPS},
                        "data": info, "hardware": hardware() | {"cpus": os.cpu_count()},
                        "versions": versions() | pg_info, "code": source,
                        "wall_s": round(time.perf_counter() - started, 1)})
    atomic_write_json(a.out, result)
    print_table(result)
    log(f"wrote {a.out} (wall {result['wall_s']} s)")
    return result


if __name__ == "__main__":
    main()
