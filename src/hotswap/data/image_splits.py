"""Class orders, task splits, index pools and rehearsal for the 20-class image set (``hotswap.data.images``).

The 20-class MNIST + Fashion-MNIST set stands in for the papers' CIFAR-100 (d-Simplex) and GLDv2 / In-shop
(prototype perturbation), which cannot be had offline. Everything here works on *indices* into the set's
train / test arrays and on label arrays only (pure numpy, no images), and is deterministic given a seed.

What each split reproduces and how it is scaled to 20 classes:

* :func:`class_order` -- a seeded permutation of the class ids. CIFAR-100's class ids mix unrelated concepts
  within each task; a permutation mixes digits (0-9) and clothes (10-19) across tasks in the same way.
  ``seed=None`` keeps the identity order (all digits first).
* :func:`incremental_tasks` -- the d-Simplex class-incremental protocol (code: iamcl2r):
  on CIFAR-100 the first task has 10 classes, then 15 per task (7 tasks: 10 + 15x6 = 100). Scaled to 20
  classes: first task 2 classes, then 3 per task (2 + 3x6 = 20). The paper's 31-task sequence
  (10 + 3x30) cannot be cut from 20 classes -- at most 19 tasks with a first task of 2 (2 + 1x18);
  ``--tasks 19`` is its stand-in. :func:`scaled_replacements` maps the paper's model-replacement tasks
  ({0, 2, 4} of 7, {0, 10, 20} of 31) proportionally onto the number of tasks run ({0, 2, 4} of 7,
  {0, 6, 12} of 19).
* :func:`extended_classes` -- the BCL "extended classes" two-step update used by the prototype-perturbation
  paper (30% -> 100%): step s trains on the first ``round(f_s * n)`` classes of the order (30% of 20 = 6,
  then all 20). Whether that paper's 30% is of classes or of images is not verified;
  we read it as classes, as in BCL's extended-class setting.
* :class:`ImagePools` / :func:`make_pools` -- disjoint per-class index sets into the **train** split:
  ``train`` (300 images/class, as iamcl2r subsamples CIFAR-100 to 300 train images/class), ``query``
  (held out, never trained on: the d-Simplex evaluation queries; the paper queries with CIFAR-10 train
  images, i.e. train-split images that were never trained on), ``pretrain`` (the rest, optionally capped:
  pre-trains the stand-in for the paper's ImageNet32 replacement backbones); and ``gallery`` = the whole
  **test** split (the paper's gallery is CIFAR-10 test, averaged into class templates). Note the scale-down
  differs in one way: CIFAR-10 classes are unseen by the CIFAR-100 models, whereas here the query *images*
  are unseen but their classes are among the 20 trained ones (hold classes out of the order to get unseen
  classes). The ``pretrain`` pool is disjoint from ``train`` and ``query`` in images, not in classes.
* :func:`split_test_query_gallery` -- the prototype-perturbation protocol retrieves within a test set
  (In-shop: disjoint query and gallery images of the same classes); here a fixed number of test images per
  class become queries and the rest of the test split the gallery, all 20 classes in both.
* :class:`RehearsalMemory` -- iamcl2r's rehearsal: 20 random exemplars per class seen so far, added after
  each task.
* :func:`half_memory_batches` -- iamcl2r's sampler: from task 1 on, each batch is half memory, half new data.

Randomness: per-class choices (pools, exemplars) use ``np.random.default_rng((seed, class_id))``, so the images
chosen for one class do not depend on which other classes exist or on the order classes are processed in;
everything else uses ``np.random.default_rng(seed)`` or a generator passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

N_CLASSES = 20
PAPER_TASKS_7 = (7, (0, 2, 4))     # d-Simplex: 7 tasks on CIFAR-100, replacement at tasks 0, 2, 4
PAPER_TASKS_31 = (31, (0, 10, 20))  # d-Simplex: 31 tasks on CIFAR-100, replacement at tasks 0, 10, 20
DEFAULT_FIRST = 2                   # CIFAR-100's first task of 10 classes, scaled to 20 classes


def _round_half_up(x: float) -> int:
    # Python's round() rounds halves to even (round(2.5) == 2); a split should not depend on parity.
    return int(math.floor(x + 0.5 + 1e-9))


def _class_rng(seed: int, cls: int) -> np.random.Generator:
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng((int(seed), int(cls)))


def _check_order(order: Sequence[int]) -> list[int]:
    out = [int(c) for c in order]
    if not out:
        raise ValueError("the class order is empty")
    if len(set(out)) != len(out):
        dup = sorted({c for c in out if out.count(c) > 1})
        raise ValueError(f"the class order repeats classes {dup}")
    return out


def _as_labels(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer label array, got {y.dtype} {y.shape}")
    return y


def _sorted_index(parts: Iterable[np.ndarray]) -> np.ndarray:
    parts = list(parts)
    out = np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    out.setflags(write=False)
    return out


# --- class orders and task splits ----------------------------------------------------------------------------

def class_order(n_classes: int = N_CLASSES, seed: int | None = 42) -> list[int]:
    """A seeded permutation of ``range(n_classes)`` (mixes digits and clothes across tasks); ``seed=None``:
    the identity order."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if seed is None:
        return list(range(n_classes))
    return [int(c) for c in np.random.default_rng(seed).permutation(n_classes)]


