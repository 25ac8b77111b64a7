"""Input checks shared by stores, adapters and searchers: one place, one wording."""

from __future__ import annotations

import numpy as np

from hotswap.errors import DimensionMismatchError, InvalidVectorsError


def as_matrix(X, *, dim: int | None = None, name: str = "vectors", where: str = "") -> np.ndarray:
    """Return ``X`` as a C-contiguous float32 ``[n, d]`` array, or raise a clear error.

    Raises ``InvalidVectorsError`` for a non-2-D input or NaN/inf values (naming the first bad row) and
    ``DimensionMismatchError`` when ``dim`` is given and the width differs (``where`` names the expecting side,
    e.g. ``"index dimension 384 (model minilm)"``).
    """
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidVectorsError(f"{name} must be a 2-D array [n, d]; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidVectorsError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if dim is not None and arr.shape[1] != dim:
        target = where or f"expected dimension {dim}"
        raise DimensionMismatchError(f"{name} have dimension {arr.shape[1]}, which does not match {target}")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidVectorsError(
            f"{name} contain NaN or inf values in {bad.size} row(s) (first: row {int(bad[0])}); "
            "clean or drop those rows before adding or searching"
        )
    return arr


def l2_normalise(X: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (float32); zero rows stay zero."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, eps)


def check_k(k: object) -> int:
    """``k`` as an int; ``ValueError`` unless it is a positive integer (``True`` is not one)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    return int(k)
