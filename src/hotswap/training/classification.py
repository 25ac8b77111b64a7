"""Training image embedding models with a backward-compatibility method, one step (task) at a time.

A *step* trains one model of a chain on a set of training images, starting from a given model (fine-tuning),
from a pre-trained replacement, or from scratch, and — for the compatible methods — against an *old* model
kept frozen. The methods (``method``), their heads and losses:

==============  =======  =========================================================================
method          head     loss for a batch (z = new embedding, o = old model's embedding)
==============  =======  =========================================================================
independent     linear   CE(W z + b, y): ER / independent training, no compatibility term
bct             linear   CE + CE(W_old z + b_old, y): BCT influence (Shen et al., CVPR 2020)
dsimplex        simplex  0.1 CE(simplex z, K-1-y) + 0.9 InfoNCE(o, z): d-Simplex-HOC (Biondi et al.)
prototype       cosine   CE + CE(s cos(z, p_old), y): plain alignment to the old class prototypes
ndpp            cosine   CE + CE(s cos(z, p~), y), p~ = NDPP(p_old, p_new) refreshed every epoch
odpp            cosine   CE + CE(s cos(z, p~), y), p~ = ODPP(p_old, p_new) refreshed every epoch
cmcl            cosine   CE + ||psi(z) - o||^2 + CMCL(z, psi(z), y, o): psi (new -> old) trained jointly
==============  =======  =========================================================================

For ``cmcl`` the reverse query transform ``psi`` (``hotswap.training.reverse_transform``) is part of the
trained model (``BCLModel.psi``, saved next to it) and is fed the L2-normalised new embedding, as at search
time: during a backfill ``psi(phi_new(q))``, normalised, searches the old partition (adapter ``reverse``).
With ``learnable_embedding`` the net gets Seo et al.'s ``rho`` after ``fc1`` (identity start): the
classifier reads ``fc1``'s output; CMCL, the regression and the stored embedding read ``rho``'s.

Optimisation follows the d-Simplex code (iamcl2r): SGD with momentum 0.9, weight decay 5e-4 except on
BatchNorm weights and biases, cosine learning rate from ``lr`` to ``min_lr`` over the epochs; with a
rehearsal memory each batch is half new data, half memory. Augmentation: random 28×28 crops of the image
padded by 2 (no flips: digits must not be mirrored).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from hotswap.data.image_splits import half_memory_batches
from hotswap.encoders.image import ImageEmbeddingNet, random_crop, to_tensor
from hotswap.encoders.progress import maybe_progress
from hotswap.losses.bct import BCTInfluence
from hotswap.losses.cmcl import CMCL
from hotswap.losses.hoc import HOCLoss
from hotswap.losses.ndpp import NDPP
from hotswap.losses.odpp import ODPP
from hotswap.losses.prototype_alignment import PrototypeAccumulator, PrototypeAlignment, class_prototypes
from hotswap.training.bcl_model import BCLModel
from hotswap.training.heads import build_head
from hotswap.training.reverse_transform import ReverseTransform

METHODS = ("independent", "bct", "dsimplex", "prototype", "ndpp", "odpp", "cmcl")
HEAD_OF = {"independent": "linear", "bct": "linear", "dsimplex": "simplex", "prototype": "cosine",
           "ndpp": "cosine", "odpp": "cosine", "cmcl": "cosine"}
PROTOTYPE_METHODS = ("prototype", "ndpp", "odpp")
LATER_FIELDS = ("cmcl_temperature", "cmcl_weight", "psi_l2_weight", "psi_hidden", "learnable_embedding")


@dataclass
class BCLConfig:
    """Hyper-parameters of one training step (``asdict`` goes into every saved model's ``bcl.json``)."""

    method: str = "independent"
    arch: str = "cnn"
    width: int = 32
    embed_dim: int = 128
    n_classes: int = 20
    preallocated: int = 1024          # d-Simplex: K vertices, embedding dim K - 1
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    min_lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    hoc_lambda: float = 0.1
    hoc_mu: float = 10.0
    cosine_scale: float = 16.0
    align_weight: float = 1.0
    ndpp_k: int = 3
    ndpp_strength: float = 0.5
    odpp_radius: float = 0.3
    odpp_steps: int = 20
    cmcl_temperature: float = 0.1
    cmcl_weight: float = 1.0
    psi_l2_weight: float = 1.0        # cmcl: ||psi(n) - o||^2, the reverse transform's own regression loss
    psi_hidden: int | None = None     # cmcl: None = linear psi, else the residual MLP's width
    learnable_embedding: bool = False  # cmcl: add rho after fc1 (the stored embedding; CE reads fc1's output)
    augment: bool = True
    seed: int = 42
    head: str | None = None           # default: HEAD_OF[method]
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"need epochs >= 1 and batch_size >= 2; got {self.epochs} and {self.batch_size}")

    @property
    def head_kind(self) -> str:
        return self.head or HEAD_OF[self.method]

    def recipe(self) -> dict:
        """``asdict`` for a saved model's recipe key, without the fields added after the published runs while
        they hold their defaults, so models trained before those fields existed are still found and reused."""
        d = asdict(self)
        for name in LATER_FIELDS:
            if d[name] == BCLConfig.__dataclass_fields__[name].default:
                del d[name]
        return d


