"""``hotswap backfill``: re-embed an index's corpus with a new model while it is served; resume after a crash.

The index remembers its dataset and models (``hotswap.store.provenance``), and the upgrade folder is recorded in
it, so ``hotswap upgrade status|pause|resume|commit|rollback`` can follow; every check runs before encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hotswap.cli import context
from hotswap.cli.output import JSON, console, emit_json, say

ORDERINGS = ("random", "sequential", "uncertainty", "popularity", "demand")  # hotswap.backfill.ORDERINGS


def _executor(kind: str, spec: str | None, encoder: Any, ray_address: str | None, num_actors: int) -> Any:
    from hotswap.backfill import LocalExecutor

    if kind == "local":
        return LocalExecutor(encoder)
    from hotswap.backfill.ray_runner import RayExecutor

    if spec is None:
        raise typer.BadParameter("the ray executor loads the new model in each worker: pass --new (its name or "
                                 "folder)")
    return RayExecutor(spec, num_actors=num_actors, ray_address=ray_address, expected_model_id=encoder.id)


def backfill(
    index: str = typer.Option(None, "--index", help="the index to upgrade (a folder built by 'hotswap encode', or "
                              "a store URI); not needed with --resume, --status or --pause"),
    upgrade: Path = typer.Option(..., help="folder of the upgrade (new vectors, plan, checkpoint)"),
    model: str = typer.Option(None, "--new", help="new encoder: static, minilm, mpnet or a folder (to --resume: "
                              "only when the upgrade cannot find its folder)"),
    old: str = typer.Option(None, "--old", help="the model that built the index (bundled name or folder), for "
                            "the curve and the popularity order; default: found from the index's record"),
    dataset: str = typer.Option(None, help="the dataset the index was built from (default: the one it records; "
                                "'store' reads the texts from the index's own text column, e.g. an adopted table)"),
    order: str = typer.Option("random", help=f"ordering policy: {', '.join(ORDERINGS)} (demand: what cascade "
                              "searches asked for first)"),
    then: str = typer.Option("random", help="with --order demand: the order of the items no query asked for"),
    batch_size: int = typer.Option(256, help="items per atomic batch"),
    resume: bool = typer.Option(False, "--resume", help="continue the backfill in --upgrade where it stopped"),
    until: float = typer.Option(None, help="stop once this share of the gallery is backfilled (0-1)"),
    eval_every: str = typer.Option(None, help="evaluate test queries every this share (e.g. 10%) -> JSON + PNG"),
    modes: str = typer.Option("merged,adapted", help="search modes on the curve: merged, calibrated, adapted (a blend "
                              "--adapter: blended), cross"),
    calibration_docs: int = typer.Option(512, help="documents the new model encodes to calibrate scores (calibrated)"),
    max_test_queries: int = typer.Option(1500, help="test queries on the curve (seeded sample; 0 = all)"),
    adapter: Path = typer.Option(None, help="fitted adapter folder (mode adapted)"),
    executor: str = typer.Option("local", help="local, or ray (Ray Data actors; pip install hotswap[ray])"),
    ray_address: str = typer.Option(None, help="Ray cluster address ('auto' or ray://host:10001); local if unset"),
    num_actors: int = typer.Option(2, help="Ray encoder actors"),
    cost_per_hour: float = typer.Option(None, help="price of the encoding machine per hour, for the cost left"),
    seed: int = typer.Option(0),
    pause: bool = typer.Option(False, "--pause", help="ask the running backfill in --upgrade to stop after its batch "
                               "(same as 'hotswap upgrade pause')"),
    status: bool = typer.Option(False, "--status", help="print progress, time and cost left, then exit (same as "
                                "'hotswap upgrade status')"),
    out: Path = typer.Option(Path("results"), help="folder for backfill.json / backfill.png (--eval-every)"),
    json_output: bool = JSON,
) -> None:
    """Re-embed the corpus of INDEX with the NEW model in crash-safe batches, serving merged search all along.

    Example: hotswap backfill --index indexes/old --upgrade indexes/upgrade --new minilm --order uncertainty
    --eval-every 10%   (after a crash or a pause: hotswap upgrade resume indexes/upgrade; when complete: hotswap
    upgrade commit indexes/upgrade)
    """
    from hotswap.backfill import BackfillRunner, plan_backfill, request_pause
    from hotswap.backfill.curve import parse_every
    from hotswap.cli.upgrade import status_of
    from hotswap.encoders import load_encoder
    from hotswap.upgrade import create_upgrade

    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"--executor must be 'local' or 'ray'; got {executor!r}")
    if pause:
        if request_pause(upgrade):
            console.print(f"asked the backfill in {upgrade} to pause after its current batch")
        else:
            console.print(f"no backfill is running in {upgrade}; nothing to pause")
        return
    if status:  # reads the upgrade folder only: no dataset, no model
        _print_status(status_of(_existing(upgrade), cost_per_hour), json_output)
        return
    if not resume and order not in ORDERINGS:
        raise typer.BadParameter(f"unknown --order {order!r}; use one of {', '.join(ORDERINGS)}")
    if resume:
        target = context.open_target(None, _existing(upgrade))
    elif index is None:
        raise typer.BadParameter("a new backfill needs --index (the index to upgrade) and --new (the new encoder)")
    elif model is None:
        raise typer.BadParameter("a new backfill needs --new (the new encoder)")
    else:
        _refuse_started(upgrade)
        target = context.open_target(index, None, writing=True)
    try:
        ds, fetch = context.texts_of(target, dataset)
        if ds is None and (eval_every is not None or order in ("popularity", "demand") or then == "demand"):
            raise typer.BadParameter("--dataset store reads texts only: --eval-every and orders from queries need a "
                                     "dataset with queries")
        if resume:
            up = target.upgrade
            new_enc = context.new_encoder(target, model)
            spec = model or target.model_location(up.new_model_id) or getattr(new_enc, "location", None)
        else:
            spec, new_enc = model, load_encoder(model)
            up = create_upgrade(upgrade, target.store, new_enc.id, new_enc.dim)
            target.upgrade = up
            _record(target, up, new_enc, upgrade)
            plan_backfill(up, order, new_enc, fetch, seed=seed, then=then,
                          query_log=_query_log(then if order == "demand" else order, ds, target, old))
        ex = _executor(executor, spec, new_enc, ray_address, num_actors)
        try:
            runner = BackfillRunner(up, fetch, ex, batch_size, cost_per_hour=cost_per_hour)
            if eval_every is None:
                runner.run(until=until)
                _print_status(status_of(upgrade, cost_per_hour), json_output)
            else:
                _run_with_curve(runner, target, ds, new_enc, parse_every(eval_every), modes.split(","), adapter,
                                seed, out, calibration_docs, max_test_queries or None, until, old)
        finally:
            if hasattr(ex, "close"):
                ex.close()  # a local Ray instance started by the executor
    finally:
        target.close()


def _print_status(s: dict, json_output: bool) -> None:
    from hotswap.cli.upgrade import status_line

    if json_output:
        emit_json(s)
    else:
        console.print(status_line(s), highlight=False)


def continue_backfill(folder: Path, dataset: str | None, model: str | None, batch_size: int,
                      until: float | None) -> Any:
    """Resume the backfill of the upgrade in ``folder`` in this process (``hotswap upgrade resume``); returns the
    runner's final ``BackfillStatus``."""
    from hotswap.backfill import BackfillRunner, LocalExecutor

    target = context.open_target(None, folder)
    try:
        _, fetch = context.texts_of(target, dataset)
        runner = BackfillRunner(target.upgrade, fetch, LocalExecutor(context.new_encoder(target, model)), batch_size)
        return runner.run(until=until)
    finally:
        target.close()


