"""Kill -9 a running backfill at random moments, resume it each time, and check nothing was lost or duplicated.

    python benchmarks/kill_resume.py [--kills 20 --n 3000 --batch-size 64 --model static --seed 0]

``--model static``: the bundled model2vec model (``load_encoder("static")``) re-embeds ``--n`` real Debian
package descriptions (``load_dataset("debian", max_docs=n)``); ``--model toy``: a hash-seeded encoder that
sleeps ``--toy-delay`` s per batch. The old index holds placeholder vectors (a hash of each text, model
``hash-old@1``): a backfill only reads its ids, and the plan's order is seeded (``--order``, default random).

1. A clean reference: one child process backfills its own upgrade folder uninterrupted; its ``gallery_checksum``.
2. The same plan in a second folder: a child process opens the upgrade and backfills it through the public API
   (``open_upgrade`` + ``BackfillRunner`` + ``LocalExecutor``, i.e. what ``hotswap backfill --resume`` does) and
   is SIGKILLed after a random, seeded delay counted from when it starts ``run()``; a new child continues the
   same folder, and so on ``--kills`` times; one last child finishes. Delays are uniform in
   ``[0, 2 x time left / (kills left + 1)]`` (time left from the measured rate), so kills fall anywhere: before
   a child's first batch, while encoding, and inside a commit.
3. After every kill the new store must open with sha256 checks, hold no id twice, hold every id it held before
   (so its count never decreases) and whole batches only; files the manifest does not list (the orphans of a
   commit cut short, removed by the next writer) are counted. At the end: every id once, checksum equal to 1.

Exits non-zero if any kill lost or duplicated an item, the count ever decreased, or the checksum differs.
``--out PATH`` also writes these counts as JSON (nothing is written by default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

OLD_MODEL, OLD_DIM = "hash-old@1", 32


class ToyEncoder:
    """Deterministic per item (its vector is seeded by a hash of the text); sleeps ``delay`` s per call."""

    name, id, dim = "toy", "toy@1", 64

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def encode(self, items: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        return np.stack([hash_vector(t, self.dim, self.id) for t in items]) if len(items) else \
            np.empty((0, self.dim), np.float32)


def hash_vector(text: str, dim: int, salt: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(f"{salt}:{text}".encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def load_model(a):
    if a.model == "toy":
        return ToyEncoder(a.toy_delay)
    from hotswap.encoders import load_encoder
    return load_encoder("static")


# ---- child: one backfill process ---------------------------------------------------------------------------
def phase_child(a) -> None:
    from hotswap.backfill import BackfillRunner, LocalExecutor
    from hotswap.upgrade import open_upgrade

    texts = json.loads((Path(a.dir).parent / "texts.json").read_text())
    up = open_upgrade(a.dir)
    runner = BackfillRunner(up, lambda ids: [texts[i] for i in ids], LocalExecutor(load_model(a)),
                            batch_size=a.batch_size, progress=False)
    print("start", flush=True)
    t = time.perf_counter()
    status = runner.run()
    print(json.dumps({"state": status.state, "done": status.done, "s": time.perf_counter() - t,
                      "items_per_s": status.items_per_s}), flush=True)


def spawn(a, folder: Path) -> tuple[subprocess.Popen, float]:
    """Start a child on ``folder``; returns it once it has opened the upgrade (and the time it said so)."""
    log = open(folder.parent / "children.log", "a")
    cmd = [sys.executable, __file__, "--phase", "child", "--dir", str(folder), "--model", a.model,
           f"--batch-size={a.batch_size}", f"--toy-delay={a.toy_delay}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    line = proc.stdout.readline().strip()
    if line != "start":
        proc.wait()
        raise SystemExit(f"child failed to start (rc {proc.returncode}): see {folder.parent / 'children.log'}")
    return proc, time.perf_counter()


def finish(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode:
        raise SystemExit(f"child exited with {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


# ---- parent ------------------------------------------------------------------------------------------------
def gallery(a) -> dict[str, str]:
    if a.model == "toy":
        return {f"doc-{i:06d}": f"toy document number {i}" for i in range(a.n)}
    from hotswap.data import load_dataset
    return load_dataset("debian", max_docs=a.n).corpus


def setup(a, root: Path) -> tuple[Path, Path, int]:
    """texts.json, the old store, two upgrade folders (reference, killed) with the same plan."""
    from hotswap.backfill import plan_backfill, read_plan, write_plan
    from hotswap.store import create_store
    from hotswap.upgrade import create_upgrade

    texts = gallery(a)
    (root / "texts.json").write_text(json.dumps(texts))
    old = create_store(root / "old", model_id=OLD_MODEL, dim=OLD_DIM)
    ids = list(texts)
    old.add(ids, np.stack([hash_vector(texts[i], OLD_DIM, OLD_MODEL) for i in ids]), OLD_MODEL)
    enc = load_model(a)
    ref = create_upgrade(root / "reference", old, enc.id, enc.dim)
    plan_backfill(ref, a.order, enc, lambda q: [texts[i] for i in q], seed=a.seed)
    killed = create_upgrade(root / "killed", old, enc.id, enc.dim)
    write_plan(killed, read_plan(ref)["ids"], a.order, a.seed)
    return ref.path, killed.path, len(ids)


def inspect(folder: Path) -> tuple[list[str], set[str]]:
    """Ids the new store lists (checked with sha256) and the files in it that the manifest does not list."""
    from hotswap.store import open_store
    from hotswap.store.faiss.manifest import MANIFEST_NAME

    store = open_store(folder / "new", verify=True)
    ids = [i for seg in store.manifest.segments for i in json.loads((store.path / seg.ids_file).read_text())]
    listed = {f for seg in store.manifest.segments for f in (seg.vectors_file, seg.ids_file)} | {MANIFEST_NAME}
    orphans = {f for f in os.listdir(store.path) if f not in listed and f != ".lock"}
    if (folder / "checkpoint.json").exists():  # rewritten atomically after each batch: always parses
        json.loads((folder / "checkpoint.json").read_text())
    return ids, orphans


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--n", type=int, default=3000, help="gallery size")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--model", choices=("toy", "static"), default="static")
    p.add_argument("--order", choices=("random", "sequential", "uncertainty"), default="random")
    p.add_argument("--toy-delay", type=float, default=0.005, help="seconds the toy encoder sleeps per batch")
    p.add_argument("--seed", type=int, default=0, help="seeds the plan and the kill delays")
    p.add_argument("--dir", help="work folder (default: a new temp folder, removed afterwards)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--out", type=Path, default=None, help="also write the counts to this JSON file")
    p.add_argument("--phase", choices=("child",), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.phase == "child":
        phase_child(a)
        return
    tmp = None if a.dir else tempfile.mkdtemp(prefix="hotswap-kill-")
    root = Path(a.dir or tmp)
    root.mkdir(parents=True, exist_ok=True)
    try:
        sys.exit(run(a, root))
    finally:
        if tmp and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def run(a, root: Path) -> int:
    from hotswap.backfill import gallery_checksum
    from hotswap.upgrade import open_upgrade

    ref_path, path, n = setup(a, root)
    what = "Debian descriptions" if a.model == "static" else "toy items"
    print(f"kill/resume: {open_upgrade(ref_path).new_model_id}, {n} {what}, batch {a.batch_size}, "
          f"{a.kills} kills (seed {a.seed}, order {a.order})")
    proc, _ = spawn(a, ref_path)
    clean = finish(proc)
    reference = gallery_checksum(open_upgrade(ref_path))
    rate = clean["items_per_s"] or n / max(clean["s"], 1e-3)
    print(f"clean run: {n} items in {clean['s']:.2f} s ({rate:,.0f} items/s), checksum {reference[:16]}")

    rng = np.random.default_rng(a.seed)
    held: set[str] = set()
    orphans: set[str] = set()
    kills = lost = duplicated = decreased = partial = cut_commits = before_first = 0
    for k in range(a.kills):
        left = n - len(held)
        if left == 0:
            break
        delay = float(rng.uniform(0, 2 * left / rate / (a.kills - k + 1)))
        proc, started = spawn(a, path)
        time.sleep(max(0.0, started + delay - time.perf_counter()))
        if proc.poll() is not None:
            print(f"kill {k + 1:2d}: the child finished before its delay of {delay:.3f} s")
            finish(proc)
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        kills += proc.returncode == -signal.SIGKILL
        ids, left = inspect(path)
        fresh, orphans = left - orphans, left  # files this kill left (older ones stay until the next commit)
        now = set(ids)
        k_lost, k_dup = len(held - now), len(ids) - len(now)
        k_partial = int(len(ids) % a.batch_size != 0 and len(ids) != n)
        lost, duplicated, partial = lost + k_lost, duplicated + k_dup, partial + k_partial
        decreased += len(ids) < len(held)
        before_first += len(ids) == len(held)
        cut_commits += bool(fresh)
        print(f"kill {k + 1:2d} after {delay:6.3f} s: stored {len(held):5d} -> {len(ids):5d}"
              f"{'  commit cut short: ' + ', '.join(sorted(fresh)) if fresh else ''}"
              f"{'  LOST ' + str(k_lost) if k_lost else ''}{'  DUPLICATED ' + str(k_dup) if k_dup else ''}")
        held = now
    proc, _ = spawn(a, path)
    last = finish(proc)
    ids, _ = inspect(path)
    lost += len(held - set(ids))
    missing = n - len(set(ids))
    duplicated += len(ids) - len(set(ids))
    checksum = gallery_checksum(open_upgrade(path))
    match = checksum == reference
    print(f"final run: state {last['state']}, {len(ids)} stored")
    print(f"kills survived: {kills}/{a.kills} (of them {before_first} before the child committed a batch, "
          f"{cut_commits} inside a commit, leaving files the manifest does not list)"
          + ("" if kills == a.kills else "; the backfill finished before the remaining kills"))
    print(f"items lost: {lost} (missing at the end: {missing})")
    print(f"items duplicated: {duplicated}")
    print(f"count decreased after a kill: {decreased} times; partial batches seen: {partial}")
    print(f"checksum match: {'yes' if match else 'NO'} ({checksum[:16]} vs {reference[:16]})")
    ok = not lost and not missing and not duplicated and not decreased and not partial and match
    ok = ok and last["state"] == "done"
    if a.out:
        from hotswap.runinfo import hardware
        from hotswap.io import atomic_write_json

        atomic_write_json(a.out, {
            "model_id": open_upgrade(ref_path).new_model_id, "n": n, "kills_asked": a.kills, "kills": kills,
            "kills_before_first_commit": before_first, "kills_inside_commit": cut_commits, "lost": lost,
            "missing": missing, "duplicated": duplicated, "count_decreased": decreased, "partial_batches": partial,
            "final_state": last["state"], "stored": len(ids), "checksum_match": match, "ok": ok,
            "clean_items_per_s": rate, "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
            "hardware": hardware()})
    return 0 if ok else 1


if __name__ == "__main__":
    main()