def incremental_tasks(order: Sequence[int], n_tasks: int = 7, first: int | None = None) -> list[list[int]]:
    """Cut ``order`` into ``n_tasks`` consecutive, disjoint class sets (class-incremental learning).

    The first task has ``first`` classes (default 2 -- CIFAR-100's 10 scaled to 20 classes -- or all classes
    when ``n_tasks == 1``); the remaining classes are spread over the other ``n_tasks - 1`` tasks as evenly as
    possible, earlier tasks taking the extra class. With 20 classes and 7 tasks: sizes 2, 3, 3, 3, 3, 3, 3.
    Raises ``ValueError`` when some task would get no class (at most ``1 + n - first`` tasks).
    """
    classes = _check_order(order)
    n = len(classes)
    if n_tasks < 1:
        raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
    if first is None:
        first = n if n_tasks == 1 else min(DEFAULT_FIRST, n)
    if not 1 <= first <= n:
        raise ValueError(f"the first task must have between 1 and {n} classes, got {first}")
    if n_tasks == 1:
        if first != n:
            raise ValueError(f"a single task must hold all {n} classes, got first={first}")
        return [classes]
    max_tasks = 1 + n - first
    if n_tasks > max_tasks:
        raise ValueError(
            f"cannot cut {n_tasks} tasks from {n} classes with a first task of {first}: at most {max_tasks} tasks "
            f"(1 new class per task after the first). The paper's 31-task sequence (10 + 3x30 classes on "
            f"CIFAR-100) does not fit; use --tasks {max_tasks} as its stand-in ({first} + 1x{max_tasks - 1} here)")
    base, extra = divmod(n - first, n_tasks - 1)
    sizes = [first] + [base + 1] * extra + [base] * (n_tasks - 1 - extra)
    tasks, start = [], 0
    for size in sizes:
        tasks.append(classes[start:start + size])
        start += size
    return tasks


def scaled_replacements(n_tasks: int, paper_tasks: int, paper_replace: Sequence[int]) -> list[int]:
    """Map the paper's model-replacement tasks onto ``n_tasks`` tasks: ``round(r * n_tasks / paper_tasks)``
    (halves rounded up), clipped to the last task, deduplicated and sorted; task 0 maps to 0.

    ``scaled_replacements(7, 7, [0, 2, 4]) == [0, 2, 4]``; ``scaled_replacements(19, 31, [0, 10, 20]) == [0, 6, 12]``.
    """
    if n_tasks < 1 or paper_tasks < 1:
        raise ValueError(f"n_tasks and paper_tasks must be >= 1, got {n_tasks} and {paper_tasks}")
    out = set()
    for r in paper_replace:
        if not 0 <= int(r) < paper_tasks:
            raise ValueError(f"replacement task {r} is outside the paper's {paper_tasks} tasks (0..{paper_tasks - 1})")
        out.add(min(_round_half_up(int(r) * n_tasks / paper_tasks), n_tasks - 1))
    return sorted(out)


