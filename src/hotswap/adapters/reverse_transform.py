"""The reverse query transform ``psi`` (new -> old space) and the learnable new embedding ``rho``.

Seo, Uzunbas, Han, Cao, Lim (WACV 2025, "Metric Compatible Training for Online Backfilling in Large-Scale
Retrieval"; arXiv 2301.03767), method section (reverse query transform; learnable new embedding; section
numbers not read). During an online backfill the gallery is part old-model, part new-model embeddings.
Rather than encoding every query with both models, the query is encoded once by the new model and
``psi(phi_new(q))`` searches the old part, trained so that ``psi(phi_new(x)) ~ phi_old(x)`` (Fig. 3: the
backward retrieval system is the reversely transformed new query against the old gallery). New -> old needs
no side information because the new embedding is the richer one (second-hand). The optional ``rho`` (Fig. 5)
is another learned module on top of the new model, trained to give a new embedding that suits the rank
merge: its output is what the new index stores and, in our reading of the figures' notation, what ``psi``
receives, so the results merged are those of ``{psi(rho(phi_new)), phi_old}`` and
``{rho(phi_new), rho(phi_new)}``. It is trained with the metric-compatible loss (:mod:`hotswap.losses.cmcl`).

What is the paper's and what is ours. The paper's method sections could not be read (abstract and figure
captions only): that ``psi`` is a light network trained on paired
training images with both encoders frozen, minimising the distance to the true old embedding, is second-hand
and not verified, and its architecture is not known here. Ours: the two architectures below, the losses
(``"l2"``: squared Euclidean distance summed over dimensions, averaged over rows; ``"cosine"``: ``1 - cos``),
Adam, and the defaults (200 full-batch epochs at lr 1e-2); ``rho`` as one square linear layer that starts at
the identity, so training starts from ``phi_new`` itself.

``ReverseTransform(dim_new, dim_old, hidden=None)``:

* ``hidden=None``: ``psi(z) = z W^T + b``, one ``nn.Linear(dim_new, dim_old)``;
* ``hidden=h``: ``psi(z) = z W^T + b + W2 GELU(W1 z + b1) + b2``: a linear residual path plus a 2-layer MLP
  of width ``h`` whose last layer starts at zero, so an untrained MLP variant is exactly a linear map and the
  MLP learns only the nonlinear remainder.

Saved as a folder: ``reverse_transform.safetensors`` (the state dict) and ``reverse_transform.json``
(dimensions, hidden width, sha256 of the weights file); ``rho`` likewise as ``learnable_embedding.*``, so both
can share one folder. Atomic writes, weights first and the JSON last; no pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from torch import nn

from hotswap.errors import AssetMissingError, CorruptStoreError, DimensionMismatchError, InvalidVectorsError
from hotswap.io import atomic_write_bytes, atomic_write_json

M = TypeVar("M", bound=nn.Module)

REVERSE_STEM = "reverse_transform"
RHO_STEM = "learnable_embedding"
FORMAT_VERSION = 1
LOSSES = ("l2", "cosine")


def _save_module(module: nn.Module, folder: str | Path, stem: str, config: dict) -> Path:
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    data = safetensors.torch.save(state)
    atomic_write_bytes(folder / f"{stem}.safetensors", data)
    atomic_write_json(folder / f"{stem}.json", {**config, "kind": stem, "format": FORMAT_VERSION,
                                                 "sha256": hashlib.sha256(data).hexdigest()})
    return folder


def _read_config(folder: str | Path, stem: str) -> tuple[dict, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise AssetMissingError(f"{stem} folder {folder} does not exist")
    cfg_path, weights_path = folder / f"{stem}.json", folder / f"{stem}.safetensors"
    for path in (cfg_path, weights_path):
        if not path.is_file():
            raise AssetMissingError(f"{path} is missing: save the module there with its .save({str(folder)!r})")
    try:
        cfg = json.loads(cfg_path.read_text())
        if not isinstance(cfg, dict) or cfg.get("kind") != stem:
            raise ValueError(f"not a {stem} config")
    except (OSError, ValueError) as e:
        raise CorruptStoreError(f"{cfg_path} is unreadable or not a {stem} config ({e})") from e
    return cfg, weights_path


def _load_module(folder: str | Path, stem: str, build: Callable[[dict], M]) -> M:
    """The module saved under ``folder`` by :func:`_save_module`: its config read, ``build(config)`` called (a
    config it cannot build from: :class:`CorruptStoreError` naming the file), its weights loaded and checked."""
    cfg, weights_path = _read_config(folder, stem)
    try:
        module = build(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptStoreError(f"{weights_path.with_suffix('.json')} is not a valid {stem} config ({e})") from e
    _load_state(module, weights_path, cfg)
    return module.eval()


def _load_state(module: nn.Module, weights_path: Path, cfg: dict) -> None:
    data = weights_path.read_bytes()
    try:
        state = safetensors.torch.load(data)
    except SafetensorError as e:
        raise CorruptStoreError(f"{weights_path} is truncated or not a safetensors file: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != cfg.get("sha256"):
        raise CorruptStoreError(f"{weights_path} has sha256 {digest}, but its config records "
                                f"{cfg.get('sha256')}; the folder is corrupt or was edited")
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise CorruptStoreError(f"{weights_path} does not match the shape in its config: {e}") from e


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise InvalidVectorsError(f"{name} must be a non-empty 2-D array [n, d]; got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidVectorsError(f"{name} must hold real numbers; got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InvalidVectorsError(f"{name} holds NaN or infinite values")
    return a


def _check_dim(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


class ReverseTransform(nn.Module):
    """``psi``: ``forward(new [..., dim_new]) -> [..., dim_old]``, linear or linear + residual MLP (module doc)."""

    def __init__(self, dim_new: int, dim_old: int, hidden: int | None = None) -> None:
        super().__init__()
        self.dim_new, self.dim_old = _check_dim(dim_new, "dim_new"), _check_dim(dim_old, "dim_old")
        self.hidden = None if hidden is None else _check_dim(hidden, "hidden")
        self.linear = nn.Linear(self.dim_new, self.dim_old)
        self.mlp: nn.Sequential | None = None
        if self.hidden is not None:
            self.mlp = nn.Sequential(nn.Linear(self.dim_new, self.hidden), nn.GELU(),
                                     nn.Linear(self.hidden, self.dim_old))
            head = cast(nn.Linear, self.mlp[2])
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, new: torch.Tensor) -> torch.Tensor:
        if new.shape[-1] != self.dim_new:
            raise DimensionMismatchError(f"psi maps {self.dim_new}-d new embeddings; got width {new.shape[-1]}")
        out = self.linear(new)
        return out if self.mlp is None else out + self.mlp(new)

    @property
    def config(self) -> dict:
        return {"dim_new": self.dim_new, "dim_old": self.dim_old, "hidden": self.hidden}

    @torch.no_grad()
    def transform(self, new: np.ndarray, normalise: bool = False) -> np.ndarray:
        """Numpy in, numpy out: ``psi(new)`` as float32 ``[n, dim_old]`` (or ``[dim_old]`` for one vector),
        L2-normalised rows if ``normalise``. No gradient."""
        a = np.asarray(new)
        single = a.ndim == 1
        a = _as_matrix(a[None, :] if single else a, "new")
        if a.shape[1] != self.dim_new:
            raise DimensionMismatchError(f"psi maps {self.dim_new}-d new embeddings; got {a.shape[1]}-d")
        param = self.linear.weight
        out = self(torch.from_numpy(a).to(device=param.device, dtype=param.dtype))
        if normalise:
            out = F.normalize(out, dim=-1)
        res = out.detach().cpu().numpy().astype(np.float32, copy=False)
        return res[0] if single else res

    def save(self, folder: str | Path) -> Path:
        """Write ``reverse_transform.safetensors`` then ``reverse_transform.json`` atomically; returns ``folder``."""
        return _save_module(self, folder, REVERSE_STEM, self.config)

    @classmethod
    def load(cls, folder: str | Path) -> ReverseTransform:
        """Rebuild a saved ``psi``. Missing folder or files: :class:`AssetMissingError`; a truncated, edited or
        mismatched file: :class:`CorruptStoreError` naming it."""
        return _load_module(folder, REVERSE_STEM, lambda cfg: cls(cfg["dim_new"], cfg["dim_old"], cfg["hidden"]))

    def extra_repr(self) -> str:
        return f"dim_new={self.dim_new}, dim_old={self.dim_old}, hidden={self.hidden}"


class LearnableEmbedding(nn.Module):
    """``rho``: ``forward(z [..., dim]) -> [..., dim]``, one linear layer that starts at the identity.

    The paper's optional learnable new embedding (Fig. 5): a module on top of the new model whose output,
    ``rho(phi_new(x))``, is what the new index stores and what ``psi`` maps to the old space; trained with
    the metric-compatible loss so that the merge of the two systems' results is smoother. Its architecture is
    not known here; identity start (weight ``I``, bias 0) is ours, so training starts from ``phi_new``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = _check_dim(dim, "dim")
        self.linear = nn.Linear(self.dim, self.dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(self.dim))
            self.linear.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.dim:
            raise DimensionMismatchError(f"rho maps {self.dim}-d embeddings; got width {z.shape[-1]}")
        return self.linear(z)

    def save(self, folder: str | Path) -> Path:
        """Write ``learnable_embedding.safetensors`` then ``learnable_embedding.json`` atomically."""
        return _save_module(self, folder, RHO_STEM, {"dim": self.dim})

    @classmethod
    def load(cls, folder: str | Path) -> LearnableEmbedding:
        return _load_module(folder, RHO_STEM, lambda cfg: cls(cfg["dim"]))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def fit_reverse_transform(new_emb: np.ndarray, old_emb: np.ndarray, hidden: int | None = None,
                          epochs: int = 200, lr: float = 1e-2, loss: str = "l2", seed: int = 0,
                          batch_size: int | None = None) -> ReverseTransform:
    """Fit ``psi`` on paired embeddings of the same training items (row i of each = item i), encoders frozen.

    Minimises ``loss`` between ``psi(new_emb[i])`` and ``old_emb[i]``: ``"l2"`` = squared Euclidean distance
    (summed over dimensions, averaged over rows), ``"cosine"`` = ``1 - cos``. Adam at ``lr`` for ``epochs``
    passes, full batch when ``batch_size`` is None, else shuffled mini-batches. Deterministic given ``seed``
    (the global torch RNG is left as it was). Returns ``psi`` in eval mode.
    """
    x, y = _as_matrix(new_emb, "new_emb"), _as_matrix(old_emb, "old_emb")
    if x.shape[0] != y.shape[0]:
        raise InvalidVectorsError(f"new_emb and old_emb must be paired row by row; got {x.shape[0]} and "
                                  f"{y.shape[0]} rows")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
    if not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be positive and finite; got {lr}")
    n = x.shape[0]
    bs = n if batch_size is None else _check_dim(batch_size, "batch_size")
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        psi = ReverseTransform(x.shape[1], y.shape[1], hidden)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(psi.parameters(), lr=lr)
    psi.train()
    for _ in range(int(epochs)):
        batches = [None] if bs >= n else np.array_split(rng.permutation(n), list(range(bs, n, bs)))
        for rows in batches:
            if rows is None:
                pred, target = psi(xt), yt
            else:
                idx = torch.from_numpy(rows)
                pred, target = psi(xt[idx]), yt[idx]
            if loss == "l2":
                value = (pred - target).pow(2).sum(dim=1).mean()
            else:
                value = (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
    return psi.eval()
