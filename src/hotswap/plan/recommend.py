"""Which path to take.

Paths in order of cost: ``old`` (stay: nothing to do), an adapter or a blend (one small matrix product per
query, no re-embedding), cascade ``G`` (``G`` new-model encodes per query while the gallery is not re-embedded),
``new`` (backfill: re-embed the whole collection).

* With qrels (``cheapest_within``): the cheapest path whose nDCG@10 is within ``TOLERANCE`` of the best path's;
  staying wins when nothing beats the old model by more than that.
* Without labels (``label_free``): whether to upgrade at all cannot be measured (agreement with the new model
  says nothing about whether it is better, and known-item search on text spans favours lexical models: on
  Debian, FOLDOC and the Jargon File the static model finds spans better than minilm, which wins on real
  queries). So it recommends the cheapest no-re-index path whose ARR@10 reaches ``ARR_GOOD`` (it returns
  nearly what the new model would), else a backfill; staying is said only with qrels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TOLERANCE = 0.01
ARR_GOOD = 0.9
KIND_COST = {"stay": 0, "adapter": 1, "blend": 2, "cascade": 3, "backfill": 4}


@dataclass(frozen=True)
class Choice:
    path: str
    kind: str
    quality: float
    best_path: str
    best_quality: float
    measure: str  # "ndcg@10" or "known-item ndcg@10"


def cheapest_within(paths: Sequence[dict], key: str, measure: str, tolerance: float = TOLERANCE) -> Choice:
    """The cheapest end path (not a point of a backfill curve) whose ``key`` is at least best - tolerance."""
    ends = [p for p in paths if p["kind"] != "curve" and p.get(key) is not None]
    best = max(ends, key=lambda p: p[key])
    ok = [p for p in ends if p[key] >= best[key] - tolerance]
    chosen = min(ok, key=lambda p: (KIND_COST[p["kind"]], p.get("encodes_per_query", 0.0), -p[key]))
    return Choice(chosen["path"], chosen["kind"], chosen[key], best["path"], best[key], measure)


def label_free(paths: Sequence[dict], arr_good: float = ARR_GOOD) -> Choice:
    """The recommendation without relevance labels (module doc): it assumes the new model is the one wanted,
    and finds the cheapest way to serve what it would return."""
    by = {p["path"]: p for p in paths}
    measure = "ARR@10"
    close = [p for p in paths if p["kind"] in ("adapter", "blend", "cascade") and p["arr@10"] >= arr_good]
    if not close:
        return Choice("new", "backfill", 1.0, "new", 1.0, measure)
    chosen = min(close, key=lambda p: (KIND_COST[p["kind"]], p.get("encodes_per_query", 0.0), -p["arr@10"]))
    return Choice(chosen["path"], chosen["kind"], chosen["arr@10"], "new", by["new"]["arr@10"], measure)


def in_words(choice: Choice, order: str) -> str:
    """``stay``, ``adapter:<label>``, ``blend:<label>``, ``cascade:<G>`` or ``backfill:<order>``."""
    if choice.kind == "stay":
        return "stay"
    if choice.kind == "cascade":
        return f"cascade:{choice.path.split('@')[1]}"
    if choice.kind == "backfill":
        return f"backfill:{order}"
    return f"{choice.kind}:{choice.path}"


def next_command(recommendation: str, store: str, new: str) -> str:
    """The command that starts the recommended path."""
    kind, _, arg = recommendation.partition(":")
    if kind == "stay":
        return f"nothing to run: keep {store} as it is (re-run 'hotswap plan' for the next model)"
    if kind in ("adapter", "blend"):
        return (f"hotswap fit-adapter --index {store} --new {new} --kind auto --out adapters/{new} "
                f"(then hotswap eval / search --adapter adapters/{new})")
    upgrade = f"{store.rstrip('/')}-upgrade"
    if kind == "cascade":
        return (f"hotswap backfill --index {store} --upgrade {upgrade} --new {new} --order demand --until 0 "
                f"(then hotswap search QUERY --upgrade {upgrade} --mode cascade --candidates {arg})")
    return f"hotswap backfill --index {store} --upgrade {upgrade} --new {new} --order {arg}"
