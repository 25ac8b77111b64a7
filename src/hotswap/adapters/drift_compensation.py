"""Query Drift Compensation (QDC; Goswami, Wang, Twardowski, van de Weijer, CoLLAs 2025, arXiv 2506.00037)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotswap.adapters.base import Adapter, AdapterConfig
from hotswap.adapters.registry import register_adapter
from hotswap.errors import NotFittedError
from hotswap.validation import as_matrix


@dataclass
class DriftConfig(AdapterConfig):
    """QDC has no hyper-parameters."""


@register_adapter("drift")
class DriftCompensation(Adapter):
    """Subtract the mean query drift: ``q_hat = f_T(q) - sum_k delta_k``, ``delta_k = mean_q(f_k(q) - f_{k-1}(q))``.

    QDC (Goswami et al., CoLLAs 2025, arXiv 2506.00037; public code dipamgoswami/QDC). ``fit(X_new, X_old)``
    stores one step, ``delta_ = mean(X_new - X_old, axis=0)``; the continual case chains steps with
    ``from_deltas([d2, d3, ...])`` or ``add_delta(d)``, keeping every step in ``deltas_`` [steps, d] and their
    sum in ``delta_``. Needs ``d_new == d_old``. As in the paper's code the result is not re-normalised: for
    one query, dividing by ``||q_hat||`` scales all its cosine/inner-product scores by the same positive
    number, so its ranking of the index is unchanged (only scores compared across queries would differ).
    """

    config_class = DriftConfig
    equal_dims = True

    def min_pairs(self, dim_in: int, dim_out: int) -> int:
        return 1

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:
        self.deltas_ = (X_new - X_old).mean(axis=0, keepdims=True).astype(np.float32)

    def _prepare(self) -> None:
        self.delta_ = self.deltas_.astype(np.float64).sum(axis=0).astype(np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X - self.delta_

    @classmethod
    def from_deltas(cls, deltas: Sequence[Any] | np.ndarray, *, new_model_id: str | None = None,
                    old_model_id: str | None = None) -> DriftCompensation:
        """A fitted adapter from per-step drifts ``[delta_2, ..., delta_T]`` (each ``[d]``), e.g. saved by training.

        ``new_model_id`` is the latest model f_T (whose queries it accepts), ``old_model_id`` the model
        that built the index (f_1).
        """
        if len(deltas) == 0:
            raise ValueError("from_deltas needs at least one drift vector")
        D = as_matrix(np.stack([np.asarray(d, dtype=np.float32).reshape(-1) for d in deltas]), name="deltas")
        obj = cls()
        obj.deltas_ = D
        obj.dim_in_ = obj.dim_out_ = D.shape[1]
        obj.n_fit_pairs_ = None
        obj.new_model_id_, obj.old_model_id_ = new_model_id, old_model_id
        obj._prepare()
        return obj

    def add_delta(self, delta: Any, *, new_model_id: str | None = None) -> DriftCompensation:
        """Append one more step's drift (after a further model update); optionally record the new latest model."""
        if not self.is_fitted:
            raise NotFittedError("add_delta needs a fitted adapter; call fit or DriftCompensation.from_deltas first")
        d = as_matrix(np.asarray(delta).reshape(1, -1), dim=self.dim_in_, name="delta",
                      where=f"the adapter's dimension {self.dim_in_} (new model {self.new_model_id_!r})")
        self.deltas_ = np.concatenate([self.deltas_, d])
        if new_model_id is not None:
            self.new_model_id_ = new_model_id
        self._prepare()
        return self
