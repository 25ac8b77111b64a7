"""One trained image model of a backward-compatible chain: embedding net + classifier head + classes seen.

Saved as a folder: the :class:`~hotswap.encoders.image.ImageEncoder` files (``model.safetensors``,
``config.json``), ``head.safetensors``, the reverse transform ``psi`` when the model has one
(``reverse_transform.*``) and ``bcl.json`` (head kind, classes, method, step). No pickle.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hotswap.adapters.reverse_transform import REVERSE_STEM, ReverseTransform
from hotswap.encoders.image import ImageEmbeddingNet, ImageEncoder
from hotswap.errors import AssetMissingError, CorruptStoreError
from hotswap.io import atomic_write, atomic_write_json
from hotswap.training.heads import Head, SimplexHead, build_head


@dataclass
class BCLModel:
    net: ImageEmbeddingNet
    head: Head
    name: str
    classes: list[int] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    psi: ReverseTransform | None = None  # reverse query transform (method cmcl), saved next to the model

    @property
    def dim(self) -> int:
        return self.net.dim

    def encoder(self) -> ImageEncoder:
        return ImageEncoder(self.net, self.name)

    def encode(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """L2-normalised float32 embeddings of uint8 images (eval mode, no grad)."""
        return self.encoder().encode(images, batch_size=batch_size, show_progress=False)

    @torch.no_grad()
    def raw_features(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Unnormalised embeddings of an already preprocessed tensor batch (eval mode)."""
        was = self.net.training
        self.net.eval()
        out = torch.cat([self.net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else \
            torch.empty(0, self.dim)
        self.net.train(was)
        return out

    def frozen_copy(self) -> BCLModel:
        twin = BCLModel(copy.deepcopy(self.net), copy.deepcopy(self.head), self.name, list(self.classes),
                        dict(self.info), copy.deepcopy(self.psi))
        for module in (twin.net, twin.head, *([twin.psi] if twin.psi is not None else [])):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)
        return twin

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.encoder().save(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        atomic_write(folder / "head.safetensors", lambda tmp: save_file(state, str(tmp)))
        meta = {"name": self.name, "classes": [int(c) for c in self.classes], "head": self.head_config(),
                "info": self.info}
        if self.psi is not None:
            self.psi.save(folder)
        atomic_write_json(folder / "bcl.json", meta)
        return folder

    def head_config(self) -> dict:
        h = self.head
        if isinstance(h, SimplexHead):  # kind "simplex"
            return {"kind": "simplex", "preallocated": int(h.num_classes)}
        return {"kind": h.kind, "n_classes": int(h.n_classes), "scale": float(getattr(h, "scale", 16.0))}

    @classmethod
    def load(cls, folder: str | Path) -> BCLModel:
        folder = Path(folder)
        meta_path = folder / "bcl.json"
        if not meta_path.is_file():
            raise AssetMissingError(f"no trained image model at {folder} (bcl.json missing)")
        try:
            meta = json.loads(meta_path.read_text())
            hc = meta["head"]
        except (ValueError, KeyError) as e:
            raise CorruptStoreError(f"{meta_path} is unreadable ({e})") from e
        enc = ImageEncoder.load(folder)
        head = build_head(hc["kind"], enc.dim, hc.get("n_classes", hc.get("preallocated", 1024)),
                          preallocated=hc.get("preallocated", enc.dim + 1), scale=hc.get("scale", 16.0))
        try:
            head.load_state_dict(load_file(str(folder / "head.safetensors")))
        except (SafetensorError, OSError, RuntimeError) as e:
            raise CorruptStoreError(f"{folder / 'head.safetensors'} is unreadable or truncated ({e})") from e
        psi = ReverseTransform.load(folder) if (folder / f"{REVERSE_STEM}.json").is_file() else None
        return cls(enc.net, head, meta["name"], list(meta["classes"]), dict(meta.get("info", {})), psi)
