"""Adapters: map queries encoded by a NEW model into an OLD model's space, so the old index keeps working.

    from hotswap.adapters import make_adapter, load_adapter
    a = make_adapter("procrustes").fit(X_new, X_old, new_model_id="v2", old_model_id="v1")
    a.transform(q_new, model_id="v2"); a.save("adapters/v2-to-v1"); b = load_adapter("adapters/v2-to-v1")

Registered: procrustes, affine, low_rank, residual_mlp (Drift-Adapter, arXiv 2509.23471) and drift (QDC).
A new method is a new module with one ``@register_adapter("name")`` line, imported below.
"""

from hotswap.adapters.base import Adapter, AdapterConfig
from hotswap.adapters.registry import (
                                       available_adapters,
                                       get_adapter_class,
                                       load_adapter,
                                       make_adapter,
                                       register_adapter,
)

# importing a module registers its adapter
from hotswap.adapters.procrustes import Procrustes, ProcrustesConfig  # isort: skip
from hotswap.adapters.affine import Affine, AffineConfig  # isort: skip
from hotswap.adapters.low_rank import LowRank, LowRankConfig  # isort: skip
from hotswap.adapters.residual_mlp import ResidualMLP, ResidualMLPConfig  # isort: skip
from hotswap.adapters.drift_compensation import DriftCompensation, DriftConfig  # isort: skip
from hotswap.adapters.compatible import Compatible  # isort: skip
from hotswap.adapters.reverse import Reverse, ReverseConfig  # isort: skip

__all__ = [
    "Adapter", "AdapterConfig", "available_adapters", "get_adapter_class", "load_adapter", "make_adapter",
    "register_adapter", "Procrustes", "ProcrustesConfig", "Affine", "AffineConfig", "LowRank",
    "LowRankConfig", "ResidualMLP", "ResidualMLPConfig", "DriftCompensation", "DriftConfig", "Compatible",
    "Reverse", "ReverseConfig",
]
