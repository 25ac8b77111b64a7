"""``hotswap experiment online-backfill``: quality along an image-gallery backfill, per training method."""

from __future__ import annotations

from pathlib import Path

import typer

from hotswap.cli.continual import console, experiment_app
from hotswap.cli.options import comma_list
from hotswap.io import atomic_write_json


@experiment_app.command("online-backfill")
def online_backfill(
    scale: str = typer.Option("default", help="tiny, default (2 CPU cores) or paper (ResNet-18, all images: a GPU)"),
    methods: str = typer.Option("merge,bct,merge+reverse,merge+reverse+cmcl,merge+reverse+cmcl+rho",
                                help="comma-separated"),
    orders: str = typer.Option("random,uncertainty", help="backfill orders, comma-separated"),
    settings: str = typer.Option("fixed-new,retrained-new",
                                 help="comma-separated: fixed-new (psi / rho on the frozen independent new model) "
                                      "and/or retrained-new (new model trained with the method)"),
    workdir: Path = typer.Option(Path("runs/online_backfill"), help="trained models (resumable)"),
    out: Path = typer.Option(Path("results"), help="folder for online_backfill.json and .png"),
    seed: int = typer.Option(42),
    data: Path | None = typer.Option(None, help="image set .npz or folder (default: the built cache)"),
) -> None:
    """Old model on half the classes, new models on all: merged-search mAP / top-1 at every 10 % of a backfill
    for plain merge, BCT, merge + reverse transform, merge + reverse + CMCL (+ rho), the CMCL rows both on the
    frozen independent new model (fixed-new) and with the new model retrained (retrained-new); writes
    results/online_backfill.json.

    Example: hotswap experiment online-backfill --scale default
    """
    from hotswap.experiments.online_backfill import OnlineBackfillConfig, run_online_backfill_experiment
    from hotswap.experiments.online_backfill_report import online_backfill_table, plot_online_backfill

    cfg = OnlineBackfillConfig(scale=scale, methods=comma_list(methods),
                               orders=comma_list(orders), settings=comma_list(settings), seed=seed,
                               workdir=str(workdir), data=None if data is None else str(data))
    try:
        cfg.limits()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    result = run_online_backfill_experiment(cfg)
    console.print(online_backfill_table(result))
    atomic_write_json(out / "online_backfill.json", result)
    plot_online_backfill(result, out / "online_backfill.png")
    console.print(f"wrote {out / 'online_backfill.json'} and {out / 'online_backfill.png'} in {result['wall_s']:.0f} s")
