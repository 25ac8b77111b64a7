"""Helpers shared by the latency benchmarks: synthetic unit vectors and row slices of query batches."""

from __future__ import annotations

import numpy as np

OLD, NEW = "old@bench", "new@bench"


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """``n`` random unit rows of width ``d`` (float32)."""
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def rows(Q, start: int, stop: int):
    """Rows ``start:stop`` of a query matrix, or of both matrices of a (new, old) pair (blended, merged)."""
    return tuple(q[start:stop] for q in Q) if isinstance(Q, tuple) else Q[start:stop]
