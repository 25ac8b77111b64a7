"""The cheap "old" model: model2vec static embeddings distilled from the bundled all-MiniLM-L6-v2.

Distillation (Tulkens & van Dongen, model2vec): each vocabulary token is passed through the transformer,
its output embedding is reduced by PCA to 256 dims and SIF-weighted; a sentence is the mean of its tokens'
vectors. That is how the "potion" models are made; here it runs offline in ~20 s at set-up.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hotswap.encoders.base import cached_sha256
from hotswap.encoders.progress import batched_encode
from hotswap.validation import l2_normalise


class Model2VecEncoder:
    """A ``model2vec.StaticModel`` whose rows come out L2-normalised float32.

    ``name``, ``id``, ``location`` and ``weights_sha256`` as in ``SentenceTransformerEncoder``.
    """

    def __init__(self, folder: str | Path, name: str = "static", label: str | None = None) -> None:
        from model2vec import StaticModel

        self.folder = Path(folder)
        self.name = name
        self.location = str(self.folder.resolve())
        self.weights_sha256 = cached_sha256(self.folder / "model.safetensors")
        self.id = f"{label or name}@{self.weights_sha256[:12]}"
        self.model = StaticModel.from_pretrained(str(self.folder))
        self.dim = int(self.model.dim)
        self._lock = threading.Lock()  # see _encode_batch

    def _encode_batch(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """One mini-batch; threads take turns (the tokenizer refuses concurrent use: "Already borrowed")."""
        with self._lock:
            out = self.model.encode(list(texts), batch_size=batch_size, use_multiprocessing=False)
        return l2_normalise(out)

    def encode(self, texts: Sequence[str], batch_size: int = 1024, show_progress: bool | None = None) -> np.ndarray:
        return batched_encode(self._encode_batch, texts, max(batch_size, 256), self.dim, f"encode {self.name}",
                              show_progress)

    def __repr__(self) -> str:
        return f"Model2VecEncoder(id={self.id!r}, dim={self.dim})"
