"""``compatible``: the identity map, for a new model *trained* to be backward compatible with the old one.

BCT, d-Simplex-HOC, NDPP and ODPP (``hotswap train bcl``) train the new model so that its embeddings can be
compared with the old model's as they are: ``q_hat = q``. Registering that as an adapter lets the rest of
hotswap treat it like any fitted map: the store still refuses queries of a model it does not know, and this
adapter records which new model is declared compatible with which old one. ``fit`` needs aligned pairs only to
check the dimensions and to record a diagnostic, ``agreement_`` = the mean cosine between the two models'
embeddings of the same items (1.0 = the same space; near 0 = not compatible: fit a real adapter instead).
"""

from __future__ import annotations

import numpy as np

from hotswap.adapters.base import Adapter
from hotswap.adapters.registry import register_adapter


@register_adapter("compatible")
class Compatible(Adapter):
    """``q_hat = q`` (float32); learned: ``agreement_`` (mean paired cosine at fit time)."""

    equal_dims = True

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:
        n = np.linalg.norm(X_new, axis=1) * np.linalg.norm(X_old, axis=1)
        self.agreement_ = float(np.mean(np.sum(X_new * X_old, axis=1) / np.maximum(n, 1e-12)))

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)
