"""d-Simplex-HOC (Biondi et al., CVPR 2024, Sec. 4; code miccunifi/iamcl2r): a fixed regular-simplex classifier
and ``loss = lam * CE(simplex z, K-1-y) + (1 - lam) * InfoNCE(o, z)`` (:class:`hotswap.losses.hoc.HOCLoss`),
``o`` the frozen old model's embedding of the same image. At a replacement task the old model is the
replacement itself, as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hotswap.losses.hoc import HOCLoss
from hotswap.training.methods.base import Method, MethodOptions
from hotswap.training.methods.registry import register_method


@dataclass(frozen=True)
class DSimplexOptions(MethodOptions):
    lam: float = 0.1     # weight of the simplex cross-entropy (the code's lambda)
    mu: float = 10.0     # scale of the similarities inside InfoNCE (Eq. 4, the code's mu)


@register_method("dsimplex")
class DSimplex(Method):
    head = "simplex"
    Options = DSimplexOptions
    old_at_replacement = "init"

    def __init__(self, options: DSimplexOptions, dim: int, n_classes: int, scale: float, old: Any = None,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        super().__init__(options, dim, n_classes, scale, old, x, y)
        self.hoc = HOCLoss(lam=options.lam, mu=options.mu)

    def loss(self, z: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, y: torch.Tensor,
             xb: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ref = self.old.net(xb)
        return self.hoc(logits, targets, z, y, ref=ref)
