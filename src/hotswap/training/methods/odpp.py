"""ODPP: optimisation-driven prototype perturbation (Zhou et al., arXiv 2503.14824, Sec. "ODPP"), as a training
method (prototype alignment to ODPP's pseudo-old prototypes, refreshed every epoch) and its perturber.

The paper's objective could not be read here; this is our reading, stated below. Each
class c gets a perturbation ``e_c`` of its old prototype ``p_c``, found by a few projected gradient steps on

    min_e  sum_c sum_{j != c}  max(0, cos(p_c + e_c, p_j + e_j) - cos(q_c, q_j))    s.t.  ||e_c|| <= r

where ``q`` are the new model's class prototypes: the pseudo-old space may not crowd two classes more than the
new model does, and may move each prototype at most ``r`` from its old position (the compatibility budget).
``e`` is warm-started from the previous epoch's solution, so the perturbation follows the new model as it
trains; each refresh keeps the best feasible iterate (the warm start included), so the objective never
rises from one refresh to the next on the same prototypes. The pseudo-old prototype is
``p~_c = normalise(p_c + e_c)``. Free parameters (not stated in what we
could read): ``r = 0.3``, 20 steps of Adam at lr 0.01 per refresh.

``proximity = mu`` (our addition, default 0: the objective above exactly) adds ``mu * sum_c ||e_c||^2`` to the
objective, so a prototype moves only as far as the hinge needs rather than to the edge of its ball.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hotswap.training.methods.prototype import PrototypeAlignmentMethod, PrototypeOptions
from hotswap.training.methods.registry import register_method


def odpp_objective(old: torch.Tensor, delta: torch.Tensor, new: torch.Tensor, present: torch.Tensor,
                   proximity: float = 0.0) -> torch.Tensor:
    """The hinge sum above, over ordered pairs of present classes (``old``/``new`` unit rows), plus
    ``proximity * sum_c ||e_c||^2`` over the present classes when ``proximity > 0``."""
    pseudo = F.normalize(old + delta, dim=-1)
    n = old.shape[0]
    mask = present[:, None] & present[None, :] & ~torch.eye(n, dtype=torch.bool, device=old.device)
    excess = (pseudo @ pseudo.T - new @ new.T).clamp_min(0)
    total = (excess * mask).sum()
    if proximity:
        total = total + proximity * (delta[present] ** 2).sum()
    return total


def project_to_ball(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """Rows of ``delta`` scaled back onto the ball ``||e_c|| <= radius`` where they leave it."""
    norms = delta.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return delta * (radius / norms).clamp(max=1.0)


class ODPP(nn.Module):
    """``forward(old [C, d], new [C, d], present [C] | None) -> pseudo-old prototypes [C, d]`` (no grad out).

    Keeps the perturbation ``delta`` between calls (warm start); ``reset()`` clears it.
    """

    def __init__(self, radius: float = 0.3, steps: int = 20, lr: float = 0.01, proximity: float = 0.0) -> None:
        super().__init__()
        if radius < 0 or steps < 0 or lr <= 0 or proximity < 0:
            raise ValueError(f"need radius >= 0, steps >= 0, lr > 0, proximity >= 0; got {radius}, {steps}, {lr}, "
                             f"{proximity}")
        self.radius, self.steps, self.lr, self.proximity = float(radius), int(steps), float(lr), float(proximity)
        self.delta: torch.Tensor | None = None
        self.last_objective: float | None = None

    def reset(self) -> None:
        self.delta = None

    def forward(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if old.shape != new.shape:
            raise ValueError(f"old and new prototypes must have the same shape; got {tuple(old.shape)} and "
                             f"{tuple(new.shape)}")
        old, new = F.normalize(old.detach(), dim=-1), F.normalize(new.detach(), dim=-1)
        present = torch.ones(old.shape[0], dtype=torch.bool) if present is None else present.bool()
        if self.delta is None or self.delta.shape != old.shape:
            self.delta = torch.zeros_like(old)
        delta = self.delta.clone().requires_grad_(True)
        best, best_loss = self.delta.clone(), float(odpp_objective(old, self.delta, new, present, self.proximity))
        opt = torch.optim.Adam([delta], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                opt.zero_grad()
                odpp_objective(old, delta, new, present, self.proximity).backward()
                opt.step()
                with torch.no_grad():
                    delta.copy_(project_to_ball(delta, self.radius))
                    delta[~present] = 0
                    loss = float(odpp_objective(old, delta, new, present, self.proximity))
                    if loss < best_loss:
                        best, best_loss = delta.detach().clone(), loss
        self.delta, self.last_objective = best, best_loss
        return F.normalize(old + self.delta, dim=-1)


@dataclass(frozen=True)
class ODPPOptions(PrototypeOptions):
    radius: float = 0.3       # r
    steps: int = 20           # Adam steps per refresh
    proximity: float = 0.0    # mu: weight of sum_c ||e_c||^2


@register_method("odpp")
class ODPPMethod(PrototypeAlignmentMethod):
    Options = ODPPOptions

    def __init__(self, options: ODPPOptions, *args, **kwargs) -> None:
        super().__init__(options, *args, **kwargs)
        self.perturber = ODPP(options.radius, options.steps, proximity=options.proximity)

    def perturb(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return self.perturber(old, new, present)
