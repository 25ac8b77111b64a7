"""Sentence-transformers encoders (``minilm``, ``mpnet``), loaded from the bundled folders, offline."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hotswap.encoders.base import cached_sha256
from hotswap.encoders.progress import batched_encode


class SentenceTransformerEncoder:
    """A ``SentenceTransformer`` on the CPU (or ``device``) whose rows come out L2-normalised.

    ``name`` is for display (a folder's name); ``id`` is ``"{label}@{first 12 hex of the weights' sha256}"``
    with ``label`` the bundled name whose weights these are, else ``"custom"`` (``load_encoder`` decides);
    ``location`` is the resolved folder and ``weights_sha256`` the full digest.
    """

    def __init__(self, folder: str | Path, name: str, device: str = "cpu", label: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()  # the load report and weight-loading bars are noise here
        transformers.logging.disable_progress_bar()

        self.folder = Path(folder)
        self.name = name
        self.location = str(self.folder.resolve())
        self.weights_sha256 = cached_sha256(self.folder / "model.safetensors")
        self.id = f"{label or name}@{self.weights_sha256[:12]}"
        self.model = SentenceTransformer(str(self.folder), device=device)
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"the sentence-transformers model in {self.folder} does not state its embedding "
                             "dimension")
        self.dim = int(dim)
        self._lock = threading.Lock()  # see _encode_batch

    def _encode_batch(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """One mini-batch. Threads take turns per mini-batch: the fast tokenizer (a Rust object whose settings
        each call rewrites) refuses concurrent use ("Already borrowed"). A background job that should not
        hold up queries, such as a backfill, gets an encoder object of its own."""
        with self._lock:
            return self.model.encode(
                list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None) -> np.ndarray:
        return batched_encode(self._encode_batch, texts, batch_size, self.dim, f"encode {self.name}", show_progress)

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder(id={self.id!r}, dim={self.dim})"