def extended_classes(order: Sequence[int], fractions: Sequence[float] = (0.3, 1.0)) -> list[list[int]]:
    """The BCL "extended classes" split: step s trains on the first ``round(f_s * n)`` classes of ``order``.

    Steps are nested (each a prefix of the next). With 20 classes: 0.3 -> 6, 0.6 -> 12, 1.0 -> 20 classes.
    ``fractions`` must be non-empty, strictly increasing and in (0, 1], and give strictly growing, non-empty
    steps; ``ValueError`` otherwise.
    """
    classes = _check_order(order)
    fr = [float(f) for f in fractions]
    if not fr:
        raise ValueError("fractions is empty")
    if any(not 0.0 < f <= 1.0 for f in fr):
        raise ValueError(f"fractions must lie in (0, 1], got {fr}")
    if any(b <= a for a, b in zip(fr, fr[1:])):
        raise ValueError(f"fractions must be strictly increasing, got {fr}")
    counts = [_round_half_up(f * len(classes)) for f in fr]
    if counts[0] < 1:
        raise ValueError(f"fraction {fr[0]} of {len(classes)} classes rounds to no class")
    if any(b <= a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"fractions {fr} of {len(classes)} classes give steps of {counts} classes, "
                         f"which do not grow at every step")
    return [classes[:k] for k in counts]


# --- index pools ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ImagePools:
    """Disjoint index sets: ``train`` / ``query`` / ``pretrain`` into the train split, ``gallery`` into the test
    split. Each is a sorted, read-only int64 array; ``per_class`` holds each pool's image count per class."""

    train: np.ndarray
    query: np.ndarray
    pretrain: np.ndarray
    gallery: np.ndarray
    classes: tuple[int, ...]
    per_class: dict[str, dict[int, int]] = field(default_factory=dict)
    seed: int = 42

    SPLIT = {"train": "train", "query": "train", "pretrain": "train", "gallery": "test"}

    def describe(self) -> dict[str, dict]:
        """Per pool: the split it indexes, its total, and its smallest / largest per-class count."""
        out = {}
        for name, split in self.SPLIT.items():
            counts = list(self.per_class.get(name, {}).values())
            out[name] = {"split": split, "total": int(len(getattr(self, name))),
                         "min_per_class": int(min(counts)) if counts else 0,
                         "max_per_class": int(max(counts)) if counts else 0}
        return out


def _per_class(y: np.ndarray, idx: np.ndarray, classes: Sequence[int]) -> dict[int, int]:
    counts = np.bincount(y[idx], minlength=max(classes) + 1) if len(idx) else np.zeros(max(classes) + 1, int)
    return {int(c): int(counts[c]) for c in classes}


