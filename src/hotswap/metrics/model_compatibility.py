"""Compatibility between a sequence of embedding models, evaluated on labelled images (query set, gallery set).

This is the protocol of Biondi, Pernici, Ricci, Del Bimbo, "Stationary Representations: Optimally Approximating
Compatibility and Implications for Improved Model Replacements", CVPR 2024 (code: miccunifi/iamcl2r, commit
18495ac), whose compatibility criterion is the empirical one of Shen, Xiong, Xia, Soatto, "Towards Backward-Compatible
Representation Learning", CVPR 2020. Every embedding is an ``np.float32 [n, d]`` array; labels are int arrays.

**Cell metric M(query features, gallery features)** -- one of:

* ``"template_top1"`` -- the "1:N search accuracy" of Biondi et al. (their ``identification``). Every feature is
  L2-normalised first (the authors' ``extract_features`` normalises each image feature), then the gallery features of
  each class c are averaged and the mean is L2-normalised again::

      t_c = m_c / ||m_c||,   m_c = mean_{g : y_g = c} x_g / ||x_g||          (``class_templates``)

  A query q is correct iff ``argmax_c <q / ||q||, t_c>`` is its own class; M = share of correct queries.
  The matrix holds fractions in [0, 1] (the authors' ``average_accuracy`` multiplies by 100 when the last row is
  below 1; multiply AM by 100 to compare with their numbers).
* ``"top1"`` -- per-image nearest neighbour by cosine: a query is correct iff its most similar gallery image has the
  query's class.
* ``"map"`` -- mean average precision of the cosine ranking of the gallery images, relevant = same class. Over the
  full ranking ``AP = (1/R) sum_r P(r) rel(r)``; at cut-off k (the OpenCompatible / GLDv2 mAP@100 convention of the
  authors' ``calculate_mAP_gldv2``)::

      AP@k = sum_{r <= k} P(r) rel(r) / min(k, R),    P(r) = #relevant in the top r / r,

  with R the number of gallery images of the query's class; a query with R = 0 has AP = 0. Ties in score are
  broken by gallery order (the lower gallery index ranks first), so results are deterministic.

**Compatibility matrix** (``compatibility_matrix``): ``C[i][j] = M(phi_i(queries), phi_j(gallery))`` for models
phi_0 .. phi_{T-1}, query features from the newer model i, gallery features from the older model j. The paper only
evaluates ``j <= i``; with ``lower_only`` the upper triangle is NaN.

**Empirical compatibility criterion (ECC, Shen et al. 2020)**: the pair (i, j), j < i, is compatible iff
``C[i][j] > C[j][j]`` -- searching the old gallery with new queries beats the old model on its own. Strict: a tie is
not compatible (the authors count a pair as incompatible iff ``C[i][j] <= C[j][j]``).

**Average compatibility (AC, Biondi et al.)**::

    AC = 2 / (T (T - 1)) * #{(i, j) : j < i, C[i][j] > C[j][j]}

For T = 1 there is no pair; the authors compute ``(max_ac - #incompatible) / max_ac`` with ``max_ac`` clamped to 1,
which gives 1.0; so do we. A NaN cell counts as *not* compatible here (the authors' ``<=`` test is False on NaN,
so their code would count it as compatible).

**Average multi-model accuracy (AM, Biondi et al.)**: the mean of the lower triangle of C including the diagonal,
``AM = 2 / (T (T + 1)) * sum_{j <= i} C[i][j]``, ignoring NaN cells. Quirk of the authors' code: their matrix starts
as zeros, so ``average_accuracy`` turns *every* exact 0 into NaN -- a genuine 0 % cell is then dropped from the mean.
We keep zeros unless ``zeros_as_missing=True``, which reproduces that behaviour.

Per-task variants (the authors' ``per_task=True`` / ``AC_per_task``): the value on the leading i x i sub-matrix of C,
for i = 1..T for AM (the first entry is ``C[0][0]``) and i = 2..T for AC.

**Negative flip rate (Yan et al., "Positive-Congruent Training", CVPR 2021)** for classification-style per-query
correctness: ``NFR = #{q : old correct, new wrong} / n``; the positive flip rate is the reverse
(``classification_flip_rate``).

**Self/cross gaps** (``self_cross_gaps``) for consecutive models (i-1, i): self-test ``C[i][i]``, cross-test
``C[i][i-1]``, previous self-test ``C[i-1][i-1]``, gap = self - cross.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hotswap.errors import DimensionMismatchError, InvalidVectorsError

CELL_METRICS = ("template_top1", "top1", "map")

# --------------------------------------------------------------------------------------------------- validation


def _as_embeddings(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise InvalidVectorsError(f"{name} must be a 2-D [n, d] array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InvalidVectorsError(f"{name} must be real numbers, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise InvalidVectorsError(f"{name} contains NaN or infinite values")
    return a


def _as_labels(y: Any, n: int, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise InvalidVectorsError(f"{name} must be a 1-D array of labels, got shape {a.shape}")
    if a.shape[0] != n:
        raise InvalidVectorsError(f"{name} has {a.shape[0]} labels for {n} embeddings")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise InvalidVectorsError(f"{name} must be integers, got dtype {a.dtype}")
    return a


def _l2n(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation; an all-zero row stays zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def _check_pair(q: np.ndarray, g: np.ndarray) -> None:
    if q.shape[1] != g.shape[1]:
        raise DimensionMismatchError(f"query embeddings are {q.shape[1]}-d but gallery embeddings are "
                                     f"{g.shape[1]}-d; both must come from spaces of the same width")


def _as_matrix(C: Any) -> np.ndarray:
    try:
        a = np.asarray(C, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"compatibility matrix must be a square 2-D array of numbers: {e}") from None
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"compatibility matrix must be square 2-D [T, T], got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError("compatibility matrix is empty (T = 0)")
    if np.isinf(a).any():
        raise ValueError("compatibility matrix may hold finite values or NaN only, found infinity")
    return a


# ------------------------------------------------------------------------------------------ 1:N template search


def class_templates(gallery_emb: np.ndarray, gallery_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class templates ``[C, d]`` and their sorted classes ``[C]``.

    Mirrors the authors' order: each gallery feature is L2-normalised (``extract_features``), the normalised
    features of a class are averaged (in float64, as ``image2template_feature``), the mean is L2-normalised and
    cast to float32.
    """
    g = _as_embeddings(gallery_emb, "gallery_emb")
    y = _as_labels(gallery_labels, g.shape[0], "gallery_labels")
    classes, inverse = np.unique(y, return_inverse=True)
    sums = np.zeros((classes.size, g.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, _l2n(g).astype(np.float64))
    means = sums / np.bincount(inverse, minlength=classes.size)[:, None]
    return _l2n(means).astype(np.float32), classes


def template_correct(query_emb: np.ndarray, query_labels: np.ndarray, gallery_emb: np.ndarray,
                     gallery_labels: np.ndarray, chunk_size: int = 4096) -> np.ndarray:
    """Per query: is its highest inner-product class template (``class_templates``) its own class?

    Ties go to the smallest class label. The authors compare the template's *row index* with the label, which is
    the same thing when the gallery classes are 0..C-1 (CIFAR-10); here the row is mapped back to its class.
    """
    q = _as_embeddings(query_emb, "query_emb")
    yq = _as_labels(query_labels, q.shape[0], "query_labels")
    templates, classes = class_templates(gallery_emb, gallery_labels)
    _check_pair(q, templates)
    out = np.zeros(q.shape[0], dtype=bool)
    if classes.size == 0:
        return out
    for s in range(0, q.shape[0], chunk_size):
        best = np.argmax(_l2n(q[s:s + chunk_size]) @ templates.T, axis=1)
        out[s:s + chunk_size] = classes[best] == yq[s:s + chunk_size]
    return out


def template_top1(query_emb: np.ndarray, query_labels: np.ndarray, gallery_emb: np.ndarray,
                  gallery_labels: np.ndarray) -> float:
    """1:N search accuracy of Biondi et al.: share of queries whose top-1 class template is their class."""
    correct = template_correct(query_emb, query_labels, gallery_emb, gallery_labels)
    return float(correct.mean()) if correct.size else 0.0


# ------------------------------------------------------------------------------------ per-image retrieval


def _descending_keys(scores: np.ndarray) -> np.ndarray:
    """int64 keys whose ascending order is (score descending, column index ascending).

    The high 32 bits hold the float32 score mapped to an order-preserving int32 (flip the magnitude bits of
    negative numbers) and then inverted; the low 32 bits hold the column index. Keys are therefore unique, and
    sorting them is a deterministic argsort, several times faster than ``np.argsort(kind="stable")``. Recover the
    column with ``key & 0xFFFFFFFF``.
    """
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.int32)
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))   # ascending with the float value
    keys = np.invert(ordered).astype(np.int64)               # ascending with the float value reversed
    keys <<= 32
    keys |= np.arange(scores.shape[1], dtype=np.int64)
    return keys


