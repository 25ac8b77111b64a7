"""``CMCL``: metric-compatible contrastive learning across the new and the backward retrieval systems.

Seo, Uzunbas, Han, Cao, Lim (WACV 2025, "Metric Compatible Training for Online Backfilling in Large-Scale
Retrieval"; arXiv 2301.03767, v1 "Online Backfilling with No Regret for Large-Scale Image Retrieval"),
method section (metric-compatible contrastive learning, Eq. 11; section numbers not read). No public code.

During an online backfill the gallery holds old-model embeddings (not yet re-extracted) and new-model ones;
the two result lists are merged by raw distance. Two retrieval systems answer one query ``x``:

* S1, the new system: query ``n_i = phi_new(x_i)`` (or ``rho(phi_new(x_i))``) against new gallery items
  ``n_j``;
* S2, the backward system: query ``r_i = psi(n_i)`` (the reverse query transform) against old gallery
  items ``o_j = phi_old(x_j)``.

The loss, with ``n, r, o`` the L2-normalised ``new``, ``reversed_`` and ``ref`` (``ref`` detached: the old
model is frozen), temperature ``tau`` and ``w = cross_weight``::

    a_ij = <n_i, n_j> / tau   (j != i)          S1 score of gallery item n_j for query i
    b_ij = <r_i, o_j> / tau   (every j)         S2 score of gallery item o_j for query i
    Z_i  = sum_{j != i} exp(a_ij) + w * sum_j exp(b_ij)
    P1_i = {j != i : y_j = y_i}                 S1 positives
    P2_i = {j : y_j = y_i}                      S2 positives; j = i is one (the same image, old system)
    L_i  = [ sum_{p in P1_i} (log Z_i - a_ip) + w * sum_{p in P2_i} (log Z_i - b_ip) ] / (|P1_i| + w |P2_i|)
    L    = mean of L_i over the anchors with |P1_i| + w |P2_i| > 0

At ``w = 1`` this is a supervised contrastive loss (SupCon, Khosla et al. 2020, the "L_out" form: log of
the softmax averaged over the anchor's positives) over the *union* of the two galleries, every candidate
scored by its own system's query. Because both systems' scores share one softmax, each positive, of either
system, must beat every negative of *both* systems: a distance that separates positives from negatives in
one system then does so in the other, which is what lets a merge by raw distance work.

What comes from the paper and what is ours. The method sections could not be read (only the abstract and
the figure captions were reachable). From the paper: the two
systems S1 = {phi_new, phi_new} and S2 = {psi(phi_new), phi_old}; that Eq. 11 has two terms, one per
system; and that in each system the positive pairs are trained to be closer than the negative pairs of
*both* systems (Fig. 4 caption). Second-hand, not verified: supervised (class labels) with hard-example
mining; the joint loss beats either single-system variant. Ours: the exact form above (one shared
denominator per anchor holding both systems' candidates and the positives among them; the per-anchor mean
over positives; the anchor's own ``n_i`` left out of S1's gallery while its ``o_i`` is an S2 positive),
cosine similarity over a temperature (for unit vectors ``||u - v||^2 = 2 - 2 <u, v>``, so a softmax over
``-||u - v||^2 / (2 tau)`` is the same thing: the distance-versus-cosine choice does not matter), the
default ``tau = 0.1``, ``cross_weight`` and the hard-mining rule below.

``cross_weight`` (``w >= 0``) is the multiplicity given to each S2 (old-gallery) item, in the numerator
average *and* in the denominator, as if every ``o_j`` appeared ``w`` times in the batch. ``w = 1``: the loss
above as read. ``w = 0``: S2 disappears entirely and the loss is plain single-system SupCon on ``new``
(the "new system only" ablation; anchors whose class has no other sample in the batch are then left out).
Other values weigh the backward system up or down. The other single-system ablation (S2 only) is not a
setting of this class.

``hard_mining=True`` (ours; the paper's mining rule is not known here): for each anchor only the
``num_hard_negatives`` negatives with the highest raw scores over both systems (``a_ij`` and ``b_ij``
compared directly, as the merged result list compares them; S2 ones only when ``w > 0``) stay in ``Z_i``;
every positive stays. With at least as many slots as negatives it equals ``hard_mining=False``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _check(new: torch.Tensor, reversed_: torch.Tensor, labels: torch.Tensor, ref: torch.Tensor) -> None:
    if new.ndim != 2:
        raise ValueError(f"need new embeddings [B, d_new]; got shape {tuple(new.shape)}")
    if reversed_.ndim != 2 or ref.shape != reversed_.shape or reversed_.shape[0] != new.shape[0]:
        raise ValueError(f"need reversed_ and ref of equal shape [B, d_old] with B = {new.shape[0]} rows; got "
                         f"{tuple(reversed_.shape)} and {tuple(ref.shape)}")
    if labels.shape != new.shape[:1]:
        raise ValueError(f"need one label per row; got labels {tuple(labels.shape)} for {new.shape[0]} rows")


def cmcl_loss(new: torch.Tensor, reversed_: torch.Tensor, labels: torch.Tensor, ref: torch.Tensor,
              temperature: float = 0.1, cross_weight: float = 1.0, hard_mining: bool = False,
              num_hard_negatives: int = 16) -> torch.Tensor:
    """The CMCL loss (module docstring) of one batch; returns a scalar.

    ``new [B, d_new]`` = phi_new(x) (or rho(phi_new(x))), ``reversed_ [B, d_old]`` = psi(new),
    ``labels [B]`` (only equality is used), ``ref [B, d_old]`` = phi_old(x). Row i of each is image i. All
    are L2-normalised here; ``ref`` is detached. If no anchor has a positive the result is 0, still attached
    to the graph.
    """
    _check(new, reversed_, labels, ref)
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be positive and finite; got {temperature}")
    if not cross_weight >= 0 or not math.isfinite(cross_weight):
        raise ValueError(f"cross_weight must be >= 0 and finite; got {cross_weight}")
    if hard_mining and num_hard_negatives < 1:
        raise ValueError(f"num_hard_negatives must be at least 1; got {num_hard_negatives}")
    b, w = new.shape[0], float(cross_weight)
    n = F.normalize(new, dim=-1)
    r = F.normalize(reversed_, dim=-1)
    o = F.normalize(ref.detach(), dim=-1)
    logits = torch.cat([n @ n.T, r @ o.T], dim=1) / temperature          # [B, 2B]: S1 columns, then S2

    eye = torch.eye(b, dtype=torch.bool, device=new.device)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)                     # [B, B], True on the diagonal
    use_s2 = torch.full_like(eye, w > 0)
    candidate = torch.cat([~eye, use_s2], dim=1)                          # who may enter Z_i
    positive = torch.cat([same & ~eye, same & use_s2], dim=1)
    negative = torch.cat([~same, ~same & use_s2], dim=1)
    if hard_mining:
        k = min(int(num_hard_negatives), 2 * b)
        top = logits.detach().masked_fill(~negative, float("-inf")).topk(k, dim=1).indices
        hard = torch.zeros_like(negative).scatter_(1, top, True) & negative
        candidate = candidate & (positive | hard)

    # Each S2 item counts w times: + log(w) on its logit inside Z_i, weight w on its positive term.
    log_mult = torch.zeros(2 * b, dtype=logits.dtype, device=logits.device)
    if w > 0:
        log_mult[b:] = math.log(w)
    log_z = torch.logsumexp((logits + log_mult).masked_fill(~candidate, float("-inf")), dim=1, keepdim=True)
    mult = torch.cat([torch.ones(b, dtype=logits.dtype, device=logits.device),
                      torch.full((b,), w, dtype=logits.dtype, device=logits.device)])
    pos_weight = positive.to(logits.dtype) * mult                          # [B, 2B]
    terms = torch.where(positive, log_z - logits, torch.zeros_like(logits))
    total = pos_weight.sum(dim=1)
    has_positive = total > 0
    if not bool(has_positive.any()):
        return (new[:0].sum() + reversed_[:0].sum()) * 0.0                 # 0, still attached to the graph
    per_anchor = (pos_weight * terms).sum(dim=1)[has_positive] / total[has_positive]
    return per_anchor.mean()


class CMCL(nn.Module):
    """``forward(new [B, d_new], reversed_ [B, d_old], labels [B], ref [B, d_old]) -> scalar``.

    ``new`` = phi_new(x) or rho(phi_new(x)) (what the new index stores), ``reversed_`` = psi(new) (the
    reverse-transformed query that searches the old index), ``ref`` = phi_old(x) (frozen; detached here),
    ``labels`` their classes. See the module docstring for the formula and what is the paper's.
    """

    def __init__(self, temperature: float = 0.1, cross_weight: float = 1.0, hard_mining: bool = False,
                 num_hard_negatives: int = 16) -> None:
        super().__init__()
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be positive and finite; got {temperature}")
        if not cross_weight >= 0 or not math.isfinite(cross_weight):
            raise ValueError(f"cross_weight must be >= 0 and finite; got {cross_weight}")
        if num_hard_negatives < 1:
            raise ValueError(f"num_hard_negatives must be at least 1; got {num_hard_negatives}")
        self.temperature, self.cross_weight = float(temperature), float(cross_weight)
        self.hard_mining, self.num_hard_negatives = bool(hard_mining), int(num_hard_negatives)

    def forward(self, new: torch.Tensor, reversed_: torch.Tensor, labels: torch.Tensor,
                ref: torch.Tensor) -> torch.Tensor:
        return cmcl_loss(new, reversed_, labels, ref, self.temperature, self.cross_weight, self.hard_mining,
                         self.num_hard_negatives)

    def extra_repr(self) -> str:
        mining = f", num_hard_negatives={self.num_hard_negatives}" if self.hard_mining else ""
        return (f"temperature={self.temperature}, cross_weight={self.cross_weight}, "
                f"hard_mining={self.hard_mining}{mining}")
