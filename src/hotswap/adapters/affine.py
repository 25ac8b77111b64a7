"""Affine adapter: ridge least squares with a bias, alpha chosen by generalised cross-validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotswap.adapters.base import Adapter, AdapterConfig
from hotswap.adapters.registry import register_adapter
from hotswap.linalg import check_alpha, ridge_fit


@dataclass
class AffineConfig(AdapterConfig):
    alpha: float | str = "auto"  # ridge penalty; "auto" = GCV over linalg.ALPHA_GRID on the fit data

    def __post_init__(self) -> None:
        check_alpha(self.alpha)


@register_adapter("affine")
class Affine(Adapter):
    """Affine map ``q_hat = q W + b`` fitted by ridge regression (classic ridge, Hoerl & Kennard 1970).

    ``W = (Xc^T Xc + alpha I)^-1 Xc^T Yc`` on centred pairs (``Xc = X_new - mean``, ``Yc = X_old - mean``),
    ``b = mean(X_old) - mean(X_new) W``; the bias is not penalised. ``alpha="auto"`` picks alpha by GCV (see
    ``ridge_fit``); the alpha used is stored in ``alpha_``. Learned: ``W_`` [d_in, d_out], ``b_``, ``alpha_``.
    """

    config_class = AffineConfig
    config: AffineConfig

    def min_pairs(self, dim_in: int, dim_out: int) -> int:
        return 3

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:
        fit = ridge_fit(X_new, X_old, self.config.alpha)
        self.W_, self.b_ = fit.W.astype(np.float32), fit.b.astype(np.float32)
        self.alpha_ = fit.alpha

    def _transform(self, X: np.ndarray) -> np.ndarray:
        Y = X @ self.W_
        Y += self.b_
        return Y
