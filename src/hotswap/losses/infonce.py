"""``InfoNCE``: contrastive loss of a query against its positive document, in-batch and hard negatives.

Goswami et al. (CoLLAs 2025, "Query Drift Compensation", Sec. 3; their public code, a fork of
nomic-ai/contrastors) train every task with

    L = mean_i  -log( exp(s * cos(q_i, d_i+)) / sum_{d in D} exp(s * cos(q_i, d)) )

where ``D`` holds every document of the batch: all queries' positives (in-batch negatives) and all their
mined hard negatives; ``s = 50`` (temperature 0.02), fixed; query -> document direction only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InfoNCE(nn.Module):
    """``forward(q [B, d], d_pos [B, d], d_neg [B, h, d] or [N, d] or None) -> scalar``."""

    def __init__(self, scale: float = 50.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive (temperature = 1 / scale); got {scale}")
        self.scale = float(scale)

    def forward(self, q: torch.Tensor, d_pos: torch.Tensor, d_neg: torch.Tensor | None = None) -> torch.Tensor:
        if q.ndim != 2 or d_pos.shape != q.shape:
            raise ValueError(f"need q and d_pos of equal shape [B, d]; got {tuple(q.shape)} and {tuple(d_pos.shape)}")
        docs = d_pos if d_neg is None else torch.cat([d_pos, d_neg.reshape(-1, q.shape[1])], dim=0)
        logits = self.scale * F.normalize(q, dim=-1) @ F.normalize(docs, dim=-1).T  # [B, B + N]
        return F.cross_entropy(logits, torch.arange(len(q), device=q.device))