def new_model(config: BCLConfig, name: str, seed: int | None = None) -> BCLModel:
    """A randomly initialised model (embedding net + the method's head)."""
    torch.manual_seed(config.seed if seed is None else seed)
    dim = config.preallocated - 1 if config.head_kind == "simplex" else config.embed_dim
    net = ImageEmbeddingNet(arch=config.arch, width=config.width, embed_dim=dim,
                            learnable_embedding=config.learnable_embedding)
    head = build_head(config.head_kind, dim, config.n_classes, config.preallocated, config.cosine_scale)
    return BCLModel(net, head, name)


def _param_groups(modules: list[nn.Module], weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "bn" in name or "bias" in name else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


class CompatibilityTerm:
    """The method's extra loss against the old model for one step (None for independent training)."""

    def __init__(self, config: BCLConfig, old: BCLModel | None, x: torch.Tensor, y: torch.Tensor) -> None:
        self.config, self.old = config, old
        self.kind = config.method if old is not None else "none"
        self.accumulator: PrototypeAccumulator | None = None
        self.perturbation_norms: list[float] = []
        if old is None:
            return
        if config.method == "bct":
            weight, bias, scale = old.head.class_weights()
            old_emb = old.raw_features(x)
            self.bct = BCTInfluence.from_old_model(weight, bias, old_emb, y, known_classes=old.classes, scale=scale)
        elif config.method == "dsimplex":
            self.hoc = HOCLoss(lam=config.hoc_lambda, mu=config.hoc_mu)
        elif config.method == "cmcl":
            self.cmcl = CMCL(temperature=config.cmcl_temperature)
            dim = config.preallocated - 1 if config.head_kind == "simplex" else config.embed_dim
            self.psi = ReverseTransform(dim, old.dim, config.psi_hidden)
        elif config.method in PROTOTYPE_METHODS:
            if old.dim != config.embed_dim:
                raise ValueError(f"prototype alignment needs equal dims; old is {old.dim}-d, new {config.embed_dim}-d")
            self.old_prototypes, self.present = class_prototypes(old.raw_features(x), y, config.n_classes)
            self.targets = self.old_prototypes.clone()
            self.align = PrototypeAlignment(config.cosine_scale)
            self.perturb = {"ndpp": lambda: NDPP(config.ndpp_k, config.ndpp_strength),
                            "odpp": lambda: ODPP(config.odpp_radius, config.odpp_steps),
                            "prototype": lambda: None}[config.method]()
            self.accumulator = PrototypeAccumulator(config.n_classes, config.embed_dim)

    def loss(self, z: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, y: torch.Tensor,
             xb: torch.Tensor) -> torch.Tensor:
        if self.kind == "dsimplex":
            with torch.no_grad():
                ref = self.old.net(xb)
            return self.hoc(logits, targets, z, y, ref=ref)
        ce = nn.functional.cross_entropy(logits, targets)
        if self.kind == "cmcl":
            with torch.no_grad():
                ref = self.old.net(xb)
            reversed_ = self.psi(nn.functional.normalize(z, dim=-1))
            regression = (reversed_ - nn.functional.normalize(ref, dim=-1)).pow(2).sum(-1).mean()
            return ce + self.config.psi_l2_weight * regression + self.config.cmcl_weight * self.cmcl(z, reversed_, y, ref)
        if self.kind == "bct":
            return ce + self.bct(z, y)
        if self.kind in PROTOTYPE_METHODS:
            self.accumulator.add(z, y)
            return ce + self.config.align_weight * self.align(z, y, self.targets, self.present)
        return ce

    def end_epoch(self) -> None:
        """NDPP / ODPP: refresh the pseudo-old prototypes from this epoch's new-model class means."""
        if self.accumulator is None:
            return
        new_protos, seen = self.accumulator.prototypes()
        self.accumulator = PrototypeAccumulator(self.config.n_classes, self.config.embed_dim)
        if self.perturb is None:
            return
        present = self.present & seen
        pseudo = self.perturb(self.old_prototypes, new_protos, present)
        self.targets = torch.where(present[:, None], pseudo, self.old_prototypes)
        moved = (self.targets - self.old_prototypes).norm(dim=-1)[self.present]
        self.perturbation_norms.append(float(moved.mean()) if len(moved) else 0.0)


def train_step(config: BCLConfig, images: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
               memory_idx: np.ndarray | None = None, init: BCLModel | None = None, old: BCLModel | None = None,
               name: str = "model", progress: bool = False,
               on_epoch: Callable[[int, dict], None] | None = None) -> BCLModel:
    """Train one model of a chain and return it (in eval mode).

    ``init``: the model to fine-tune (a copy is trained; ``None`` = random init). ``old``: the frozen model the
    compatibility term refers to (``None`` = none, e.g. the first model). ``train_idx`` / ``memory_idx`` index
    ``images`` / ``labels``; the memory joins every batch as its second half.
    """
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = new_model(config, name) if init is None else init.frozen_copy()
    model.name = name
    for module in (model.net, model.head):
        for p in module.parameters():
            p.requires_grad_(True)
    if init is not None and config.head_kind != model.head.kind:
        raise ValueError(f"cannot fine-tune a {model.head.kind} model with method {config.method} "
                         f"({config.head_kind} head)")
    memory_idx = np.zeros(0, dtype=np.int64) if memory_idx is None else np.asarray(memory_idx, dtype=np.int64)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    used = np.union1d(train_idx, memory_idx)
    position = {int(i): k for k, i in enumerate(used)}
    x_all = to_tensor(images[used])
    y_all = torch.as_tensor(labels[used], dtype=torch.long)
    frozen_old = old.frozen_copy() if old is not None else None
    term = CompatibilityTerm(config, frozen_old, x_all, y_all)

    trainable = [model.net, model.head] + ([term.psi] if term.kind == "cmcl" else [])
    params = _param_groups(trainable, config.weight_decay)
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs, eta_min=config.min_lr)
    gen = torch.Generator().manual_seed(config.seed)
    to_pos = np.vectorize(position.__getitem__, otypes=[np.int64])
    history = []
    n_batches = math.ceil(len(train_idx) / (config.batch_size - config.batch_size // 2 if len(memory_idx)
                                              else config.batch_size))
    with maybe_progress(progress, field="loss") as bar:
        task = bar.add_task(f"{name} [{config.method}]", total=config.epochs * n_batches, loss="")
        for epoch in range(config.epochs):
            model.net.train()
            total, count, correct = 0.0, 0, 0
            for batch in half_memory_batches(train_idx, memory_idx, config.batch_size, rng):
                rows = torch.as_tensor(to_pos(batch))
                xb, yb = x_all[rows], y_all[rows]
                if config.augment:
                    xb = random_crop(xb, pad=2, generator=gen)
                pre, z = model.net.embed_pair(xb)   # equal unless the net has rho (learnable embedding)
                logits = model.head(pre)
                targets = model.head.target(yb)
                loss = term.loss(z, logits, targets, yb, xb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(yb)
                count += len(yb)
                correct += int((logits.argmax(1) == targets).sum())
                bar.update(task, advance=1, loss=f"loss {float(loss.detach()):.3f}")
            sched.step()
            term.end_epoch()
            row = {"epoch": epoch, "loss": total / max(count, 1), "train_acc": correct / max(count, 1),
                   "lr": opt.param_groups[0]["lr"]}
            history.append(row)
            if on_epoch is not None:
                on_epoch(epoch, row)
    model.net.eval()
    model.head.eval()
    if term.kind == "cmcl":
        model.psi = term.psi.eval()
    model.classes = sorted(set(model.classes) | {int(c) for c in np.unique(labels[train_idx])})
    model.info = {"method": config.method, "config": asdict(config), "history": history,
                  "train_images": int(len(train_idx)), "memory_images": int(len(memory_idx)),
                  "old": old.name if old is not None else None, "init": init.name if init is not None else None,
                  "perturbation_norms": term.perturbation_norms,
                  "wall_s": round(time.perf_counter() - t0, 2)}
    return model
