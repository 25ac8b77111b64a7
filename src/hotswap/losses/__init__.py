"""Training losses, one ``nn.Module`` per file; each docstring gives the formula and the paper's section.

Compatibility losses take the reference (old or frozen previous) model's embeddings in a ``ref`` slot, as
pytorch-metric-learning's ``ref_emb`` does.
"""

from hotswap.losses.bct import BCTInfluence
from hotswap.losses.cmcl import CMCL, cmcl_loss
from hotswap.losses.distillation import EmbeddingDistillation
from hotswap.losses.hoc import HOCLoss, hoc_infonce
from hotswap.losses.infonce import InfoNCE
from hotswap.losses.prototype_alignment import PrototypeAlignment, class_prototypes
from hotswap.losses.simplex import SimplexClassifier, simplex_vertices

__all__ = ["BCTInfluence", "CMCL", "EmbeddingDistillation", "HOCLoss", "InfoNCE",
           "PrototypeAlignment", "SimplexClassifier", "class_prototypes", "cmcl_loss", "hoc_infonce",
           "simplex_vertices"]
