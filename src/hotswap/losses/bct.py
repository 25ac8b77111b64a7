"""``BCTInfluence``: the BCT influence loss, the old model's frozen classifier applied to the new embeddings.

Shen, Xiong, Xia, Soatto (CVPR 2020, "Towards Backward Compatible Representation Learning", Sec. 3, the
"influence loss" of backward-compatible training; the exact section / equation numbers were not checked
against the paper here) train the new model with its own loss plus

    L_influence = mean_{i : y_i known}  CE( W_old phi_new(x_i) + b_old , y_i )

where ``(W_old, b_old)`` is the old model's classifier, frozen. Classes the old classifier never saw get
*synthesised* weights: the mean of the OLD model's embeddings of that class's training images, so that the
new embeddings of a new class are pulled towards where the old model put that class.

Conventions of this module:

- Rows are indexed by class id: row ``c`` of the (extended) classifier is class ``c`` (ints ``0..C-1``).
  ``old_weight [C_old, d]`` therefore holds classes ``0..C_old-1``; synthesised rows go at their own class
  id, growing the table as needed. Rows in a gap (ids between ``C_old`` and a larger synthesised id that
  never got a weight) are placeholders: they are left out of the softmax.
- A class is *known* when its row holds a real weight: an old class (``known_classes``, default every row
  of ``old_weight``) or a synthesised one. Samples of other classes are skipped; the loss is the mean over
  the kept samples, and 0 (still attached to the graph) when none is kept.
- The softmax runs over every row of ``old_weight`` (the old classifier as it was trained; with a
  preallocated head the rows of untrained classes stay in it, as they did for the old model) plus the
  synthesised rows. Rows of ``old_weight`` outside ``known_classes`` may be overwritten by synthesised
  means; a known row is never overwritten.
- Synthesised rows have bias 0. The means are of raw old-model embeddings (not normalised).
- ``scale=None``: plain linear logits ``z W^T + b``. ``scale=s``: cosine logits ``s * norm(z) norm(W)^T``
  for an old cosine-softmax classifier (no bias allowed then).
- The weights are buffers (saved in ``state_dict``): the module has no parameters, and only ``new_emb``
  receives gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _as_ids(ids: Sequence[int] | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(ids, device="cpu").reshape(-1)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids; got dtype {t.dtype}")
    t = t.long()
    if t.numel() and int(t.min()) < 0:
        raise ValueError(f"{name} must be non-negative class ids; got {t.tolist()}")
    return t


class BCTInfluence(nn.Module):
    """``forward(new_emb [B, d], labels [B]) -> scalar``: CE of the frozen (extended) old classifier.

    ``BCTInfluence(old_weight [C_old, d], old_bias [C_old] or None, scale=None, known_classes=None)``;
    add synthesised classes with ``extend(class_ids, means)``, or build everything at once with
    ``BCTInfluence.from_old_model(old_weight, old_bias, old_embeddings, labels, ...)``.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    known: torch.Tensor
    active: torch.Tensor

    def __init__(self, old_weight: torch.Tensor, old_bias: torch.Tensor | None = None, scale: float | None = None,
                 known_classes: Sequence[int] | torch.Tensor | None = None) -> None:
        super().__init__()
        if old_weight.ndim != 2 or old_weight.shape[0] == 0:
            raise ValueError(f"old_weight must be [C_old, d] with C_old >= 1; got {tuple(old_weight.shape)}")
        n = old_weight.shape[0]
        if old_bias is not None and old_bias.shape != (n,):
            raise ValueError(f"old_bias must be [C_old] = [{n}]; got {tuple(old_bias.shape)}")
        if scale is not None:
            if scale <= 0:
                raise ValueError(f"scale must be positive; got {scale}")
            if old_bias is not None:
                raise ValueError("a cosine classifier (scale given) takes no bias")
        self.scale = None if scale is None else float(scale)
        weight = old_weight.detach().clone()
        bias = torch.zeros(n, dtype=weight.dtype, device=weight.device) if old_bias is None else \
            old_bias.detach().to(dtype=weight.dtype, device=weight.device).clone()
        if known_classes is None:
            known = torch.ones(n, dtype=torch.bool, device=weight.device)
        else:
            ids = _as_ids(known_classes, "known_classes")
            if ids.numel() and int(ids.max()) >= n:
                raise ValueError(f"known_classes must index rows of old_weight (< {n}); got {ids.tolist()}")
            known = torch.zeros(n, dtype=torch.bool, device=weight.device)
            known[ids.to(weight.device)] = True
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("known", known)                          # may be a target
        self.register_buffer("active", torch.ones(n, dtype=torch.bool, device=weight.device))  # in the softmax

    @property
    def known_classes(self) -> torch.Tensor:
        """The class ids whose samples count (old known classes and synthesised ones), sorted."""
        return self.known.nonzero().flatten()

    @staticmethod
    def class_means(embeddings: torch.Tensor, labels: torch.Tensor,
                    class_ids: Sequence[int] | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids [m], means [m, d])``: the mean embedding of each class in ``class_ids`` (default: every
        class in ``labels``), in the order of ``ids``; a requested class with no sample raises."""
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(f"need embeddings [N, d] and labels [N]; got {tuple(embeddings.shape)}, "
                             f"{tuple(labels.shape)}")
        labels = labels.to(embeddings.device)
        ids = torch.unique(labels) if class_ids is None else _as_ids(class_ids, "class_ids").to(embeddings.device)
        emb = embeddings.detach()
        means = []
        for c in ids.tolist():
            rows = emb[labels == c]
            if rows.shape[0] == 0:
                raise ValueError(f"class {c} has no embedding to average")
            means.append(rows.mean(dim=0))
        means_t = torch.stack(means) if means else emb.new_zeros(0, emb.shape[1])
        return ids.long(), means_t

    @torch.no_grad()
    def extend(self, class_ids: Sequence[int] | torch.Tensor, means: torch.Tensor) -> "BCTInfluence":
        """Synthesise classifier rows: row ``class_ids[k]`` := ``means[k]``, bias 0. Returns ``self``.

        Grows the table to ``max(class_ids) + 1`` rows when needed (gap rows stay out of the softmax).
        A class that is already known cannot be overwritten.
        """
        ids = _as_ids(class_ids, "class_ids")
        if means.ndim != 2 or means.shape != (ids.numel(), self.weight.shape[1]):
            raise ValueError(f"means must be [{ids.numel()}, {self.weight.shape[1]}]; got {tuple(means.shape)}")
        if torch.unique(ids).numel() != ids.numel():
            raise ValueError(f"class_ids repeat: {ids.tolist()}")
        if ids.numel() == 0:
            return self
        n, need = self.weight.shape[0], int(ids.max()) + 1
        if need > n:
            grow = need - n
            self.weight = torch.cat([self.weight, self.weight.new_zeros(grow, self.weight.shape[1])])
            self.bias = torch.cat([self.bias, self.bias.new_zeros(grow)])
            self.known = torch.cat([self.known, self.known.new_zeros(grow)])
            self.active = torch.cat([self.active, self.active.new_zeros(grow)])
        ids = ids.to(self.weight.device)
        clash = self.known[ids]
        if bool(clash.any()):
            raise ValueError(f"classes {ids[clash].tolist()} are already known to the old classifier")
        self.weight[ids] = means.detach().to(dtype=self.weight.dtype, device=self.weight.device)
        self.bias[ids] = 0.0
        self.known[ids] = True
        self.active[ids] = True
        return self

    @classmethod
    def from_old_model(cls, old_weight: torch.Tensor, old_bias: torch.Tensor | None, old_embeddings: torch.Tensor,
                       labels: torch.Tensor, known_classes: Sequence[int] | torch.Tensor | None = None,
                       scale: float | None = None) -> "BCTInfluence":
        """The old classifier, extended with the class means of ``old_embeddings`` (the OLD model's
        embeddings of the new training set, ``labels`` their classes) for every class in ``labels`` that
        the old classifier does not know (``known_classes``, default every row of ``old_weight``)."""
        loss = cls(old_weight, old_bias, scale=scale, known_classes=known_classes)
        present = torch.unique(labels.detach().cpu()).long()
        if present.numel() and int(present.min()) < 0:
            raise ValueError(f"labels must be non-negative class ids; got {present.tolist()}")
        known = loss.known.cpu()
        new = present[(present >= known.numel()) | ~known[present.clamp(max=known.numel() - 1)]]
        ids, means = cls.class_means(old_embeddings, labels, new)
        return loss.extend(ids, means)

    def logits(self, new_emb: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` logits of the frozen classifier; placeholder rows are ``-inf``."""
        if new_emb.ndim != 2 or new_emb.shape[1] != self.weight.shape[1]:
            raise ValueError(f"new_emb must be [B, {self.weight.shape[1]}]; got {tuple(new_emb.shape)}")
        w = self.weight.to(dtype=new_emb.dtype)
        if self.scale is None:
            out = F.linear(new_emb, w, self.bias.to(dtype=new_emb.dtype))
        else:
            out = self.scale * F.linear(F.normalize(new_emb, dim=-1), F.normalize(w, dim=-1))
        if not bool(self.active.all()):
            out = out.masked_fill(~self.active, float("-inf"))
        return out

    def forward(self, new_emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.shape != new_emb.shape[:1]:
            raise ValueError(f"need one label per embedding; got {tuple(labels.shape)} for {new_emb.shape[0]}")
        labels = labels.to(self.known.device).long()
        if labels.numel() and int(labels.min()) < 0:
            raise ValueError("labels must be non-negative class ids")
        n = self.known.shape[0]
        keep = (labels < n) & self.known[labels.clamp(max=n - 1)]
        if not bool(keep.any()):
            return new_emb[:0].sum()                  # 0, still attached to the graph
        keep = keep.to(new_emb.device)
        return F.cross_entropy(self.logits(new_emb[keep]), labels.to(new_emb.device)[keep])

    def extra_repr(self) -> str:
        rows, d = self.weight.shape
        return f"rows={rows}, dim={d}, known={int(self.known.sum())}, scale={self.scale}"
