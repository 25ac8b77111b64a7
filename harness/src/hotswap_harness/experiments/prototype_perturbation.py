"""The prototype-perturbation protocol (Zhou et al., arXiv 2503.14824): an old model trained on part of the
classes, a new one on all of them, made compatible by independent training (none), BCT, plain prototype
alignment, NDPP or ODPP; scored by self-test ``M(phi_new, phi_new)`` and cross-test ``M(phi_new, phi_old)``.

Scaled to the offline 20-class MNIST + Fashion-MNIST set, which **stands in for the paper's GLDv2 and
In-shop** (retrieval of unseen landmark / product images; here: unseen images of the 20 classes):

* the BCL "extended classes" split: classes in a seeded order; the old model trains on the first 30% (6
  classes), the new one on 100% (``"30-100"``); the sequential variant ``"30-60-100"`` trains 30% -> 60% ->
  100%, each model compatible with the one before; ``train_per_class`` training images per class;
* every model has the same CNN and a cosine classifier (scale 16), trained from scratch, so the methods
  differ only in the compatibility term (``hotswap.training.classification``); the 30% model is shared;
* evaluation within the official test split: ``query_per_class`` queries per class, the rest is the gallery
  (all 20 classes; the 30% model never saw 14 of them, as the paper's old models never saw the test
  landmarks). ``map`` = mean average precision over the whole ranking of gallery images (cosine), ``top1`` =
  share of queries whose nearest gallery image has their class. Cross-test embeds the gallery with the
  *first* (30%) model — the gallery nobody re-embedded; for ``30-60-100`` the cross-test against the 60%
  model is also recorded (``cross_prev_*``).

The validated setting ``"validated-30-100"`` (:func:`run_validated_setting`) is ``30-100`` with NDPP's and
ODPP's free parameters chosen on a validation split instead of fixed: ``val_per_class`` *training-split*
images per class (seeded; drawn from the training images outside the training pool, so training is unchanged,
and never from the test split), a quarter of them queries and the rest the gallery. Each value of a small grid
(:data:`GRIDS`: NDPP's ``lambda`` with the push divided by ``k`` and each shift bounded by 0.1; ODPP's radius
``r`` and proximity ``mu``) trains one new model; the value with the highest validation cross-test mAP
(new-model queries against the old model's gallery) is chosen, and the test rows report that model. The grid,
each value's validation scores and the choice are recorded in the rows.

``"validated-data-30-100"`` is the extended-*data* variant: six classes (three digits, three garments,
:func:`~hotswap.data.image_splits.heldout_classes`) are held out of all training; the old model trains on a
seeded 30% of the training images of each of the other 14 classes, the new model on 100%; validation uses the
14 training classes' held-back training images, and the test rows are scored on the held-out classes' test
images only (query and gallery), i.e. retrieval of classes neither model saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotswap.data.image_splits import (
    class_order,
    extended_classes,
    heldout_classes,
    per_class_subset,
    query_gallery_split,
    without_classes,
)
from hotswap.data.images import ImageDataset, load_image_dataset
from hotswap.io import atomic_write_json, json_safe
from hotswap.metrics.model_compatibility import classification_flip_rate, retrieval_scores
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.training.bcl_model import BCLModel
from hotswap.training.classification import BCLConfig, train_step
from hotswap.training.model_cache import encode_and_keep, recipe_key, train_or_load
from hotswap_harness.experiments.protocols.perturbation import (
    METHODS,
    PAPER,
    SCALES,
    SETTINGS,
    VALIDATED,
    PerturbationOptions,
    plot,
)

DATASET = "MNIST + Fashion-MNIST, 20 classes (stands in for the paper's GLDv2 / In-shop)"
GRIDS: dict[str, list[dict]] = {
    "ndpp": [dict(normalise=True, max_shift=0.1, strength=lam) for lam in (0.5, 1.0, 2.0)],
    "odpp": [dict(radius=0.1), dict(radius=0.3, proximity=10.0), dict(radius=0.3, proximity=50.0)],
}
VAL_PER_CLASS = {"tiny": 8, "default": 100, "paper": 100}


@dataclass
class PerturbationConfig:
    scale: str = "default"
    methods: tuple[str, ...] = METHODS
    settings: tuple[str, ...] = tuple(SETTINGS)
    seed: int = 42
    data: str | None = None
    workdir: str = "runs/perturbation"
    save_embeddings: bool = True

    def limits(self) -> dict:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        return SCALES[self.scale]


class _Eval:
    """Query / gallery embeddings per model, computed once."""

    def __init__(self, ds: ImageDataset, query: np.ndarray, gallery: np.ndarray, keep: bool,
                 split: str = "test") -> None:
        self.query, self.gallery, self.keep = query, gallery, keep
        self.x, self.y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def embed(self, model: BCLModel, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        key = str(folder)
        if key not in self.cache:
            q = encode_and_keep(model, self.x[self.query], folder / "query.npy" if self.keep else None)
            g = encode_and_keep(model, self.x[self.gallery], folder / "gallery.npy" if self.keep else None)
            self.cache[key] = (q, g)
        return self.cache[key]

    def scores(self, q_model: tuple[BCLModel, Path], g_model: tuple[BCLModel, Path]) -> dict:
        q, _ = self.embed(*q_model)
        _, g = self.embed(*g_model)
        return retrieval_scores(q, self.y[self.query], g, self.y[self.gallery])


def _config(cfg: PerturbationConfig, method: str, n_classes: int, step: int, options: dict | None = None) -> BCLConfig:
    lim = cfg.limits()
    return BCLConfig(method=method, head="cosine", arch=lim["arch"], width=lim["width"], embed_dim=lim["embed_dim"],
                     n_classes=n_classes, epochs=lim["epochs"], batch_size=lim["batch_size"], lr=lim["lr"],
                     seed=cfg.seed + 17 * step, options=options)


def run_perturbation_experiment(cfg: PerturbationConfig, progress: bool = True) -> dict:
    """Train the shared old model and each method's new model(s); the ``results/perturbation.json`` dict."""
    timer, started, lim = StageTimer(), time.perf_counter(), cfg.limits()
    for m in cfg.methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; the perturbation protocol compares {', '.join(METHODS)}")
    for s in cfg.settings:
        if s not in SETTINGS:
            raise ValueError(f"unknown setting {s!r}; choose from {', '.join(SETTINGS)}")
    work = Path(cfg.workdir)
    with timer("load data"):
        ds = load_image_dataset(cfg.data)
        order = class_order(ds.n_classes, cfg.seed)
        train_pool = per_class_subset(ds.y_train, lim["train_per_class"], cfg.seed)
        query, gallery = query_gallery_split(ds.y_test, lim["query_per_class"], lim["gallery_per_class"], cfg.seed)
    ev = _Eval(ds, query, gallery, cfg.save_embeddings)

    def step_model(method: str, classes: list[int], step: int, old: BCLModel | None) -> tuple[BCLModel, Path]:
        idx = train_pool[np.isin(ds.y_train[train_pool], classes)]
        tc = _config(cfg, method if old is not None else "independent", ds.n_classes, step)
        pct = round(100 * len(classes) / ds.n_classes)
        name = f"{method}-{pct}" if old is not None else f"old-{pct}"
        chain = "-".join(str(round(100 * len(c) / ds.n_classes)) for c in steps_of[:step + 1])
        folder = work / ("old" if old is None else method) / (f"{pct}" if old is None else chain)
        key = recipe_key(config=tc.recipe(), data=idx, old=None if old is None else old.info.get("recipe_key"))
        model, _ = train_or_load(folder, key, lambda: train_step(tc, ds.x_train, ds.y_train, idx, old=old,
                                                                 name=name, progress=progress))
        return model, folder

    rows, models_info = [], []
    for setting in cfg.settings:
        steps_of = extended_classes(order, SETTINGS[setting])
        with timer("train old (30%)"):
            first = step_model("old", steps_of[0], 0, None)
        for method in cfg.methods:
            with timer(f"train {method} ({setting})"):
                chain = [first]
                for step in range(1, len(steps_of)):
                    chain.append(step_model(method, steps_of[step], step, chain[-1][0]))
            with timer("evaluate"):
                new, old, prev = chain[-1], chain[0], chain[-2]
                row = _test_row(ev, method, setting, new, old)
                row["train_wall_s"] = round(sum(m.info.get("wall_s") or 0 for m, _ in chain[1:]), 1)
                if len(chain) > 2:
                    prev_s = ev.scores(new, prev)
                    row.update(cross_prev_map=100 * prev_s["map"], cross_prev_top1=100 * prev_s["top1"])
                rows.append(row)
                models_info += [{"name": m.name, "folder": str(f), "classes": len(m.classes),
                                 "train_images": m.info["train_images"], "wall_s": m.info.get("wall_s"),
                                 "final_train_acc": m.info["history"][-1]["train_acc"]} for m, f in chain[1:]]
    return json_safe({
        "dataset": DATASET, "rows": rows, "class_order": order, "metric": "mAP over the full gallery ranking and "
        "nearest-neighbour top-1, in %, test-split queries against the test-split gallery",
        "queries": int(len(query)), "gallery_images": int(len(gallery)),
        "train_images_per_class": lim["train_per_class"],
        "old_model": {"name": first[0].name, "classes": first[0].classes, "wall_s": first[0].info.get("wall_s")},
        "models": models_info, "paper_finding": PAPER.note,
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds,
        "config": asdict(cfg), "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    })


# --- the validated setting: NDPP / ODPP parameters chosen on a validation split of the training images ------

def validation_split(y_train: np.ndarray, pool: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(validation, pool')``: ``per_class`` seeded training-split images per class, taken from outside the
    training ``pool`` where a class has enough of them (``pool' == pool``), else from the pool (and removed
    from it). Sorted indices into the training split; validation and ``pool'`` are disjoint."""
    in_pool = np.zeros(len(y_train), dtype=bool)
    in_pool[pool] = True
    val, drop = [], []
    for c in np.unique(y_train[pool]):
        rng = np.random.default_rng((seed, 7919, int(c)))
        outside = np.flatnonzero((y_train == c) & ~in_pool)
        source = outside if len(outside) >= per_class else np.flatnonzero((y_train == c) & in_pool)
        chosen = rng.permutation(source)[:per_class]
        val.append(chosen)
        if source is not outside:
            drop.append(chosen)
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    kept = np.setdiff1d(pool, np.concatenate(drop)) if drop else np.asarray(pool)
    return val_idx, kept.astype(np.int64)


def split_validation(y_train: np.ndarray, val: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation queries (a quarter of each class's validation images, at least one) and gallery (the rest)."""
    query, gallery = [], []
    for c in np.unique(y_train[val]):
        idx = np.random.default_rng((seed, 104729, int(c))).permutation(val[y_train[val] == c])
        n_q = max(1, len(idx) // 4)
        query.append(idx[:n_q])
        gallery.append(idx[n_q:])
    return np.sort(np.concatenate(query)), np.sort(np.concatenate(gallery))


def option_label(options: dict) -> str:
    """A folder-safe name of one grid value, e.g. ``max_shift=0.1,normalise=True,strength=1.0``."""
    return ",".join(f"{k}={v}" for k, v in sorted(options.items())) or "defaults"


def choose(candidates: list[dict]) -> int:
    """Index of the candidate with the highest ``val_cross_map`` (the first on ties)."""
    return max(range(len(candidates)), key=lambda i: (candidates[i]["val_cross_map"], -i))


def _step_indices(kind: str, order: list[int], held: list[int], pool: np.ndarray, y: np.ndarray,
                  seed: int) -> list[np.ndarray]:
    """Training indices of the old and the new model. ``classes``: the pool's images of the first 30% of the
    class order, then of all classes. ``data``: a seeded 30% of each non-held-out class's pool images (nested),
    then all of them."""
    if kind == "classes":
        return [pool[np.isin(y[pool], c)] for c in extended_classes(order, (0.3, 1.0))]
    train_classes = without_classes(order, held)
    full = pool[np.isin(y[pool], train_classes)]
    part = []
    for c in train_classes:
        own = full[y[full] == c]
        part.append(np.random.default_rng((seed, 31, int(c))).permutation(own)[:round(0.3 * len(own))])
    return [np.sort(np.concatenate(part)).astype(np.int64), full]


def _test_row(ev: _Eval, method: str, setting: str, new: tuple, old: tuple) -> dict:
    """The test-split row of one new model against the old one: self-, cross- and the old model's own test,
    negative flips, NDPP / ODPP displacements, the new model's training time."""
    self_s, cross_s, old_s = ev.scores(new, new), ev.scores(new, old), ev.scores(old, old)
    flips = classification_flip_rate(old_s["correct"], cross_s["correct"])
    return {"method": method, "setting": setting, "self_map": 100 * self_s["map"], "cross_map": 100 * cross_s["map"],
            "self_top1": 100 * self_s["top1"], "cross_top1": 100 * cross_s["top1"], "old_self_map": 100 * old_s["map"],
            "old_self_top1": 100 * old_s["top1"], "negative_flip_rate": flips["negative_flip_rate"],
            "perturbation_norms": new[0].info.get("perturbation_norms", []),
            "train_wall_s": round(new[0].info.get("wall_s") or 0, 1)}


def run_validated_setting(cfg: PerturbationConfig, setting: str = "validated-30-100", progress: bool = True) -> dict:
    """One validated setting's result (``{"setting": ..., "rows": [...], ...}``), see the module docstring.

    Independent, BCT and prototype train with their defaults (for ``validated-30-100`` they reuse the ``30-100``
    models: same folders and recipe keys) and are reported beside; NDPP and ODPP train one model per grid value
    and report the validation-chosen one.
    """
    if setting not in VALIDATED:
        raise ValueError(f"unknown validated setting {setting!r}; choose from {', '.join(VALIDATED)}")
    if bad := [m for m in cfg.methods if m not in METHODS]:
        raise ValueError(f"unknown methods {bad}; the perturbation protocol compares {', '.join(METHODS)}")
    timer, started, lim = StageTimer(), time.perf_counter(), cfg.limits()
    work = Path(cfg.workdir)
    with timer("load data"):
        ds = load_image_dataset(cfg.data)
        order = class_order(ds.n_classes, cfg.seed)
        pool = per_class_subset(ds.y_train, lim["train_per_class"], cfg.seed)
        if VALIDATED[setting] == "data":
            pool = pool[~np.isin(ds.y_train[pool], heldout_classes(order))]
        val, pool = validation_split(ds.y_train, pool, VAL_PER_CLASS[cfg.scale], cfg.seed)
        val_q, val_g = split_validation(ds.y_train, val, cfg.seed)
        query, gallery = query_gallery_split(ds.y_test, lim["query_per_class"], lim["gallery_per_class"], cfg.seed)
    kind = VALIDATED[setting]
    held = heldout_classes(order) if kind == "data" else []
    if held:
        query, gallery = query[np.isin(ds.y_test[query], held)], gallery[np.isin(ds.y_test[gallery], held)]
    ev = _Eval(ds, query, gallery, cfg.save_embeddings)
    ev_val = _Eval(ds, val_q, val_g, False, split="train")
    steps = _step_indices(kind, order, held, pool, ds.y_train, cfg.seed)
    names = ("30", "30-100") if kind == "classes" else ("data-30", "data-30-100")

    def train(method: str, options: dict | None, folder: Path, old: BCLModel | None) -> tuple[BCLModel, Path]:
        idx = steps[0] if old is None else steps[1]
        tc = _config(cfg, method, ds.n_classes, 0 if old is None else 1, options)
        name = f"old-{names[0]}" if old is None else f"{method}-{names[1].split('-')[-1]}"
        key = recipe_key(config=tc.recipe(), data=idx, old=None if old is None else old.info.get("recipe_key"))
        model, _ = train_or_load(folder, key, lambda: train_step(tc, ds.x_train, ds.y_train, idx, old=old, name=name,
                                                                 progress=progress))
        return model, folder

    with timer("train old (30%)"):
        old = train("independent", None, work / "old" / names[0], None)
    rows = []
    for method in cfg.methods:
        grid = GRIDS.get(method, [{}])
        candidates = []
        for options in grid:
            folder = work / method / names[1] if not options else work / method / setting / option_label(options)
            with timer(f"train {method} ({setting})"):
                new = train(method, options or None, folder, old[0])
            with timer("validate"):
                vs, vx = ev_val.scores(new, new), ev_val.scores(new, old)
            candidates.append({"options": options, "model": new, "val_self_map": 100 * vs["map"],
                               "val_cross_map": 100 * vx["map"], "folder": str(folder)})
        pick = choose(candidates)
        with timer("evaluate"):
            row = _test_row(ev, method, setting, candidates[pick]["model"], old)
        row.update(chosen=candidates[pick]["options"], val_self_map=candidates[pick]["val_self_map"],
                   val_cross_map=candidates[pick]["val_cross_map"],
                   validation=[{k: v for k, v in c.items() if k != "model"} for c in candidates])
        rows.append(row)
    return json_safe({
        "setting": setting, "dataset": DATASET, "rows": rows, "class_order": order,
        "metric": "test rows: mAP / top-1 in %, test-split queries against the test-split gallery; choice: "
                  "validation cross-test mAP (new-model queries vs the old model's gallery, training-split images)",
        "validation": {"images_per_class": VAL_PER_CLASS[cfg.scale], "queries": int(len(val_q)),
                       "gallery_images": int(len(val_g)), "source": "training split, outside the training pool "
                       "where a class has enough images (else carved out of the pool); never the test split",
                       "criterion": "highest val_cross_map, first grid value on ties"},
        "grids": {m: GRIDS[m] for m in cfg.methods if m in GRIDS}, "growth": kind,
        "heldout_classes": held, "old_train_images": int(len(steps[0])),
        "queries": int(len(query)), "gallery_images": int(len(gallery)), "train_images": int(len(pool)),
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds,
        "config": asdict(cfg), "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    })


def merge_results(existing: dict | None, result: dict) -> dict:
    """``result`` folded into an existing ``perturbation.json`` without dropping anything: rows of the settings
    ``result`` covers are replaced, all other rows kept. A validated run (``result["setting"]``) keeps the
    file's top-level fields and files its metadata under ``settings[name]``; a classic run (no ``setting``)
    supplies the top-level fields, as it always has, and keeps ``settings``."""
    existing = existing or {}
    covered = {r["setting"] for r in result["rows"]} | ({result["setting"]} if result.get("setting") else set())
    rows = [r for r in existing.get("rows", []) if r.get("setting") not in covered] + list(result["rows"])
    settings = dict(existing.get("settings", {}))
    meta = {k: v for k, v in result.items() if k not in ("rows", "settings")}
    if result.get("setting"):
        settings[result["setting"]] = meta
        top = {k: v for k, v in existing.items() if k not in ("rows", "settings")} or meta
    else:
        top = {k: v for k, v in existing.items() if k not in ("rows", "settings")} | meta
    return {**top, "rows": rows, **({"settings": settings} if settings else {})}


def config_of(options: PerturbationOptions) -> PerturbationConfig:
    """The run's config from the command's options: its ``settings`` are the classic ones among them (the
    validated ones run one by one, :func:`run_validated_setting`)."""
    return PerturbationConfig(scale=options.scale, methods=tuple(options.methods),
                              settings=tuple(s for s in options.settings if s in SETTINGS),
                              workdir=str(options.workdir), seed=options.seed,
                              data=None if options.data is None else str(options.data))


def run(options: PerturbationOptions, say: Callable[[str], None] = print) -> dict:
    """The protocol's entry for ``hotswap experiment perturbation``: the classic settings asked for, then each
    validated one (saying which grid value it chose), merged into what ``perturbation.json`` in ``options.out``
    holds already (:func:`merge_results`); the whole file's content."""
    cfg, path = config_of(options), options.results()
    result = json.loads(path.read_text()) if path.is_file() else None
    if cfg.settings:
        result = merge_results(result, run_perturbation_experiment(cfg))
    for name in (s for s in options.settings if s in VALIDATED):
        validated = run_validated_setting(cfg, name)
        for row in validated["rows"]:
            say(f"{name} {row['method']}: chose {row['chosen'] or 'defaults'} "
                f"(validation cross mAP {row['val_cross_map']:.1f})")
        result = merge_results(result, validated)
    if result is None:
        raise ValueError(f"no settings to run (--settings) and no earlier results in {path}")
    return result


def save(result: dict, options: PerturbationOptions) -> list[Path]:
    """Write the merged ``perturbation.json`` and ``perturbation.png`` into ``options.out``."""
    return [atomic_write_json(options.results(), result), plot(result, Path(options.out) / "perturbation.png")]
