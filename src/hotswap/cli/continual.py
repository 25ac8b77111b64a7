"""``hotswap train continual`` and ``hotswap experiment qdc``: continual fine-tuning with Query Drift Compensation."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from hotswap.data.tasks import TASK_DOMAINS
from hotswap.experiments.qdc_scales import SCALES, SETTINGS
from hotswap.io import atomic_write_json, read_json_object

console = Console() if sys.stdout.isatty() else Console(width=160)
train_app = typer.Typer(help="Train compatible models.", no_args_is_help=True)
experiment_app = typer.Typer(help="Paper protocols, with our numbers beside the paper's.", no_args_is_help=True)


@train_app.command("continual")
def continual(
    out: Path = typer.Option(..., help="run folder (models per task, drift vectors, manifest; resumable)"),
    tasks: str = typer.Option(",".join(TASK_DOMAINS), help="comma-separated task names, in training order"),
    model: str = typer.Option("minilm", help="start model: minilm, mpnet or a sentence-transformers folder"),
    kd: bool = typer.Option(False, "--kd", help="distil query and document embeddings of the previous model"),
    scale: str = typer.Option("default", help=f"data and length limits: {', '.join(SCALES)}"),
    batch_size: int = typer.Option(32),
    seed: int = typer.Option(0),
) -> None:
    """Fine-tune MODEL on the Debian-Section tasks in turn; rerun the same command to resume.

    Example: hotswap train continual --out runs/ft --tasks libraries-devel,games --kd
    """
    from hotswap.data.tasks import load_task_sequence
    from hotswap.experiments.qdc import text_task
    from hotswap.training import ContinualConfig, ContinualTrainer

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if unknown := [t for t in names if t not in TASK_DOMAINS]:
        raise typer.BadParameter(f"unknown task(s) {unknown}; available: {', '.join(TASK_DOMAINS)}")
    lim = SCALES[scale]
    seq = load_task_sequence("debian", {n: TASK_DOMAINS[n] for n in names}, max_docs_per_task=lim["max_docs_per_task"],
                             max_train_queries=lim["max_train_queries"], max_test_queries=lim["max_test_queries"],
                             seed=seed)
    cfg = ContinualConfig(kd=kd, batch_size=batch_size, max_seq_length=lim["max_seq_length"],
                          max_pairs=lim["max_pairs"], seed=seed)
    manifest = ContinualTrainer(out, model, cfg).fit([text_task(t) for t in seq])
    for t in manifest["tasks"]:
        console.print(f"{t['name']}: {t['steps']} steps, loss {t['loss_first']:.3f} -> {t['loss_last']:.3f}, "
                      f"drift |delta| {t['drift_norm']:.4f}, kd {t['kd']}, {t['wall_s']:.0f} s -> {t['folder']}")


@experiment_app.command("qdc")
def qdc(
    scale: str = typer.Option("default", help=f"{', '.join(SCALES)} (paper: the paper's sizes, for a GPU)"),
    workdir: Path = typer.Option(Path("runs/qdc"), help="where the trained models go (resumable)"),
    out: Path = typer.Option(Path("results"), help="folder for qdc.json and qdc.png"),
    sequence: str = typer.Option("sections", help="sections: five Debian-Section tasks (qdc.json); sources: "
                                 "Debian, FOLDOC, Jargon, GCIDE, Python docs (qdc_five_sources.json)"),
    lr: float = typer.Option(2e-5, help="learning rate per task (choose it with 'hotswap experiment qdc-recipe')"),
    epochs: int = typer.Option(1, help="passes over each task's pairs (likewise)"),
    seed: int = typer.Option(0),
) -> None:
    """Train FT, FT+KD and joint on 5 tasks and evaluate every method's T x T nDCG@10 matrix.

    Example: hotswap experiment qdc --scale default   (five sources: --sequence sources)
    """
    from hotswap.experiments.qdc import QDCConfig, run_qdc_experiment
    from hotswap.experiments.qdc_report import plot_matrices, qdc_table
    from hotswap.experiments.settings import merge_setting

    result = run_qdc_experiment(QDCConfig(scale=scale, workdir=str(workdir), seed=seed, sequence=sequence, lr=lr,
                                          epochs=epochs))
    console.print(qdc_table(result))
    console.print("drift norms |delta_t| (FT): " + ", ".join(f"{v:.4f}" for v in result["drift_norms"]))
    console.print("FT's forgetting of task 1 after each task: " + ", ".join(f"{v:.3f}" for v in result["forgetting"]))
    name = "qdc" if sequence == "sections" else "qdc_five_sources"
    if name != "qdc":
        atomic_write_json(out / f"{name}.json", result)
    merged = merge_setting(read_json_object(out / "qdc.json", "QDC results", "move it away to start a new file")
                           if (out / "qdc.json").is_file() else None, result,
                           headline=SETTINGS["sources"], legacy=SETTINGS["sections"])
    atomic_write_json(out / "qdc.json", merged)
    plot_matrices(result, out / f"{name}.png")
    console.print(f"wrote {out / name}.json (merged by setting into qdc.json) and .png in {result['wall_s']:.0f} s "
                  "(training, over all "
                  f"runs of this workdir: {result['training_wall_s']:.0f} s; "
                  f"evaluation {result['timings_s']['evaluate']:.0f} s)")


@experiment_app.command("qdc-recipe")
def qdc_recipe(
    scale: str = typer.Option("default", help=f"{', '.join(SCALES)}"),
    sequence: str = typer.Option("sources", help="sources (five real text sources) or sections (Debian Sections)"),
    recipes: str = typer.Option("1:2e-5,1:1e-4,4:1e-4", help="candidate EPOCHS:LR pairs, comma-separated"),
    workdir: Path = typer.Option(Path("runs/qdc_recipe"), help="where the trained models go (resumable)"),
    out: Path = typer.Option(Path("results/qdc_recipe.json")),
    seed: int = typer.Option(0),
) -> None:
    """Choose how long and how fast FT trains per task so that it forgets task 1, on validation queries (a
    held-out share of each task's train queries; test queries are never read).

    Example: hotswap experiment qdc-recipe --recipes 1:2e-5,4:1e-4
    """
    from hotswap.experiments.qdc import QDCConfig
    from hotswap.experiments.qdc_recipe import run_recipe_search

    try:
        pairs = [(int(e), float(lr)) for e, lr in (r.split(":") for r in recipes.split(",") if r.strip())]
    except ValueError:
        raise typer.BadParameter(f"--recipes wants EPOCHS:LR pairs like 1:2e-5,4:1e-4; got {recipes!r}") from None
    result = run_recipe_search(QDCConfig(scale=scale, sequence=sequence, workdir=str(workdir), seed=seed), pairs)
    for c in result["candidates"]:
        console.print(f"epochs {c['epochs']}, lr {c['lr']:g} ({c['steps_per_task']} steps/task): forgetting of task 1 "
                      "on validation " + ", ".join(f"{v:+.3f}" for v in c["forgetting"]) + f" ({c['wall_s']:.0f} s)")
    console.print(f"chosen: {result['chosen']}")
    atomic_write_json(out, result)
    console.print(f"wrote {out}")
