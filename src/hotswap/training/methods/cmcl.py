"""CMCL training (Seo et al., WACV 2025, arXiv 2301.03767, metric-compatible contrastive learning): the new
model and its reverse query transform ``psi`` (new -> old) are trained together:

    loss = CE(s cos(z, w), y) + a * ||psi(n) - o||^2 + b * CMCL(z, psi(n), y, o)

``n`` the L2-normalised new embedding (what search feeds ``psi``), ``o`` the frozen old model's normalised
embedding of the same image (:class:`hotswap.losses.cmcl.CMCL`). ``psi`` is saved with the model
(``BCLModel.psi``). With ``learnable_embedding`` the net gets Seo et al.'s ``rho`` after ``fc1`` (identity
start): the classifier reads ``fc1``'s output; CMCL, the regression and the stored embedding read ``rho``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hotswap.adapters.reverse_transform import ReverseTransform
from hotswap.losses.cmcl import CMCL
from hotswap.training.methods.base import Method, MethodOptions
from hotswap.training.methods.registry import register_method


@dataclass(frozen=True)
class CMCLOptions(MethodOptions):
    temperature: float = 0.1
    weight: float = 1.0                # b: weight of CMCL
    psi_l2_weight: float = 1.0         # a: psi's own regression loss ||psi(n) - o||^2
    psi_hidden: int | None = None      # None = linear psi, else the residual MLP's width
    learnable_embedding: bool = False  # add rho after fc1 (the stored embedding; CE reads fc1's output)


def psi_terms(psi: nn.Module, cmcl: CMCL, z: torch.Tensor, ref: torch.Tensor,
              y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(||psi(n) - o||^2 averaged over the batch, CMCL(z, psi(n), y, o))`` with ``n = z / ||z||`` and ``o`` the
    normalised ``ref``: the two terms ``psi`` learns from, whether the new net trains with it or stays frozen."""
    reversed_ = psi(nn.functional.normalize(z, dim=-1))
    regression = (reversed_ - nn.functional.normalize(ref, dim=-1)).pow(2).sum(-1).mean()
    return regression, cmcl(z, reversed_, y, ref)


@register_method("cmcl")
class CMCLMethod(Method):
    head = "cosine"
    Options = CMCLOptions
    options: CMCLOptions

    def __init__(self, options: CMCLOptions, dim: int, n_classes: int, scale: float, old: Any = None,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        super().__init__(options, dim, n_classes, scale, old, x, y)
        self.cmcl = CMCL(temperature=options.temperature)
        self.psi = ReverseTransform(dim, old.dim, options.psi_hidden)

    @classmethod
    def net_options(cls, options: MethodOptions) -> dict[str, Any]:
        if not isinstance(options, CMCLOptions):
            raise TypeError(f"method cmcl takes CMCLOptions, not {type(options).__name__}")
        return {"learnable_embedding": options.learnable_embedding}

    def modules(self) -> list[nn.Module]:
        return [self.psi]

    def loss(self, z: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, y: torch.Tensor,
             xb: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ref = self.old.net(xb)
        regression, contrast = psi_terms(self.psi, self.cmcl, z, ref, y)
        return (super().loss(z, logits, targets, y, xb) + self.options.psi_l2_weight * regression
                + self.options.weight * contrast)

    def finish(self, model: Any) -> None:
        model.psi = self.psi.eval()
