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
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotswap.data.image_splits import (ImagePools, class_order, incremental_tasks, make_pools, per_class_subset,
                                       scaled_replacements)
from hotswap.data.images import ImageDataset, load_image_dataset
from hotswap.experiments.provenance import StageTimer, hardware, versions
from hotswap.metrics.model_compatibility import (classification_flip_rate, compatibility_matrix, summarise,
                                                 template_correct)
from hotswap.training.bcl_model import BCLModel
from hotswap.io import json_safe
from hotswap.training.chain import train_chain
from hotswap.training.classification import BCLConfig, train_step
from hotswap.training.model_cache import recipe_key, train_or_load

DATASET = "MNIST + Fashion-MNIST, 20 classes (stands in for the paper's CIFAR-100)"
METHODS = ("independent", "bct", "dsimplex")
# The authors' public notebooks (github.com/miccunifi/iamcl2r; CIFAR-100 -> CIFAR-10), as they print them.
PAPER = {7: {"independent": {"AC": 0.0, "AM": 35.18}, "dsimplex": {"AC": 0.95, "AM": 68.90}},
         31: {"independent": {"AC": 0.0, "AM": 30.32}, "dsimplex": {"AC": 0.65, "AM": 68.07}}}
SCALES = {
    "tiny": dict(arch="cnn", widths=(8, 8, 8), preallocated=32, epochs=1, pretrain_epochs=1, train_per_class=20,
                 query_per_class=10, pretrain_per_class=30, gallery_per_class=20, batch_size=32, lr=0.01,
                 pretrain_lr=0.05),
    "default": dict(arch="cnn", widths=(32, 40, 48), preallocated=256, epochs=20, pretrain_epochs=3,
                    train_per_class=300, query_per_class=200, pretrain_per_class=1000, gallery_per_class=250,
                    batch_size=128, lr=0.01, pretrain_lr=0.05),
    "paper": dict(arch="resnet18", widths=(64, 64, 64), preallocated=1024, epochs=70, pretrain_epochs=30,
                  train_per_class=300, query_per_class=200, pretrain_per_class=None, gallery_per_class=None,
                  batch_size=128, lr=1e-3, pretrain_lr=0.1),
}


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
    def limits(self) -> dict:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        return SCALES[self.scale]

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


def pretrain_replacements(cfg: DSimplexConfig, ds: ImageDataset, pools: ImagePools, head: str,
                          progress: bool) -> list[BCLModel]:
    """One pre-trained replacement backbone per replacement task (the ImageNet32 stand-in, module docstring)."""
    lim, replace = cfg.limits(), cfg.replacements()
    models = []
    for r in range(len(replace)):
        width = lim["widths"][min(r, len(lim["widths"]) - 1)]
        idx = pool_prefix(pools.pretrain, ds.y_train, (r + 1) / len(replace), cfg.seed + r)
        tc = BCLConfig(method="dsimplex" if head == "simplex" else "independent", head=head, arch=lim["arch"],
                       width=width, embed_dim=lim["preallocated"] - 1, preallocated=lim["preallocated"],
                       n_classes=ds.n_classes, epochs=lim["pretrain_epochs"], batch_size=lim["batch_size"],
                       lr=lim["pretrain_lr"], seed=cfg.seed + 1000 * (r + 1))
        name = f"replacement{r}-{head}"
        key = recipe_key(config=tc.recipe(), data=idx)
        model, _ = train_or_load(Path(cfg.workdir) / "replacements" / name, key,
                                 lambda: train_step(tc, ds.x_train, ds.y_train, idx, name=name, progress=progress))
        models.append(model)
    return models


