"""``HOCLoss``: the d-Simplex-HOC loss, fixed-simplex cross-entropy plus an old-anchored InfoNCE.

Biondi, Pernici, Ricci, Del Bimbo (CVPR 2024, "Stationary Representations", Sec. 4, Eqs. 3-4; code:
miccunifi/iamcl2r, commit 18495ac7, ``methods/hoc.py: HocLoss`` and ``train.py: train_one_epoch``):

    L      = lam * CE(W_simplex z_new, K - 1 - y) + (1 - lam) * L_iNCE            (Eq. 3, lam = 0.1)
    L_iNCE = mean_i [ -mu * s_ii + log sum_j exp(mu * s_ij * [y_j != y_i]) ]      (Eq. 4 as coded, mu = 10)

with ``s_ij = <o_i, n_j>``, ``o`` the L2-normalised old-model features and ``n`` the L2-normalised new ones:
the anchor is image i's old feature, the positive image i's new feature, the negatives the new features of
the other-class images of the batch.

Masking quirk, reproduced by default (``faithful_mask=True``): the code *multiplies* same-class similarities
by 0 instead of dropping them, so every same-class ``j`` (the diagonal ``j = i`` included, since image i
has its own class) adds ``exp(0) = 1`` inside the log. The positive is therefore not in the denominator,
but the row's ``n_same_i`` same-class entries (itself included) each add a constant 1. With
``faithful_mask=False`` same-class entries are dropped (``-inf``); an anchor with no other-class image in
the batch then has an empty sum and is left out of the mean (0 with gradient if no anchor has a negative).

Where the code's pieces sit: ``train.py`` normalises both features (``l2_norm``) before the loss and computes
the old ones under ``no_grad``; ``hoc_infonce`` and ``HOCLoss`` normalise inside and detach the old features,
so callers pass raw features. When there is no old model (task 0) the code's loss is plain CE, *not*
``lam * CE``; ``HOCLoss`` does the same when ``ref`` is None. The class mask only tests label equality, so it
does not matter whether ``labels`` are the raw classes or the simplex targets ``K - 1 - y`` (the code passes
the latter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def hoc_infonce(new: torch.Tensor, old: torch.Tensor, labels: torch.Tensor, mu: float = 10.0,
                faithful_mask: bool = True) -> torch.Tensor:
    """Eq. 4: ``new``, ``old`` raw ``[B, d]`` features of the same images (row i = image i), ``labels [B]``.

    Both are L2-normalised here; ``old`` is detached (the old model is frozen). Returns a scalar.
    """
    if new.ndim != 2 or old.shape != new.shape:
        raise ValueError(f"need new and old features of equal shape [B, d]; got {tuple(new.shape)} and "
                         f"{tuple(old.shape)}")
    if labels.shape != new.shape[:1]:
        raise ValueError(f"need one label per row; got labels {tuple(labels.shape)} for {new.shape[0]} rows")
    o = F.normalize(old.detach(), dim=-1)
    n = F.normalize(new, dim=-1)
    sim = mu * (o @ n.T)                                  # [B, B], row i = anchor o_i against every n_j
    positive = sim.diagonal()
    same = labels.unsqueeze(1) == labels.unsqueeze(0)     # [B, B], True on the diagonal
    if faithful_mask:
        # The code's (sim * ~same): same-class entries become exactly 0 and each contribute exp(0) = 1.
        return (torch.logsumexp(sim.masked_fill(same, 0.0), dim=1) - positive).mean()
    has_negative = ~same.all(dim=1)
    if not bool(has_negative.any()):
        return new[:0].sum()                              # 0, still attached to the graph
    denominator = torch.logsumexp(sim.masked_fill(same, float("-inf"))[has_negative], dim=1)
    return (denominator - positive[has_negative]).mean()


class HOCLoss(nn.Module):
    """``forward(logits [B, K], targets [B], new [B, d], labels [B], ref [B, d] or None) -> scalar``.

    ``logits`` = the fixed simplex classifier applied to the new model's (raw) features and ``targets`` the
    simplex targets ``K - 1 - y`` (``SimplexClassifier.target``); ``new`` and ``ref`` are the new and old
    models' raw features of the same images, ``labels`` their classes (only equality is used).
    """

    def __init__(self, lam: float = 0.1, mu: float = 10.0, faithful_mask: bool = True) -> None:
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must lie in [0, 1]; got {lam}")
        if mu <= 0:
            raise ValueError(f"mu must be positive; got {mu}")
        self.lam, self.mu, self.faithful_mask = float(lam), float(mu), bool(faithful_mask)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, new: torch.Tensor, labels: torch.Tensor,
                ref: torch.Tensor | None = None) -> torch.Tensor:
        ce = F.cross_entropy(logits, targets)
        if ref is None:
            return ce                                     # task 0 / no old model: plain CE, as in the code
        return self.lam * ce + (1.0 - self.lam) * hoc_infonce(new, ref, labels, self.mu, self.faithful_mask)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, mu={self.mu}, faithful_mask={self.faithful_mask}"
