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

Two bounds, also our reading (off by default, which is the formula above exactly):

* ``normalise``: the push is averaged over the neighbours, ``p_c + (lambda / k) * sum_j ...``, so its size
  does not grow with ``k``;
* ``max_shift = s``: each pseudo-old prototype is projected onto the cap ``||p~_c - p_c|| <= s`` of the unit
  sphere around its old prototype (moved along the great circle towards ``p_c`` until its chord distance is
  ``s``, i.e. angle ``2 asin(s / 2)``), so no prototype leaves the old model's neighbourhood.
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

    def __init__(self, k: int = 3, strength: float = 0.5, normalise: bool = False,
                 max_shift: float | None = None) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        if strength < 0:
            raise ValueError(f"strength (lambda) must be >= 0; got {strength}")
        if max_shift is not None and max_shift < 0:
            raise ValueError(f"max_shift must be >= 0 or None; got {max_shift}")
        self.k, self.strength, self.normalise = int(k), float(strength), bool(normalise)
        self.max_shift = None if max_shift is None else float(max_shift)

    @torch.no_grad()
    def forward(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if old.shape[0] != new.shape[0]:
            raise ValueError(
                f"old and new prototypes must cover the same classes; got {old.shape[0]} and {new.shape[0]}")
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
        if self.normalise:
            push = push / k
        pseudo = F.normalize(old + self.strength * push, dim=-1)
        if self.max_shift is not None:
            pseudo = project_to_cap(pseudo, old, self.max_shift)
        return torch.where(present[:, None], pseudo, old)


def project_to_cap(points: torch.Tensor, centres: torch.Tensor, max_shift: float) -> torch.Tensor:
    """Unit rows ``points`` moved onto ``||x - centre|| <= max_shift`` (chord distance) along the great circle
    to their unit ``centres``: ``x = cos(t) c + sin(t) u``, ``t = 2 asin(max_shift / 2)``, ``u`` the unit
    tangent from ``c`` towards the point; rows already within the bound are returned unchanged."""
    if max_shift >= 2.0:
        return points
    far = (points - centres).norm(dim=-1) > max_shift
    tangent = F.normalize(points - (points * centres).sum(-1, keepdim=True) * centres, dim=-1)
    angle = 2 * torch.asin(torch.tensor(max_shift / 2, dtype=points.dtype))
    capped = torch.cos(angle) * centres + torch.sin(angle) * tangent
    return torch.where(far[:, None], capped, points)


@dataclass(frozen=True)
class NDPPOptions(PrototypeOptions):
    k: int = 3
    strength: float = 0.5     # lambda
    normalise: bool = False   # divide the push by k
    max_shift: float | None = None   # bound on ||p~_c - p_c|| (None: unbounded)


@register_method("ndpp")
class NDPPMethod(PrototypeAlignmentMethod):
    Options = NDPPOptions

    def __init__(self, options: NDPPOptions, *args, **kwargs) -> None:
        super().__init__(options, *args, **kwargs)
        self.perturber = NDPP(options.k, options.strength, options.normalise, options.max_shift)

    def perturb(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.perturber(old, new, present)
