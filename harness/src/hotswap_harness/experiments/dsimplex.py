"""The d-Simplex protocol (Biondi et al., CVPR 2024; code miccunifi/iamcl2r): compatible training across a
chain of model replacements, scored by the empirical compatibility criterion, AC and AM.

Scaled to the offline 20-class MNIST + Fashion-MNIST set, which **stands in for the paper's CIFAR-100**:

* classes in a seeded order, cut into 7 tasks (2 + 3×6, the paper's 10 + 15×6) or ``tasks`` tasks; 300
  training images per class; a rehearsal memory of 20 random images per seen class, and from task 1 on each
  batch is half memory, half new data;
* **model replacement** at tasks {0, 2, 4} (scaled for other lengths): the backbone is swapped for a
  pre-trained one. The paper's replacements were pre-trained on ImageNet32, which cannot be had here; what
  stands in is a *wider* CNN pre-trained on the rest of the training split (``pools.pretrain``: images never
  in the 300/class subsample nor in the queries, all 20 classes, as ImageNet overlaps CIFAR's concepts),
  each later replacement wider and pre-trained on more of that pool, so each is the better-performing model
  a team would download. d-Simplex replacements are pre-trained with the fixed simplex classifier (the
  paper's ``pretrained_models_ckpts/simplex``), ER and BCT replacements with a learnable one (``learnable``);
* methods: ``independent`` (ER: fine-tuning with a learnable classifier, no compatibility term), ``bct``
  (BCT influence loss against the previous model) and ``dsimplex`` (d-Simplex-HOC: fixed simplex classifier,
  ``0.1 CE + 0.9 InfoNCE``; as in the authors' code, at a replacement task the old model is the replacement
  itself);
* evaluation as the code's: queries are training-split images never trained on (200/class; the paper's are
  CIFAR-10 train images), the gallery is the test split reduced to L2-normalised class templates, and a query
  is right when its nearest template (inner product) is its class. ``matrix[i][j]`` = top-1 (%) of model i's
  queries on model j's gallery for j <= i; AC and AM as in the paper
  (:mod:`hotswap.metrics.model_compatibility`).

Two settings (``DSimplexConfig.setting``):

* ``"seen-classes"`` (the default, as above): queries and gallery span all 20 classes, the ones the chain
  trains on; the replacements are pre-trained on all 20.
* ``"heldout-classes"``: the authors' code evaluates on CIFAR-10, classes no model of the chain trains on
  (``eval.py``: CIFAR-100 training, CIFAR-10 queries / gallery). Here 6 of the 20 classes (3 digits, 3
  garments, the first of each kind in the seeded class order, :func:`hotswap.data.image_splits.heldout_classes`)
  are never trained by any chain model nor any replacement and are used only as queries and gallery. The chain
  trains on the other 14 classes in 7 tasks (2 + 2×6); the replacements are pre-trained on those 14 only (from
  the pretrain pool) with enough epochs for the training loss to plateau (their per-epoch history is kept in
  the results). Chain training uses the code's optimiser settings (``params.py``: lr 1e-3, cosine annealing
  to ``min_lr`` 1e-5 over the task's epochs, 70 epochs per task; ``HELDOUT_LIMITS``).

Every row also carries ``status_split`` (:func:`hotswap.metrics.model_compatibility.status_split_matrix`): each
cell recomputed on the queries whose class changed training status between models i and j (the class is in the
chain's training data, task or rehearsal memory, of one model and not the other) and on those whose status is
the same. In ``heldout-classes`` no evaluation class is ever trained, so every ``changed`` cell is empty (null).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotswap.data.image_splits import (
    ImagePools,
    class_order,
    heldout_classes,
    incremental_tasks,
    make_pools,
    per_class_subset,
    restrict_to_classes,
    scaled_replacements,
    without_classes,
)
from hotswap.data.images import ImageDataset, load_image_dataset
from hotswap.io import atomic_write_json, json_safe
from hotswap.metrics.model_compatibility import (
    classification_flip_rate,
    compatibility_matrix,
    status_split_matrix,
    summarise,
    template_correct,
)
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.training.bcl_model import BCLModel
from hotswap.training.chain import train_chain
from hotswap.training.classification import BCLConfig, train_step
from hotswap.training.model_cache import recipe_key, train_or_load
from hotswap_harness.experiments.protocols.dsimplex import (
    METHODS,
    PAPER,
    SCALES,
    SETTINGS,
    DSimplexOptions,
    plot,
    png_name,
)
from hotswap_harness.experiments.settings import merge_setting

DATASET = "MNIST + Fashion-MNIST, 20 classes (stands in for the paper's CIFAR-100)"
HELDOUT_DIGITS, HELDOUT_GARMENTS = 3, 3
# heldout-classes: the code's lr 1e-3 (cosine to 1e-5) and 70 epochs per task (``params.py``) for the chain; it fits
# a shared 2-core CPU (one torch thread: ~5 min per method at 35 epochs, so ~10 at 70). Replacements: 250 pool
# images per class per share (3,500 / 7,000 / 10,500 images on the 14 classes) for 15 epochs, where the train
# accuracy has levelled off (a 10-epoch trial was still rising ~1 point per epoch until its lr decayed); their
# per-epoch loss / accuracy are in the results.
HELDOUT_LIMITS = {
    "tiny": dict(lr=1e-3, epochs=1, pretrain_epochs=1),
    "default": dict(lr=1e-3, epochs=70, pretrain_epochs=15, pretrain_per_class=250),
    "paper": dict(lr=1e-3, epochs=70, pretrain_epochs=30),
}
HELDOUT_DATASET = ("MNIST + Fashion-MNIST: 14 training classes, 6 held-out evaluation classes (stand in for the "
                   "paper's CIFAR-100 training / CIFAR-10 evaluation)")


@dataclass
class DSimplexConfig:
    scale: str = "default"
    tasks: int = 7
    methods: tuple[str, ...] = METHODS
    replace_at: tuple[int, ...] | None = None   # default: the paper's {0,2,4} of 7 (or {0,10,20} of 31) scaled
    memory_per_class: int = 20
    seed: int = 42
    data: str | None = None
    workdir: str = "runs/dsimplex"
    setting: str = SETTINGS[0]

    def limits(self) -> dict:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        if self.setting not in SETTINGS:
            raise ValueError(f"unknown setting {self.setting!r}; choose one of {', '.join(SETTINGS)}")
        if self.setting == "heldout-classes":
            return {**SCALES[self.scale], **HELDOUT_LIMITS[self.scale]}
        return SCALES[self.scale]

    def root(self) -> Path:
        """Where this setting's models live: ``workdir`` (seen-classes, as before) or ``workdir/heldout-classes``."""
        return Path(self.workdir) if self.setting == SETTINGS[0] else Path(self.workdir) / self.setting

    def replacements(self) -> list[int]:
        if self.replace_at is not None:
            bad = [t for t in self.replace_at if not 0 <= t < self.tasks]
            if bad:
                raise ValueError(f"replacement tasks {bad} are outside 0..{self.tasks - 1}")
            return sorted({0, *self.replace_at})
        paper_tasks, paper_replace = (7, (0, 2, 4)) if self.tasks <= 7 else (31, (0, 10, 20))
        return scaled_replacements(self.tasks, paper_tasks, paper_replace)


