"""Kill -9 the search server during a live upgrade, restart it, and check it resumes, answers and loses nothing.

    python benchmarks/faults.py [--kills 5 --n 400 --old static --new minilm --batch-size 32 --seed 0]
    python benchmarks/faults.py --toy --kills 3      # hash-seeded toy encoders (what the test suite runs)
    python benchmarks/faults.py --backend qdrant     # or milvus: the collection on that database

1. A clean reference: a collection of ``--n`` Debian documents (``--old``), upgraded to ``--new`` in-process
   without interruption; its ``gallery_checksum``.
2. The same in a second folder, through HTTP: ``hotswap serve`` in a child process, ``POST /upgrade``, then
   SIGKILL after a seeded random delay (uniform in [0.2, 2 x expected time left / (kills left + 1)] s); restart;
   ``/search`` must answer at once (each of 10 documents' own text finds that document at rank 1, in whatever
   partition it sits); repeat ``--kills`` times, then let the backfill finish and commit.
3. Every restart also sends malformed requests (wrong types, empty text, huge k, a 2 MiB body, bad JSON) that
   must each get a 4xx; any 5xx anywhere is counted.
4. At the end: items lost (old ids without a new vector), duplicated (ids stored twice), and the checksum vs 1.

Writes ``results/faults.json``: ``{"kills", "recovered", "items_lost", "items_duplicated", "bad_requests",
"responses_5xx", ...}``; exits non-zero unless every kill was recovered with nothing lost, duplicated or 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import scheme  # noqa: E402
BAD = [{"query": ""}, {"query": 5}, {"query": "x", "k": "10"}, {"query": "x", "k": 10 ** 9}, {"queries": []},
       {"query": "x", "mode": "telepathy"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, path: Path, port: int) -> subprocess.Popen:
    if args.toy:
        cmd = [sys.executable, "-m", "tests.serve.toy", str(path), str(port), str(args.toy_delay), str(args.n),
               str(args.batch_size)]
    else:
        cmd = [str(Path(sys.executable).parent / "hotswap"), "serve", "--store", str(path), "--port", str(port),
               "--batch-size", str(args.batch_size)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError("server did not become healthy")


class Counter:
    def __init__(self) -> None:
        self.bad = self.bad_ok = self.s5xx = 0

    def post(self, url: str, **kw) -> httpx.Response:
        r = httpx.post(url, timeout=60, **kw)
        self.s5xx += r.status_code >= 500
        return r

    def malformed(self, url: str) -> None:
        bodies = [dict(json=b) for b in BAD] + [dict(content=b"x" * (2 << 20)), dict(content=b"{bad json")]
        for kw in bodies:
            r = self.post(url + "/search", headers={"content-type": "application/json"}, **kw)
            self.bad += 1
            self.bad_ok += 400 <= r.status_code < 500


def answers_correctly(url: str, corpus: dict[str, str], ids: list[str], c: Counter) -> bool:
    r = c.post(url + "/search", json={"queries": [corpus[i] for i in ids], "k": 1})
    return r.status_code == 200 and [row[0]["id"] for row in r.json()["results"]] == ids


def make_collection(args, path: Path):
    sys.path.insert(0, str(ROOT))
    if args.toy:
        from tests.serve.toy import corpus, create, loader
        create(path, args.n, backend=scheme(args.backend))
        return corpus(args.n), loader(args.toy_delay)
    from hotswap.data import load_dataset
    from hotswap.encoders import load_encoder
    from hotswap.serve import Collection
    ds = load_dataset("debian", max_docs=args.n)
    Collection.create(path, args.old, load_encoder(args.old), ds.corpus, backend=scheme(args.backend))
    return load_dataset("debian").corpus, load_encoder


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--old", default="static")
    p.add_argument("--new", default="minilm")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="faiss", choices=("faiss", "qdrant", "milvus", "postgres", "pg"))
    p.add_argument("--toy", action="store_true", help="toy encoders (tests.serve.toy)")
    p.add_argument("--toy-delay", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "faults.json")
    args = p.parse_args()
    new_model = "toy-new" if args.toy else args.new
    from hotswap.backfill import gallery_checksum
    from hotswap.serve import SearchService

    rng, work = random.Random(args.seed), Path(tempfile.mkdtemp(prefix="hotswap-faults-"))
    t_start = time.monotonic()
    corpus, loader = make_collection(args, work / "clean")
    models = ("toy-old", "toy-new") if args.toy else (args.old, args.new)
    clean = SearchService(work / "clean", corpus, encoder_loader=loader, batch_size=args.batch_size, models=models)
    t0 = time.monotonic()
    clean.start_upgrade(new_model, batch_size=args.batch_size, seed=args.seed)
    clean.thread.join()
    clean_s, reference = time.monotonic() - t0, gallery_checksum(clean.upgrade)
    probe = list(clean.index.ids)[:: max(1, args.n // 10)][:10]
    clean.close()  # a database folder admits one client per process

    make_collection(args, work / "killed")
    port, c, recovered, restarts, at_kill = free_port(), Counter(), 0, [], []
    url = f"http://127.0.0.1:{port}"
    proc = start(args, work / "killed", port)
    wait_ready(url, proc)
    c.post(url + "/upgrade", json={"model": new_model, "batch_size": args.batch_size, "seed": args.seed})
    for k in range(args.kills):
        left = clean_s * (1 - httpx.get(url + "/status", timeout=60).json()["upgrade"]["fraction"])
        time.sleep(rng.uniform(0.2, max(0.3, 2 * left / (args.kills - k + 1))))
        done_before = httpx.get(url + "/status", timeout=60).json()["upgrade"]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill.append(done_before["done"])
        proc = start(args, work / "killed", port)
        restarts.append(wait_ready(url, proc))
        ok = answers_correctly(url, corpus, probe, c)
        c.malformed(url)
        status = httpx.get(url + "/status", timeout=60).json()
        ok &= status["upgrade"] is not None and status["upgrade"]["done"] >= (done_before or {}).get("done", 0)
        recovered += bool(ok)
        print(f"kill {k + 1}: {status['upgrade']['done']}/{status['upgrade']['total']} stored after restart "
              f"(was {done_before['done']}), answered correctly: {ok}", flush=True)
    while httpx.get(url + "/status", timeout=60).json()["state"] != "complete":
        time.sleep(0.2)
    final_ok = answers_correctly(url, corpus, probe, c)
    commit = c.post(url + "/upgrade/commit")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)

    from hotswap.upgrade import open_upgrade
    up = open_upgrade(next((work / "killed").glob("upgrade-2-*")))  # each upgrade's folder has a random tag
    new_ids = up.new.ids
    restart_s = {"median": sorted(restarts)[len(restarts) // 2] if restarts else None,
                 "max": max(restarts, default=None)}
    config = {"n": args.n, "old": "toy-old" if args.toy else args.old, "new": new_model,
              "batch_size": args.batch_size, "seed": args.seed, "toy": args.toy}
    result = {"kills": args.kills, "recovered": recovered, "items_lost": len(set(up.old.ids) - set(new_ids)),
              "items_duplicated": len(new_ids) - len(set(new_ids)), "bad_requests": c.bad,
              "bad_requests_4xx": c.bad_ok, "responses_5xx": c.s5xx,
              "checksum_equal": gallery_checksum(up) == reference,
              "answered_after_completion": final_ok, "committed": commit.status_code == 200,
              "stored_at_kill": at_kill, "total": len(up.old), "restart_s": restart_s,
              "backend": args.backend, "config": config,
              "clean_upgrade_s": clean_s, "wall_s": time.monotonic() - t_start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    getattr(up, "close", lambda: None)()
    shutil.rmtree(work, ignore_errors=True)
    good = (recovered == args.kills and not result["items_lost"] and not result["items_duplicated"]
            and not c.s5xx and c.bad_ok == c.bad and result["checksum_equal"] and final_ok and result["committed"])
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
