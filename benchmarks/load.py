"""Load test of ``hotswap serve``: latency percentiles and errors at 1, 8 and 32 clients, idle and mid-backfill.

    python benchmarks/load.py [--n-docs 6000 --old static --new minilm --requests 300 --time-cap 60]

A bounded client on 127.0.0.1: for each concurrency level it sends a fixed number of ``POST /search`` requests
(Debian test queries, k = 10, one query per request) from that many concurrent clients (httpx, asyncio), and
stops early at ``--time-cap`` seconds; latency is measured per request on the client, after ``WARMUP``
uncounted requests. Each level runs in three
states: ``idle`` (the collection served by ``--old``, mode ``old``: one cheap encoding), ``paused`` (an upgrade
to ``--new`` exists but is paused: mode ``merged``, both models encode each query, as Seo et al.'s rank merge
needs, and nothing re-embeds) and ``running`` (the same, while the backfill re-embeds beside the queries;
``backfill_running`` true). The backfill is resumed before each loaded level and paused after it, so every
running row really ran beside re-embedding (``backfill_still_running_at_end`` says so); it is rolled back at
the end. ``paused`` isolates what the backfill costs the queries from what the second encoding costs.

Writes ``results/load.json``: ``{"rows": [{"backend", "clients", "backfill_running", "requests", "errors",
"p50_ms", "p95_ms", "p99_ms", "state", "mode", ...}], ...}``. Target: zero errors, p99 during backfill <= 2 x
p99 idle (``p99_ratio_backfill_vs_idle``; ``p99_ratio_backfill_vs_paused`` compares like with like).
Each backend (``--backends faiss,qdrant,milvus``) gets its own fresh collection and server process.
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
from faults import free_port, wait_ready  # noqa: E402


async def level(url: str, queries: list[str], clients: int, n: int, cap: float) -> dict:
    lat, errors, statuses, sent = [], 0, {}, 0
    deadline = time.monotonic() + cap
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for q in queries[-WARMUP:]:  # not counted: the first calls after a state change load and warm models
            await client.post("/search", json={"query": q, "k": 10})
        async def worker(w: int) -> None:
            nonlocal errors, sent
            while sent < n and time.monotonic() < deadline:
                q = queries[sent % len(queries)]
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/search", json={"query": q, "k": 10})
                    ok = r.status_code == 200
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                except httpx.HTTPError:
                    ok = False
                lat.append((time.perf_counter() - t0) * 1000)
                errors += not ok
        t0 = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        wall = time.monotonic() - t0
    p = np.percentile(lat, [50, 95, 99]) if lat else [float("nan")] * 3
    return {"requests": len(lat), "errors": errors, "p50_ms": float(p[0]), "p95_ms": float(p[1]),
            "p99_ms": float(p[2]), "qps": len(lat) / wall if wall else None, "statuses": statuses,
            "hit_time_cap": len(lat) < n}


def unloaded_rate(url: str, seconds: float) -> float | None:
    """items/s of the backfill alone: resumed with no query for ``seconds``, then paused again."""
    if seconds <= 0:
        return None
    httpx.post(url + "/upgrade/resume", timeout=600).raise_for_status()
    time.sleep(seconds)
    rate = httpx.get(url + "/status", timeout=60).json()["upgrade"]["items_per_s"]
    httpx.post(url + "/upgrade/pause", timeout=600).raise_for_status()
    return rate


def run_backend(args, backend: str, queries: list[str]) -> list[dict]:
    """Serve a fresh collection on ``backend`` in a child process and load it, idle then mid-backfill."""
    work, port = Path(tempfile.mkdtemp(prefix="hotswap-load-")), free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(Path(sys.executable).parent / "hotswap"), "serve", "--store", f"{backend}://{work / 'col'}",
           "--model", args.old, "--max-docs", str(args.n_docs), "--port", str(port),
           "--batch-size", str(args.batch_size), *(["--queries-first"] if args.queries_first else [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows: list[dict] = []
    try:
        wait_ready(url, proc, timeout=900)
        levels = [int(c) for c in args.clients.split(",")]
        for state in ("idle", "paused", "running"):
            if state == "paused":  # an upgrade exists (queries take the merged path) but nothing re-embeds
                httpx.post(url + "/upgrade", json={"model": args.new, "batch_size": args.batch_size},
                           timeout=600).raise_for_status()
                httpx.post(url + "/upgrade/pause", timeout=600).raise_for_status()
                unloaded = unloaded_rate(url, args.unloaded_s)
            for clients in levels:
                if state == "running":
                    httpx.post(url + "/upgrade/resume", timeout=600).raise_for_status()
                    time.sleep(1.0)  # let the first batch start encoding
                r = asyncio.run(level(url, queries, clients, args.requests, args.time_cap))
                status = httpx.get(url + "/status", timeout=60).json()
                if state == "running":
                    r["backfill_fraction_at_end"] = status["upgrade"]["fraction"]
                    r["backfill_items_per_s"] = status["upgrade"]["items_per_s"]
                    r["backfill_unloaded_items_per_s"] = unloaded
                    r["backfill_share_of_unloaded"] = (status["upgrade"]["items_per_s"] or 0.0) / unloaded \
                        if unloaded else None
                    r["backfill_yielded_s"] = status["upgrade"].get("yielded_to_queries_s")
                    r["backfill_still_running_at_end"] = status["state"] == "backfilling"
                    httpx.post(url + "/upgrade/pause", timeout=600).raise_for_status()
                rows.append({"backend": backend, "clients": clients, "backfill_running": state == "running",
                             "state": state, "mode": "old" if state == "idle" else "merged", **r})
                print(json.dumps(rows[-1]), flush=True)
        httpx.post(url + "/upgrade/rollback", timeout=600)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-docs", type=int, default=6000)
    p.add_argument("--old", default="static")
    p.add_argument("--new", default="minilm")
    p.add_argument("--clients", default="1,8,32")
    p.add_argument("--requests", type=int, default=300, help="requests per level")
    p.add_argument("--time-cap", type=float, default=60.0, help="seconds per level at most")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--backends", default="faiss,qdrant,milvus")
    p.add_argument("--unloaded-s", type=float, default=15.0, help="seconds of backfill with no query, for its rate")
    p.add_argument("--queries-first", action="store_true",
                   help="serve with --queries-first: the backfill gives way to searches (QueryGate)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "load.json")
    args = p.parse_args()
    from hotswap.data import load_dataset

    ds = load_dataset("debian", max_docs=args.n_docs)
    queries = list(ds.queries.values())[:2000]  # test queries
    rows, t_start = [], time.monotonic()
    for backend in args.backends.split(","):
        rows += run_backend(args, backend, queries)
    p99 = {(r["backend"], r["clients"], r["state"]): r["p99_ms"] for r in rows}
    ratios = {f"{b}/{c}": p99[b, c, "running"] / p99[b, c, "idle"] for b, c, s in p99 if s == "running"}
    vs_paused = {f"{b}/{c}": p99[b, c, "running"] / p99[b, c, "paused"] for b, c, s in p99 if s == "running"}
    shares = {f"{r['backend']}/{r['clients']}": r["backfill_share_of_unloaded"] for r in rows
              if r["state"] == "running" and r.get("backfill_share_of_unloaded") is not None}
    result = {"rows": rows, "p99_ratio_backfill_vs_idle": ratios, "p99_ratio_backfill_vs_paused": vs_paused,
              "backfill_share_of_unloaded": shares, "queries_first": args.queries_first,
              "target": "zero errors; p99 during backfill <= 2 x p99 idle",
              "met": all(r["errors"] == 0 for r in rows) and all(v <= 2 for v in ratios.values()),
              "config": vars(args) | {"out": str(args.out)}, "hardware": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "wall_s": time.monotonic() - t_start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"p99 ratio backfill/idle: {ratios}; target met: {result['met']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
