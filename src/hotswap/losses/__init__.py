"""Training losses, one ``nn.Module`` per file; each docstring gives the formula and the paper's section.

Compatibility losses take the reference (old or frozen previous) model's embeddings in a ``ref`` slot, as
pytorch-metric-learning's ``ref_emb`` does.
"""

from hotswap.losses.distillation import EmbeddingDistillation
from hotswap.losses.infonce import InfoNCE

__all__ = ["EmbeddingDistillation", "InfoNCE"]
