"""Backfill throughput: raw encoding against ``BackfillRunner`` with the local and the Ray executor, side by side.

On N real Debian documents, items per second of

* ``raw``:   ``encoder.encode(texts, batch_size=64)`` on all N texts at once (no store, no batches);
* ``raw, runner's batches``: the same encoder called once per backfill batch, in the plan's (random) order,
  nothing stored: what the runner's encoding alone costs. sentence-transformers sorts texts by length within
  one call, so many small calls pad more than one big call; the gap between the two raw rows is that effect,
  the gap between this row and ``local`` is the runner's own overhead;
* ``local``: ``BackfillRunner`` + ``LocalExecutor`` through a ``FaissUpgrade`` (random plan, batch 256, no
  progress bar): fetching, encoding, one atomic segment + manifest per batch, checkpoint;
* ``ray``:   the same with ``RayExecutor`` (``--num-actors`` Ray Data actors, each loading the encoder).

Each rate is N / wall time of the call; planning and building the old index are outside it. Ray's cluster
start-up (``ray.init``, once) is excluded and printed apart; the actor pool is started by every ``run()``
(Ray Data keeps no pool between runs), so its warm-up (actors start, import torch, load the model) is part of
the Ray rate: it is also printed apart, with the rate after the first batch ("steady"). The three are
interleaved over ``--rounds`` rounds, best round kept. Target: runner >= 0.95 x raw.

On a 2-core machine the actors compete with the driver and with each other (Ray gives each actor one thread:
``OMP_NUM_THREADS=1``), while the raw and local paths use every core in one process; the numbers say how that
comes out, they are not adjusted.

Run: ``.venv/bin/python benchmarks/backfill_throughput.py [--model minilm|static] [--n 2000] [--rounds 2]
[--num-actors 2] [--no-ray] [--out results.json]`` (``--json`` is the same as ``--out``; nothing is written by
default)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hotswap.backfill import BackfillRunner, LocalExecutor, gallery_checksum, plan_backfill
from hotswap.data import load_dataset
from hotswap.encoders import load_encoder
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade

TARGET = 0.95  # runner items/s >= TARGET x raw items/s
OLD_MODEL, OLD_DIM = "old@bench", 32


def make_upgrade(root: Path, ids: list[str], encoder, fetch, seed: int):
    """Old index (random vectors of a stand-in old model: its vectors are never read) + upgrade + random plan."""
    X = np.random.default_rng(seed).standard_normal((len(ids), OLD_DIM)).astype(np.float32)
    old = create_store(root / "old", model_id=OLD_MODEL, dim=OLD_DIM)
    old.add(ids, X / np.linalg.norm(X, axis=1, keepdims=True), model_id=OLD_MODEL)
    up = create_upgrade(root / "upgrade", old, new_model_id=encoder.id, new_dim=encoder.dim)
    plan_backfill(up, "random", encoder, fetch, seed=seed)
    return up


def time_raw(encoder, texts: list[str], batch: int) -> dict:
    t = time.perf_counter()
    X = encoder.encode(texts, batch_size=batch, show_progress=False)
    s = time.perf_counter() - t
    assert X.shape == (len(texts), encoder.dim)
    return {"s": s, "items_per_s": len(texts) / s}


def time_raw_batches(encoder, texts: list[str], batch: int, encode_batch: int, seed: int) -> dict:
    order = np.random.default_rng(seed).permutation(len(texts))  # the random plan's order (ordering.py)
    t = time.perf_counter()
    for start in range(0, len(texts), batch):
        encoder.encode([texts[i] for i in order[start:start + batch]], batch_size=encode_batch, show_progress=False)
    s = time.perf_counter() - t
    return {"s": s, "items_per_s": len(texts) / s}


def time_runner(executor, ids, encoder, fetch, batch: int, seed: int, tmp: Path) -> dict:
    up = make_upgrade(Path(tempfile.mkdtemp(dir=tmp)), ids, encoder, fetch, seed)
    marks: list[tuple[float, int]] = []
    runner = BackfillRunner(up, fetch, executor, batch, progress=False)
    t = time.perf_counter()
    status = runner.run(on_batch=lambda st: marks.append((time.perf_counter(), st.done)))
    s = time.perf_counter() - t
    assert status.state == "done" and status.done == len(ids), status
    first_s = marks[0][0] - t
    steady = ((marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])) if len(marks) > 1 else float("nan")
    return {"s": s, "items_per_s": len(ids) / s, "first_batch_s": first_s, "steady_items_per_s": steady,
            "runner_items_per_s": status.items_per_s, "checksum": gallery_checksum(up)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("static", "minilm"), default="minilm")
    ap.add_argument("--n", type=int, default=2000, help="Debian documents to backfill")
    ap.add_argument("--batch-size", type=int, default=256, help="items per backfill batch (one segment each)")
    ap.add_argument("--encode-batch", type=int, default=64, help="batch_size of the raw encode call")
    ap.add_argument("--num-actors", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    ap.add_argument("--out", "--json", dest="json", type=Path, default=None, help="write the numbers to this file")
    args = ap.parse_args(argv)
    console = Console(width=150)

    corpus = load_dataset("debian", max_docs=args.n, seed=args.seed).corpus
    ids = sorted(corpus)
    texts = [corpus[i] for i in ids]
    fetch = lambda batch_ids: [corpus[i] for i in batch_ids]  # noqa: E731
    encoder = load_encoder(args.model)
    encoder.encode(texts[:64], show_progress=False)  # warm-up (lazy init, first-call allocations)
    load_before = os.getloadavg()

    ray_exec, ray_start_s = None, None
    if not args.no_ray:
        try:
            from hotswap.backfill.ray_runner import RayExecutor
        except ImportError as exc:  # pragma: no cover - ray not installed
            console.print(f"[yellow]ray row skipped: {exc}[/yellow]")
        else:
            ray_exec = RayExecutor(args.model, num_actors=args.num_actors, expected_model_id=encoder.id)
            t = time.perf_counter()
            ray_exec.start()
            ray_start_s = time.perf_counter() - t

    rounds: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # interleaved: the machine's drift does not land on one row
            res = {"raw": time_raw(encoder, texts, args.encode_batch),
                   "raw_batches": time_raw_batches(encoder, texts, args.batch_size, args.encode_batch, args.seed),
                   "local": time_runner(LocalExecutor(encoder), ids, encoder, fetch, args.batch_size,
                                        args.seed, Path(tmp))}
            if ray_exec is not None:
                res["ray"] = time_runner(ray_exec, ids, encoder, fetch, args.batch_size, args.seed, Path(tmp))
            rounds.append(res)
            console.print(f"round {r + 1}: " + ", ".join(f"{k} {v['items_per_s']:,.0f}/s" for k, v in res.items()))
    if ray_exec is not None:
        ray_exec.close()
    load_after = os.getloadavg()

    best = {k: max((rd[k] for rd in rounds), key=lambda v: v["items_per_s"]) for k in rounds[0]}
    raw = best["raw"]["items_per_s"]
    table = Table(title=f"backfill throughput, {args.model} ({encoder.id}), N={args.n} Debian docs, batch "
                        f"{args.batch_size}, best of {args.rounds} rounds")
    raw_b = best["raw_batches"]["items_per_s"]
    for col in ("path", "items/s", "x raw", "x raw (runner's batches)", "wall s", "first batch s", "steady items/s",
                f">= {TARGET}x raw"):
        table.add_column(col, justify="left" if col == "path" else "right")
    labels = {"raw": f"raw encode (batch_size={args.encode_batch})",
              "raw_batches": f"raw encode, runner's batches ({args.batch_size})", "local": "runner + LocalExecutor",
              "ray": f"runner + RayExecutor ({args.num_actors} actors)"}
    verdicts = {}
    for k, v in best.items():
        ratio = v["items_per_s"] / raw
        verdicts[k] = None if k.startswith("raw") else ratio >= TARGET
        table.add_row(labels[k], f"{v['items_per_s']:,.0f}", f"{ratio:.3f}", f"{v['items_per_s'] / raw_b:.3f}",
                      f"{v['s']:.2f}",
                      f"{v['first_batch_s']:.2f}" if "first_batch_s" in v else "",
                      f"{v['steady_items_per_s']:,.0f}" if "steady_items_per_s" in v else "",
                      "" if k.startswith("raw") else ("PASS" if verdicts[k] else "FAIL"))
    console.print(table)
    same = None
    if "ray" in best:
        same = best["ray"]["checksum"] == best["local"]["checksum"]
        console.print(f"Ray cluster start-up (ray.init, once, not in any rate): {ray_start_s:.2f} s; "
                      f"Ray gallery_checksum equal to local: {'yes' if same else 'NO'}")
    console.print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
                  f"{load_before[0]:.2f} before / {load_after[0]:.2f} after; x raw = items/s / raw items/s; first "
                  "batch s = run() start to first commit (actor start + model load for Ray); steady = after it")
    if args.json:
        strip = [{k: {m: x for m, x in v.items() if m != "checksum"} for k, v in rd.items()} for rd in rounds]
        out = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "model_id": encoder.id, "target": TARGET, "ray_start_s": ray_start_s, "rounds": strip,
               "best": {k: {m: x for m, x in v.items() if m != "checksum"} for k, v in best.items()},
               "ratio_vs_raw": {k: v["items_per_s"] / raw for k, v in best.items()},
               "ratio_vs_raw_same_batches": {k: v["items_per_s"] / raw_b for k, v in best.items()},
               "pass": {k: v for k, v in verdicts.items() if v is not None}, "ray_checksum_equal": same,
               "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
