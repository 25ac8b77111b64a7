"""What each path costs: the new model's encode rate measured here, and what follows from it.

* full backfill: ``len(collection) / rate`` seconds of encoding (and ``hours * cost_per_hour``);
* cascade ``G``: up to ``G`` new-model encodes per query (fewer as the backfill progresses), about
  ``G / rate`` seconds each on this machine;
* an adapter: the measured time of its ``transform`` per query (plus the query's own encoding, as today).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

RATE_SAMPLE = 256


def encode_rate(encoder: Any, texts: Sequence[str], n: int | None = RATE_SAMPLE, warm_up: bool = True) -> float:
    """Items per second of one plain ``encoder.encode`` call (batch 64, not cached, no store) over up to ``n`` of
    ``texts`` (all with ``None``); ``warm_up`` first encodes 8 of them, so first-call overheads are not the rate."""
    probe = list(texts if n is None else texts[:n])
    if not probe:
        return float("nan")
    if warm_up:
        encoder.encode(probe[:8], batch_size=8, show_progress=False)
    started = time.perf_counter()
    encoder.encode(probe, batch_size=64, show_progress=False)
    return len(probe) / max(time.perf_counter() - started, 1e-9)


def per_query_ms(transform: Any, Q: np.ndarray, repeats: int = 3) -> float:
    """Milliseconds per query of ``transform(Q)`` (best of ``repeats`` passes over all of ``Q``)."""
    if len(Q) == 0:
        return float("nan")
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        transform(Q)
        best = min(best, time.perf_counter() - started)
    return 1000.0 * best / len(Q)


def backfill_hours(n_items: int, rate: float) -> float:
    return float(n_items / rate / 3600.0) if rate > 0 else float("inf")