def run_chain(cfg: DSimplexConfig, method: str, ds: ImageDataset, pools: ImagePools, tasks: list[list[int]],
              replacements: list[BCLModel], gallery: np.ndarray, progress: bool) -> dict:
    """Train one method's chain over the tasks (:func:`hotswap.training.chain.train_chain`); its matrix and
    summary."""
    lim = cfg.limits()

    def config_for(t: int, init: BCLModel | None) -> BCLConfig:
        return BCLConfig(method=method, arch=init.net.config["arch"], width=init.net.config["width"],
                         embed_dim=lim["preallocated"] - 1, preallocated=lim["preallocated"], n_classes=ds.n_classes,
                         epochs=lim["epochs"], batch_size=lim["batch_size"], lr=lim["lr"], seed=cfg.seed + t)

    chain = train_chain(method, tasks, ds.x_train, ds.y_train, pools.train, config_for,
                        dict(zip(cfg.replacements(), replacements)), Path(cfg.workdir) / method,
                        embed={"query": ds.x_train[pools.query], "gallery": ds.x_test[gallery]},
                        memory_per_class=cfg.memory_per_class, seed=cfg.seed, progress=progress)
    queries, galleries = chain.embeddings["query"], chain.embeddings["gallery"]
    yq, yg = ds.y_train[pools.query], ds.y_test[gallery]
    C = 100.0 * compatibility_matrix(queries, galleries, yq, yg, metric="template_top1")
    summary = summarise(C)
    correct = [template_correct(queries[i], yq, galleries[i], yg) for i in range(len(tasks))]
    flips = [classification_flip_rate(correct[i - 1], correct[i]) for i in range(1, len(tasks))]
    return {"method": method, "AC": float(summary["ac"]), "AM": float(summary["am"]), "matrix": C.tolist(),
            "summary": summary, "negative_flip_rates": [f["negative_flip_rate"] for f in flips], "steps": chain.steps}


def run_dsimplex_experiment(cfg: DSimplexConfig, progress: bool = True) -> dict:
    """Pre-train the replacements, train every method's chain, evaluate; the ``results/dsimplex.json`` dict."""
    timer, started, lim = StageTimer(), time.perf_counter(), cfg.limits()
    bad = [m for m in cfg.methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; the d-Simplex protocol compares {', '.join(METHODS)}")
    with timer("load data"):
        ds = load_image_dataset(cfg.data)
        order = class_order(ds.n_classes, cfg.seed)
        tasks = incremental_tasks(order, cfg.tasks)
        pools = make_pools(ds.y_train, ds.y_test, lim["train_per_class"], lim["query_per_class"],
                           lim["pretrain_per_class"] * len(cfg.replacements()) if lim["pretrain_per_class"] else None,
                           cfg.seed)
        gallery = per_class_subset(ds.y_test, lim["gallery_per_class"], cfg.seed)
    heads = sorted({"simplex" if m == "dsimplex" else "linear" for m in cfg.methods})
    replacements = {}
    for head in heads:
        with timer(f"pre-train replacements ({head})"):
            replacements[head] = pretrain_replacements(cfg, ds, pools, head, progress)
    rows = []
    for method in cfg.methods:
        with timer(f"train + evaluate {method}"):
            row = run_chain(cfg, method, ds, pools, tasks, replacements["simplex" if method == "dsimplex" else "linear"],
                            gallery, progress)
        paper = PAPER.get(31 if cfg.tasks > 7 else 7, {}).get(method, {})
        row.update(paper_AC=paper.get("AC"), paper_AM=paper.get("AM"))
        rows.append(row)
    return json_safe({
        "dataset": DATASET, "tasks": cfg.tasks, "rows": rows, "class_order": order, "task_classes": tasks,
        "replacement_tasks": cfg.replacements(), "paper_reference": "miccunifi/iamcl2r notebooks (7 tasks: "
        "d-Simplex-HOC AC 0.95 AM 68.90, ER AC 0.00 AM 35.18; 31 tasks: 0.65 / 68.07 and 0.00 / 30.32)",
        "metric": "1:N template search top-1 (%)", "pools": pools.describe(),
        "queries": int(len(pools.query)), "gallery_images": int(len(gallery)),
        "replacements": {h: [{"name": m.name, "width": m.net.config["width"], "train_images": m.info["train_images"],
                              "wall_s": m.info.get("wall_s")} for m in ms] for h, ms in replacements.items()},
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds,
        "config": asdict(cfg), "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    })
