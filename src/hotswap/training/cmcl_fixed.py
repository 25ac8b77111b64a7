"""CMCL on a *given* new model: train the reverse query transform ``psi`` (and optionally ``rho``) after the fact.

Seo, Uzunbas, Han, Cao, Lim (WACV 2025, "Metric Compatible Training for Online Backfilling in Large-Scale
Retrieval"; arXiv 2301.03767), method section (reverse query transform, metric-compatible contrastive
learning Eq. 11, learnable new embedding; section numbers not read). The paper puts its modules on top of a
new model it is handed; training method ``cmcl`` (:mod:`hotswap.training.classification`) instead retrains the
new network with them, which mixes a better merge with a better new model. Here both encoders stay frozen
(``phi_new`` the independent new model, ``phi_old`` the old one) and only the small modules learn.

With ``n = phi_new(x) / ||phi_new(x)||`` (the stored new vector at search time), ``o = phi_old(x)`` and
labels ``y``, one batch's loss is::

    z   = n                      (psi only)       or   z = rho(n)   (with rho; what the new index stores)
    r   = psi(z / ||z||)                          the reverse-transformed query that searches the old part
    L   = psi_l2_weight * mean_i ||r_i - o_i / ||o_i|| ||^2                       (psi's regression)
        + cmcl_weight   * CMCL(z, r, y, o)                                         (Eq. 11, our reading)
        + rho_ce_weight * CE(h_new(z), y)                                          (rho only)

``h_new`` is the new model's own classifier head, frozen. The first two terms are exactly the ones the
joint method (training method ``cmcl``) trains ``psi`` with; with ``psi`` only, CMCL's new-new
(S1) scores are constant and only its backward-system (S2) terms and the shared denominator move ``psi``.

What keeps ``rho`` from collapsing (ours; the paper's rule is not known here): ``rho`` starts at the
identity (``rho(n) = n``, the independent new model's own search), CMCL's S1 terms are a supervised
contrastive loss over ``rho``'s outputs (every positive must beat every negative of both systems, which a
collapsed embedding cannot), and the CE term through the frozen head of the new model keeps ``rho``'s
outputs classifiable by the new model's own class weights, so ``rho`` cannot trade the new system's
quality for agreement with the old one without paying for it.

Optimisation as in :mod:`hotswap.training.classification`: SGD with momentum 0.9, weight decay on weight
matrices only, cosine learning rate from ``lr`` to ``min_lr`` over the epochs, random 28×28 crops of the
padded images (both frozen encoders see the same crop); the frozen nets run in eval mode (BatchNorm
statistics untouched). Deterministic given ``seed``; the global torch RNG is left as it was. Saved as a
folder: ``reverse_transform.*`` and ``learnable_embedding.*`` (safetensors + JSON, see
:mod:`hotswap.adapters.reverse_transform`) and ``cmcl_fixed.json`` (recipe key, config, history) written
last; no pickle.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hotswap.adapters.reverse_transform import LearnableEmbedding, ReverseTransform
from hotswap.data.image_splits import half_memory_batches
from hotswap.encoders.image import random_crop, to_tensor
from hotswap.encoders.progress import maybe_progress
from hotswap.errors import AssetMissingError, CorruptStoreError
from hotswap.io import atomic_write_json
from hotswap.losses.cmcl import CMCL
from hotswap.training.bcl_model import BCLModel
from hotswap.training.classification import param_groups
from hotswap.training.heads import Head
from hotswap.training.methods.cmcl import psi_terms
from hotswap.training.model_cache import train_or_load

META_FILE = "cmcl_fixed.json"


@dataclass
class FixedCMCLConfig:
    """Hyper-parameters of :func:`train_cmcl_fixed`; the defaults are the joint ``cmcl`` training's."""

    rho: bool = False
    epochs: int = 12
    batch_size: int = 128
    lr: float = 0.05
    min_lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    cmcl_temperature: float = 0.1
    cmcl_weight: float = 1.0
    psi_l2_weight: float = 1.0
    psi_hidden: int | None = None
    rho_ce_weight: float = 1.0
    augment: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"need epochs >= 1 and batch_size >= 2; got {self.epochs} and {self.batch_size}")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr must be positive and finite; got {self.lr}")


@dataclass
class FixedCMCL:
    """The trained modules on top of a frozen new model: ``psi`` and, optionally, ``rho``."""

    psi: ReverseTransform
    rho: LearnableEmbedding | None = None
    info: dict = field(default_factory=dict)

    @torch.no_grad()
    def stored_new(self, new_vectors: np.ndarray) -> np.ndarray:
        """What the new index stores: ``rho(n) / ||rho(n)||`` for the new model's unit vectors ``n`` (``n``
        itself without ``rho``); float32 ``[m, d]``."""
        n = np.ascontiguousarray(new_vectors, dtype=np.float32)
        if self.rho is None:
            return n
        out = F.normalize(self.rho(torch.from_numpy(n)), dim=-1)
        return out.numpy().astype(np.float32, copy=False)

    def reverse(self, stored: np.ndarray) -> np.ndarray:
        """``psi`` of stored new vectors (unit rows), L2-normalised: the query that searches the old part."""
        return self.psi.transform(stored, normalise=True)

    def save(self, folder: str | Path) -> Path:
        """``psi`` (and ``rho``) as safetensors, then ``cmcl_fixed.json`` last."""
        folder = Path(folder)
        self.psi.save(folder)
        if self.rho is not None:
            self.rho.save(folder)
        atomic_write_json(folder / META_FILE, {**self.info, "rho": self.rho is not None})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FixedCMCL:
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise AssetMissingError(f"no fixed-new CMCL modules at {folder} ({META_FILE} missing)")
        try:
            info = json.loads(meta_path.read_text())
            has_rho = bool(info.pop("rho"))
        except (ValueError, KeyError, AttributeError) as e:
            raise CorruptStoreError(f"{meta_path} is unreadable ({e})") from e
        rho = LearnableEmbedding.load(folder) if has_rho else None
        return cls(ReverseTransform.load(folder), rho, info)


