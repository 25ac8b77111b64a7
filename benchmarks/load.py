"""Load test of ``hotswap serve``: latency percentiles and errors at 1, 8 and 32 clients, idle and mid-backfill.

    python benchmarks/load.py [--n-docs 6000 --old static --new minilm --requests 300 --time-cap 60]

A bounded client on 127.0.0.1: for each concurrency level it sends a fixed number of requests from that many
concurrent clients (httpx, asyncio): ``POST /search`` (Debian test queries, k = 10, one query per request) and,
with ``--write-share`` (0.1 by default), every 10th an upsert of one document (``POST /documents``: an indexed
id with another document's real text; during an upgrade it is encoded by both models), and
stops early at ``--time-cap`` seconds; latency is measured per request on the client, after ``WARMUP``
uncounted requests. Each level runs in three
states: ``idle`` (the collection served by ``--old``, mode ``old``: one cheap encoding), ``paused`` (an upgrade
to ``--new`` exists but is paused: mode ``merged``, both models encode each query, as Seo et al.'s rank merge
needs, and nothing re-embeds) and ``running`` (the same, while the backfill re-embeds beside the queries;
``backfill_running`` true). The backfill is resumed before each loaded level and paused after it, so every
running row really ran beside re-embedding (``backfill_still_running_at_end`` says so); it is rolled back at
the end. ``paused`` isolates what the backfill costs the queries from what the second encoding costs.

Writes ``results/load.json``: ``{"rows": [{"backend", "clients", "backfill_running", "requests", "errors",
"p50_ms", "p95_ms", "p99_ms", "state", "mode", "search_p99_ms", "write_p99_ms", ...}], ...}`` (``p99_ms`` over
every request of the level, searches and writes). Targets: zero errors; p99 during backfill <= 1.5 x p99 of the
same work with the upgrade paused (``p99_ratio_backfill_vs_paused``, per client count) while the backfill keeps
>= 0.5 of its unloaded rate (``backfill_share_of_unloaded``; ``met_vs_paused``); the older p99 <= 2 x idle
(``p99_ratio_backfill_vs_idle``, ``met``) is kept for comparison. ``--queries-first`` serves with the backfill
in a nice-19 worker process (``hotswap.backfill.niced_executor``).
Each backend (``--backends faiss,qdrant,milvus``) gets its own fresh collection and server process.
``--allow-model NAME=FOLDER`` offers a model folder to upgrade to (``--new NAME``), as ``hotswap serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 5  # uncounted requests before each level
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import kept_rows, scheme  # noqa: E402
from faults import free_port, wait_ready  # noqa: E402


async def level(url: str, queries: list[str], clients: int, n: int, cap: float,
                writes: list[tuple[str, str]] = (), write_every: int = 0) -> dict:
    """``n`` requests from ``clients`` concurrent clients: searches, and with ``write_every`` every that many-th
    request an upsert of one document (``writes``: real ids with another document's real text)."""
    lat, kinds, errors, statuses, sent = [], [], 0, {}, 0
    deadline = time.monotonic() + cap
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for q in queries[-WARMUP:]:  # not counted: the first calls after a state change load and warm models
            await client.post("/search", json={"query": q, "k": 10})
        async def worker(w: int) -> None:
            nonlocal errors, sent
            while sent < n and time.monotonic() < deadline:
                j = sent
                sent += 1
                write = bool(write_every) and j % write_every == write_every - 1
                if write:
                    doc_id, text = writes[(j // write_every) % len(writes)]
                    path, body = "/documents", {"documents": [{"id": doc_id, "text": text}]}
                else:
                    path, body = "/search", {"query": queries[j % len(queries)], "k": 10}
                t0 = time.perf_counter()
                try:
                    r = await client.post(path, json=body)
                    ok = r.status_code == 200
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                except httpx.HTTPError:
                    ok = False
                lat.append((time.perf_counter() - t0) * 1000)
                kinds.append(write)
                errors += not ok
        t0 = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        wall = time.monotonic() - t0
    lat_a, kinds_a = np.asarray(lat), np.asarray(kinds, bool)

    def pct(x: np.ndarray) -> list[float]:
        return [float(v) for v in np.percentile(x, [50, 95, 99])] if len(x) else [float("nan")] * 3
    p, ps, pw = pct(lat_a), pct(lat_a[~kinds_a]), pct(lat_a[kinds_a])
    return {"requests": len(lat), "errors": errors, "p50_ms": p[0], "p95_ms": p[1], "p99_ms": p[2],
            "qps": len(lat) / wall if wall else None, "statuses": statuses, "hit_time_cap": len(lat) < n,
            "writes": int(kinds_a.sum()), "search_p99_ms": ps[2], "write_p50_ms": pw[0], "write_p99_ms": pw[2]}


def control(url: str, path: str, **kw) -> dict:
    """``POST url + path`` (an upgrade control); a refusal raises with the server's reason."""
    r = httpx.post(url + path, timeout=600, **kw)
    if r.status_code != 200:
        raise RuntimeError(f"POST {path} -> {r.status_code}: {r.text[:2000]}")
    return r.json()


def unloaded_rate(url: str, seconds: float) -> float | None:
    """items/s of the backfill alone: resumed with no query for ``seconds``, then paused again."""
    if seconds <= 0:
        return None
    control(url, "/upgrade/resume")
    time.sleep(seconds)
    rate = httpx.get(url + "/status", timeout=60).json()["upgrade"]["items_per_s"]
    control(url, "/upgrade/pause")
    return rate


def run_backend(args, backend: str, queries: list[str], writes: list[tuple[str, str]]) -> list[dict]:
    """Serve a fresh collection on ``backend`` in a child process and load it, idle then mid-backfill."""
    work, port = Path(tempfile.mkdtemp(prefix="hotswap-load-")), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(Path(sys.executable).parent / "hotswap"), "serve", "--store", f"{scheme(backend)}://{work / 'col'}",
           "--model", args.old, "--dataset", "debian", "--max-docs", str(args.n_docs), "--port", str(port),
           "--batch-size", str(args.batch_size), *(["--queries-first"] if args.queries_first else []),
           *(f"--allow-model={spec}" for spec in args.allow_model)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows: list[dict] = []
    try:
        wait_ready(url, proc, timeout=900)
        levels = [int(c) for c in args.clients.split(",")]
        for state in ("idle", "paused", "running"):
            if state == "paused":  # an upgrade exists (queries take the merged path) but nothing re-embeds
                control(url, "/upgrade", json={"model": args.new, "batch_size": args.batch_size})
                control(url, "/upgrade/pause")
                unloaded = unloaded_rate(url, args.unloaded_s)
            for clients in levels:
                if state == "running":
                    control(url, "/upgrade/resume")
                    time.sleep(1.0)  # let the first batch start encoding
                every = round(1 / args.write_share) if args.write_share > 0 else 0
                r = asyncio.run(level(url, queries, clients, args.requests, args.time_cap, writes, every))
                status = httpx.get(url + "/status", timeout=60).json()
                if state == "running":
                    r["backfill_fraction_at_end"] = status["upgrade"]["fraction"]
                    r["backfill_items_per_s"] = status["upgrade"]["items_per_s"]
                    r["backfill_unloaded_items_per_s"] = unloaded
                    r["backfill_share_of_unloaded"] = (status["upgrade"]["items_per_s"] or 0.0) / unloaded \
                        if unloaded else None
                    r["backfill_worker"] = status["upgrade"].get("worker")
                    r["backfill_still_running_at_end"] = status["state"] == "backfilling"
                    if r["backfill_still_running_at_end"]:  # else it completed during the level (a small run)
                        control(url, "/upgrade/pause")
                rows.append({"backend": backend, "clients": clients, "backfill_running": state == "running",
                             "state": state, "mode": "old" if state == "idle" else "merged", **r})
                print(json.dumps(rows[-1]), flush=True)
        httpx.post(url + "/upgrade/rollback", timeout=600)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-docs", type=int, default=6000)
    p.add_argument("--old", default="static")
    p.add_argument("--new", default="minilm")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", type=int, default=300, help="requests per level")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds per level at most")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--backends", default="faiss,qdrant,milvus,postgres")
    p.add_argument("--merge", action="store_true", help="keep the rows of backends not run now from --out")
    p.add_argument("--unloaded-s", type=float, default=15.0, help="seconds of backfill with no query, for its rate")
    p.add_argument("--queries-first", action="store_true",
                   help="serve with --queries-first: the backfill encodes in a nice-19 worker process")
    p.add_argument("--write-share", type=float, default=0.1,
                   help="share of requests that upsert one document (0 = searches only)")
    p.add_argument("--allow-model", action="append", default=[], metavar="NAME=FOLDER",
                   help="a model folder the server offers by NAME (hotswap serve --allow-model); repeat for several")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "load.json")
    args = p.parse_args(argv)
    from hotswap.data import load_dataset

    ds = load_dataset("debian", max_docs=args.n_docs)
    queries = list(ds.queries.values())[:2000]  # test queries
    ids = list(ds.corpus)[:args.n_docs]  # documents the collection holds: a write replaces one's text
    writes = [(ids[j], ds.corpus[ids[(j + 1) % len(ids)]]) for j in range(min(len(ids), 2000))]
    rows, t_start = [], time.monotonic()
    run = args.backends.split(",")
    for backend in run:
        rows += run_backend(args, backend, queries, writes)
    if args.merge:
        rows = kept_rows(args.out, "rows", run) + rows
    p99 = {(r["backend"], r["clients"], r["state"]): r["p99_ms"] for r in rows}
    ratios = {f"{b}/{c}": p99[b, c, "running"] / p99[b, c, "idle"] for b, c, s in p99 if s == "running"}
    vs_paused = {f"{b}/{c}": p99[b, c, "running"] / p99[b, c, "paused"] for b, c, s in p99 if s == "running"}
    shares = {f"{r['backend']}/{r['clients']}": r["backfill_share_of_unloaded"] for r in rows
              if r["state"] == "running" and r.get("backfill_share_of_unloaded") is not None}
    result = {"rows": rows, "p99_ratio_backfill_vs_idle": ratios, "p99_ratio_backfill_vs_paused": vs_paused,
              "backfill_share_of_unloaded": shares, "queries_first": args.queries_first,
              "write_share": args.write_share,
              "target": "zero errors; p99 during backfill <= 2 x p99 idle",
              "met": all(r["errors"] == 0 for r in rows) and all(v <= 2 for v in ratios.values()),
              "target_vs_paused": "zero errors; p99 running <= 1.5 x paused; backfill >= 0.5 of its unloaded rate",
              "met_vs_paused": all(r["errors"] == 0 for r in rows) and all(v <= 1.5 for v in vs_paused.values())
              and bool(shares) and all(v >= 0.5 for v in shares.values()),
              "config": vars(args) | {"out": str(args.out)}, "hardware": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "wall_s": time.monotonic() - t_start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"p99 ratio backfill/idle: {ratios}; target met: {result['met']}")
    print(f"p99 ratio backfill/paused: {vs_paused}; backfill share of unloaded: {shares}; "
          f"target met: {result['met_vs_paused']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