def _existing(upgrade: Path) -> Path:
    if not (upgrade / "upgrade.json").is_file():
        raise typer.BadParameter(f"{upgrade} is not an upgrade folder (no upgrade.json); start one with "
                                 "'hotswap backfill --index INDEX --upgrade FOLDER --new MODEL'")
    return upgrade


def _refuse_started(upgrade: Path) -> None:
    if (upgrade / "upgrade.json").is_file():
        raise typer.BadParameter(f"{upgrade} already holds an upgrade; continue it with 'hotswap upgrade resume "
                                 f"{upgrade}' (or roll it back: hotswap upgrade rollback {upgrade})")
    if upgrade.exists() and (not upgrade.is_dir() or any(upgrade.iterdir())):
        raise typer.BadParameter(f"{upgrade} exists and is not empty; choose a new --upgrade folder")


def _record(target: context.Target, up: Any, new_enc: Any, folder: Path) -> None:
    """The upgrade's new index records the dataset and the new model; the old index, its upgrade in progress."""
    from hotswap.encoders import describe
    from hotswap.store.provenance import record_provenance

    record_provenance(up.new, dataset=target.provenance.get("dataset"), models=[describe(new_enc)])
    record_provenance(target.store, upgrade=str(folder.resolve()))


def _query_log(order: str, ds: Any, target: context.Target, old: str | None) -> Any:
    """Up to 5000 of the dataset's train queries, encoded by the old model, stand in for a query log."""
    if order != "popularity":
        return None
    if not ds.train_queries:
        raise typer.BadParameter(f"--order popularity ranks documents by train queries: dataset {ds.name!r} has none "
                                 "(qrels/train.tsv); use another order")
    from hotswap.encoders.cache import encode_cached

    return encode_cached(context.old_encoder(target, old), list(ds.train_queries.values())[:5000])[0]


