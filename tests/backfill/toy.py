"""Toy encoder, toy gallery and the child process of the kill-and-resume tests.

``python -m tests.backfill.toy UPGRADE BATCH DELAY [--kill-at-manifest N]`` (from the repository root) opens
the upgrade and backfills it with ``ToyEncoder(delay=DELAY)``; it prints ``start`` just before ``run()``.
With ``--kill-at-manifest N`` it SIGKILLs itself on the N-th rename of the new store's ``manifest.json``,
i.e. after that batch's segment files are written but before the manifest lists them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hotswap.backfill import BackfillRunner, LocalExecutor, write_plan
from hotswap.store import create_store
from hotswap.upgrade import FaissUpgrade, create_upgrade, open_upgrade

OLD_MODEL, NEW_MODEL = "toy-old@1", "toy-new@1"
OLD_DIM, NEW_DIM = 8, 16


def item_rng(item: str, salt: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{salt}:{item}".encode()).digest()[:8], "little"))


def unit_vector(item: str, dim: int, salt: str) -> np.ndarray:
    v = item_rng(item, salt).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


class ToyEncoder:
    """Deterministic per item (a hash of the item seeds its vector); sleeps ``delay`` seconds per call."""

    def __init__(self, delay: float = 0.0, dim: int = NEW_DIM, name: str = "toy-new") -> None:
        self.name, self.dim, self.delay = name, dim, delay
        self.id = f"{name}@1"
        self.calls: list[list[str]] = []

    def encode(self, items: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        items = list(items)
        self.calls.append(items)
        if self.delay:
            time.sleep(self.delay)
        if not items:
            return np.empty((0, self.dim), np.float32)
        return np.stack([unit_vector(i, self.dim, self.id) for i in items])


def gallery_ids(n: int) -> list[str]:
    return [f"doc-{i:05d}" for i in range(n)]


def fetch(ids: Sequence[str]) -> list[str]:
    """The 'item' of an id (what the encoder sees)."""
    return [f"text of {i}" for i in ids]


def make_old_store(path: Path, n: int, segments: int = 3):
    store = create_store(path, model_id=OLD_MODEL, dim=OLD_DIM)
    ids = gallery_ids(n)
    X = np.stack([unit_vector(i, OLD_DIM, OLD_MODEL) for i in ids])
    for part in np.array_split(np.arange(n), segments):
        store.add([ids[j] for j in part], X[part], OLD_MODEL)
    return store


def plan_order(n: int, seed: int = 0) -> list[str]:
    ids = gallery_ids(n)
    return [ids[j] for j in np.random.default_rng(seed).permutation(n)]


def make_upgrade(root: Path, n: int, plan: bool = True, seed: int = 0) -> FaissUpgrade:
    """``root/old`` (a toy old store of ``n`` items) and ``root/up`` (an upgrade to the toy new model)."""
    old = make_old_store(root / "old", n)
    up = create_upgrade(root / "up", old.path, NEW_MODEL, NEW_DIM)
    if plan:
        write_plan(up, plan_order(n, seed), "random", seed)
    return up


def runner(up: FaissUpgrade, batch_size: int, delay: float = 0.0, **kw) -> BackfillRunner:
    return BackfillRunner(up, fetch, LocalExecutor(ToyEncoder(delay)), batch_size=batch_size, progress=False, **kw)


def main() -> None:
    import argparse
    import os
    import signal
    import sys

    p = argparse.ArgumentParser()
    p.add_argument("upgrade")
    p.add_argument("batch_size", type=int)
    p.add_argument("delay", type=float)
    p.add_argument("--kill-at-manifest", type=int, default=0)
    a = p.parse_args()
    if a.kill_at_manifest:
        real, seen = os.replace, [0]

        def replace(src, dst):
            if os.path.basename(dst) == "manifest.json" and Path(dst).parent.name == "new":
                seen[0] += 1
                if seen[0] == a.kill_at_manifest:
                    os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = replace
    up = open_upgrade(a.upgrade)
    r = runner(up, a.batch_size, a.delay)
    print("start", flush=True)
    status = r.run()
    print(status.state, status.done, file=sys.stderr)


if __name__ == "__main__":
    main()
