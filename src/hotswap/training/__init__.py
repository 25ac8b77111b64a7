"""Training compatible models: continual text retrievers (QDC protocol); image models come later."""

from hotswap.training.hard_negatives import mine_hard_negatives
from hotswap.training.text_continual import ContinualConfig, ContinualTrainer, TextTask, load_deltas

__all__ = ["ContinualConfig", "ContinualTrainer", "TextTask", "load_deltas", "mine_hard_negatives"]