def retrieval_scores(query_emb: np.ndarray, query_labels: np.ndarray, gallery_emb: np.ndarray,
                     gallery_labels: np.ndarray, k: int | None = None, chunk_size: int = 256) -> dict[str, Any]:
    """Cosine nearest-neighbour retrieval of gallery images for each query.

    Returns ``top1`` (share of queries whose nearest gallery image has their class), ``map`` (mean AP over the
    full ranking, or AP@k -- see the module docstring), ``k`` (the cut-off used, None for the full ranking),
    ``correct`` (bool [n_q], top-1 hit) and ``ap`` (float [n_q]). Queries are scored ``chunk_size`` at a time, so
    memory is O(chunk_size x n_gallery). Queries and gallery are assumed disjoint (no self-match exclusion).
    """
    q = _as_embeddings(query_emb, "query_emb")
    yq = _as_labels(query_labels, q.shape[0], "query_labels")
    g = _as_embeddings(gallery_emb, "gallery_emb")
    yg = _as_labels(gallery_labels, g.shape[0], "gallery_labels")
    _check_pair(q, g)
    if k is not None and (isinstance(k, bool) or int(k) != k or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    n_q, n_g = q.shape[0], g.shape[0]
    correct = np.zeros(n_q, dtype=bool)
    ap = np.zeros(n_q, dtype=np.float64)
    if n_q == 0 or n_g == 0:
        return {"top1": 0.0, "map": 0.0, "k": k, "correct": correct, "ap": ap}
    cut = n_g if k is None else min(int(k), n_g)
    classes, counts = np.unique(yg, return_counts=True)
    pos = np.searchsorted(classes, yq).clip(max=classes.size - 1)
    n_rel = np.where(classes[pos] == yq, counts[pos], 0)           # R per query
    denom = np.minimum(n_rel, cut)
    qn, gn = _l2n(q), _l2n(g)
    inv_rank = 1.0 / np.arange(1, cut + 1, dtype=np.float64)
    mask = np.int64(0xFFFFFFFF)
    for s in range(0, n_q, chunk_size):
        e = min(s + chunk_size, n_q)
        keys = _descending_keys(qn[s:e] @ gn.T)
        if cut < n_g:
            keys = np.partition(keys, cut - 1, axis=1)[:, :cut]
        keys.sort(axis=1)
        rel = yg[(keys & mask).astype(np.intp)] == yq[s:e, None]   # [chunk, cut]
        correct[s:e] = rel[:, 0]
        hits = np.cumsum(rel, axis=1)
        num = (hits * inv_rank * rel).sum(axis=1)
        ap[s:e] = np.divide(num, denom[s:e], out=np.zeros(e - s), where=denom[s:e] > 0)
    return {"top1": float(correct.mean()), "map": float(ap.mean()), "k": k, "correct": correct, "ap": ap}


# ------------------------------------------------------------------------------------ compatibility matrix


def _cell(metric: str, q: np.ndarray, yq: np.ndarray, g: np.ndarray, yg: np.ndarray, k: int | None) -> float:
    if metric == "template_top1":
        return template_top1(q, yq, g, yg)
    r = retrieval_scores(q, yq, g, yg, k=k)
    return r["top1"] if metric == "top1" else r["map"]


def compatibility_matrix(query_embs: Sequence[np.ndarray], gallery_embs: Sequence[np.ndarray],
                         query_labels: np.ndarray, gallery_labels: np.ndarray, metric: str = "template_top1",
                         lower_only: bool = True, skip_mismatched: bool = False, k: int | None = None) -> np.ndarray:
    """``C[i][j] = M(query_embs[i], gallery_embs[j])``, a float64 ``[T, T]`` array.

    ``query_embs[t]`` / ``gallery_embs[t]`` are model t's features of the same query / gallery images, so one
    ``query_labels`` / ``gallery_labels`` serves every model. ``metric`` is ``"template_top1"`` (the paper's),
    ``"top1"`` or ``"map"`` (``k`` = AP cut-off, None = full ranking). With ``lower_only`` the cells j > i are not
    computed and hold NaN. A pair whose widths differ raises ``DimensionMismatchError`` naming the two models,
    unless ``skip_mismatched`` (the cell is then NaN).
    """
    if metric not in CELL_METRICS:
        raise ValueError(f"metric must be one of {CELL_METRICS}, got {metric!r}")
    if len(query_embs) != len(gallery_embs):
        raise ValueError(f"got query features of {len(query_embs)} models but gallery features of "
                         f"{len(gallery_embs)}")
    T = len(query_embs)
    if T == 0:
        raise ValueError("need the features of at least one model")
    qs = [_as_embeddings(x, f"query_embs[{t}]") for t, x in enumerate(query_embs)]
    gs = [_as_embeddings(x, f"gallery_embs[{t}]") for t, x in enumerate(gallery_embs)]
    for t in range(T):
        if qs[t].shape[0] != qs[0].shape[0] or gs[t].shape[0] != gs[0].shape[0]:
            raise InvalidVectorsError(f"model {t} embeds {qs[t].shape[0]} queries / {gs[t].shape[0]} gallery "
                                      f"images, model 0 {qs[0].shape[0]} / {gs[0].shape[0]}")
    yq = _as_labels(query_labels, qs[0].shape[0], "query_labels")
    yg = _as_labels(gallery_labels, gs[0].shape[0], "gallery_labels")
    C = np.full((T, T), np.nan)
    for i in range(T):
        for j in range(T):
            if lower_only and j > i:
                continue
            if qs[i].shape[1] != gs[j].shape[1]:
                if skip_mismatched:
                    continue
                raise DimensionMismatchError(
                    f"model {i} (queries) embeds in {qs[i].shape[1]} dims but model {j} (gallery) in "
                    f"{gs[j].shape[1]}: cell C[{i}][{j}] cannot be computed; pass skip_mismatched=True to leave "
                    f"it NaN")
            C[i, j] = _cell(metric, qs[i], yq, gs[j], yg, k)
    return C


def empirical_compatibility(C: Any) -> np.ndarray:
    """Bool ``[T, T]``: True at (i, j), j < i, iff ``C[i][j] > C[j][j]`` (strict; NaN -> False; j >= i False)."""
    a = _as_matrix(C)
    diag = np.diag(a)
    with np.errstate(invalid="ignore"):
        better = a > diag[None, :]
    return np.tril(better, k=-1)


def average_compatibility(C: Any) -> float:
    """``AC = 2 / (T (T - 1)) * #{j < i : C[i][j] > C[j][j]}``; 1.0 for T = 1 (the authors' clamp)."""
    a = _as_matrix(C)
    T = a.shape[0]
    if T == 1:  # the authors compute (max_ac - #incompatible) / max_ac with max_ac clamped to 1: (1 - 0) / 1
        return 1.0
    return float(empirical_compatibility(a).sum() / (T * (T - 1) / 2))


def average_multimodel_accuracy(C: Any, zeros_as_missing: bool = False) -> float:
    """AM = mean of the lower triangle of C including the diagonal, ignoring NaN (NaN if nothing is left).

    ``zeros_as_missing=True`` reproduces the authors' quirk of treating exact zeros as missing cells.
    """
    a = _as_matrix(C)
    vals = a[np.tril_indices(a.shape[0])]
    if zeros_as_missing:
        vals = vals[vals != 0]
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else math.nan


def am_per_task(C: Any, zeros_as_missing: bool = False) -> list[float]:
    """AM on the leading i x i sub-matrix for i = 1..T (the authors' ``average_accuracy(per_task=True)``)."""
    a = _as_matrix(C)
    return [average_multimodel_accuracy(a[:i, :i], zeros_as_missing) for i in range(1, a.shape[0] + 1)]


def ac_per_task(C: Any) -> list[float]:
    """AC on the leading i x i sub-matrix for i = 2..T (the authors' ``AC_per_task``); empty for T = 1."""
    a = _as_matrix(C)
    return [average_compatibility(a[:i, :i]) for i in range(2, a.shape[0] + 1)]


# ---------------------------------------------------------------------------------------- flips and gaps


def classification_flip_rate(old_correct: np.ndarray, new_correct: np.ndarray) -> dict[str, Any]:
    """Negative flips (old right, new wrong) and positive flips (old wrong, new right), as shares of n queries."""
    old, new = np.asarray(old_correct, dtype=bool), np.asarray(new_correct, dtype=bool)
    if old.ndim != 1 or old.shape != new.shape:
        raise ValueError(f"old_correct and new_correct must be 1-D of equal length, got {old.shape} and {new.shape}")
    n = int(old.size)
    neg, pos = int((old & ~new).sum()), int((~old & new).sum())
    return {"negative_flip_rate": neg / n if n else 0.0, "positive_flip_rate": pos / n if n else 0.0,
            "n_negative": neg, "n_positive": pos, "n": n}


def _nanmean(xs: list[float]) -> float:
    v = np.asarray(xs, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan


def self_cross_gaps(C: Any) -> dict[str, Any]:
    """For each consecutive pair (i-1, i): self-test ``C[i][i]``, cross-test ``C[i][i-1]``, old self-test
    ``C[i-1][i-1]``, gap = self - cross; lists in pair order plus their (NaN-ignoring) means."""
    a = _as_matrix(C)
    idx = range(1, a.shape[0])
    self_t = [float(a[i, i]) for i in idx]
    cross = [float(a[i, i - 1]) for i in idx]
    old = [float(a[i - 1, i - 1]) for i in idx]
    gap = [s - c for s, c in zip(self_t, cross)]
    return {"pairs": [(i - 1, i) for i in idx], "self_test": self_t, "cross_test": cross, "old_self_test": old,
            "gap": gap, "mean_self_test": _nanmean(self_t), "mean_cross_test": _nanmean(cross),
            "mean_old_self_test": _nanmean(old), "mean_gap": _nanmean(gap)}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    return x


def summarise(C: Any, zeros_as_missing: bool = False) -> dict[str, Any]:
    """AC, AM, ECC, per-task values and self/cross gaps of C, JSON-serialisable (NaN -> None)."""
    a = _as_matrix(C)
    return _jsonable({"T": a.shape[0], "matrix": a, "ac": average_compatibility(a),
                      "am": average_multimodel_accuracy(a, zeros_as_missing),
                      "ecc": empirical_compatibility(a), "ac_per_task": ac_per_task(a),
                      "am_per_task": am_per_task(a, zeros_as_missing), "self_cross": self_cross_gaps(a)})


@dataclass(frozen=True)
class CompatibilityMatrix:
    """A validated compatibility matrix ``values[i][j] = M(phi_i queries, phi_j gallery)`` and its metric name."""

    values: np.ndarray
    metric: str = "template_top1"

    def __post_init__(self) -> None:
        a = _as_matrix(self.values).copy()
        a.setflags(write=False)
        object.__setattr__(self, "values", a)

    @classmethod
    def from_embeddings(cls, query_embs: Sequence[np.ndarray], gallery_embs: Sequence[np.ndarray],
                        query_labels: np.ndarray, gallery_labels: np.ndarray, metric: str = "template_top1",
                        **kwargs: Any) -> CompatibilityMatrix:
        """``compatibility_matrix(...)`` wrapped; ``kwargs`` go to it (lower_only, skip_mismatched, k)."""
        return cls(compatibility_matrix(query_embs, gallery_embs, query_labels, gallery_labels, metric, **kwargs),
                   metric)

    @property
    def T(self) -> int:
        return int(self.values.shape[0])

    @property
    def ecc(self) -> np.ndarray:
        return empirical_compatibility(self.values)

    @property
    def ac(self) -> float:
        return average_compatibility(self.values)

    def am(self, zeros_as_missing: bool = False) -> float:
        return average_multimodel_accuracy(self.values, zeros_as_missing)

    def summarise(self, zeros_as_missing: bool = False) -> dict[str, Any]:
        return {"metric": self.metric, **summarise(self.values, zeros_as_missing)}


# ------------------------------------------------------------------------------------ training-status split


def status_changed(trained: Sequence[Sequence[int]], i: int, j: int,
                   classes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Bool per class of ``classes``: True iff exactly one of models i and j trained on it (``trained[t]`` = the
    classes model t was trained on)."""
    a, b = {int(c) for c in trained[i]}, {int(c) for c in trained[j]}
    return np.array([(int(c) in a) != (int(c) in b) for c in classes], dtype=bool)


def status_split_matrix(query_embs: Sequence[np.ndarray], gallery_embs: Sequence[np.ndarray],
                        query_labels: np.ndarray, gallery_labels: np.ndarray,
                        trained: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """The template top-1 matrix (``compatibility_matrix(..., "template_top1")``, lower triangle) split by the
    queries' class training status: ``"changed"`` cells average only the queries whose class was trained by
    exactly one of models i and j, ``"same"`` cells the queries whose class both or neither trained on.

    A diagnostic for the d-Simplex protocol (Biondi et al., CVPR 2024, Sec. 5): the authors evaluate on classes
    no model trains on (CIFAR-10), so every class keeps its status; when the evaluation classes are among the
    trained ones, a class a newer model learnt but the older did not may be where the ECC fails. The search
    itself is unchanged (every query against all gallery templates); only the averaging is split. Cells with no
    query of that kind, and cells j > i, are NaN. ``trained[t]`` lists model t's training classes.
    """
    T = len(query_embs)
    if len(gallery_embs) != T or len(trained) != T:
        raise ValueError(f"got query features of {T} models, gallery features of {len(gallery_embs)} and "
                         f"training classes of {len(trained)}")
    yq = np.asarray(query_labels)
    classes = np.unique(yq)
    out = {"same": np.full((T, T), np.nan), "changed": np.full((T, T), np.nan)}
    for i in range(T):
        for j in range(i + 1):
            correct = template_correct(query_embs[i], yq, gallery_embs[j], gallery_labels)
            changed_classes = classes[status_changed(trained, i, j, classes)]
            changed = np.isin(yq, changed_classes)
            for name, mask in (("same", ~changed), ("changed", changed)):
                if mask.any():
                    out[name][i, j] = float(correct[mask].mean())
    return out
