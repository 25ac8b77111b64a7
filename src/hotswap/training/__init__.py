"""Training compatible models: continual text retrievers (QDC protocol) and image models with a
backward-compatibility method (BCT, d-Simplex-HOC, prototype alignment, NDPP, ODPP); the reverse query
transform and learnable new embedding of metric-compatible backfilling (Seo et al., WACV 2025)."""

from hotswap.adapters.reverse_transform import LearnableEmbedding, ReverseTransform, fit_reverse_transform
from hotswap.training.bcl_model import BCLModel
from hotswap.training.chain import ChainResult, train_chain
from hotswap.training.classification import METHODS, BCLConfig, train_step
from hotswap.training.hard_negatives import mine_hard_negatives
from hotswap.training.text_continual import ContinualConfig, ContinualTrainer, TextTask, load_deltas

__all__ = ["METHODS", "BCLConfig", "BCLModel", "ChainResult", "ContinualConfig", "ContinualTrainer",
           "LearnableEmbedding", "ReverseTransform", "TextTask", "fit_reverse_transform", "load_deltas",
           "mine_hard_negatives", "train_chain", "train_step"]
