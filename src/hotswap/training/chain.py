"""Train a chain of image models over class-incremental tasks, fine-tuning or **replacing** the backbone.

The chain of Biondi et al. (CVPR 2024, "Stationary Representations", Sec. 5; code miccunifi/iamcl2r,
``main.py``): task t trains model t on its classes' images plus a rehearsal memory (20 images per class seen
so far; from task 1 on each batch is half memory, half new data, :func:`half_memory_batches`). At a
*replacement* task the backbone is swapped for a given pre-trained model; otherwise model t fine-tunes model
t-1. The model the compatibility term refers to (``old``):

==============  ======================================  =========================
method          at a replacement task                   otherwise
==============  ======================================  =========================
independent     none                                    none
bct             the previous model                      the previous model
dsimplex        the replacement itself (as the code)    the previous model
prototype/...   the previous model                      the previous model
==============  ======================================  =========================

Every model is saved (safetensors, :class:`BCLModel`) in ``workdir/task{t}`` with the embeddings of the given
image sets (``{name}.npy``, float16); a rerun reuses every model whose recipe has not changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hotswap.data.image_splits import RehearsalMemory
from hotswap.training.bcl_model import BCLModel
from hotswap.training.classification import BCLConfig, train_step
from hotswap.training.methods import get_method
from hotswap.training.model_cache import encode_and_keep, recipe_key, train_or_load


@dataclass
class ChainResult:
    models: list[BCLModel]
    embeddings: dict[str, list[np.ndarray]]      # image-set name -> one [n, d] array per task
    steps: list[dict] = field(default_factory=list)


def old_model_for(method: str, replaced: bool, previous: BCLModel | None, init: BCLModel | None) -> BCLModel | None:
    """The table in the module docstring (each method's ``old_at_replacement``)."""
    return get_method(method).old_model(replaced, previous, init)


def train_chain(method: str, tasks: list[list[int]], images: np.ndarray, labels: np.ndarray, train_pool: np.ndarray,
                config_for: Callable[[int, BCLModel | None], BCLConfig], replacements: dict[int, BCLModel],
                workdir: str | Path, embed: dict[str, np.ndarray] | None = None, memory_per_class: int = 20,
                seed: int = 42, progress: bool = False) -> ChainResult:
    """Train ``method`` over ``tasks`` (class lists); ``train_pool`` indexes the images tasks draw from.

    ``replacements`` maps a task to the pre-trained model that replaces the backbone there (task 0 needs one
    unless the first model starts from a random init); ``config_for(t, init)`` gives task t's
    :class:`BCLConfig`; ``embed`` names image arrays every model embeds (kept next to it).
    """
    workdir, embed = Path(workdir), embed or {}
    memory = RehearsalMemory(memory_per_class, seed)
    result = ChainResult([], {name: [] for name in embed})
    previous: BCLModel | None = None
    for t, classes in enumerate(tasks):
        train_idx = train_pool[np.isin(labels[train_pool], classes)]
        replaced = t in replacements
        init = replacements[t] if replaced else previous
        old = old_model_for(method, replaced, previous, init)
        tc = config_for(t, init)
        mem = memory.indices if t > 0 else None
        name = f"{method}-t{t}"
        key = recipe_key(config=tc.recipe(), data=train_idx, memory=mem,
                         init=None if init is None else init.info.get("recipe_key"),
                         old=None if old is None else old.info.get("recipe_key"))
        folder = workdir / f"task{t}"
        model, reused = train_or_load(folder, key, lambda: train_step(
            tc, images, labels, train_idx, mem, init=init, old=old, name=name, progress=progress))
        memory.update(train_idx, labels[train_idx], classes)
        for set_name, x in embed.items():
            result.embeddings[set_name].append(encode_and_keep(model, x, folder / f"{set_name}.npy"))
        result.models.append(model)
        result.steps.append({"task": t, "classes": [int(c) for c in classes], "replaced": replaced,
                             "init": None if init is None else init.name, "old": None if old is None else old.name,
                             "train_images": int(len(train_idx)), "memory_images": 0 if mem is None else int(len(mem)),
                             "reused": reused, "wall_s": model.info.get("wall_s"),
                             "final_train_acc": model.info["history"][-1]["train_acc"]})
        previous = model
    return result
