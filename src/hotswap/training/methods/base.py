"""What a compatibility training method is: a head, versioned options, and a loss against a frozen old model.

A :class:`Method` lives for one training step (:func:`hotswap.training.classification.train_step`). It is
built once the new model exists, from the step's batch-independent data (the training images ``x`` and labels
``y``, preprocessed) and the frozen ``old`` model; the trainer then asks it for the loss of every batch, calls
:meth:`Method.end_epoch` after every epoch and :meth:`Method.finish` on the trained model. Without an old model
every method trains as :class:`~hotswap.training.methods.independent.Independent` (plain cross-entropy).

Each method's options are a frozen dataclass (:class:`MethodOptions`) with a ``version``; a saved model's
recipe key holds the version and only the options that differ from their defaults, so adding an option whose
default keeps the old behaviour leaves earlier models' keys (and cached runs) valid, and changing what an
option means bumps the version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class MethodOptions:
    """A method without options."""

    version: ClassVar[int] = 1

    def recipe(self) -> dict[str, Any]:
        """``{"version": v}`` plus every option that differs from its default."""
        changed = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}
        return {"version": self.version, **changed}

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, **asdict(self)}


class Method:
    """Base of every method; also the no-old-model case: ``loss = CE(logits, targets)``.

    Class attributes set by each method: ``name`` (by :func:`register_method`), ``head`` (the classifier head
    it trains: ``linear``, ``cosine`` or ``simplex``), ``Options`` (its options dataclass), ``old_at_replacement``
    (which model the term refers to when a chain swaps in a pre-trained backbone: ``"previous"``, ``"init"``
    or ``None`` for no old model at all).
    """

    name: ClassVar[str] = "none"
    head: ClassVar[str] = "linear"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    old_at_replacement: ClassVar[str | None] = "previous"

    def __init__(self, options: MethodOptions, dim: int, n_classes: int, scale: float, old: Any = None,
                 x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> None:
        self.options, self.dim, self.n_classes, self.scale, self.old = options, dim, n_classes, scale, old

    @classmethod
    def net_options(cls, options: MethodOptions) -> dict[str, Any]:
        """Extra keyword arguments of the embedding net the method needs (e.g. CMCL's ``rho``)."""
        return {}

    @classmethod
    def old_model(cls, replaced: bool, previous: Any, init: Any) -> Any:
        """The model the term refers to at a chain task (``replaced``: a pre-trained backbone was swapped in)."""
        rule = cls.old_at_replacement if replaced else ("previous" if cls.old_at_replacement else None)
        return {"previous": previous, "init": init, None: None}[rule]

    def modules(self) -> list[nn.Module]:
        """Trainable modules of the method beyond the net and head (e.g. CMCL's ``psi``)."""
        return []

    def loss(self, z: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, y: torch.Tensor,
             xb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets)

    def end_epoch(self) -> None:
        """Called after every epoch."""

    def finish(self, model: Any) -> None:
        """Called on the trained model (eval mode), e.g. to attach modules saved with it."""

    def diagnostics(self) -> dict[str, Any]:
        """What the step records in ``model.info`` besides its history."""
        return {"perturbation_norms": []}
