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
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotswap.data.image_splits import class_order, extended_classes, per_class_subset, query_gallery_split
from hotswap.data.images import ImageDataset, load_image_dataset
from hotswap.experiments.provenance import StageTimer, hardware, versions
from hotswap.metrics.model_compatibility import classification_flip_rate, retrieval_scores
from hotswap.training.bcl_model import BCLModel
from hotswap.io import json_safe
from hotswap.training.classification import BCLConfig, train_step
from hotswap.training.model_cache import encode_and_keep, recipe_key, train_or_load

DATASET = "MNIST + Fashion-MNIST, 20 classes (stands in for the paper's GLDv2 / In-shop)"
METHODS = ("independent", "bct", "prototype", "ndpp", "odpp")
SETTINGS = {"30-100": (0.3, 1.0), "30-60-100": (0.3, 0.6, 1.0)}
SCALES = {
    "tiny": dict(arch="cnn", width=8, embed_dim=32, epochs=1, train_per_class=20, query_per_class=5,
                 gallery_per_class=20, batch_size=32, lr=0.05),
    "default": dict(arch="cnn", width=32, embed_dim=128, epochs=12, train_per_class=600, query_per_class=100,
                    gallery_per_class=None, batch_size=128, lr=0.05),
    "paper": dict(arch="resnet18", width=64, embed_dim=256, epochs=30, train_per_class=None, query_per_class=100,
                  gallery_per_class=None, batch_size=128, lr=0.05),
}


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

    def __init__(self, ds: ImageDataset, query: np.ndarray, gallery: np.ndarray, keep: bool) -> None:
        self.ds, self.query, self.gallery, self.keep = ds, query, gallery, keep
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def embed(self, model: BCLModel, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        key = str(folder)
        if key not in self.cache:
            q = encode_and_keep(model, self.ds.x_test[self.query], folder / "query.npy" if self.keep else None)
            g = encode_and_keep(model, self.ds.x_test[self.gallery], folder / "gallery.npy" if self.keep else None)
            self.cache[key] = (q, g)
        return self.cache[key]

    def scores(self, q_model: tuple[BCLModel, Path], g_model: tuple[BCLModel, Path]) -> dict:
        q, _ = self.embed(*q_model)
        _, g = self.embed(*g_model)
        return retrieval_scores(q, self.ds.y_test[self.query], g, self.ds.y_test[self.gallery])


def _config(cfg: PerturbationConfig, method: str, n_classes: int, step: int) -> BCLConfig:
    lim = cfg.limits()
    return BCLConfig(method=method, head="cosine", arch=lim["arch"], width=lim["width"], embed_dim=lim["embed_dim"],
                     n_classes=n_classes, epochs=lim["epochs"], batch_size=lim["batch_size"], lr=lim["lr"],
                     seed=cfg.seed + 17 * step)


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
                for s in range(1, len(steps_of)):
                    chain.append(step_model(method, steps_of[s], s, chain[-1][0]))
            with timer("evaluate"):
                new, old, prev = chain[-1], chain[0], chain[-2]
                self_s, cross_s = ev.scores(new, new), ev.scores(new, old)
                old_s = ev.scores(old, old)
                flips = classification_flip_rate(old_s["correct"], cross_s["correct"])
                row = {"method": method, "setting": setting, "self_map": 100 * self_s["map"],
                       "cross_map": 100 * cross_s["map"], "self_top1": 100 * self_s["top1"],
                       "cross_top1": 100 * cross_s["top1"], "old_self_map": 100 * old_s["map"],
                       "old_self_top1": 100 * old_s["top1"], "negative_flip_rate": flips["negative_flip_rate"],
                       "perturbation_norms": new[0].info.get("perturbation_norms", []),
                       "train_wall_s": round(sum(m.info.get("wall_s") or 0 for m, _ in chain[1:]), 1)}
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
        "queries": int(len(query)), "gallery_images": int(len(gallery)), "train_images_per_class": lim["train_per_class"],
        "old_model": {"name": first[0].name, "classes": first[0].classes, "wall_s": first[0].info.get("wall_s")},
        "models": models_info, "paper_finding": "NDPP >= ODPP > BCT on cross-test, self-test close to independent "
        "(GLDv2 / In-shop; numbers not readable here)",
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds,
        "config": asdict(cfg), "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    })