def pool_prefix(pool: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The first ``fraction`` of each class's share of ``pool`` in an order seeded by ``(seed, class)``."""
    out = []
    for c in np.unique(labels[pool]):
        idx = np.random.default_rng((seed, int(c))).permutation(pool[labels[pool] == c])
        out.append(idx[: max(1, int(round(fraction * len(idx))))])
    return np.sort(np.concatenate(out)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class SettingSplit:
    """What one setting trains and evaluates on: the class order, the held-out classes (none in seen-classes),
    the tasks, and index pools (``train`` / ``pretrain`` / ``query`` into the train split, ``gallery`` into the
    test split)."""

    order: list[int]
    heldout: list[int]
    tasks: list[list[int]]
    train: np.ndarray
    pretrain: np.ndarray
    query: np.ndarray
    gallery: np.ndarray

    @property
    def trained_classes(self) -> list[int]:
        return [c for task in self.tasks for c in task]


def setting_split(cfg: DSimplexConfig, ds: ImageDataset, pools: ImagePools) -> SettingSplit:
    """The seen-classes split (all 20 classes everywhere) or the heldout-classes one (module docstring): the
    held-out classes only in ``query`` / ``gallery``, the others only in ``train`` / ``pretrain``."""
    lim = cfg.limits()
    order = class_order(ds.n_classes, cfg.seed)
    gallery = per_class_subset(ds.y_test, lim["gallery_per_class"], cfg.seed)
    if cfg.setting == SETTINGS[0]:
        return SettingSplit(order, [], incremental_tasks(order, cfg.tasks), pools.train, pools.pretrain,
                            pools.query, gallery)
    held = heldout_classes(order, HELDOUT_DIGITS, HELDOUT_GARMENTS)
    trained = without_classes(order, held)
    return SettingSplit(order, held, incremental_tasks(trained, cfg.tasks),
                        restrict_to_classes(pools.train, ds.y_train, trained),
                        restrict_to_classes(pools.pretrain, ds.y_train, trained),
                        restrict_to_classes(pools.query, ds.y_train, held),
                        restrict_to_classes(gallery, ds.y_test, held))


def pretrain_replacements(cfg: DSimplexConfig, ds: ImageDataset, pool: np.ndarray, head: str,
                          progress: bool) -> list[BCLModel]:
    """One pre-trained replacement backbone per replacement task (the ImageNet32 stand-in, module docstring),
    each on a growing share of ``pool`` (the setting's pretrain pool)."""
    lim, replace = cfg.limits(), cfg.replacements()
    models = []
    for r in range(len(replace)):
        width = lim["widths"][min(r, len(lim["widths"]) - 1)]
        idx = pool_prefix(pool, ds.y_train, (r + 1) / len(replace), cfg.seed + r)
        tc = BCLConfig(method="dsimplex" if head == "simplex" else "independent", head=head, arch=lim["arch"],
                       width=width, embed_dim=lim["preallocated"] - 1, preallocated=lim["preallocated"],
                       n_classes=ds.n_classes, epochs=lim["pretrain_epochs"], batch_size=lim["batch_size"],
                       lr=lim["pretrain_lr"], seed=cfg.seed + 1000 * (r + 1))
        name = f"replacement{r}-{head}"
        key = recipe_key(config=tc.recipe(), data=idx)
        model, _ = train_or_load(cfg.root() / "replacements" / name, key,
                                 lambda: train_step(tc, ds.x_train, ds.y_train, idx, name=name, progress=progress))
        models.append(model)
    return models


def chain_trained_classes(tasks: list[list[int]]) -> list[list[int]]:
    """The classes in model t's chain training data: tasks 0..t (task t's data plus the rehearsal memory of the
    earlier ones). The replacements' pre-training classes are not counted."""
    return [sorted(c for task in tasks[: t + 1] for c in task) for t in range(len(tasks))]


def run_chain(cfg: DSimplexConfig, method: str, ds: ImageDataset, split: SettingSplit,
              replacements: list[BCLModel], progress: bool) -> dict:
    """Train one method's chain over the tasks (:func:`hotswap.training.chain.train_chain`); its matrix,
    summary and training-status split."""
    lim = cfg.limits()

    def config_for(t: int, init: BCLModel | None) -> BCLConfig:
        if init is None:
            raise ValueError(f"task {t} of the d-Simplex chain has no model to start from; every task starts from a "
                             "replacement or the previous model")
        return BCLConfig(method=method, arch=init.net.config["arch"], width=init.net.config["width"],
                         embed_dim=lim["preallocated"] - 1, preallocated=lim["preallocated"], n_classes=ds.n_classes,
                         epochs=lim["epochs"], batch_size=lim["batch_size"], lr=lim["lr"], seed=cfg.seed + t)

    tasks = split.tasks
    chain = train_chain(method, tasks, ds.x_train, ds.y_train, split.train, config_for,
                        dict(zip(cfg.replacements(), replacements)), cfg.root() / method,
                        embed={"query": ds.x_train[split.query], "gallery": ds.x_test[split.gallery]},
                        memory_per_class=cfg.memory_per_class, seed=cfg.seed, progress=progress)
    queries, galleries = chain.embeddings["query"], chain.embeddings["gallery"]
    yq, yg = ds.y_train[split.query], ds.y_test[split.gallery]
    C = 100.0 * compatibility_matrix(queries, galleries, yq, yg, metric="template_top1")
    summary = summarise(C)
    correct = [template_correct(queries[i], yq, galleries[i], yg) for i in range(len(tasks))]
    flips = [classification_flip_rate(correct[i - 1], correct[i]) for i in range(1, len(tasks))]
    status = {k: 100.0 * v for k, v in status_split_matrix(queries, galleries, yq, yg,
                                                            chain_trained_classes(tasks)).items()}
    return {"method": method, "AC": float(summary["ac"]), "AM": float(summary["am"]), "matrix": C.tolist(),
            "summary": summary, "negative_flip_rates": [f["negative_flip_rate"] for f in flips], "steps": chain.steps,
            "setting": cfg.setting, "status_split": {k: v.tolist() for k, v in status.items()},
            "status_split_means": status_split_means(status)}


def status_split_means(status: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per part of the status split: the mean of its non-empty cross-model cells (j < i) and their count."""
    out = {}
    for name, M in status.items():
        cells = np.asarray(M, dtype=float)[np.tril_indices(len(M), -1)]
        cells = cells[~np.isnan(cells)]
        out[name] = {"mean_cross": float(cells.mean()) if cells.size else None, "cells": int(cells.size)}
    return out


def setting_fields(cfg: DSimplexConfig, split: SettingSplit) -> dict:
    """What a heldout-classes row needs to stand alone in a file shared with the seen-classes rows."""
    if cfg.setting == SETTINGS[0]:
        return {}
    lim = cfg.limits()
    return {"task_classes": split.tasks, "heldout_classes": split.heldout, "trained_classes": split.trained_classes,
            "epochs": lim["epochs"], "lr": lim["lr"], "pretrain_epochs": lim["pretrain_epochs"]}


def replacement_record(model: BCLModel) -> dict:
    """A replacement's size, data and per-epoch pre-training history (to see that its loss plateaued)."""
    return {"name": model.name, "width": model.net.config["width"], "train_images": model.info["train_images"],
            "wall_s": model.info.get("wall_s"), "classes": list(model.classes),
            "history": [{k: row[k] for k in ("epoch", "loss", "train_acc")} for row in model.info.get("history", [])]}


def run_dsimplex_experiment(cfg: DSimplexConfig, progress: bool = True) -> dict:
    """Pre-train the replacements, train every method's chain, evaluate; the ``results/dsimplex.json`` dict of
    this setting (merge it into an existing file with :func:`merge_results`)."""
    timer, started, lim = StageTimer(), time.perf_counter(), cfg.limits()
    bad = [m for m in cfg.methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; the d-Simplex protocol compares {', '.join(METHODS)}")
    with timer("load data"):
        ds = load_image_dataset(cfg.data)
        pools = make_pools(ds.y_train, ds.y_test, lim["train_per_class"], lim["query_per_class"],
                           lim["pretrain_per_class"] * len(cfg.replacements()) if lim["pretrain_per_class"] else None,
                           cfg.seed)
        split = setting_split(cfg, ds, pools)
    heads = sorted({"simplex" if m == "dsimplex" else "linear" for m in cfg.methods})
    replacements = {}
    for head in heads:
        with timer(f"pre-train replacements ({head})"):
            replacements[head] = pretrain_replacements(cfg, ds, split.pretrain, head, progress)
    rows = []
    for method in cfg.methods:
        with timer(f"train + evaluate {method}"):
            row = run_chain(cfg, method, ds, split, replacements["simplex" if method == "dsimplex" else "linear"],
                            progress)
        paper = PAPER.numbers.get("31" if cfg.tasks > 7 else "7", {}).get(method, {})
        row.update(paper_AC=paper.get("AC"), paper_AM=paper.get("AM"), **setting_fields(cfg, split))
        rows.append(row)
    heldout = cfg.setting != SETTINGS[0]
    return json_safe({
        "dataset": HELDOUT_DATASET if heldout else DATASET, "tasks": cfg.tasks, "rows": rows,
        "class_order": split.order, "task_classes": split.tasks, "setting": cfg.setting,
        "heldout_classes": split.heldout, "trained_classes": split.trained_classes,
        "replacement_tasks": cfg.replacements(), "paper_reference": "miccunifi/iamcl2r notebooks (7 tasks: "
        "d-Simplex-HOC AC 0.95 AM 68.90, ER AC 0.00 AM 35.18; 31 tasks: 0.65 / 68.07 and 0.00 / 30.32)",
        "metric": "1:N template search top-1 (%)", "pools": pools.describe(),
        "queries": int(len(split.query)), "gallery_images": int(len(split.gallery)),
        "status_split_definition": "a class changed status between models i and j when it is in the chain "
        "training data (task or rehearsal memory) of exactly one of them; cells: top-1 (%) over those queries",
        "replacements": {h: [replacement_record(m) for m in ms] for h, ms in replacements.items()},
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds,
        "config": asdict(cfg), "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    })


def merge_results(existing: dict | None, new: dict) -> dict:
    """``new`` (one setting's run) merged into an existing ``dsimplex.json``
    (:func:`hotswap_harness.experiments.settings.merge_setting`): that setting's rows are replaced, the other setting's
    kept (rows without a ``setting`` are seen-classes rows, written before settings existed); the top-level
    fields stay the seen-classes run's; rows are ordered by setting."""
    merged = merge_setting(existing, {**new, "setting": new.get("setting", SETTINGS[0])},
                           headline=SETTINGS[0], legacy=SETTINGS[0])
    merged["rows"].sort(key=lambda r: SETTINGS.index(r["setting"]) if r["setting"] in SETTINGS else len(SETTINGS))
    return merged


def config_of(options: DSimplexOptions) -> DSimplexConfig:
    """The run's config from the command's options (the config, not the options, is recorded in the results)."""
    return DSimplexConfig(scale=options.scale, tasks=options.tasks, methods=tuple(options.methods),
                          replace_at=None if options.replace_at is None else tuple(options.replace_at),
                          workdir=str(options.workdir), seed=options.seed,
                          data=None if options.data is None else str(options.data), setting=options.setting)


def run(options: DSimplexOptions, say: Callable[[str], None] = print) -> dict:
    """The protocol's entry for ``hotswap experiment dsimplex``: this setting's result (progress bars on the
    terminal)."""
    return run_dsimplex_experiment(config_of(options))


def save(result: dict, options: DSimplexOptions) -> list[Path]:
    """Merge this setting's rows into ``dsimplex.json`` in ``options.out`` (the other setting's rows kept) and
    plot them to ``dsimplex.png`` (seen-classes) or ``dsimplex-<setting>.png``."""
    path = Path(options.out) / "dsimplex.json"
    existing = json.loads(path.read_text()) if path.is_file() else None
    return [atomic_write_json(path, merge_results(existing, result)),
            plot(result, Path(options.out) / png_name(options.setting))]