def make_pools(y_train: np.ndarray, y_test: np.ndarray, train_per_class: int = 300, query_per_class: int = 200,
               pretrain_per_class: int | None = None, seed: int = 42) -> ImagePools:
    """Split the train split per class into disjoint ``train`` / ``query`` / ``pretrain`` pools; ``gallery`` =
    every test index.

    For each class (every label in ``y_train``) its train images are shuffled by
    ``default_rng((seed, class))``; the first ``train_per_class`` form ``train``, the next ``query_per_class``
    ``query``, and the rest (at most ``pretrain_per_class`` of them when given) ``pretrain``. Raises
    ``ValueError`` naming the class and the counts when a class has fewer than
    ``train_per_class + query_per_class`` images, or when a test class never occurs in the train split.
    """
    y_train, y_test = _as_labels(y_train, "y_train"), _as_labels(y_test, "y_test")
    for name, v in (("train_per_class", train_per_class), ("query_per_class", query_per_class)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if pretrain_per_class is not None and pretrain_per_class < 0:
        raise ValueError(f"pretrain_per_class must be >= 0 or None, got {pretrain_per_class}")
    if len(y_train) == 0:
        raise ValueError("y_train is empty")
    if y_train.min() < 0 or (len(y_test) and y_test.min() < 0):
        raise ValueError("labels must be non-negative class ids")
    classes = [int(c) for c in np.unique(y_train)]
    missing = sorted(set(int(c) for c in np.unique(y_test)) - set(classes))
    if missing:
        raise ValueError(f"test classes {missing} have no image in the train split")
    need = train_per_class + query_per_class
    parts: dict[str, list[np.ndarray]] = {"train": [], "query": [], "pretrain": []}
    for c in classes:
        idx = np.flatnonzero(y_train == c)
        if len(idx) < need:
            raise ValueError(f"class {c} has {len(idx)} train images, fewer than train_per_class + query_per_class "
                             f"= {train_per_class} + {query_per_class} = {need}")
        idx = _class_rng(seed, c).permutation(idx)
        rest = idx[need:]
        parts["train"].append(idx[:train_per_class])
        parts["query"].append(idx[train_per_class:need])
        parts["pretrain"].append(rest if pretrain_per_class is None else rest[:pretrain_per_class])
    pools = {k: _sorted_index(v) for k, v in parts.items()}
    gallery = np.arange(len(y_test), dtype=np.int64)
    gallery.setflags(write=False)
    per_class = {k: _per_class(y_train, v, classes) for k, v in pools.items()}
    per_class["gallery"] = _per_class(y_test, gallery, classes)
    return ImagePools(gallery=gallery, classes=tuple(classes), per_class=per_class, seed=seed, **pools)


def split_test_query_gallery(y_test: np.ndarray, query_per_class: int = 100,
                             seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Split the test split into disjoint query and gallery indices (sorted int64), every class in both:
    ``query_per_class`` random test images per class (``default_rng((seed, class))``) are queries, the rest
    the gallery. Raises ``ValueError`` naming the class and counts when a class has no image left for the
    gallery."""
    y_test = _as_labels(y_test, "y_test")
    if query_per_class < 1:
        raise ValueError(f"query_per_class must be >= 1, got {query_per_class}")
    if len(y_test) == 0:
        raise ValueError("y_test is empty")
    if y_test.min() < 0:
        raise ValueError("labels must be non-negative class ids")
    queries, gallery = [], []
    for c in np.unique(y_test):
        idx = np.flatnonzero(y_test == c)
        if len(idx) <= query_per_class:
            raise ValueError(f"class {int(c)} has {len(idx)} test images: need more than query_per_class = "
                             f"{query_per_class} to leave at least one for the gallery")
        idx = _class_rng(seed, int(c)).permutation(idx)
        queries.append(idx[:query_per_class])
        gallery.append(idx[query_per_class:])
    return _sorted_index(queries), _sorted_index(gallery)


# --- rehearsal -----------------------------------------------------------------------------------------------

class RehearsalMemory:
    """Rehearsal memory of ``per_class`` random exemplars (train indices) per class, as in iamcl2r (20/class).

    Call :meth:`update` after each task with that task's training indices, their labels and the task's classes.
    Exemplars of class c are drawn without replacement by ``default_rng((seed, c))`` from the sorted indices
    of that class, so they do not depend on the order of ``indices`` or of the updates. A class with fewer than
    ``per_class`` images keeps all of them. Re-adding a class already stored changes nothing.
    """

    def __init__(self, per_class: int = 20, seed: int = 42):
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.per_class = int(per_class)
        self.seed = int(seed)
        self._store: dict[int, np.ndarray] = {}

    def update(self, indices: np.ndarray, labels: np.ndarray, classes: Iterable[int]) -> None:
        indices = np.asarray(indices, dtype=np.int64)
        labels = _as_labels(labels, "labels")
        if indices.shape != labels.shape:
            raise ValueError(f"indices {indices.shape} and labels {labels.shape} differ in shape")
        for c in sorted({int(c) for c in classes}):
            if c in self._store:
                continue
            pool = np.sort(indices[labels == c])
            if len(pool) == 0:
                raise ValueError(f"class {c} has no image among the {len(indices)} indices given")
            k = min(self.per_class, len(pool))
            chosen = np.sort(_class_rng(self.seed, c).choice(pool, size=k, replace=False)).astype(np.int64)
            chosen.setflags(write=False)
            self._store[c] = chosen

    def exemplars(self, cls: int) -> np.ndarray:
        """The stored exemplar indices of one class (sorted int64); ``KeyError`` if the class is not stored."""
        return self._store[int(cls)]

    @property
    def indices(self) -> np.ndarray:
        """All exemplar indices, sorted int64."""
        return _sorted_index(self._store.values())

    @property
    def classes(self) -> list[int]:
        return sorted(self._store)

    def __len__(self) -> int:
        return sum(len(v) for v in self._store.values())

    def __repr__(self) -> str:
        return f"RehearsalMemory(per_class={self.per_class}, classes={len(self._store)}, exemplars={len(self)})"


def half_memory_batches(new_idx: np.ndarray, memory_idx: np.ndarray, batch_size: int,
                        rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One epoch of int64 index batches over ``new_idx``, mirroring the iamcl2r sampler ("from task 1 on, each
    batch is half memory, half new data").

    ``new_idx`` is shuffled by ``rng`` and every new index appears exactly once per epoch (the last, partial
    batch is kept). With an empty memory the batches are plain: ``batch_size`` new indices each. With a
    non-empty memory each batch is ``ceil(batch_size / 2)`` new indices followed by ``batch_size // 2`` memory
    indices (in that order), so an epoch has ``ceil(len(new_idx) / ceil(batch_size / 2))`` batches; the last
    batch, with ``k`` new indices, takes ``min(k, batch_size // 2)`` memory indices so it stays about half and
    half. Memory indices are drawn by ``rng`` afresh for each batch, without replacement within a batch when
    the memory is large enough, with replacement otherwise. Arguments are checked when called, not when the
    first batch is drawn.
    """
    new_idx = np.asarray(new_idx, dtype=np.int64).ravel()
    memory_idx = np.asarray(memory_idx, dtype=np.int64).ravel()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(memory_idx) and batch_size < 2:
        raise ValueError("batch_size must be >= 2 to hold both new and memory data")
    return _batches(new_idx, memory_idx, batch_size, rng)


def _batches(new_idx: np.ndarray, memory_idx: np.ndarray, batch_size: int,
             rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = rng.permutation(new_idx)
    if len(memory_idx) == 0:
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]
        return
    new_half, mem_half = batch_size - batch_size // 2, batch_size // 2
    for start in range(0, len(order), new_half):
        new = order[start:start + new_half]
        m = min(len(new), mem_half)
        mem = rng.choice(memory_idx, size=m, replace=len(memory_idx) < m)
        yield np.concatenate([new, mem]).astype(np.int64)


def per_class_subset(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``n`` random items per class (all when ``n`` is None)."""
    if n is None:
        return np.arange(len(labels), dtype=np.int64)
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out.append(np.random.default_rng((seed, int(c))).permutation(idx)[:n])
    return np.sort(np.concatenate(out)).astype(np.int64)


def query_gallery_split(y_test: np.ndarray, query_per_class: int, gallery_per_class: int | None,
                       seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_test_query_gallery`, then at most ``gallery_per_class`` gallery images per class (all when
    None): the query and gallery indices into the test split of the retrieval protocols."""
    query, gallery = split_test_query_gallery(y_test, query_per_class, seed)
    if gallery_per_class is not None:
        gallery = gallery[per_class_subset(y_test[gallery], gallery_per_class, seed)]
    return query, gallery


# --- held-out evaluation classes -----------------------------------------------------------------------------

DIGIT_CLASSES = tuple(range(10))       # MNIST digits; 10-19 are the Fashion-MNIST garments


def heldout_classes(order: Sequence[int], n_digits: int = 3, n_garments: int = 3,
                    digits: Sequence[int] = DIGIT_CLASSES) -> list[int]:
    """The first ``n_digits`` digit classes and the first ``n_garments`` garment classes of ``order``, in order
    of appearance: classes no model of a chain trains on, the stand-in for the d-Simplex code's CIFAR-10
    evaluation set, disjoint from the CIFAR-100 training classes (miccunifi/iamcl2r, ``eval.py``).

    Deterministic given the (seeded) order; ``ValueError`` when the order has too few classes of a kind.
    """
    classes = _check_order(order)
    digit_set = {int(c) for c in digits}
    chosen_digits = [c for c in classes if c in digit_set][:n_digits]
    chosen_garments = [c for c in classes if c not in digit_set][:n_garments]
    if len(chosen_digits) < n_digits or len(chosen_garments) < n_garments:
        raise ValueError(f"the order has {len(chosen_digits)} digit and {len(chosen_garments)} garment classes "
                         f"available; {n_digits} and {n_garments} were asked for")
    chosen = set(chosen_digits) | set(chosen_garments)
    return [c for c in classes if c in chosen]


def without_classes(order: Sequence[int], removed: Iterable[int]) -> list[int]:
    """``order`` with the ``removed`` classes taken out, the rest in their order."""
    gone = {int(c) for c in removed}
    return [c for c in _check_order(order) if c not in gone]


def restrict_to_classes(indices: np.ndarray, labels: np.ndarray, classes: Iterable[int]) -> np.ndarray:
    """The entries of ``indices`` whose label (``labels[index]``) is one of ``classes``, sorted int64."""
    idx = np.asarray(indices, dtype=np.int64)
    keep = np.isin(np.asarray(labels)[idx], np.asarray(sorted({int(c) for c in classes}), dtype=np.int64))
    return np.sort(idx[keep]).astype(np.int64)
