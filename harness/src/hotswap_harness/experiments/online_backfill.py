"""The online-backfill protocol (Seo et al., WACV 2025, arXiv 2301.03767) on images: quality along a backfill.

Scaled to the offline 20-class MNIST + Fashion-MNIST set, which **stands in for the paper's CIFAR-100 /
ImageNet**. The old model trains on the first 50 % of a seeded class order (the BCL extended-class convention;
the paper's split is not verified here), every new model on all classes; same small CNN, cosine head, from
scratch, each new model from its own random init. The gallery is the test split minus the queries. At each
backfill fraction ``f = 0, 0.1, ..., 1`` the first ``f`` of the gallery in the chosen order (``random`` or
``uncertainty``, :mod:`hotswap.backfill.ordering`) holds new-model vectors, the rest old ones, and every
query is answered over both partitions merged by score:

* ``merge``               — independent new model; old query -> old part, new query -> new part (two encodings);
* ``bct``                 — BCT-trained new model; its query compared with both parts as they are;
* ``merge+reverse``       — independent new model; ``psi(new query)`` -> old part, ``psi`` fitted after the fact
  on training images (adapter ``reverse``, both encoders frozen): one encoding;
* ``merge+reverse+cmcl``  — ``psi`` trained with regression + CMCL; two settings (below);
* ``merge+reverse+cmcl+rho`` — the same with the learnable new embedding ``rho`` (what the new part stores).

Every row records its ``setting``, which new model it runs on. ``fixed-new``: the one frozen independent new
model (``merge``, ``merge+reverse``, and the cmcl rows with ``psi`` / ``rho`` trained on top of it by
:func:`hotswap.training.cmcl_fixed.train_cmcl_fixed`, both encoders frozen: the paper's setting, modules on
top of a given new model). ``retrained-new``: a new model trained with the method (``bct``; the cmcl rows with
the network retrained from scratch jointly with ``psi``, CE + regression + CMCL, method ``cmcl``), whose own
new-model mAP differs from the independent one, so its gain mixes a better merge with a better model.

A merged ranking over both parts equals one ranking over concatenated vectors (query ``[q_new, q_old]``,
gallery item ``[g_new, 0]`` if backfilled else ``[0, g_old]``), which is how it is scored here: mAP over the
whole ranking and top-1 (CMC rank 1), with :func:`hotswap.metrics.model_compatibility.retrieval_scores`.
``negative_flips`` counts queries the old system (old queries on the old gallery, what users had before the
upgrade) got right at top-1 and the merged search gets wrong at ``f``. ``auc_map`` / ``auc_cmc`` are
the means over the 11 points; ``relative_gain_map = (auc_map - M_old) / (M_new - M_old)`` (our reading of the
paper's relative gain) with ``M_old`` the old model's own mAP and ``M_new`` the row's new model's, and
``relative_gain_shared_map`` the same against the one independent new model (``M_new_independent``) for every
row, so rows of both settings compare on one scale. ``new_model_map`` is the row's new model's mAP (for
``fixed-new`` rows the independent model's); ``stored_new_map`` the mAP of what the new partition stores
(``rho``'s output for the ``+rho`` rows, else ``new_model_map``): the curve's end at ``f = 1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hotswap.adapters import Reverse, make_adapter
from hotswap.backfill.ordering import OrderingContext, backfill_order
from hotswap.data.image_splits import class_order, extended_classes, per_class_subset, query_gallery_split
from hotswap.data.images import load_image_dataset
from hotswap.io import atomic_write_json, json_safe
from hotswap.metrics.model_compatibility import retrieval_scores
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.training.bcl_model import BCLModel
from hotswap.training.classification import BCLConfig, train_step
from hotswap.training.cmcl_fixed import FixedCMCL, FixedCMCLConfig, train_cmcl_fixed, train_or_load_fixed
from hotswap.training.model_cache import recipe_key, train_or_load
from hotswap_harness.experiments.protocols.online_backfill import (
    PAPER,
    OnlineBackfillConfig,
    check,
    plot,
)

DATASET = "MNIST + Fashion-MNIST, 20 classes (stands in for the paper's CIFAR-100 / ImageNet)"
SETTINGS_NOTE = ("fixed-new: the one frozen independent new model (merge, merge+reverse, and cmcl rows whose psi / "
                 "rho are trained on top of it, encoders frozen); retrained-new: a new model trained with the "
                 "method (bct; cmcl rows retrained jointly with psi). relative_gain_shared_map is against the "
                 "independent new model for every row.")
SETTINGS_OF = {"merge": ("fixed-new",), "bct": ("retrained-new",), "merge+reverse": ("fixed-new",),
               "merge+reverse+cmcl": ("retrained-new", "fixed-new"),
               "merge+reverse+cmcl+rho": ("retrained-new", "fixed-new")}
NEEDS = {"merge": "independent", "merge+reverse": "independent", "bct": "bct", "merge+reverse+cmcl": "cmcl",
         "merge+reverse+cmcl+rho": "cmcl+rho"}


def _rows_of(X: np.ndarray) -> Callable[[Sequence[str]], np.ndarray]:
    """``rows(ids) -> X[ids]`` for string ids that are row numbers (an ordering's ``new_vectors``)."""
    return lambda ids: X[[int(i) for i in ids]]


def merged_curve(q_new: np.ndarray, g_new: np.ndarray, q_old: np.ndarray, g_old: np.ndarray, yq: np.ndarray,
                 yg: np.ndarray, order: np.ndarray, steps: int = 10, baseline: np.ndarray | None = None) -> list[dict]:
    """mAP, top-1 and negative flips at ``f = 0, 1/steps, ..., 1`` of ``order`` (gallery rows) backfilled.

    ``q_old`` is what reaches the old partition (an old-model query, ``psi`` of the new one, or the new one
    itself). Negative flips count queries right (top-1) in ``baseline`` (default: this curve at ``f = 0``) and
    wrong at ``f``."""
    Q = np.hstack([q_new, q_old]).astype(np.float32)
    curve, first = [], baseline
    for s in range(steps + 1):
        f = s / steps
        done = np.zeros(len(yg), dtype=bool)
        done[order[: int(round(f * len(order)))]] = True
        G = np.hstack([np.where(done[:, None], g_new, 0), np.where(done[:, None], 0, g_old)]).astype(np.float32)
        r = retrieval_scores(Q, yq, G, yg)
        first = r["correct"] if first is None else first
        curve.append({"fraction": f, "map": 100 * r["map"], "top1": 100 * r["top1"],
                      "negative_flips": int(np.sum(first & ~r["correct"]))})
    return curve


def row_specs(methods: tuple[str, ...], settings: tuple[str, ...]) -> list[tuple[str, str]]:
    """The ``(method, setting)`` rows to trace, in ``methods`` order (``SETTINGS_OF`` per method)."""
    return [(m, s) for m in methods for s in SETTINGS_OF[m] if s in settings]


def new_kind(method: str, setting: str) -> str:
    """The trained new model a row runs on: the independent one for every ``fixed-new`` row."""
    return "independent" if setting == "fixed-new" else NEEDS[method]


def relative_gain(auc_map: float, m_old: float, m_new: float) -> float | None:
    """``(auc_map - M_old) / (M_new - M_old)``; None when the two models tie."""
    return (auc_map - m_old) / (m_new - m_old) if m_new != m_old else None


def curve_summary(curve: list[dict], m_old: float, m_new: float, m_new_shared: float) -> dict:
    """A row's AUCs, relative gains (own new model; the shared independent one), monotonicity, worst flips."""
    auc_map = float(np.mean([c["map"] for c in curve]))
    return {"auc_map": auc_map, "auc_cmc": float(np.mean([c["top1"] for c in curve])),
            "relative_gain_map": relative_gain(auc_map, m_old, m_new),
            "relative_gain_shared_map": relative_gain(auc_map, m_old, m_new_shared),
            "monotone_map": all(b["map"] >= a["map"] - 1e-9 for a, b in zip(curve, curve[1:])),
            "max_negative_flips": max(c["negative_flips"] for c in curve), "new_model_map": m_new,
            "stored_new_map": curve[-1]["map"]}


def run_online_backfill_experiment(cfg: OnlineBackfillConfig, progress: bool = True) -> dict:
    """Train the old model and the new ones the methods need, trace every (method, setting, order) curve; the results
    dict (``results/online_backfill.json``)."""
    check(cfg)  # unknown scale, method, order or setting: ValueError before anything is trained
    timer, started, lim = StageTimer(), time.perf_counter(), cfg.limits()
    work = Path(cfg.workdir)
    with timer("load data"):
        ds = load_image_dataset(cfg.data)
        old_classes, all_classes = extended_classes(class_order(ds.n_classes, cfg.seed), (cfg.old_fraction, 1.0))
        pool = per_class_subset(ds.y_train, lim["train_per_class"], cfg.seed)
        query, gallery = query_gallery_split(ds.y_test, lim["query_per_class"], lim["gallery_per_class"], cfg.seed)

    def model(name: str, kind: str, classes: list[int], seed: int, old: BCLModel | None = None) -> BCLModel:
        idx = pool[np.isin(ds.y_train[pool], classes)]
        tc = BCLConfig(method=kind.split("+")[0], head="cosine", arch=lim["arch"], width=lim["width"],
                       embed_dim=lim["embed_dim"], n_classes=ds.n_classes, epochs=lim["epochs"],
                       batch_size=lim["batch_size"], lr=lim["lr"], seed=seed,
                       options={"learnable_embedding": True} if kind.endswith("+rho") else None)
        key = recipe_key(config=tc.recipe(), data=idx, old=None if old is None else old.info.get("recipe_key"))
        return train_or_load(work / name, key, lambda: train_step(tc, ds.x_train, ds.y_train, idx, old=old,
                                                                  name=name, progress=progress))[0]

    def fixed_modules(method: str, new: BCLModel, old: BCLModel) -> FixedCMCL:
        idx = pool[np.isin(ds.y_train[pool], all_classes)]          # the new model's own training images
        fc = FixedCMCLConfig(rho=method.endswith("+rho"), epochs=lim["epochs"], batch_size=lim["batch_size"],
                             lr=lim["lr"], seed=cfg.seed + 1)
        key = recipe_key(config=asdict(fc), data=idx, new=new.info.get("recipe_key"), old=old.info.get("recipe_key"))
        return train_or_load_fixed(work / f"fixed-{method}", key, lambda: train_cmcl_fixed(
            fc, new, old, ds.x_train, ds.y_train, idx, progress=progress, name=f"fixed-{method}"))[0]

    specs = row_specs(cfg.methods, cfg.settings)
    with timer("train"):
        old = model("old", "independent", old_classes, cfg.seed)
        news = {kind: model(f"new-{kind}", kind, all_classes, cfg.seed + 1, None if kind == "independent" else old)
                for kind in sorted({"independent"} | {new_kind(m, st) for m, st in specs})}
    with timer("train fixed-new psi / rho"):
        fixed = {m: fixed_modules(m, news["independent"], old) for m, st in specs
                 if st == "fixed-new" and m.startswith("merge+reverse+cmcl")}
    yq, yg = ds.y_test[query], ds.y_test[gallery]
    xq, xg = ds.x_test[query], ds.x_test[gallery]
    with timer("encode"):
        q_old, g_old = old.encode(xq), old.encode(xg)
        enc = {kind: (m.encode(xq), m.encode(xg)) for kind, m in news.items()}
        old_system = retrieval_scores(q_old, yq, g_old, yg)
        m_old = 100 * old_system["map"]
        m_new = {kind: 100 * retrieval_scores(q, yq, g, yg)["map"] for kind, (q, g) in enc.items()}
        stored = {m: tuple(mod.stored_new(v) for v in enc["independent"]) for m, mod in fixed.items()}
    rows = []
    for method, setting in specs:
        kind = new_kind(method, setting)
        on_fixed = setting == "fixed-new" and method in fixed
        q_new, g_new = stored[method] if on_fixed else enc[kind]
        with timer(f"curves {method}" + (" (fixed-new)" if on_fixed else "")):
            if method == "merge":
                q_back = q_old                                       # a second encoding, by the old model
            elif method == "bct":
                q_back = q_new                                       # compatible by training: as it is
            elif method == "merge+reverse":
                probe = pool[:: max(1, len(pool) // lim["psi_pairs"])]
                psi = make_adapter("reverse").fit(news[kind].encode(ds.x_train[probe]), old.encode(ds.x_train[probe]))
                q_back = psi.transform(q_new)
            elif on_fixed:
                q_back = fixed[method].reverse(q_new)                # psi trained on the frozen new model
            else:
                q_back = Reverse.from_module(news[kind].psi, new_model_id=None, old_model_id=None).transform(q_new)
            for order_name in cfg.orders:
                ids = [str(i) for i in range(len(gallery))]
                ctx = OrderingContext(ids, old_vectors=lambda s: g_old[[int(i) for i in s]],
                                      new_vectors=_rows_of(g_new), seed=cfg.seed)
                order = np.array([int(i) for i in backfill_order(order_name, ctx)], dtype=np.int64)
                curve = merged_curve(q_new, g_new, q_back, g_old, yq, yg, order, cfg.steps, old_system["correct"])
                rows.append({"method": method, "setting": setting, "order": order_name, "curve": curve,
                             **curve_summary(curve, m_old, m_new[kind], m_new["independent"])})
    return json_safe({
        "dataset": DATASET, "rows": rows, "old_model_map": m_old, "old_classes": old_classes,
        "shared_new_model_map": m_new["independent"], "settings_note": SETTINGS_NOTE,
        "fixed_new_training": {m: mod.info for m, mod in fixed.items()},
        "queries": int(len(query)), "gallery_images": int(len(gallery)), "paper_ordering": PAPER.note,
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds, "config": asdict(cfg),
        "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    })


def run(cfg: OnlineBackfillConfig, say: Callable[[str], None] = print) -> dict:
    """The protocol's entry for ``hotswap experiment online-backfill`` (progress bars on the terminal)."""
    return run_online_backfill_experiment(cfg)


def save(result: dict, cfg: OnlineBackfillConfig) -> list[Path]:
    """Write ``online_backfill.json`` and ``online_backfill.png`` into ``cfg.out``."""
    return [atomic_write_json(Path(cfg.out) / "online_backfill.json", result),
            plot(result, Path(cfg.out) / "online_backfill.png")]
