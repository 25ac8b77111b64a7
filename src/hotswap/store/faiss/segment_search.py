"""Search over a store's memory-mapped segments: one job, answering queries from a list of float32 arrays.

``search_segments`` returns padded top-k ``(D, P)`` (``P`` a global row, -1 pads): for "Flat" stores
``search_flat`` runs exact ``faiss.knn`` per segment and merges the per-segment top-k, so no second copy of
the vectors is made; otherwise it asks the index from ``build_index``, a FAISS factory index over the
segments, trained on a sample first when the index type needs it. Dead rows (replaced or deleted) are asked
for on top of k (per segment: that segment's dead count) and dropped, so the top k of the live rows is exact.
``gather_rows`` reads rows by global row.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

FAISS_METRIC = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
TRAIN_SAMPLE = 200_000


def check_factory(dim: int, factory: str, metric: str) -> None:
    """Raise ``ValueError`` unless FAISS can build ``factory`` for ``dim`` and ``metric``."""
    try:
        faiss.index_factory(dim, factory, FAISS_METRIC[metric])
    except RuntimeError as e:
        raise ValueError(f"invalid FAISS factory string {factory!r}: {e}") from e


def search_segments(Q: np.ndarray, k: int, segments: Sequence[np.ndarray], starts: Sequence[int], metric: str,
                    index: faiss.Index | None = None,
                    dead: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k float32 ``D`` (best first) and global rows ``P`` (-1 and the worst score pad short lists), never
    one of the sorted global rows ``dead``.

    With ``index`` None, exact search over the segments (``search_flat``); otherwise ``index.search``.
    """
    fill = -np.inf if metric == "ip" else np.inf
    dead = np.empty(0, np.int64) if dead is None else dead
    if index is None:
        D, P = search_flat(Q, k, segments, starts, metric, fill, dead)
    else:
        D, P = index.search(Q, min(k + len(dead), max(index.ntotal, 1)))
        D, P = top_k_live(D, P, k, metric, fill, dead)
    return D.astype(np.float32, copy=False), P


def search_flat(Q: np.ndarray, k: int, segments: Sequence[np.ndarray], starts: Sequence[int], metric: str,
                fill: float, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k ``(D, P)`` over each segment, merged; ``P`` is a global row (segment start + row), -1 pads."""
    Ds, Ps = [], []
    for start, X in zip(starts, segments):
        gone = int(np.searchsorted(dead, start + len(X)) - np.searchsorted(dead, start))
        if gone == len(X):
            continue
        D, P = faiss.knn(Q, X, min(k + gone, len(X)), metric=FAISS_METRIC[metric])
        Ds.append(D)
        Ps.append(P + start)
    if not Ds:
        return np.full((len(Q), k), fill, np.float32), np.full((len(Q), k), -1, np.int64)
    return top_k_live(np.concatenate(Ds, axis=1), np.concatenate(Ps, axis=1), k, metric, fill, dead)


def top_k_live(D: np.ndarray, P: np.ndarray, k: int, metric: str, fill: float,
               dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best k of ``(D, P)`` after dropping dead rows and -1s, padded to k with ``fill`` / -1."""
    D, P = D.copy(), P.copy()
    gone = (P < 0) | np.isin(P, dead) if len(dead) else P < 0
    D[gone], P[gone] = fill, -1
    if D.shape[1] < k:
        D = np.concatenate([D, np.full((len(D), k - D.shape[1]), fill, D.dtype)], axis=1)
        P = np.concatenate([P, np.full((len(P), k - P.shape[1]), -1, np.int64)], axis=1)
    order = np.argsort(-D if metric == "ip" else D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), np.take_along_axis(P, order, 1)


def build_index(dim: int, factory: str, metric: str, segments: Sequence[np.ndarray], count: int) -> faiss.Index:
    """Factory index holding every segment's rows, trained first (on up to 200k sampled rows) if it needs it."""
    index = faiss.index_factory(dim, factory, FAISS_METRIC[metric])
    if not index.is_trained:
        step = max(1, -(-count // TRAIN_SAMPLE))
        try:
            index.train(np.concatenate([X[::step] for X in segments]))
        except RuntimeError as e:
            raise ValueError(f"cannot train index {factory!r} on {count} "
                             f"vectors ({e}); add more vectors first or use 'Flat'") from e
    for X in segments:
        index.add(X)
    return index


def gather_rows(segments: Sequence[np.ndarray], starts: Sequence[int], P: np.ndarray, dim: int) -> np.ndarray:
    """float32 ``[len(P), dim]``: the rows at global positions ``P`` (segment start + row), in that order."""
    seg = np.searchsorted(starts, P, side="right") - 1
    out = np.empty((len(P), dim), np.float32)
    for s in np.unique(seg):
        m = seg == s
        out[m] = segments[s][P[m] - starts[s]]
    return out
