"""Prototype alignment: pull each new embedding to its class's (pseudo-)old prototype.

Zhou et al. (arXiv 2503.14824, "Prototype Perturbation for Relaxing Alignment Constraints in
Backward-Compatible Learning") align the new model to a *pseudo-old* space spanned by class prototypes.
Their method section could not be read here (only the abstract and a summary are public to us), so the
loss below is our reading of it: a cosine-softmax over prototypes

    L_align = mean_i  -log( exp(s * cos(n_i, p_{y_i})) / sum_{c in present} exp(s * cos(n_i, p_c)) )

with ``n_i`` the new embedding of image i, ``p_c`` the (perturbed) old prototype of class c and ``s`` the
scale (default 16, a NormFace-style value; the paper's is not stated). With the unperturbed old prototypes
this is the "plain prototype alignment" baseline; NDPP and ODPP only change ``p``.

Old prototypes are the L2-normalised class means of the old model's L2-normalised embeddings
(:func:`class_prototypes`). For classes the old model never trained on (the extended-class setting) the old
model still embeds their images, so they get prototypes the same way, as BCT synthesises classifier rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def class_prototypes(emb: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P [n_classes, d], present [n_classes] bool)``: normalised mean of normalised rows per class.

    Rows of absent classes are zero and ``present`` is False for them.
    """
    if emb.ndim != 2 or labels.shape != (emb.shape[0],):
        raise ValueError(f"need emb [n, d] and labels [n]; got {tuple(emb.shape)} and {tuple(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}; got {int(labels.min())}..{int(labels.max())}")
    sums = torch.zeros(n_classes, emb.shape[1], dtype=emb.dtype, device=emb.device)
    sums.index_add_(0, labels, F.normalize(emb, dim=-1))
    counts = torch.bincount(labels, minlength=n_classes)
    return F.normalize(sums, dim=-1), counts > 0


class PrototypeAccumulator:
    """Running per-class sums of normalised (detached) embeddings, to refresh prototypes once per epoch."""

    def __init__(self, n_classes: int, dim: int) -> None:
        self.sums = torch.zeros(n_classes, dim)
        self.counts = torch.zeros(n_classes, dtype=torch.long)

    def add(self, emb: torch.Tensor, labels: torch.Tensor) -> None:
        self.sums.index_add_(0, labels.cpu(), F.normalize(emb.detach().float(), dim=-1).cpu())
        self.counts += torch.bincount(labels.cpu(), minlength=len(self.counts))

    def prototypes(self) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.sums, dim=-1), self.counts > 0


class PrototypeAlignment(nn.Module):
    """``forward(new [B, d], labels [B], prototypes [C, d], present [C] | None) -> scalar`` (module docstring)."""

    def __init__(self, scale: float = 16.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive; got {scale}")
        self.scale = float(scale)

    def forward(self, new: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor,
                present: torch.Tensor | None = None) -> torch.Tensor:
        if new.shape[-1] != prototypes.shape[-1]:
            raise ValueError(f"new embeddings are {new.shape[-1]}-d but prototypes are {prototypes.shape[-1]}-d: "
                             "prototype alignment needs the old and new models to share a dimension")
        logits = self.scale * F.normalize(new, dim=-1) @ F.normalize(prototypes, dim=-1).T
        if present is not None:
            if not bool(present[labels].all()):
                raise ValueError("some labels have no prototype (present[label] is False)")
            logits = logits.masked_fill(~present.to(logits.device)[None, :], float("-inf"))
        return F.cross_entropy(logits, labels)
