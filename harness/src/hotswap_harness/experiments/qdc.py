"""The QDC protocol (Goswami et al., CoLLAs 2025): continual fine-tuning with an index that is never
re-embedded, evaluated as a T x T nDCG@10 matrix per method.

Five Debian-Section tasks (``hotswap.data.tasks``). ``f_0`` is the bundled all-MiniLM-L6-v2; the models are
trained by ``ContinualTrainer`` (InfoNCE with in-batch + mined hard negatives, scale 50; optional query and
document distillation). The index of **every** task's corpus is built once by ``f_1`` (the model after task
1, as in the paper's code), and ``matrix[i][j]`` is nDCG@10 on task ``j``'s test queries over task ``j``'s
corpus after training task ``i``. Rows (methods):

* ``FT``          — plain fine-tuning; query ``f_i(q)`` against the ``f_1`` index;
* ``FT+reindex``  — the same model with every corpus re-embedded by ``f_i`` (the upper bound the paper avoids);
* ``FT+QDC``      — ``f_i(q) - sum_{k=2..i} delta_k`` against the ``f_1`` index (``DriftCompensation``);
* ``FT+KD``       — fine-tuning with query + document distillation (weights 1, 1; none on task 1, so
  ``FT+KD`` shares ``f_1`` and the index with ``FT``);
* ``FT+KD+QDC``   — both;
* ``joint``       — one model trained on the union of all tasks' pairs from ``f_0``, indexing its own corpora
  (one row: it exists only after all tasks);
* ``FT+procrustes`` / ``FT+affine`` — the foundation's post-hoc adapters (not in the paper), fitted after each
  task on the train queries of the tasks seen so far plus a sample of their documents, each embedded by ``f_i``
  and ``f_1``; test queries are never used.

``avg_ndcg@10`` is the mean of a method's last row, as in the paper. The drift norms are ``||delta_t||`` of the
FT run (and of the KD run, ``drift_norms_kd``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from hotswap.adapters import make_adapter
from hotswap.adapters.drift_compensation import DriftCompensation
from hotswap.data.tasks import SOURCES, TASK_DOMAINS, TaskData, load_source_sequence, load_task_sequence
from hotswap.encoders import load_encoder
from hotswap.encoders.base import Encoder
from hotswap.encoders.cache import encode_cached
from hotswap.io import atomic_write_json, read_json_object
from hotswap.metrics import evaluate_run, run_from_search
from hotswap.runinfo import StageTimer, hardware, versions
from hotswap.training import ContinualConfig, ContinualTrainer, TextTask, load_deltas
from hotswap.training.text_continual import text_task
from hotswap_harness.experiments.protocols.qdc import PAPER, QDCOptions, plot_matrices, results_name
from hotswap_harness.experiments.qdc_scales import SCALES, SETTINGS
from hotswap_harness.experiments.settings import merge_setting

PAPER_AVG_NDCG = PAPER.numbers["avg_ndcg@10"]


@dataclass
class QDCConfig:
    dataset: str = "debian"
    model: str = "minilm"
    scale: str = "default"
    sequence: str = "sections"  # "sections": Debian Sections as tasks; "sources": five real text sources
    tasks: tuple[str, ...] | None = None  # a subset of TASK_DOMAINS (or of SOURCES), in order (None: all five)
    batch_size: int = 32
    hard_negatives: int = 1
    lr: float = 2e-5
    epochs: int = 1  # passes over each task's pairs
    adapter_docs: int = 500
    k: int = 100
    seed: int = 0
    workdir: str = "runs/qdc"
    cache_dir: str | None = None

    def limits(self) -> dict:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        return SCALES[self.scale]


def task_ndcg(Q: np.ndarray, D: np.ndarray, task: TaskData, k: int) -> float:
    """nDCG@10 of ``task``'s (test) queries ``Q`` searched exactly against its corpus vectors ``D``."""
    doc_ids = np.array(list(task.data.corpus), dtype=object)
    _, I = faiss.knn(np.ascontiguousarray(Q, np.float32), np.ascontiguousarray(D, np.float32), min(k, len(D)),
                     metric=faiss.METRIC_INNER_PRODUCT)
    return evaluate_run(task.data.qrels, run_from_search(list(task.data.queries), doc_ids[I]), ("ndcg@10",))["ndcg@10"]


class TaskEmbeddings:
    """Cached encodings of each task's corpus / test queries / train queries by any saved model."""

    def __init__(self, tasks: list[TaskData], cfg: QDCConfig) -> None:
        self.tasks, self.cfg = tasks, cfg

    def encoder(self, folder: str) -> Encoder:
        return load_encoder(folder)

    def corpus(self, folder: str, j: int) -> np.ndarray:
        return encode_cached(self.encoder(folder), list(self.tasks[j].data.corpus.values()), self.cfg.cache_dir)[0]

    def test(self, folder: str, j: int) -> np.ndarray:
        return encode_cached(self.encoder(folder), list(self.tasks[j].data.queries.values()), self.cfg.cache_dir)[0]

    def train(self, folder: str, j: int) -> np.ndarray:
        texts = list(self.tasks[j].data.train_queries.values())
        return encode_cached(self.encoder(folder), texts, self.cfg.cache_dir)[0]


