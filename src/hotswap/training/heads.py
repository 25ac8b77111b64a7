"""Classifier heads on top of an image embedding: learnable linear, learnable cosine, or the fixed d-Simplex.

- ``linear``: ``logits = W z + b`` (the ER / BCT baselines, as iamcl2r's "learnable" models).
- ``cosine``: ``logits = s * cos(z, w_c)`` (NormFace-style, ``s = 16``): the retrieval-style head of the
  prototype-perturbation protocol, whose class weights live on the same sphere as the embeddings.
- ``simplex``: :class:`hotswap.losses.simplex.SimplexClassifier`, fixed regular-simplex vertices with
  ``K`` preallocated classes (Biondi et al., CVPR 2024); class ``y`` is trained on vertex ``K - 1 - y``.

Every head has ``target(labels)`` (identity except for the simplex) and ``class_weights()`` (the row used
for each class id, in embedding space: what BCT's influence loss reuses as the "old classifier").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hotswap.losses.simplex import SimplexClassifier

HEADS = ("linear", "cosine", "simplex")


class LinearHead(nn.Module):
    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, n_classes)
        self.kind, self.dim, self.n_classes = "linear", dim, n_classes

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)

    def target(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    def class_weights(self) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        return self.fc.weight.detach(), self.fc.bias.detach(), None


class CosineHead(nn.Module):
    def __init__(self, dim: int, n_classes: int, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) / dim ** 0.5)
        self.kind, self.dim, self.n_classes, self.scale = "cosine", dim, n_classes, float(scale)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T

    def target(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    def class_weights(self) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        return self.weight.detach(), None, self.scale


class SimplexHead(SimplexClassifier):
    """The fixed d-Simplex classifier with the head interface (``dim = K - 1``)."""

    kind = "simplex"

    def class_weights(self) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        rows = self.target(torch.arange(self.num_classes))
        return self.weight[rows].detach(), None, None


Head = LinearHead | CosineHead | SimplexHead  # each has kind, dim, forward, target and class_weights


def build_head(kind: str, dim: int, n_classes: int, preallocated: int = 1024, scale: float = 16.0) -> Head:
    """A head of ``kind`` for ``dim``-d embeddings; the simplex needs ``dim == preallocated - 1``."""
    if kind == "linear":
        return LinearHead(dim, n_classes)
    if kind == "cosine":
        return CosineHead(dim, n_classes, scale)
    if kind == "simplex":
        if dim != preallocated - 1:
            raise ValueError(f"the d-Simplex head with K = {preallocated} preallocated classes needs a "
                             f"{preallocated - 1}-d embedding; got {dim}")
        if n_classes > preallocated:
            raise ValueError(f"{n_classes} classes do not fit {preallocated} preallocated simplex vertices")
        return SimplexHead(preallocated)
    raise ValueError(f"unknown head {kind!r}; choose one of {', '.join(HEADS)}")
