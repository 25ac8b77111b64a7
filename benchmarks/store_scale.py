"""FaissStore (memory-mapped segments) against a plain ``faiss.IndexFlatIP`` held in RAM, side by side.

    python benchmarks/store_scale.py --n 1000000 --dim 384 --queries 100 --k 10

Three fresh subprocesses, so each side's memory is its own: (1) write the store in chunks of 100k rows;
(2) open the store and search it; (3) load the same segment files into an ``IndexFlatIP`` and search it.
Memory comes from /proc/self/status: VmRSS before a step and VmHWM (peak) after it, with the peak reset
via /proc/self/clear_refs before each step. RSS counts file-backed pages of the memory map too (page cache,
shared and reclaimable), so the anonymous (private) part is shown separately. The files were just written,
so both sides read them from a warm page cache. ``--out`` also writes the measurements as JSON (nothing is written
by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = "bench-random@0"


def mem() -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile of this process in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(val.split()[0]) / 1024
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def step(fn) -> tuple[object, dict[str, float]]:
    """Run ``fn`` and return its result with seconds, peak RSS increase and anon/file RSS increases (MiB)."""
    exact = reset_peak()
    before = mem()
    t = time.perf_counter()
    result = fn()
    secs = time.perf_counter() - t
    after = mem()
    base = before["VmRSS"] if exact else before["VmHWM"]
    return result, {"s": secs, "peak": after["VmHWM"] - base, "anon": after["RssAnon"] - before["RssAnon"],
                    "file": after["RssFile"] - before["RssFile"]}


def queries(a) -> np.ndarray:
    Q = np.random.default_rng(a.seed + 1).standard_normal((a.queries, a.dim)).astype(np.float32)
    return Q / np.linalg.norm(Q, axis=1, keepdims=True)


def phase_write(a) -> dict:
    from hotswap.store import create_store
    store, rng, secs = create_store(a.dir, model_id=MODEL, dim=a.dim, metric="ip"), np.random.default_rng(a.seed), 0.0
    for start in range(0, a.n, a.chunk):
        X = rng.standard_normal((min(a.chunk, a.n - start), a.dim), dtype=np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        ids = [f"doc-{i}" for i in range(start, start + len(X))]
        t = time.perf_counter()
        store.add(ids, X, MODEL)
        secs += time.perf_counter() - t
    size = sum(f.stat().st_size for f in Path(a.dir).iterdir())
    return {"write": secs, "segments": len(store.manifest.segments), "bytes": size}


def phase_store(a) -> dict:
    from hotswap.store import open_store
    Q, res = queries(a), {"start": mem()}
    store, res["open"] = step(lambda: open_store(a.dir))
    _, res["ids"] = step(lambda: len(store.ids))
    (_, I), res["search1"] = step(lambda: store.search(Q, a.k, MODEL))
    _, res["search2"] = step(lambda: store.search(Q, a.k, MODEL))
    res["end"], res["ids_out"] = mem(), I.tolist()
    return res


def phase_flat(a) -> dict:
    import faiss
    from hotswap.store.faiss.manifest import read_manifest
    Q, res = queries(a), {"start": mem()}

    def build():
        index = faiss.IndexFlatIP(a.dim)
        for seg in read_manifest(a.dir).segments:
            index.add(np.load(Path(a.dir) / seg.vectors_file))  # read into RAM, copied into the index
        return index
    index, res["open"] = step(build)
    (_, I), res["search1"] = step(lambda: index.search(Q, a.k))
    _, res["search2"] = step(lambda: index.search(Q, a.k))
    res["end"], res["ids_out"] = mem(), [[f"doc-{p}" for p in row] for row in I.tolist()]
    return res


def run_phase(a, name: str) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--dir", a.dir] + [
        f"--{k}={getattr(a, k)}" for k in ("n", "dim", "queries", "k", "chunk", "seed")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(a, w: dict, s: dict, f: dict) -> bool:
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"FaissStore vs IndexFlatIP: {a.n:,} x {a.dim} float32, {a.queries} queries, k={a.k}")
    for col in ("step", "FaissStore (mmap)", "IndexFlatIP (RAM)", "store / flat"):
        t.add_column(col, justify="left" if col == "step" else "right")

    def row(label, sv, fv, unit, fmt="{:.3f}"):
        ratio = f"{sv / fv:.3g}x" if sv is not None and fv and abs(fv) >= (1 if unit == "MiB" else 1e-4) else "-"
        cell = lambda v: "-" if v is None else (fmt.format(v) + f" {unit}")  # noqa: E731
        t.add_row(label, cell(sv), cell(fv), ratio)
    row(f"write ({w['segments']} adds of {a.chunk:,}; {w['bytes'] / 2**20:,.0f} MiB on disk)", w["write"], None, "s")
    row("open (store) / load + build (flat)", s["open"]["s"], f["open"]["s"], "s")
    row("  RSS increase: anon", s["open"]["anon"], f["open"]["anon"], "MiB", "{:,.0f}")
    row("parse 1M ids (store, lazy, once)" if a.n == 1_000_000 else "parse ids (store, lazy, once)",
        s["ids"]["s"], None, "s")
    row("  RSS increase: anon", s["ids"]["anon"], None, "MiB", "{:,.0f}")
    for key, label in (("search1", "first search"), ("search2", "second search")):
        row(label, s[key]["s"], f[key]["s"], "s")
        row("  peak RSS increase (VmHWM - VmRSS)", s[key]["peak"], f[key]["peak"], "MiB", "{:,.0f}")
        row("  of which file-backed (mmap pages)", s[key]["file"], f[key]["file"], "MiB", "{:,.0f}")
    row("RSS at end: anon (private)", s["end"]["RssAnon"], f["end"]["RssAnon"], "MiB", "{:,.0f}")
    row("RSS at end: file-backed (page cache)", s["end"]["RssFile"], f["end"]["RssFile"], "MiB", "{:,.0f}")
    row("process peak RSS (VmHWM)", s["end"]["VmHWM"], f["end"]["VmHWM"], "MiB", "{:,.0f}")
    same = s["ids_out"] == f["ids_out"]
    t.add_row("top-k ids identical", "yes" if same else "NO", "", "")
    Console(width=120).print(t)
    return same


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--chunk", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", help="store folder (default: a new temp folder, removed afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the store folder")
    p.add_argument("--out", type=Path, default=None, help="also write the measurements to this JSON file")
    p.add_argument("--phase", choices=("write", "store", "flat"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.phase:
        print(json.dumps({"write": phase_write, "store": phase_store, "flat": phase_flat}[a.phase](a)))
        return
    tmp = None if a.dir else tempfile.mkdtemp(prefix="hotswap-bench-")
    a.dir = a.dir or str(Path(tmp) / "store")
    try:
        w = run_phase(a, "write")
        st, flat = run_phase(a, "store"), run_phase(a, "flat")
        same = report(a, w, st, flat)
        if a.out:
            from hotswap.runinfo import hardware
            from hotswap.io import atomic_write_json, json_safe

            drop = lambda r: {k: v for k, v in r.items() if k != "ids_out"}  # noqa: E731
            atomic_write_json(a.out, json_safe({
                "write": w, "store": drop(st), "flat": drop(flat), "ids_identical": same, "hardware": hardware(),
                "config": {k: getattr(a, k) for k in ("n", "dim", "queries", "k", "chunk", "seed")}}))
            print(f"wrote {a.out}")
    finally:
        if tmp and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
