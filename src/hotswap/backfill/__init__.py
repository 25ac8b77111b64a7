"""Online backfill: re-embed the gallery with the new model while serving a merged answer.

``plan_backfill`` orders the items (``ordering``) and writes the plan; ``BackfillRunner`` re-embeds them in
crash-safe batches (``runner``) through a ``LocalExecutor`` or a ``RayExecutor`` (``ray_runner``);
``backfill_curve`` measures quality at fractions of the backfill (``curve``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hotswap.backfill.ordering import ORDERINGS, OrderingContext, backfill_order
from hotswap.backfill.runner import (
    BackfillRunner,
    BackfillStatus,
    LocalExecutor,
    gallery_checksum,
    read_plan,
    request_pause,
    write_plan,
)
from hotswap.upgrade import Upgrade


def plan_backfill(upgrade: Upgrade, policy: str, encoder: Any, fetch: Any, *, seed: int = 0,
                  query_log: np.ndarray | None = None, probe_size: int = 1024, then: str = "random") -> list[str]:
    """Order every item of the old index with ``policy`` and persist the plan; returns the order.

    ``fetch(ids)`` gives the items to encode (the ``uncertainty`` probe encodes ``probe_size`` of them with
    ``encoder``); ``query_log`` holds old-model query embeddings for ``popularity``; ``then`` is the order of
    the items no query demanded, under ``demand``.
    """
    def new_vectors(ids: Sequence[str]) -> np.ndarray:
        return encoder.encode(list(fetch(ids)), show_progress=False)

    ctx = OrderingContext(ids=upgrade.old.ids, old_vectors=upgrade.old.get, new_vectors=new_vectors,
                          query_log=query_log, seed=seed, probe_size=probe_size, then=then,
                          search_old=lambda Q, k: upgrade.old.search(Q, k, upgrade.old_model_id)[1])
    order = backfill_order(policy, ctx)
    write_plan(upgrade, order, policy, seed, **({"then": then} if policy == "demand" else {}))
    return order


__all__ = ["ORDERINGS", "BackfillRunner", "BackfillStatus", "LocalExecutor", "OrderingContext", "backfill_order",
           "gallery_checksum", "plan_backfill", "read_plan", "request_pause", "write_plan"]
