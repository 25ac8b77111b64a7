"""``hotswap train bcl``, ``hotswap experiment dsimplex`` and ``hotswap experiment perturbation``: backward-
compatible training of image models (d-Simplex, BCT, NDPP / ODPP) on the offline 20-class image set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from hotswap.cli.continual import console, experiment_app, train_app
from hotswap.cli.options import comma_list
from hotswap.io import atomic_write_json

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
    classes: str = typer.Option("100%", help="classes to train on: ids (0-5,9) or a share of the seeded order (30%)"),
    old: Path | None = typer.Option(None, help="old model folder (from an earlier train bcl) to be compatible with"),
    init: Path | None = typer.Option(None, help="model folder to fine-tune instead of a random init"),
    arch: str = typer.Option("cnn", help="cnn or resnet18"),
    width: int = typer.Option(32, help="backbone width (resnet18: 64 is the standard 512-d feature)"),
    embed_dim: int = typer.Option(128, help="embedding dimension (dsimplex: set by --preallocated)"),
    preallocated: int = typer.Option(256, help="d-Simplex: preallocated classes K (embedding dim K - 1)"),
    head: str | None = typer.Option(None, help=HEAD_CHOICES),
    epochs: int = typer.Option(10),
    per_class: int = typer.Option(600, help="training images per class"),
    batch_size: int = typer.Option(128),
    lr: float = typer.Option(0.05),
    seed: int = typer.Option(42),
    data: Path | None = typer.Option(None, help="image set .npz or folder (default: the built cache)"),
) -> None:
    """Train one image embedding model, optionally compatible with an OLD one, and report self-test and
    cross-test retrieval on the test split.

    Example: hotswap train bcl --out runs/old --classes 30% &&
    hotswap train bcl --out runs/new --method ndpp --old runs/old
    """
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
    classes: str = typer.Option("100%", help="classes to train on: ids (0-5,9) or a share of the seeded order"),
    arch: str = typer.Option("cnn", help="cnn or resnet18"),
    width: int = typer.Option(32),
    epochs: int = typer.Option(10),
    per_class: int = typer.Option(600, help="training images per class"),
    batch_size: int = typer.Option(128),
    lr: float = typer.Option(0.05),
    seed: int = typer.Option(42),
    data: Path | None = typer.Option(None, help="image set .npz or folder (default: the built cache)"),
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


@experiment_app.command("dsimplex")
def dsimplex(
    scale: str = typer.Option("default", help="tiny, default (2 CPU cores) or paper (ResNet-18, 70 epochs: a GPU)"),
    tasks: int = typer.Option(7, help="tasks (7 = the paper's; 31 does not fit 20 classes: 19 stands in for it)"),
    methods: str = typer.Option("independent,bct,dsimplex", help="comma-separated"),
    replace_at: str | None = typer.Option(None, help="replacement tasks, e.g. 0,2,4 (default: the paper's, scaled)"),
    workdir: Path = typer.Option(Path("runs/dsimplex"), help="trained models and embeddings (resumable)"),
    out: Path = typer.Option(Path("results"), help="folder for dsimplex.json and dsimplex.png"),
    seed: int = typer.Option(42),
    data: Path | None = typer.Option(None, help="image set .npz or folder (default: the built cache)"),
    setting: str = typer.Option("seen-classes", help="seen-classes (evaluate on the 20 trained classes) or "
                                "heldout-classes (6 classes no model trains on, as the paper's CIFAR-10)"),
) -> None:
    """Independent (ER), BCT and d-Simplex-HOC over a class-incremental chain with model replacements;
    prints AC / AM beside the paper's and merges this setting's rows into results/dsimplex.json (the other
    setting's rows are kept); writes dsimplex.png (seen-classes) or dsimplex-heldout-classes.png.

    Example: hotswap experiment dsimplex --scale default --setting heldout-classes
    """
    import json

    from hotswap.data.image_splits import incremental_tasks
    from hotswap.experiments.bcl_report import dsimplex_table, plot_dsimplex
    from hotswap.experiments.dsimplex import (
        SETTINGS,
        DSimplexConfig,
        merge_results,
        run_dsimplex_experiment,
        status_split_summary,
    )

    if setting not in SETTINGS:
        raise typer.BadParameter(f"--setting {setting!r}: choose one of {', '.join(SETTINGS)}")
    try:
        incremental_tasks(list(range(20 if setting == SETTINGS[0] else 14)), tasks)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    cfg = DSimplexConfig(scale=scale, tasks=tasks, methods=comma_list(methods),
                         replace_at=None if replace_at is None else tuple(int(t) for t in replace_at.split(",")),
                         workdir=str(workdir), seed=seed, data=None if data is None else str(data), setting=setting)
    result = run_dsimplex_experiment(cfg)
    console.print(dsimplex_table(result))
    for line in status_split_summary(result):
        console.print(line)
    path = out / "dsimplex.json"
    existing = json.loads(path.read_text()) if path.is_file() else None
    atomic_write_json(path, merge_results(existing, result))
    png = out / ("dsimplex.png" if setting == SETTINGS[0] else f"dsimplex-{setting}.png")
    plot_dsimplex(result, png)
    console.print(f"wrote {path} ({setting} rows) and {png} in {result['wall_s']:.0f} s")


@experiment_app.command("perturbation")
def perturbation(
    scale: str = typer.Option("default", help="tiny, default (2 CPU cores) or paper (ResNet-18, all images: a GPU)"),
    methods: str = typer.Option("independent,bct,prototype,ndpp,odpp", help="comma-separated"),
    settings: str = typer.Option("30-100,30-60-100", help="comma-separated: 30-100, 30-60-100, validated-30-100 "
                                 "and/or validated-data-30-100 (NDPP / ODPP parameters chosen on a validation "
                                 "split of the training images; -data-: old on 30% of each class's images, "
                                 "scored on held-out classes)"),
    workdir: Path = typer.Option(Path("runs/perturbation"), help="trained models and embeddings (resumable)"),
    out: Path = typer.Option(Path("results"), help="folder for perturbation.json and perturbation.png"),
    seed: int = typer.Option(42),
    data: Path | None = typer.Option(None, help="image set .npz or folder (default: the built cache)"),
) -> None:
    """Old model on 30% of the classes, new on all (and 30 -> 60 -> 100%): independent, BCT, prototype
    alignment, NDPP, ODPP; prints self-/cross-test mAP and top-1 and merges the rows of the settings run into
    results/perturbation.json (other settings' rows kept) + .png.

    Example: hotswap experiment perturbation --scale default --settings validated-30-100
    """
    import json
    import time

    from hotswap.experiments.bcl_report import perturbation_table, plot_perturbation
    from hotswap.experiments.prototype_perturbation import (
        SETTINGS,
        VALIDATED,
        PerturbationConfig,
        merge_results,
        run_perturbation_experiment,
        run_validated_setting,
    )

    names = comma_list(settings)
    if bad := [s for s in names if s not in SETTINGS and s not in VALIDATED]:
        raise typer.BadParameter(f"--settings: unknown {bad}; choose from {', '.join([*SETTINGS, *VALIDATED])}")
    classic, validated = tuple(s for s in names if s in SETTINGS), [s for s in names if s in VALIDATED]
    cfg = PerturbationConfig(scale=scale, methods=comma_list(methods), settings=classic,
                             workdir=str(workdir), seed=seed, data=None if data is None else str(data))
    try:
        cfg.limits()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    started, path = time.perf_counter(), out / "perturbation.json"
    result = json.loads(path.read_text()) if path.is_file() else None
    if classic:
        result = merge_results(result, run_perturbation_experiment(cfg))
    for name in validated:
        run = run_validated_setting(cfg, name)
        for row in run["rows"]:
            console.print(f"{name} {row['method']}: chose {row['chosen'] or 'defaults'} "
                          f"(validation cross mAP {row['val_cross_map']:.1f})")
        result = merge_results(result, run)
    if result is None:
        raise typer.BadParameter(f"no settings to run (--settings) and no earlier results in {path}")
    console.print(perturbation_table(result))
    atomic_write_json(path, result)
    plot_perturbation(result, out / "perturbation.png")
    console.print(f"wrote {path} and {out / 'perturbation.png'} in {time.perf_counter() - started:.0f} s")
