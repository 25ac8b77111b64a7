"""``reverse``: Seo et al.'s reverse query transform ``psi`` (new -> old space) as a fitted adapter.

During an online backfill, mode ``adapted`` of a ``Searcher.for_upgrade`` sends ``psi(phi_new(q))`` to the
old partition and ``phi_new(q)`` to the new one, then merges by score: the query is encoded **once**, by the
new model (Seo et al., WACV 2025, arXiv 2301.03767, "reverse query transform"). ``psi`` comes either from
``fit`` (both encoders frozen: :func:`hotswap.adapters.reverse_transform.fit_reverse_transform` on paired
embeddings, the paper's post-hoc form) or from :meth:`Reverse.from_module` (a ``psi`` trained jointly with the
new model, e.g. with CMCL). Learned state: the ``ReverseTransform``'s tensors (``linear_weight_``, ...),
restored into the module on load; torch is imported only when the adapter is fitted or used. The output
is L2-normalised by default (``normalise``), so merged scores compare with the new partition's cosines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hotswap.adapters.base import Adapter, AdapterConfig
from hotswap.adapters.registry import register_adapter


@dataclass
class ReverseConfig(AdapterConfig):
    hidden: int | None = None  # None: linear psi; else width of the residual MLP branch
    epochs: int = 200
    lr: float = 1e-2
    loss: str = "l2"  # "l2" or "cosine" (fit only)
    seed: int = 0
    normalise: bool = True  # L2-normalise psi's output, as the old model's stored vectors are


@register_adapter("reverse")
class Reverse(Adapter):
    """``q_hat = psi(q)`` (:class:`hotswap.adapters.reverse_transform.ReverseTransform`)."""

    config_class = ReverseConfig
    config: ReverseConfig

    def _fit(self, X_new: np.ndarray, X_old: np.ndarray) -> None:
        from hotswap.adapters.reverse_transform import fit_reverse_transform

        c = self.config
        self._take(fit_reverse_transform(X_new.astype(np.float32), X_old.astype(np.float32), hidden=c.hidden,
                                         epochs=c.epochs, lr=c.lr, loss=c.loss, seed=c.seed))

    @classmethod
    def from_module(cls, psi: Any, *, new_model_id: str | None, old_model_id: str | None,
                    normalise: bool = True) -> Reverse:
        """Wrap an already trained ``ReverseTransform`` (e.g. trained jointly with the new model)."""
        obj = cls(hidden=psi.hidden, normalise=normalise)
        obj._take(psi)
        obj.dim_in_, obj.dim_out_, obj.n_fit_pairs_ = psi.dim_new, psi.dim_old, 0
        obj.new_model_id_, obj.old_model_id_ = new_model_id, old_model_id
        obj._prepare()
        return obj

    def _take(self, psi: Any) -> None:
        for key, value in psi.state_dict().items():
            setattr(self, key.replace(".", "_") + "_", value.detach().cpu().numpy().astype(np.float32))

    def _prepare(self) -> None:
        import torch

        from hotswap.adapters.reverse_transform import ReverseTransform

        psi = ReverseTransform(self.dim_in_, self.dim_out_, self.config.hidden)
        state = {key: torch.from_numpy(np.asarray(getattr(self, key.replace(".", "_") + "_"), dtype=np.float32))
                 for key in psi.state_dict()}
        psi.load_state_dict(state)
        self._psi = psi.eval()

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return self._psi.transform(X, normalise=self.config.normalise)
