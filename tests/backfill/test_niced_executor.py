"""NicedExecutor: the same batches as LocalExecutor, encoded in a worker process at the lowest CPU priority."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hotswap.backfill import LocalExecutor
from hotswap.backfill.niced_executor import NicedExecutor
from hotswap.errors import ModelMismatchError
from tests.backfill.toy import ToyEncoder
from tests.serve.toy import NEW, ToyLoader


def test_same_vectors_as_in_process_from_a_niced_worker():
    batches = [([f"d{j}" for j in range(b, b + 5)], [f"text {j}" for j in range(b, b + 5)]) for b in (0, 5, 10)]
    ex = NicedExecutor(ToyLoader(), NEW, f"{NEW}@1", threads=1)
    try:
        got = list(ex.map(iter(batches)))
        (pid,) = list(ex._pool._processes)
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19 and pid != os.getpid()
    finally:
        ex.close()
    want = list(LocalExecutor(ToyEncoder(dim=16, name=NEW)).map(iter(batches)))
    assert [ids for ids, _ in got] == [ids for ids, _ in want]
    for (_, a), (_, b) in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_a_worker_with_another_model_is_refused():
    ex = NicedExecutor(ToyLoader(), NEW, "toy-new@2")
    with pytest.raises(ModelMismatchError, match="toy-new@1"):
        list(ex.map(iter([(["a"], ["x"])])))
    with pytest.raises(ValueError, match="niceness"):
        NicedExecutor(ToyLoader(), NEW, niceness=25)