def _run_with_curve(runner: Any, target: context.Target, ds: Any, new_enc: Any, step: float, modes: list[str],
                    adapter: Path | None, seed: int, out: Path, calibration_docs: int,
                    max_test_queries: int | None, until: float | None = None, old: str | None = None) -> None:
    """Backfill to every ``step`` (up to ``until``, itself a point), evaluating there; write the curve."""
    import numpy as np

    from hotswap.adapters import load_adapter
    from hotswap.backfill import read_plan
    from hotswap.backfill.curve import QrelsEvaluator, backfill_curve, curve_rows, fractions_every
    from hotswap.backfill.curve_report import curve_table, plot_curves, write_results
    from hotswap.cli.upgrade import status_line, status_of
    from hotswap.encoders.cache import encode_cached
    from hotswap.plan.cost import encode_rate
    from hotswap.search import QueryBlend
    from hotswap.search.blend import is_blend_folder

    up = target.upgrade
    test = ds.restrict(up.old.ids, max_test_queries=max_test_queries, rng=np.random.default_rng(seed))
    texts = list(test.queries.values())
    old_enc = context.old_encoder(target, old)
    calibration = context.fit_calibration(up.old, ds, old_enc, new_enc, calibration_docs, seed) \
        if "calibrated" in modes else None
    blend = QueryBlend.load(adapter) if adapter is not None and is_blend_folder(adapter) else None
    if blend is not None and "adapted" in modes:
        modes = ["blended" if m == "adapted" else m for m in modes]
        say(f"{adapter} is a blend: the curve scores mode blended")
    evaluator = QrelsEvaluator(list(test.queries), test.qrels, encode_cached(new_enc, texts)[0],
                               encode_cached(old_enc, texts)[0], modes=modes,
                               adapter=blend.adapter if blend is not None else load_adapter(adapter) if adapter
                               else None, calibration=calibration, blend=blend)
    for mode in {"adapted", "blended"} & set(modes):
        if adapter is None:
            evaluator.skipped[mode] = "no --adapter given"
    policy = read_plan(up)["policy"]
    fractions = fractions_every(step)
    if until is not None:
        fractions = sorted({*(f for f in fractions if f < until), until})
    points = backfill_curve(runner, evaluator, fractions,
                            on_point=lambda f, p: console.print(f"{f:.0%}: " + ", ".join(
                                f"{m} nDCG@10 {v['ndcg@10']:.3f}" for m, v in p.items())))
    curves = curve_rows(policy, points)
    final = runner.status()
    sample = [ds.corpus[i] for i in up.old.ids[:256]]
    raw = encode_rate(new_enc, sample, n=None, warm_up=False)
    result = {"dataset": ds.name, "old_model": up.old_model_id, "new_model": up.new_model_id, "curves": curves,
              "throughput": {"runner_items_s": final.items_per_s, "raw_encode_items_s": raw,
                             "raw_encode_sample": len(sample)},
              "skipped_modes": dict(evaluator.skipped), "n_test_queries": len(texts)}
    console.print(curve_table(result, compact=True))
    write_results(result, out)
    plot_curves(result, out / "backfill.png")
    console.print(f"wrote {out / 'backfill.json'} and {out / 'backfill.png'}; "
                  f"{status_line(status_of(up.path, runner.cost_per_hour))}", highlight=False)
