"""``EmbeddingDistillation``: keep a fine-tuned model's embeddings close to the frozen previous model's.

Goswami et al. (CoLLAs 2025, "Query Drift Compensation", Sec. 3.2; code: ``F.cosine_embedding_loss`` with
target 1) distil both queries and documents against the model frozen at the start of the task, ``f_{t-1}``:

    L_KD = w_q * mean_q (1 - cos(f_t(q), f_{t-1}(q)))  +  w_d * mean_d (1 - cos(f_t(d), f_{t-1}(d)))

with ``w_q = w_d = 1`` in the paper; the document term covers positives and hard negatives. The frozen
model's embeddings go in the ``*_ref`` slots (pytorch-metric-learning's ``ref_emb``); they carry no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _mean_cosine_distance(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if x.shape != ref.shape:
        raise ValueError(f"embeddings and reference embeddings differ in shape: {tuple(x.shape)} vs {tuple(ref.shape)}")
    return (1.0 - F.cosine_similarity(x, ref.detach(), dim=-1)).mean()


class EmbeddingDistillation(nn.Module):
    """``forward(q, q_ref, d=None, d_ref=None) -> scalar``; rows of ``x`` and ``x_ref`` are the same texts."""

    def __init__(self, query_weight: float = 1.0, doc_weight: float = 1.0) -> None:
        super().__init__()
        if query_weight < 0 or doc_weight < 0:
            raise ValueError(f"weights must be >= 0; got {query_weight}, {doc_weight}")
        self.query_weight, self.doc_weight = float(query_weight), float(doc_weight)

    def forward(self, q: torch.Tensor, q_ref: torch.Tensor, d: torch.Tensor | None = None,
                d_ref: torch.Tensor | None = None) -> torch.Tensor:
        loss = self.query_weight * _mean_cosine_distance(q, q_ref)
        if d is not None:
            if d_ref is None:
                raise ValueError("document embeddings given without their reference embeddings (d_ref)")
            loss = loss + self.doc_weight * _mean_cosine_distance(d.reshape(-1, d.shape[-1]),
                                                                  d_ref.reshape(-1, d_ref.shape[-1]))
        return loss
