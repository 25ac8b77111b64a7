"""NDPP: neighbour-driven prototype perturbation (Zhou et al., arXiv 2503.14824, Sec. "NDPP"), as a training
method (prototype alignment to NDPP's pseudo-old prototypes, refreshed every epoch) and its perturber.

The paper's formula could not be read here; this is our reading, built on
what the abstract states: perturb the old class prototypes into a *pseudo-old* space, using the feature
distributions of both the old and the new model, and update the perturbation as the new model trains, so that
classes crowded in the old space can stay apart in the new one. For each class c with old prototype
``p_c`` and new-model prototype ``q_c`` (class means, unit norm):

    w_cj  = max(0, cos(p_c, p_j) - cos(q_c, q_j))                      (old crowds c and j more than new)
    p~_c  = normalise( p_c + lambda * sum_{j in kNN_old(c)} w_cj * (p_c - p_j) / ||p_c - p_j|| )

i.e. c is pushed away from those of its ``k`` nearest old-space neighbours that the new model separates
better; ``w = 0`` (no perturbation) where the new model is not yet more discriminative. Recomputed once per
epoch from the new model's current prototypes. Free parameters (not stated in what we could read):
``k = 3``, ``lambda = 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hotswap.training.methods.prototype import PrototypeAlignmentMethod, PrototypeOptions
from hotswap.training.methods.registry import register_method


class NDPP(nn.Module):
    """``forward(old [C, d], new [C, d], present [C] | None) -> pseudo-old prototypes [C, d]`` (no grad)."""

    def __init__(self, k: int = 3, strength: float = 0.5) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        if strength < 0:
            raise ValueError(f"strength (lambda) must be >= 0; got {strength}")
        self.k, self.strength = int(k), float(strength)

    @torch.no_grad()
    def forward(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if old.shape[0] != new.shape[0]:
            raise ValueError(f"old and new prototypes must cover the same classes; got {old.shape[0]} and {new.shape[0]}")
        old, new = F.normalize(old, dim=-1), F.normalize(new, dim=-1)
        n = old.shape[0]
        present = torch.ones(n, dtype=torch.bool) if present is None else present.bool()
        cos_old, cos_new = old @ old.T, new @ new.T
        usable = present[:, None] & present[None, :] & ~torch.eye(n, dtype=torch.bool)
        k = min(self.k, max(int(present.sum()) - 1, 0))
        if k == 0:
            return old.clone()
        nn_scores = cos_old.masked_fill(~usable, float("-inf"))
        idx = nn_scores.topk(k, dim=1).indices                                   # [C, k]
        neighbour = torch.zeros_like(usable)
        neighbour.scatter_(1, idx, True)
        neighbour &= usable
        weight = (cos_old - cos_new).clamp_min(0) * neighbour                    # w_cj on kNN only
        diff = old[:, None, :] - old[None, :, :]                                 # p_c - p_j  [C, C, d]
        direction = diff / diff.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        push = (weight[:, :, None] * direction).sum(dim=1)
        pseudo = F.normalize(old + self.strength * push, dim=-1)
        return torch.where(present[:, None], pseudo, old)


@dataclass(frozen=True)
class NDPPOptions(PrototypeOptions):
    k: int = 3
    strength: float = 0.5     # lambda


@register_method("ndpp")
class NDPPMethod(PrototypeAlignmentMethod):
    Options = NDPPOptions

    def __init__(self, options: NDPPOptions, *args, **kwargs) -> None:
        super().__init__(options, *args, **kwargs)
        self.perturber = NDPP(options.k, options.strength)

    def perturb(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.perturber(old, new, present)
