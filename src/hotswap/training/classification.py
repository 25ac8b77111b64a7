"""Training image embedding models with a backward-compatibility method, one step (task) at a time.

A *step* trains one model of a chain on a set of training images, starting from a given model (fine-tuning),
from a pre-trained replacement, or from scratch, and — for the compatible methods — against an *old* model
kept frozen. The methods are plug-ins (:mod:`hotswap.training.methods`, one file each, registered by name):
``BCLConfig.method`` names one and ``BCLConfig.options`` holds its options dataclass; the step builds the
method once the new model exists and adds its loss to every batch.

Optimisation follows the d-Simplex code (iamcl2r): SGD with momentum 0.9, weight decay 5e-4 except on
BatchNorm weights and biases, cosine learning rate from ``lr`` to ``min_lr`` over the epochs; with a
rehearsal memory each batch is half new data, half memory. Augmentation: random 28×28 crops of the image
padded by 2 (no flips: digits must not be mirrored).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from hotswap.data.image_splits import half_memory_batches
from hotswap.encoders.image import ImageEmbeddingNet, random_crop, to_tensor
from hotswap.encoders.progress import maybe_progress
from hotswap.training.bcl_model import BCLModel
from hotswap.training.heads import build_head
from hotswap.training.methods import METHODS, Method, MethodOptions, get_method

__all__ = ["METHODS", "BCLConfig", "build_method", "new_model", "param_groups", "train_step"]


@dataclass
class BCLConfig:
    """Hyper-parameters of one training step; ``options`` are the method's own (a dict is read into the
    method's options dataclass). ``as_dict()`` goes into every saved model's ``bcl.json``."""

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
    cosine_scale: float = 16.0
    augment: bool = True
    seed: int = 42
    head: str | None = None           # default: the method's head
    options: MethodOptions | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        cls = get_method(self.method)
        if self.options is None:
            self.options = cls.Options()
        elif isinstance(self.options, dict):
            try:
                self.options = cls.Options(**self.options)
            except TypeError as e:
                raise ValueError(f"bad options for method {self.method!r}: {e}") from None
        elif not isinstance(self.options, cls.Options):
            raise ValueError(f"method {self.method!r} takes {cls.Options.__name__}, not "
                             f"{type(self.options).__name__}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"need epochs >= 1 and batch_size >= 2; got {self.epochs} and {self.batch_size}")

    @property
    def method_class(self) -> type[Method]:
        return get_method(self.method)

    @property
    def head_kind(self) -> str:
        return self.head or self.method_class.head

    @property
    def dim(self) -> int:
        """The embedding dimension (the simplex fixes it to ``preallocated - 1``)."""
        return self.preallocated - 1 if self.head_kind == "simplex" else self.embed_dim

    @property
    def method_options(self) -> MethodOptions:
        """``options`` as ``__post_init__`` leaves them: the method's options dataclass."""
        assert isinstance(self.options, MethodOptions)
        return self.options

    def _shared(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}

    def as_dict(self) -> dict[str, Any]:
        return {**self._shared(), "options": self.method_options.as_dict()}

    def recipe(self) -> dict[str, Any]:
        """What a saved model's recipe key is made of: the shared fields and the method's options that differ
        from their defaults (with the options' version), see :class:`hotswap.training.methods.MethodOptions`."""
        return {**self._shared(), "options": self.method_options.recipe()}


def new_model(config: BCLConfig, name: str, seed: int | None = None) -> BCLModel:
    """A randomly initialised model (embedding net + the method's head)."""
    torch.manual_seed(config.seed if seed is None else seed)
    net = ImageEmbeddingNet(arch=config.arch, width=config.width, embed_dim=config.dim,
                            **config.method_class.net_options(config.method_options))
    head = build_head(config.head_kind, config.dim, config.n_classes, config.preallocated, config.cosine_scale)
    return BCLModel(net, head, name)


def param_groups(modules: Sequence[nn.Module], weight_decay: float) -> list[dict]:
    """SGD parameter groups: weight decay except on vectors (biases, BatchNorm weights), as iamcl2r."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "bn" in name or "bias" in name else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


def build_method(config: BCLConfig, old: BCLModel | None, x: torch.Tensor, y: torch.Tensor) -> Method:
    """The step's method (:class:`Method`, plain CE, when there is no old model)."""
    cls = config.method_class if old is not None else Method
    return cls(config.method_options, config.dim, config.n_classes, config.cosine_scale, old, x, y)


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
    term = build_method(config, frozen_old, x_all, y_all)

    trainable = [model.net, model.head] + term.modules()
    params = param_groups(trainable, config.weight_decay)
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
    term.finish(model)
    model.classes = sorted(set(model.classes) | {int(c) for c in np.unique(labels[train_idx])})
    model.info = {"method": config.method, "config": config.as_dict(), "history": history,
                  "train_images": int(len(train_idx)), "memory_images": int(len(memory_idx)),
                  "old": old.name if old is not None else None, "init": init.name if init is not None else None,
                  **term.diagnostics(),
                  "wall_s": round(time.perf_counter() - t0, 2)}
    return model