def _fit_adapters(emb: TaskEmbeddings, folder: str, first: str, seen: int, cfg: QDCConfig) -> dict:
    """Procrustes and affine maps f_i -> f_1 on the seen tasks' train queries plus a document sample."""
    rng = np.random.default_rng(cfg.seed)
    X_new, X_old = [], []
    for j in range(seen):
        X_new.append(emb.train(folder, j))
        X_old.append(emb.train(first, j))
        n = len(emb.tasks[j].data.corpus)
        pick = np.sort(rng.choice(n, min(cfg.adapter_docs, n), replace=False))
        X_new.append(emb.corpus(folder, j)[pick])
        X_old.append(emb.corpus(first, j)[pick])
    A, B = np.vstack(X_new), np.vstack(X_old)
    return {name: make_adapter(name).fit(A, B) for name in ("procrustes", "affine")}


def evaluate_runs(emb: TaskEmbeddings, ft: dict, kd: dict, cfg: QDCConfig) -> dict[str, list[list[float]]]:
    """The T x T matrices of every method but ``joint`` (see the module docstring)."""
    T = len(emb.tasks)
    first = ft["tasks"][0]["folder"]
    index = [emb.corpus(first, j) for j in range(T)]
    ft_deltas, kd_models = load_deltas(ft), [first] + [t["folder"] for t in kd["tasks"]]
    kd_deltas = load_deltas(kd) if kd["tasks"] else np.zeros((0, ft_deltas.shape[1]), np.float32)
    rows: dict[str, list[list[float]]] = {m: [] for m in ("FT", "FT+reindex", "FT+QDC", "FT+KD", "FT+KD+QDC",
                                                          "FT+procrustes", "FT+affine")}
    for i in range(T):
        f_i, g_i = ft["tasks"][i]["folder"], kd_models[i]
        qdc = DriftCompensation.from_deltas(ft_deltas[1:i + 1]) if i else None  # sum of delta_2 .. delta_i
        qdc_kd = DriftCompensation.from_deltas(kd_deltas[:i]) if i else None  # the KD run starts at task 2
        adapters = _fit_adapters(emb, f_i, first, i + 1, cfg) if i else {}
        for name in rows:
            rows[name].append([])
        for j in range(T):
            Q, Qg = emb.test(f_i, j), emb.test(g_i, j)
            rows["FT"][i].append(task_ndcg(Q, index[j], emb.tasks[j], cfg.k))
            rows["FT+reindex"][i].append(task_ndcg(Q, emb.corpus(f_i, j), emb.tasks[j], cfg.k))
            rows["FT+QDC"][i].append(task_ndcg(qdc.transform(Q) if qdc else Q, index[j], emb.tasks[j], cfg.k))
            rows["FT+KD"][i].append(task_ndcg(Qg, index[j], emb.tasks[j], cfg.k))
            rows["FT+KD+QDC"][i].append(task_ndcg(qdc_kd.transform(Qg) if qdc_kd else Qg, index[j], emb.tasks[j],
                                                  cfg.k))
            for name in ("procrustes", "affine"):
                mapped = adapters[name].transform(Q) if adapters else Q
                rows[f"FT+{name}"][i].append(task_ndcg(mapped, index[j], emb.tasks[j], cfg.k))
    return rows




def forgetting(matrix: list[list[float]]) -> list[float]:
    """How much of task 1 a method has forgotten after each task: ``M[0][0] - M[i][0]`` (nDCG@10 on task 1's
    test queries against its index, after training on task 1 and after each later task)."""
    return [float(matrix[0][0] - row[0]) for row in matrix]


def load_tasks(cfg: QDCConfig) -> list[TaskData]:
    """The task sequence of ``cfg`` (Debian Sections or five sources), capped at its scale."""
    lim = cfg.limits()
    caps = {"max_docs_per_task": lim["max_docs_per_task"], "max_train_queries": lim["max_train_queries"],
            "max_test_queries": lim["max_test_queries"], "seed": cfg.seed}
    if cfg.sequence == "sources":
        return load_source_sequence(tuple(cfg.tasks or SOURCES), **caps)
    if cfg.sequence == "sections":
        domains = TASK_DOMAINS if cfg.tasks is None else {t: TASK_DOMAINS[t] for t in cfg.tasks}
        return load_task_sequence(cfg.dataset, domains, **caps)
    raise ValueError(f"unknown task sequence {cfg.sequence!r}; use 'sections' or 'sources'")


