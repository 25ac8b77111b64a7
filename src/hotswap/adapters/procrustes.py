"""Orthogonal Procrustes adapter (Drift-Adapter, EMNLP 2025, arXiv 2509.23471)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hotswap.adapters.base import Adapter, AdapterConfig
from hotswap.adapters.registry import register_adapter


@dataclass
class ProcrustesConfig(AdapterConfig):
    center: bool = False  # subtract both means before fitting; add the old mean back at transform
    scale: bool = False  # also fit one isotropic scale s


@register_adapter("procrustes")
class Procrustes(Adapter):
    """Semi-orthogonal map ``q_hat = s * (q - mu_new) W + mu_old`` (``s = 1``, ``mu = 0`` by default).

    ``W = U V^T`` from the thin SVD ``X_new^T X_old = U S V^T`` (Schoenemann 1966; the orthogonal variant of
    Drift-Adapter, EMNLP 2025, arXiv 2509.23471) maximises ``trace(W^T X_new^T X_old)`` over semi-orthogonal
    ``W`` [d_new, d_old]. Unequal dims: we implement this thin-SVD form directly; it is the leading
    ``d_new x d_old`` block of the square solution with the smaller side zero-padded (unique when
    ``X_new^T X_old`` has rank ``min(d_new, d_old)``), without building padded matrices. Why it is right:
    ``d_new <= d_old``: ``W W^T = I`` (an isometry into a d_new-dim subspace of the old space) and
    ``||X_new W||_F = ||X_new||_F`` for every such W, so it is the exact least-squares optimum.
    ``d_new > d_old``: ``W^T W = I`` (rotate, then drop ``d_new - d_old`` directions); it is exact for the
    padded problem (old vectors with zero extra coordinates) and the least-squares optimum over the Stiefel
    manifold only when ``X_new``'s covariance is isotropic; that "unbalanced" problem has no closed form,
    and ``affine``/``low_rank`` fit it without the constraint. With ``scale=True`` the optimal isotropic scale
    given W is ``s = trace(S) / ||X_new W||_F^2`` (on centred data when ``center=True``).

    Learned: ``W_`` (= ``s * U V^T``, float32), ``b_`` (= ``mu_old - s * mu_new W``), ``scale_``.
    """

    config_class = ProcrustesConfig
    config: ProcrustesConfig

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:
        mu_new = X_new.mean(axis=0) if self.config.center else np.zeros(X_new.shape[1])
        mu_old = X_old.mean(axis=0) if self.config.center else np.zeros(X_old.shape[1])
        A, B = X_new - mu_new, X_old - mu_old
        U, S, Vt = np.linalg.svd(A.T @ B, full_matrices=False)
        W = U @ Vt
        s = 1.0
        if self.config.scale:
            s = float(S.sum() / max(float(np.square(A @ W).sum()), np.finfo(np.float64).tiny))
        self.scale_ = s
        self.W_ = (s * W).astype(np.float32)
        self.b_ = (mu_old - s * (mu_new @ W)).astype(np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        Y = X @ self.W_
        Y += self.b_
        return Y
