"""Continual fine-tuning of a sentence-transformers retriever over a sequence of tasks (QDC protocol).

Goswami et al. (CoLLAs 2025, "Query Drift Compensation", Sec. 3; public code dipamgoswami/QDC): for each task
``t`` the model ``f_t`` starts from ``f_{t-1}`` and minimises

    L = InfoNCE(q; d+, in-batch + hard negatives, scale 50)
        + [kd] ( w_q * mean_q(1 - cos(f_t(q), f_{t-1}(q))) + w_d * mean_d(1 - cos(f_t(d), f_{t-1}(d))) )

with KD off for the first task, as in the code. Hard negatives are mined with ``f_{t-1}`` from the task's corpus
(``hotswap.training.hard_negatives``). Optimiser as in the code, scaled to a CPU: AdamW (lr 2e-5, weight decay
0.01), linear warm-up (``warmup_ratio`` of the steps; the paper's 400 steps assume ~100x more of them) then
linear decay, gradient-norm clip 1.0, one epoch.

After each task the trainer stores the training queries' drift ``delta_t = mean_q(f_t(q) - f_{t-1}(q))``
(normalised embeddings; ``hotswap.adapters.DriftCompensation`` sums them at search time).

Layout of ``out``::

    manifest.json               config, start model, and one entry per finished task (written last, atomically)
    task-01-<name>/             the model after task 1 (sentence-transformers folder, model.safetensors)
    task-01-<name>/delta.safetensors   that task's drift vector

A killed run resumes from the last finished task (``fit`` skips the tasks the manifest lists).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hotswap.data.tasks import TaskData
from hotswap.encoders.progress import maybe_progress
from hotswap.errors import HotswapError
from hotswap.io import atomic_write_json
from hotswap.losses import EmbeddingDistillation, InfoNCE
from hotswap.training.hard_negatives import mine_hard_negatives

MANIFEST = "manifest.json"


@dataclass
class ContinualConfig:
    """Training settings (defaults: the paper's, scaled to 2 CPU cores where they must be)."""

    kd: bool = False
    query_weight: float = 1.0
    doc_weight: float = 1.0
    scale: float = 50.0
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    batch_size: int = 32
    epochs: int = 1
    max_seq_length: int = 128
    hard_negatives: int = 1
    negative_ranks: tuple[int, int] = (10, 50)
    max_pairs: int | None = 2000
    grad_clip: float = 1.0
    seed: int = 0


@dataclass
class TextTask:
    """What one task trains on: (query, positive doc id) pairs and the task's corpus ``{doc_id: text}``."""

    name: str
    pairs: list[tuple[str, str]]
    corpus: dict[str, str]


def model_folder(spec: str | Path) -> Path:
    """The folder of a bundled sentence-transformers model (``minilm``, ``mpnet``) or a given folder."""
    from hotswap.encoders import assets

    if str(spec) == "minilm":
        return assets.minilm_folder()
    if str(spec) == "mpnet":
        return assets.mpnet_folder()
    folder = Path(spec)
    if not (folder / "modules.json").is_file():
        raise HotswapError(f"{spec!r} is not a sentence-transformers model (minilm, mpnet or a folder)")
    return folder


def _load(folder: Path, max_seq_length: int) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = max_seq_length
    return model


def _embed(model: Any, texts: list[str]) -> torch.Tensor:
    features = (model.preprocess if hasattr(model, "preprocess") else model.tokenize)(texts)
    return model(features)["sentence_embedding"]


def _encode(model: Any, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


class ContinualTrainer:
    """``fit(tasks)`` trains ``f_1 .. f_T`` from ``start`` (``minilm`` or a folder) into ``out``."""

    def __init__(self, out: str | Path, start: str | Path = "minilm", config: ContinualConfig | None = None,
                 progress: bool = True, first_task: int = 1) -> None:
        """``first_task``: the number of the first task given to ``fit`` (2 when ``start`` is a model that already
        learnt task 1): task numbers name the folders and decide where distillation starts (task 2)."""
        self.out, self.start, self.config, self.progress = Path(out), str(start), config or ContinualConfig(), progress
        self.first_task = int(first_task)

    def manifest(self) -> dict:
        path = self.out / MANIFEST
        if not path.exists():
            return {"start": self.start, "config": asdict(self.config), "first_task": self.first_task, "tasks": []}
        m = json.loads(path.read_text())
        if m["start"] != self.start or m["config"] != json.loads(json.dumps(asdict(self.config))) or \
                m.get("first_task", 1) != self.first_task:
            raise HotswapError(f"{self.out} holds a run with another start model or config; use a new folder")
        return m

    def fit(self, tasks: list[TextTask]) -> dict:
        """Train every task not finished yet, in order; returns the manifest."""
        self.out.mkdir(parents=True, exist_ok=True)
        m = self.manifest()
        done = [t["name"] for t in m["tasks"]]
        if done != [t.name for t in tasks[:len(done)]]:
            raise HotswapError(f"{self.out} finished tasks {done}, which do not start the given sequence")
        for index, task in enumerate(tasks[len(done):], start=len(done) + self.first_task):
            previous = Path(m["tasks"][-1]["folder"]) if m["tasks"] else model_folder(self.start)
            entry = self._train_task(index, task, previous)
            m["tasks"].append(entry)
            atomic_write_json(self.out / MANIFEST, m)
        return m

    def _train_task(self, index: int, task: TextTask, previous: Path) -> dict:
        cfg, started = self.config, time.perf_counter()
        torch.manual_seed(cfg.seed + index)
        rng = np.random.default_rng(cfg.seed + index)
        pairs = list(task.pairs)
        if cfg.max_pairs is not None and len(pairs) > cfg.max_pairs:
            pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), cfg.max_pairs, replace=False))]
        model, frozen = _load(previous, cfg.max_seq_length), _load(previous, cfg.max_seq_length).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        doc_ids = list(task.corpus)
        negatives = mine_hard_negatives(lambda texts: _encode(frozen, texts), [q for q, _ in pairs],
                                        [{d} for _, d in pairs], doc_ids, [task.corpus[d] for d in doc_ids],
                                        cfg.hard_negatives, cfg.negative_ranks, cfg.seed + index)
        use_kd = cfg.kd and index > 1  # as in the paper's code: no distillation on the first task
        losses = self._optimise(model, frozen, task, pairs, negatives, use_kd, rng, f"task {index} {task.name}")
        folder = self.out / f"task-{index:02d}-{task.name}"
        if folder.exists():
            shutil.rmtree(folder)  # a task that was cut short before the manifest listed it
        model.save(str(folder), safe_serialization=True)
        queries = [q for q, _ in pairs]
        delta = (_encode(model, queries) - _encode(frozen, queries)).mean(axis=0)
        from safetensors.numpy import save_file

        save_file({"delta": delta.astype(np.float32)}, str(folder / "delta.safetensors"))
        from hotswap.encoders import folder_label
        from hotswap.encoders.base import weights_digest

        weights = folder / "model.safetensors"
        return {"name": task.name, "folder": str(folder), "model_id": f"{folder_label(weights)}@"
                f"{weights_digest(weights)}", "pairs": len(pairs), "steps": len(losses),
                "kd": use_kd, "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
                "drift_norm": float(np.linalg.norm(delta)), "wall_s": round(time.perf_counter() - started, 2)}

    def _optimise(self, model: Any, frozen: Any, task: TextTask, pairs: list[tuple[str, str]],
                  negatives: list[list[str]], use_kd: bool, rng: np.random.Generator, label: str) -> list[float]:
        cfg = self.config
        infonce, kd = InfoNCE(cfg.scale), EmbeddingDistillation(cfg.query_weight, cfg.doc_weight)
        steps_per_epoch = -(-len(pairs) // cfg.batch_size)
        total = steps_per_epoch * cfg.epochs
        decay = [p for n, p in model.named_parameters() if not any(s in n for s in ("bias", "LayerNorm"))]
        rest = [p for n, p in model.named_parameters() if any(s in n for s in ("bias", "LayerNorm"))]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": rest, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.999))
        warm = max(1, int(cfg.warmup_ratio * total))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
        model.train()
        losses: list[float] = []
        with maybe_progress(self.progress, field="loss") as bar:
            job = bar.add_task(label, total=total, loss="")
            for _ in range(cfg.epochs):
                order = rng.permutation(len(pairs))
                for start in range(0, len(order), cfg.batch_size):
                    batch = order[start:start + cfg.batch_size]
                    q_texts = [pairs[i][0] for i in batch]
                    pos_texts = [task.corpus[pairs[i][1]] for i in batch]
                    neg_texts = [task.corpus[d] for i in batch for d in negatives[i]]
                    q, d_pos = _embed(model, q_texts), _embed(model, pos_texts)
                    d_neg = _embed(model, neg_texts) if neg_texts else None
                    loss = infonce(q, d_pos, d_neg)
                    if use_kd:
                        docs = pos_texts + neg_texts
                        with torch.no_grad():
                            q_ref, d_ref = _embed(frozen, q_texts), _embed(frozen, docs)
                        d_all = d_pos if d_neg is None else torch.cat([d_pos, d_neg])
                        loss = loss + kd(q, q_ref, d_all, d_ref)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                    sched.step()
                    losses.append(loss.item())
                    bar.update(job, advance=1, loss=f"loss {np.mean(losses[-10:]):.3f}")
        model.eval()
        return losses


def load_deltas(manifest: dict) -> np.ndarray:
    """The drift vectors of the finished tasks, ``[T, d]``, in task order."""
    from safetensors.numpy import load_file

    return np.stack([load_file(str(Path(t["folder"]) / "delta.safetensors"))["delta"] for t in manifest["tasks"]])


def text_task(task: TaskData) -> TextTask:
    """A ``TaskData`` as the trainer's (query text, positive doc id) pairs."""
    d = task.data
    pairs = [(d.train_queries[q], doc) for q in sorted(d.train_qrels) for doc in sorted(d.train_qrels[q])]
    return TextTask(task.name, pairs, d.corpus)
