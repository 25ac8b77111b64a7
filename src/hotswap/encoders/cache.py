"""Embedding cache: ``encode_cached`` stores each (model id, texts) result once as a plain ``.npy``.

The key is sha256 over the model id and the exact texts, so a changed model (new weights -> new id) or
changed data never reuses stale vectors. Files are written atomically and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hotswap.encoders.assets import cache_home
from hotswap.encoders.base import Encoder
from hotswap.io import atomic_write_bytes


def cache_key(model_id: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(model_id.encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8"))
    return h.hexdigest()[:24]


def encode_cached(encoder: Encoder, texts: Sequence[str], cache_dir: str | Path | None = None,
                  batch_size: int = 64) -> tuple[np.ndarray, bool]:
    """Return ``(embeddings, hit)``: from the cache when present, else encoded and stored."""
    folder = Path(cache_dir) if cache_dir else cache_home() / "embeddings"
    path = folder / encoder.id.replace("/", "_") / f"{cache_key(encoder.id, texts)}.npy"
    if path.is_file():
        try:
            X = np.load(path, allow_pickle=False)
            if X.shape == (len(texts), encoder.dim):
                return X, True
        except (ValueError, OSError):
            pass  # a damaged cache entry is recomputed
    X = encoder.encode(list(texts), batch_size=batch_size)
    buf = io.BytesIO()
    np.save(buf, X, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return X, False
