"""Linear-algebra helpers shared by several floors: closed-form ridge regression with GCV-chosen penalty."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# alpha grid for "auto", relative to the mean eigenvalue of Xc^T Xc (so it is scale-free): 1e-6 .. 1e3
ALPHA_GRID = np.logspace(-6, 3, 37)


class RidgeFit(NamedTuple):
    W: np.ndarray  # [d_in, d_out]
    b: np.ndarray  # [d_out]
    alpha: float
    mu_x: np.ndarray  # [d_in]


def check_alpha(alpha: float | str) -> None:
    """Raise ``ValueError`` unless ``alpha`` is ``"auto"`` or a number >= 0."""
    if alpha != "auto" and not (isinstance(alpha, (int, float)) and alpha >= 0):
        raise ValueError(f"alpha must be 'auto' or a number >= 0; got {alpha!r}")


def ridge_fit(X: np.ndarray, Y: np.ndarray, alpha: float | str = "auto") -> RidgeFit:
    """Closed-form ridge with an unpenalised bias: ``W = (Xc^T Xc + alpha I)^-1 Xc^T Yc``, ``b = mean(Y) - mean(X) W``.

    Computed through the eigendecomposition of the Gram matrix ``Xc^T Xc = V diag(s^2) V^T`` (``s``: singular
    values of ``Xc``; O(n d^2), much cheaper than an SVD of ``Xc``) and ``P = V^T Xc^T Yc``:
    ``W = V diag(1 / (s^2 + alpha)) P``. For ``alpha="auto"`` each grid value is scored by GCV (Golub, Heath &
    Wahba 1979), ``GCV(a) = n * RSS(a) / (n - 1 - df(a))^2``, ``df(a) = sum s^2 / (s^2 + a)`` (+1: the bias),
    ``RSS(a) = ||Yc||^2 - sum_i r_i + sum_i (a / (s_i^2 + a))^2 r_i`` with ``r_i = ||P_i||^2 / s_i^2``
    (= ``||(U^T Yc)_i||^2``): O(d) per alpha, using only the fit data. Ties go to the smaller alpha.
    """
    mu_x, mu_y = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - mu_x, Y - mu_y
    s2, V = np.linalg.eigh(Xc.T @ Xc)
    keep = s2 > max(float(s2[-1]), 0.0) * max(Xc.shape) * 1e-13  # drop the (numerical) null space
    s2, V = s2[keep], V[:, keep]
    P = V.T @ (Xc.T @ Yc)  # [k, d_out]
    if alpha == "auto":
        r2 = np.square(P).sum(axis=1) / s2
        alphas = ALPHA_GRID * (s2.sum() / X.shape[1] if s2.size else 1.0)
        shrink = alphas[:, None] / (s2[None, :] + alphas[:, None])  # [grid, k]
        rss = np.maximum(float(np.square(Yc).sum() - r2.sum()) + (np.square(shrink) * r2).sum(axis=1), 0.0)
        denom = X.shape[0] - 1.0 - (1.0 - shrink).sum(axis=1)
        gcv = np.where(denom > 0, X.shape[0] * rss / np.maximum(denom, 1e-300) ** 2, np.inf)
        alpha = float(alphas[int(np.argmin(gcv))])
    W = V @ (P / (s2 + float(alpha))[:, None])
    return RidgeFit(W, mu_y - mu_x @ W, float(alpha), mu_x)
