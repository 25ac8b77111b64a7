"""``hotswap upgrade status`` reads one state from the upgrade on disk and the run lock: a backfill that holds
the lock across its evaluations (``--eval-every``) reads as backfilling between batches, not as paused."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.cli.upgrade import status_line, status_of
from hotswap.store import create_store
from hotswap.upgrade import create_upgrade


class _Toy:
    """A deterministic stand-in encoder (unit test only): a text's length in every dimension."""

    id, dim = "toy@1", 4

    def encode(self, texts, show_progress=False):
        return np.array([[len(t)] * self.dim for t in texts], dtype=np.float32)


@pytest.fixture
def folder(tmp_path):
    texts = {f"d{i}": "x" * (i + 1) for i in range(8)}
    with create_store(tmp_path / "old", "toy@0", 4) as store:
        store.add(list(texts), np.eye(8, 4, dtype=np.float32), "toy@0")
        up = create_upgrade(tmp_path / "up", store, "toy@1", 4)
        fetch = lambda ids: [texts[i] for i in ids]  # noqa: E731
        plan_backfill(up, "sequential", _Toy(), fetch)
        yield tmp_path / "up", BackfillRunner(up, fetch, LocalExecutor(_Toy()), batch_size=2, progress=False)
        up.close()


def test_a_held_run_reads_as_backfilling_between_batches(folder):
    path, runner = folder
    with runner.hold():
        runner.run(until=0.5)
        between = status_of(path)  # what another process sees while the curve evaluates
        assert between["state"] == "backfilling" and (between["done"], between["total"]) == (4, 8)
        assert status_line(between).startswith("backfilling")
    after = status_of(path)
    assert after["state"] == "paused" and after["done"] == 4


def test_a_finished_run_is_complete(folder):
    path, runner = folder
    runner.run()
    assert status_of(path)["state"] == "complete"
