"""Independent training (the paper baselines' "ER"): ``loss = CE(W z + b, y)``, no compatibility term."""

from __future__ import annotations

from hotswap.training.methods.base import Method
from hotswap.training.methods.registry import register_method


@register_method("independent")
class Independent(Method):
    head = "linear"
    old_at_replacement = None