def train_config(cfg: QDCConfig) -> ContinualConfig:
    """The trainer's settings for ``cfg`` (its scale's pair cap and sequence length)."""
    lim = cfg.limits()
    return ContinualConfig(batch_size=cfg.batch_size, max_seq_length=lim["max_seq_length"],
                           max_pairs=lim["max_pairs"], hard_negatives=cfg.hard_negatives, lr=cfg.lr,
                           epochs=cfg.epochs, seed=cfg.seed)


def run_qdc_experiment(cfg: QDCConfig, progress: bool = True) -> dict:
    """Train FT, FT+KD and joint, evaluate every method; returns the ``results/qdc.json`` dict."""
    timer, started, lim = StageTimer(), time.perf_counter(), cfg.limits()
    with timer("load tasks"):
        tasks = load_tasks(cfg)
    text_tasks = [text_task(t) for t in tasks]
    train_cfg = train_config(cfg)
    work = Path(cfg.workdir)
    with timer("train FT"):
        ft = ContinualTrainer(work / "ft", cfg.model, train_cfg, progress).fit(text_tasks)
    with timer("train FT+KD"):  # task 1 has no distillation: start from FT's f_1, share its index
        kd = ContinualTrainer(work / "kd", ft["tasks"][0]["folder"], replace(train_cfg, kd=True), progress,
                              first_task=2).fit(text_tasks[1:])
    with timer("train joint"):
        joint_task = TextTask("joint", [p for t in text_tasks for p in t.pairs],
                              {d: x for t in text_tasks for d, x in t.corpus.items()})
        joint_cfg = replace(train_cfg, max_pairs=None if lim["max_pairs"] is None else lim["max_pairs"] * len(tasks))
        joint = ContinualTrainer(work / "joint", cfg.model, joint_cfg, progress).fit([joint_task])
    emb = TaskEmbeddings(tasks, cfg)
    with timer("evaluate"):
        matrices = evaluate_runs(emb, ft, kd, cfg)
        jf = joint["tasks"][0]["folder"]
        matrices["joint"] = [[task_ndcg(emb.test(jf, j), emb.corpus(jf, j), tasks[j], cfg.k)
                              for j in range(len(tasks))]]
    setting = SETTINGS[cfg.sequence]
    rows = [{"method": m, "matrix": mat, "avg_ndcg@10": float(np.mean(mat[-1])),
             "paper_avg_ndcg@10": PAPER_AVG_NDCG.get(m), "setting": setting} for m, mat in matrices.items()]
    return {
        "tasks": [t.name for t in tasks], "model": load_encoder(cfg.model).id, "rows": rows, "setting": setting,
        "forgetting": forgetting(matrices["FT"]),
        "drift_norms": [t["drift_norm"] for t in ft["tasks"]], "drift_norms_kd": [t["drift_norm"] for t in kd["tasks"]],
        "wall_s": round(time.perf_counter() - started, 1), "timings_s": timer.seconds,
        # training time of every task as recorded when it ran (a resumed run skips finished tasks, so wall_s
        # alone would undercount a run that was stopped and restarted)
        "training_wall_s": round(sum(t["wall_s"] for run in (ft, kd, joint) for t in run["tasks"]), 1),
        "training": {"FT": ft["tasks"], "FT+KD": kd["tasks"], "joint": joint["tasks"]},
        "task_sizes": [{"task": t.name, "docs": len(t.data.corpus), "train_queries": len(t.data.train_queries),
                        "test_queries": len(t.data.queries)} for t in tasks],
        "config": asdict(cfg), "scale_limits": lim, "versions": versions(), "hardware": hardware(),
    }


def run(options: QDCOptions, say: Callable[[str], None] = print) -> dict:
    """The protocol's entry for ``hotswap experiment qdc`` (progress bars on the terminal): the default
    :class:`QDCConfig` with the options' scale, workdir, sequence, lr, epochs and seed."""
    return run_qdc_experiment(QDCConfig(scale=options.scale, workdir=str(options.workdir), seed=options.seed,
                                        sequence=options.sequence, lr=options.lr, epochs=options.epochs))


def save(result: dict, options: QDCOptions) -> list[Path]:
    """Write the run into ``options.out``: merged by setting into ``qdc.json`` (the five-sources setting is the
    headline), and, for the five sources, alone into ``qdc_five_sources.json``; the heat maps into ``qdc.png``
    (``qdc_five_sources.png``)."""
    out, name = Path(options.out), results_name(options.sequence)
    written = [atomic_write_json(out / f"{name}.json", result)] if name != "qdc" else []
    merged = merge_setting(read_json_object(out / "qdc.json", "QDC results", "move it away to start a new file")
                           if (out / "qdc.json").is_file() else None, result,
                           headline=SETTINGS["sources"], legacy=SETTINGS["sections"])
    written.append(atomic_write_json(out / "qdc.json", merged))
    written.append(plot_matrices(result, out / f"{name}.png"))
    return written
