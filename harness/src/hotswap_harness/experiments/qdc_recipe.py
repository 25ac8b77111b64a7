"""Choosing QDC's training recipe on validation queries: how long and how fast FT trains on each task.

QDC can only help where plain fine-tuning (FT) forgets. The issue with our runs so far is that FT forgets
nothing (task 1's score does not fall), so the recipe (passes over each task's pairs and the learning rate)
must be chosen so that it does, and chosen without test queries:

* each task's train queries are split once (seeded): ``VALIDATION`` of them become validation queries, the rest
  stay train queries; test queries are never read;
* for each candidate ``(epochs, lr)`` FT trains through the whole sequence on the remaining train pairs, and
  after each task the model's validation queries of task 1 are searched against task 1's index embedded by
  f_1, the first model (the QDC protocol: documents are never re-embedded);
* forgetting after task i is ``v_1 - v_i`` (validation nDCG@10 of task 1 after task 1 minus after task i); the
  chosen candidate is the cheapest (fewest steps, then lowest lr) whose forgetting after the last task
  reaches ``GATE``, else the one that forgets most.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from hotswap.data.tasks import TaskData
from hotswap.io import atomic_write_json
from hotswap.runinfo import hardware, versions
from hotswap.training import ContinualTrainer
from hotswap.training.text_continual import text_task
from hotswap_harness.experiments.protocols.qdc_recipe import QDCRecipeOptions, recipe_pairs
from hotswap_harness.experiments.qdc import QDCConfig, TaskEmbeddings, load_tasks, task_ndcg, train_config

VALIDATION = 0.2  # share of each task's train queries held out for choosing the recipe
GATE = 0.03  # nDCG@10 that FT must lose on task 1 (the 3 points)


def split_validation(task: TaskData, share: float = VALIDATION, seed: int = 0) -> tuple[TaskData, TaskData]:
    """``(train, validation)``: the task with ``share`` of its train queries removed, and the task whose (test)
    queries are those held-out train queries; same corpus, test queries untouched in the first, absent in
    the second."""
    d = task.data
    qids = sorted(d.train_queries)
    rng = np.random.default_rng([seed, len(qids)])
    held = set(rng.choice(qids, size=max(1, round(share * len(qids))), replace=False).tolist())
    train = replace(d, train_queries={q: t for q, t in d.train_queries.items() if q not in held},
                    train_qrels={q: r for q, r in d.train_qrels.items() if q not in held})
    val = replace(d, queries={q: d.train_queries[q] for q in sorted(held)},
                  qrels={q: d.train_qrels[q] for q in sorted(held)}, train_queries={}, train_qrels={})
    return replace(task, data=train), replace(task, data=val)


def choose(candidates: list[dict], gate: float = GATE) -> dict:
    """The cheapest candidate whose last forgetting reaches ``gate``, else the one that forgets most."""
    passing = [c for c in candidates if c["forgetting"][-1] >= gate]
    if passing:
        return min(passing, key=lambda c: (c["steps_per_task"], c["lr"]))
    return max(candidates, key=lambda c: c["forgetting"][-1])


def run_recipe_search(cfg: QDCConfig, recipes: list[tuple[int, float]], progress: bool = True) -> dict:
    """Train FT once per ``(epochs, lr)`` on the train-minus-validation pairs and measure task 1's forgetting
    on validation queries; returns the ``results/qdc_recipe.json`` dict (candidates, the chosen one)."""
    started = time.perf_counter()
    split = [split_validation(t, seed=cfg.seed) for t in load_tasks(cfg)]
    train_tasks, val_tasks = [t for t, _ in split], [v for _, v in split]
    text_tasks = [text_task(t) for t in train_tasks]
    emb = TaskEmbeddings(val_tasks, cfg)
    candidates = []
    for epochs, lr in recipes:
        t0 = time.perf_counter()
        run_cfg = replace(train_config(cfg), epochs=epochs, lr=lr)
        work = Path(cfg.workdir) / f"recipe-e{epochs}-lr{lr:g}"
        ft = ContinualTrainer(work, cfg.model, run_cfg, progress).fit(text_tasks)
        first = ft["tasks"][0]["folder"]
        index = emb.corpus(first, 0)
        scores = [task_ndcg(emb.test(t["folder"], 0), index, val_tasks[0], cfg.k) for t in ft["tasks"]]
        candidates.append({"epochs": epochs, "lr": lr, "steps_per_task": [t["steps"] for t in ft["tasks"]][0],
                           "validation_ndcg@10_task1": scores, "forgetting": [scores[0] - s for s in scores],
                           "drift_norms": [t["drift_norm"] for t in ft["tasks"]],
                           "wall_s": round(time.perf_counter() - t0, 1)})
    chosen = choose(candidates)
    return {"tasks": [t.name for t in train_tasks], "setting": "five-sources" if cfg.sequence == "sources"
            else "debian-sections", "gate": GATE, "validation_share": VALIDATION,
            "validation_queries": [len(v.data.queries) for v in val_tasks], "candidates": candidates,
            "chosen": {"epochs": chosen["epochs"], "lr": chosen["lr"],
                       "meets_gate": chosen["forgetting"][-1] >= GATE},
            "config": asdict(cfg), "versions": versions(), "hardware": hardware(),
            "wall_s": round(time.perf_counter() - started, 1)}


def run(options: QDCRecipeOptions, say: Callable[[str], None] = print) -> dict:
    """The protocol's entry for ``hotswap experiment qdc-recipe``: every ``--recipes`` pair on the options'
    :class:`QDCConfig` (progress bars on the terminal)."""
    cfg = QDCConfig(scale=options.scale, sequence=options.sequence, workdir=str(options.workdir), seed=options.seed)
    return run_recipe_search(cfg, recipe_pairs(options.recipes))


def save(result: dict, options: QDCRecipeOptions) -> list[Path]:
    """Write ``qdc_recipe.json`` (``options.out`` is the file)."""
    return [atomic_write_json(Path(options.out), result)]