def init_modules(cfg: FixedCMCLConfig, dim_new: int, dim_old: int) -> tuple[ReverseTransform,
                                                                             LearnableEmbedding | None]:
    """``psi`` (seeded random init, as the joint method's) and ``rho`` (identity) before training."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        psi = ReverseTransform(dim_new, dim_old, cfg.psi_hidden)
    return psi, (LearnableEmbedding(dim_new) if cfg.rho else None)


@torch.no_grad()
def _frozen_pair(new: BCLModel, old: BCLModel, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, o)``: the new model's unit embedding (as stored at search time) and the old raw embedding."""
    return F.normalize(new.net(xb), dim=-1), old.net(xb)


def batch_losses(cfg: FixedCMCLConfig, n: torch.Tensor, ref: torch.Tensor, y: torch.Tensor,
                 psi: ReverseTransform, rho: LearnableEmbedding | None, head: Head | None,
                 cmcl: CMCL) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (module docstring) and their weighted ``total``."""
    z = n if rho is None else rho(n)
    regression, contrast = psi_terms(psi, cmcl, z, ref, y)
    terms = {"regression": regression, "cmcl": contrast}
    total = cfg.psi_l2_weight * terms["regression"] + cfg.cmcl_weight * terms["cmcl"]
    if rho is not None and head is not None:
        terms["ce"] = F.cross_entropy(head(z), head.target(y))
        total = total + cfg.rho_ce_weight * terms["ce"]
    terms["total"] = total
    return terms


def train_cmcl_fixed(cfg: FixedCMCLConfig, new: BCLModel, old: BCLModel, images: np.ndarray, labels: np.ndarray,
                     train_idx: np.ndarray, progress: bool = False, name: str = "cmcl-fixed") -> FixedCMCL:
    """Train ``psi`` (and ``rho`` if ``cfg.rho``) against frozen copies of ``new`` and ``old`` on the images
    ``train_idx``; ``new`` and ``old`` themselves are not touched. Returns the modules in eval mode."""
    t0 = time.perf_counter()
    frozen_new, frozen_old = new.frozen_copy(), old.frozen_copy()
    idx = np.asarray(train_idx, dtype=np.int64)
    x_all = to_tensor(images[idx])
    y_all = torch.as_tensor(labels[idx], dtype=torch.long)
    psi, rho = init_modules(cfg, frozen_new.dim, frozen_old.dim)
    trainable = [psi] + ([rho] if rho is not None else [])
    opt = torch.optim.SGD(param_groups(trainable, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.min_lr)
    rng, gen, cmcl = np.random.default_rng(cfg.seed), torch.Generator().manual_seed(cfg.seed), \
        CMCL(temperature=cfg.cmcl_temperature)
    positions, history = np.arange(len(idx), dtype=np.int64), []
    with torch.random.fork_rng(devices=[]), maybe_progress(progress, field="loss") as bar:
        torch.manual_seed(cfg.seed)
        task = bar.add_task(f"{name} [psi{' + rho' if rho is not None else ''}]",
                            total=cfg.epochs * math.ceil(len(idx) / cfg.batch_size), loss="")
        for epoch in range(cfg.epochs):
            for m in trainable:
                m.train()
            sums: dict[str, float] = {}
            for batch in half_memory_batches(positions, np.zeros(0, np.int64), cfg.batch_size, rng):
                rows = torch.as_tensor(batch)
                xb, yb = x_all[rows], y_all[rows]
                if cfg.augment:
                    xb = random_crop(xb, pad=2, generator=gen)
                n, ref = _frozen_pair(frozen_new, frozen_old, xb)
                terms = batch_losses(cfg, n, ref, yb, psi, rho, frozen_new.head, cmcl)
                opt.zero_grad(set_to_none=True)
                terms["total"].backward()
                opt.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(yb)
                bar.update(task, advance=1, loss=f"loss {float(terms['total'].detach()):.3f}")
            sched.step()
            history.append({"epoch": epoch, "lr": opt.param_groups[0]["lr"],
                            **{k: v / len(idx) for k, v in sums.items()}})
    info = {"config": asdict(cfg), "history": history, "train_images": int(len(idx)), "new": new.name,
            "old": old.name, "wall_s": round(time.perf_counter() - t0, 2)}
    return FixedCMCL(psi.eval(), None if rho is None else rho.eval(), info)


def train_or_load_fixed(folder: Path, key: str, train: Callable[[], FixedCMCL]) -> tuple[FixedCMCL, bool]:
    """``(modules, reused)``: :func:`hotswap.training.model_cache.train_or_load` for psi / rho folders."""
    return train_or_load(folder, key, train, load=FixedCMCL.load, marker=META_FILE)
