"""Named adapter settings used by the demo and ``hotswap fit-adapter --kind``: label -> (adapter, params).

Every registered adapter is a preset with its defaults; ``residual_mlp+infonce`` adds the in-batch contrastive
term to the MLP, with settings chosen on a held-out 20 % of the Debian *train* queries (docs/methods/adapters.md).
"""

from __future__ import annotations

from typing import Any

from hotswap.adapters.base import Adapter
from hotswap.adapters.registry import available_adapters, make_adapter

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (name, {}) for name in ("procrustes", "affine", "low_rank", "residual_mlp", "drift")},
    "residual_mlp+infonce": ("residual_mlp", {"init": "procrustes", "contrastive_weight": 10.0, "cosine_weight": 0.0}),
}


def make_preset(label: str, seed: int = 0) -> Adapter:
    """An unfitted adapter for a preset label (or any registered adapter name), seeded where it trains."""
    kind, params = PRESETS.get(label, (label, {}))
    if kind not in available_adapters():
        available = ", ".join(sorted({*PRESETS, *available_adapters()}))
        raise ValueError(f"unknown adapter {label!r}; available: {available}")
    return make_adapter(kind, **({**params, "seed": seed} if kind == "residual_mlp" else params))


def needs_equal_dims(label: str) -> bool:
    kind, _ = PRESETS.get(label, (label, {}))
    return make_adapter(kind).equal_dims
