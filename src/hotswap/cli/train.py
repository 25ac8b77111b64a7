"""``hotswap train continual|bcl|cmcl``: train compatible models.

``continual``: fine-tune a text model on the Debian-Section tasks in turn, with query and document distillation
(Query Drift Compensation's training side). ``bcl`` / ``cmcl``: backward-compatible training of image models
(BCT, d-Simplex, prototype alignment, NDPP / ODPP, CMCL with its reverse transform) on the offline 20-class image
set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from hotswap.data.tasks import TASK_DOMAINS, TASK_SCALES
from hotswap.io import atomic_write_json

console = Console() if sys.stdout.isatty() else Console(width=160)
train_app = typer.Typer(help="Train compatible models.", no_args_is_help=True)


@train_app.command("continual")
def continual(
    out: Path = typer.Option(..., help="run folder (models per task, drift vectors, manifest; resumable)"),
    tasks: str = typer.Option(",".join(TASK_DOMAINS), help="comma-separated task names, in training order"),
    model: str = typer.Option("minilm", help="start model: minilm, mpnet or a sentence-transformers folder"),
    kd: bool = typer.Option(False, "--kd", help="distil query and document embeddings of the previous model"),
    scale: str = typer.Option("default", help=f"data and length limits: {', '.join(TASK_SCALES)}"),
    batch_size: int = typer.Option(32),
    seed: int = typer.Option(0),
) -> None:
    """Fine-tune MODEL on the Debian-Section tasks in turn; rerun the same command to resume.

    Example: hotswap train continual --out runs/ft --tasks libraries-devel,games --kd
    """
    from hotswap.data.tasks import load_task_sequence
    from hotswap.training import ContinualConfig, ContinualTrainer
    from hotswap.training.text_continual import text_task

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if unknown := [t for t in names if t not in TASK_DOMAINS]:
        raise typer.BadParameter(f"unknown task(s) {unknown}; available: {', '.join(TASK_DOMAINS)}")
    if scale not in TASK_SCALES:
        raise typer.BadParameter(f"unknown --scale {scale!r}; choose one of {', '.join(TASK_SCALES)}")
    lim = TASK_SCALES[scale]
    seq = load_task_sequence("debian", {n: TASK_DOMAINS[n] for n in names}, max_docs_per_task=lim["max_docs_per_task"],
                             max_train_queries=lim["max_train_queries"], max_test_queries=lim["max_test_queries"],
                             seed=seed)
    cfg = ContinualConfig(kd=kd, batch_size=batch_size, max_seq_length=lim["max_seq_length"],
                          max_pairs=lim["max_pairs"], seed=seed)
    manifest = ContinualTrainer(out, model, cfg).fit([text_task(t) for t in seq])
    for t in manifest["tasks"]:
        console.print(f"{t['name']}: {t['steps']} steps, loss {t['loss_first']:.3f} -> {t['loss_last']:.3f}, "
                      f"drift |delta| {t['drift_norm']:.4f}, kd {t['kd']}, {t['wall_s']:.0f} s -> {t['folder']}")


# the options train bcl and train cmcl share
CLASSES = typer.Option("100%", help="classes to train on: ids (0-5,9) or a share of the seeded order (30%)")
ARCH = typer.Option("cnn", help="cnn or resnet18")
WIDTH = typer.Option(32, help="backbone width (resnet18: 64 is the standard 512-d feature)")
EPOCHS = typer.Option(10)
PER_CLASS = typer.Option(600, help="training images per class")
BATCH_SIZE = typer.Option(128)
LR = typer.Option(0.05)
SEED = typer.Option(42)
DATA = typer.Option(None, help="image set .npz or folder (default: the built cache)")
HEAD_CHOICES = "linear, cosine or simplex (default: the method's own)"


def parse_classes(spec: str, n_classes: int, order: list[int]) -> list[int]:
    """``"0-5,9"`` (class ids) or ``"30%"`` (the first 30% of the seeded class order)."""
    spec = spec.strip()
    if spec.endswith("%"):
        frac = float(spec[:-1]) / 100
        if not 0 < frac <= 1:
            raise typer.BadParameter(f"--classes {spec}: a percentage must lie in (0, 100]")
        return sorted(order[: max(1, round(frac * n_classes))])
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, _, hi = part.partition("-")
        try:
            ids = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            raise typer.BadParameter(f"--classes {spec!r}: use ids like 0-5,9 or a share like 30%") from None
        out.update(ids)
    if bad := sorted(c for c in out if not 0 <= c < n_classes):
        raise typer.BadParameter(f"--classes: {bad} are not class ids of this {n_classes}-class set")
    if not out:
        raise typer.BadParameter("--classes selects no class")
    return sorted(out)


@train_app.command("bcl")
def bcl(
    out: Path = typer.Option(..., help="folder for the trained model (safetensors) and eval.json"),
    method: str = typer.Option("independent", help="independent, bct, dsimplex, prototype, ndpp or odpp"),
    classes: str = CLASSES,
    old: Path | None = typer.Option(None, help="old model folder (from an earlier train bcl) to be compatible with"),
    init: Path | None = typer.Option(None, help="model folder to fine-tune instead of a random init"),
    arch: str = ARCH,
    width: int = WIDTH,
    embed_dim: int = typer.Option(128, help="embedding dimension (dsimplex: set by --preallocated)"),
    preallocated: int = typer.Option(256, help="d-Simplex: preallocated classes K (embedding dim K - 1)"),
    head: str | None = typer.Option(None, help=HEAD_CHOICES),
    epochs: int = EPOCHS,
    per_class: int = PER_CLASS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    seed: int = SEED,
    data: Path | None = DATA,
) -> None:
    """Train one image embedding model, optionally compatible with an OLD one, and report self-test and
    cross-test retrieval on the test split.

    Example: hotswap train bcl --out runs/old --classes 30% &&
    hotswap train bcl --out runs/new --method ndpp --old runs/old
    """
    import numpy as np

    from hotswap.data.image_splits import class_order, per_class_subset, split_test_query_gallery
    from hotswap.data.images import load_image_dataset
    from hotswap.metrics.model_compatibility import retrieval_scores
    from hotswap.training.bcl_model import BCLModel
    from hotswap.training.classification import METHODS, BCLConfig, train_step

    if method not in METHODS:
        raise typer.BadParameter(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method != "independent" and old is None:
        raise typer.BadParameter(f"--method {method} makes a model compatible with an old one: give --old FOLDER")
    ds = load_image_dataset(data)
    chosen = parse_classes(classes, ds.n_classes, class_order(ds.n_classes, seed))
    old_model = BCLModel.load(old) if old is not None else None
    init_model = BCLModel.load(init) if init is not None else None
    dim = init_model.dim if init_model is not None else (old_model.dim if old_model is not None else embed_dim)
    old_seed = None if old_model is None else old_model.info.get("config", {}).get("seed")
    train_seed = seed + 1 if init_model is None and old_seed == seed else seed
    if train_seed != seed:   # a shared random init would make even independent models look compatible
        console.print(f"note: --seed {seed} is the old model's; the new model starts from seed {train_seed}")
    cfg = BCLConfig(method=method, head=head, arch=arch, width=width, embed_dim=dim, preallocated=preallocated,
                    n_classes=ds.n_classes, epochs=epochs, batch_size=batch_size, lr=lr, seed=train_seed)
    if cfg.head_kind == "simplex":
        cfg.embed_dim = preallocated - 1
    if old_model is not None and old_model.dim != cfg.embed_dim and cfg.head_kind != "simplex":
        raise typer.BadParameter(f"the old model is {old_model.dim}-d; a compatible model needs the same "
                                 f"dimension (got --embed-dim {cfg.embed_dim})")
    pool = per_class_subset(ds.y_train, per_class, seed)
    idx = pool[np.isin(ds.y_train[pool], chosen)]
    model = train_step(cfg, ds.x_train, ds.y_train, idx, init=init_model, old=old_model, name=out.name, progress=True)
    model.save(out)
    query, gallery = split_test_query_gallery(ds.y_test, 100, seed)
    yq, yg = ds.y_test[query], ds.y_test[gallery]
    q, g = model.encode(ds.x_test[query]), model.encode(ds.x_test[gallery])
    report = {"model": model.encoder().id, "method": method, "classes": chosen, "train_images": int(len(idx)),
              "wall_s": model.info["wall_s"], "self": _pct(retrieval_scores(q, yq, g, yg))}
    if old_model is not None:
        if old_model.dim == model.dim:
            report["cross"] = _pct(retrieval_scores(q, yq, old_model.encode(ds.x_test[gallery]), yg))
        if model.psi is not None:   # method cmcl: psi(new query) against the old gallery
            report["cross_reverse"] = _pct(retrieval_scores(model.psi.transform(q, normalise=True), yq,
                                                            old_model.encode(ds.x_test[gallery]), yg))
        report["old_self"] = _pct(retrieval_scores(old_model.encode(ds.x_test[query]), yq,
                                                   old_model.encode(ds.x_test[gallery]), yg))
    atomic_write_json(out / "eval.json", report)
    for name in ("self", "cross", "cross_reverse", "old_self"):
        if name in report:
            console.print(f"{name:>8}: mAP {report[name]['map']:.1f}  top-1 {report[name]['top1']:.1f}")
    console.print(f"saved {report['model']} to {out} ({model.info['wall_s']:.0f} s)")


@train_app.command("cmcl")
def cmcl(
    out: Path = typer.Option(..., help="folder for the trained model, its reverse transform psi and eval.json"),
    old: Path = typer.Option(..., help="old model folder (from train bcl) whose gallery stays un-re-embedded"),
    classes: str = CLASSES,
    arch: str = ARCH,
    width: int = WIDTH,
    epochs: int = EPOCHS,
    per_class: int = PER_CLASS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    seed: int = SEED,
    data: Path | None = DATA,
) -> None:
    """Train a new image model together with its reverse query transform psi (CE + ||psi(n) - o||^2 + CMCL,
    Seo et al.) against OLD, for online backfilling: psi(new query) searches the not-yet-backfilled gallery.
    Same as ``train bcl --method cmcl``; eval.json adds cross_reverse (psi(new query) on the old gallery).

    Example: hotswap train cmcl --out runs/new --old runs/old
    """
    bcl(out=out, method="cmcl", classes=classes, old=old, init=None, arch=arch, width=width, embed_dim=128,
        preallocated=256, head=None, epochs=epochs, per_class=per_class, batch_size=batch_size, lr=lr, seed=seed,
        data=data)


def _pct(scores: dict) -> dict:
    return {"map": 100 * float(scores["map"]), "top1": 100 * float(scores["top1"])}
