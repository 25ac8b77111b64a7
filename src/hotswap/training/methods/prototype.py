"""Plain prototype alignment, and the base of the prototype-perturbation methods (Zhou et al., arXiv 2503.14824).

``loss = CE(s cos(z, w), y) + a * CE(s cos(z, p), y)`` over the present classes
(:class:`hotswap.losses.prototype_alignment.PrototypeAlignment`), ``p`` the old model's class prototypes
(normalised class means of its normalised embeddings of the step's images). A perturbing method
(:class:`PerturbedPrototypes`) replaces ``p`` after every epoch by pseudo-old prototypes computed from ``p``
and the new model's class means of that epoch; for plain alignment ``p`` never moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hotswap.losses.prototype_alignment import PrototypeAccumulator, PrototypeAlignment, class_prototypes
from hotswap.training.methods.base import Method, MethodOptions
from hotswap.training.methods.registry import register_method


@dataclass(frozen=True)
class PrototypeOptions(MethodOptions):
    align_weight: float = 1.0    # a: weight of the alignment term


@register_method("prototype")
class PrototypeAlignmentMethod(Method):
    head = "cosine"
    Options = PrototypeOptions
    options: PrototypeOptions

    def __init__(self, options: PrototypeOptions, dim: int, n_classes: int, scale: float, old: Any = None,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        super().__init__(options, dim, n_classes, scale, old, x, y)
        if old.dim != dim:
            raise ValueError(f"prototype alignment needs equal dims; old is {old.dim}-d, new {dim}-d")
        if x is None or y is None:
            raise ValueError("prototype alignment needs the training images x and labels y")
        self.old_prototypes, self.present = class_prototypes(old.raw_features(x), y, n_classes)
        self.targets = self.old_prototypes.clone()
        self.align = PrototypeAlignment(scale)
        self.accumulator = PrototypeAccumulator(n_classes, dim)
        self.perturbation_norms: list[float] = []

    def loss(self, z: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, y: torch.Tensor,
             xb: torch.Tensor) -> torch.Tensor:
        self.accumulator.add(z, y)
        return super().loss(z, logits, targets, y, xb) + self.options.align_weight * self.align(
            z, y, self.targets, self.present)

    def perturb(self, old: torch.Tensor, new: torch.Tensor, present: torch.Tensor) -> torch.Tensor | None:
        """Pseudo-old prototypes from the old ones and this epoch's new class means (None: keep ``old``)."""
        return None

    def end_epoch(self) -> None:
        new_protos, seen = self.accumulator.prototypes()
        self.accumulator = PrototypeAccumulator(self.n_classes, self.dim)
        present = self.present & seen
        pseudo = self.perturb(self.old_prototypes, new_protos, present)
        if pseudo is None:
            return
        self.targets = torch.where(present[:, None], pseudo, self.old_prototypes)
        moved = (self.targets - self.old_prototypes).norm(dim=-1)[self.present]
        self.perturbation_norms.append(float(moved.mean()) if len(moved) else 0.0)

    def diagnostics(self) -> dict[str, Any]:
        return {"perturbation_norms": self.perturbation_norms}
