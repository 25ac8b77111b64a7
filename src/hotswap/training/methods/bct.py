"""BCT (Shen et al., CVPR 2020, Sec. 3.2): ``loss = CE(W z + b, y) + CE(W_old z + b_old, y)``.

The old classifier (frozen) scores the new embedding; classes the old model never saw get the old model's
class means as their rows (the paper's "synthesised classifier" for new classes,
:class:`hotswap.losses.bct.BCTInfluence`).
"""

from __future__ import annotations

from typing import Any

import torch

from hotswap.losses.bct import BCTInfluence
from hotswap.training.methods.base import Method, MethodOptions
from hotswap.training.methods.registry import register_method


@register_method("bct")
class BCT(Method):
    head = "linear"

    def __init__(self, options: MethodOptions, dim: int, n_classes: int, scale: float, old: Any = None,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        super().__init__(options, dim, n_classes, scale, old, x, y)
        if x is None or y is None:
            raise ValueError("BCT needs the training images x and labels y")
        weight, bias, old_scale = old.head.class_weights()
        self.influence = BCTInfluence.from_old_model(weight, bias, old.raw_features(x), y, known_classes=old.classes,
                                                     scale=old_scale)

    def loss(self, z: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, y: torch.Tensor,
             xb: torch.Tensor) -> torch.Tensor:
        return super().loss(z, logits, targets, y, xb) + self.influence(z, y)
