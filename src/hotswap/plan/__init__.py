"""Plan an upgrade before re-embedding anything: ``plan_upgrade(store, old, new, texts, ...)`` -> ``UpgradePlan``.

See ``hotswap.plan.core`` for the procedure, ``paths`` for the measures, ``cost`` and ``recommend`` for the rest.
"""

from hotswap.plan.core import UpgradePlan, plan_upgrade

__all__ = ["UpgradePlan", "plan_upgrade"]
