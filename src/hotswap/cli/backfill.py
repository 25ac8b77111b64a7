"""``hotswap backfill``: re-embed an index's corpus with a new model while it is served; resume after a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from hotswap.adapters import load_adapter
from hotswap.backfill import ORDERINGS, BackfillRunner, LocalExecutor, plan_backfill, request_pause
from hotswap.backfill.curve import QrelsEvaluator, backfill_curve, fractions_every, parse_every
from hotswap.experiments.backfill_report import curve_table, plot_curves, write_results
from hotswap.cli.options import DATASET, INDEX
from hotswap.data import load_dataset
from hotswap.encoders import encoder_for_model_id, load_encoder
from hotswap.experiments.backfill_demo import curve_rows, raw_encode_rate
from hotswap.search import ScoreCalibration
from hotswap.store import open_store
from hotswap.store.adopt import text_fetch
from hotswap.upgrade import create_upgrade, open_upgrade

console = Console()


def _executor(kind: str, spec: str, encoder, ray_address: str | None, num_actors: int):
    if kind == "local":
        return LocalExecutor(encoder)
    if kind == "ray":
        from hotswap.backfill.ray_runner import RayExecutor

        return RayExecutor(spec, num_actors=num_actors, ray_address=ray_address, expected_model_id=encoder.id)
    raise typer.BadParameter(f"--executor must be 'local' or 'ray'; got {kind!r}")


def _status_line(s) -> str:
    eta = f"{s.eta_s / 60:.1f} min" if s.eta_s is not None else "unknown"
    rate = f"{s.items_per_s:,.0f} items/s" if s.items_per_s else "rate unknown"
    cost = f", cost left {s.cost_left:.2f}" if s.cost_left is not None else ""
    return f"{s.state}: {s.done}/{s.total} backfilled ({s.fraction:.0%}), {rate}, time left {eta}{cost}"


def backfill(
    index: str = INDEX,
    upgrade: Path = typer.Option(..., help="folder of the upgrade (new vectors, plan, checkpoint)"),
    model: str = typer.Option(None, "--new", help="new encoder: static, minilm, mpnet or a folder (to --resume: "
                              "only for a folder model)"),
    dataset: str = DATASET,
    order: str = typer.Option("random", help=f"ordering policy: {', '.join(ORDERINGS)} (demand: what cascade "
                              "searches asked for first)"),
    then: str = typer.Option("random", help="with --order demand: the order of the items no query asked for"),
    batch_size: int = typer.Option(256, help="items per atomic batch"),
    resume: bool = typer.Option(False, "--resume", help="continue the backfill in --upgrade where it stopped"),
    until: float = typer.Option(None, help="stop once this share of the gallery is backfilled (0-1)"),
    eval_every: str = typer.Option(None, help="evaluate test queries every this share (e.g. 10%) -> JSON + PNG"),
    modes: str = typer.Option("merged,adapted", help="search modes on the curve: merged, calibrated, adapted, cross"),
    calibration_docs: int = typer.Option(512, help="documents the new model encodes to calibrate scores (calibrated)"),
    max_test_queries: int = typer.Option(1500, help="test queries on the curve (seeded sample; 0 = all)"),
    adapter: Path = typer.Option(None, help="fitted adapter folder (mode adapted)"),
    executor: str = typer.Option("local", help="local, or ray (Ray Data actors; pip install hotswap[ray])"),
    ray_address: str = typer.Option(None, help="Ray cluster address ('auto' or ray://host:10001); local if unset"),
    num_actors: int = typer.Option(2, help="Ray encoder actors"),
    cost_per_hour: float = typer.Option(None, help="price of the encoding machine per hour, for the cost left"),
    seed: int = typer.Option(0),
    pause: bool = typer.Option(False, "--pause", help="ask the running backfill in --upgrade to stop after its batch"),
    status: bool = typer.Option(False, "--status", help="print progress, time and cost left, then exit"),
    out: Path = typer.Option(Path("results"), help="folder for backfill.json / backfill.png (--eval-every)"),
) -> None:
    """Re-embed the corpus of INDEX with the NEW model in crash-safe batches, serving merged search all along.

    Example: hotswap backfill --index indexes/old --upgrade indexes/upgrade --new minilm --order uncertainty
    --eval-every 10%   (after a crash or --pause: hotswap backfill --index indexes/old --upgrade indexes/upgrade --resume)
    """
    if pause:
        if request_pause(upgrade):
            console.print(f"asked the backfill in {upgrade} to pause after its current batch")
        else:
            console.print(f"no backfill is running in {upgrade}; nothing to pause")
        return
    if status:  # reads the upgrade folder only: no dataset, no model
        up = open_upgrade(upgrade)
        console.print(_status_line(BackfillRunner(up, list, None, cost_per_hour=cost_per_hour).status()))
        return
    ds = None if dataset == "store" else load_dataset(dataset)
    fetch = None if ds is None else (lambda ids: [ds.corpus[i] for i in ids])  # noqa: E731
    if ds is None and (eval_every is not None or order in ("popularity", "demand") or then == "demand"):
        raise typer.BadParameter("--dataset store reads texts only: --eval-every and orders from queries need a "
                                 "dataset with queries")
    if resume:
        up = open_upgrade(upgrade)
        fetch = fetch or text_fetch(up.old)
        spec = model or up.new_model_id.rsplit("@", 1)[0]  # a bundled name, or the folder given with --new
        new_enc = load_encoder(spec)  # the runner refuses it unless its id is the upgrade's new model id
    else:
        if model is None:
            raise typer.BadParameter("a new backfill needs --new (the new encoder)")
        old = open_store(index)
        fetch = fetch or text_fetch(old)
        if ds is not None and (missing := [i for i in old.ids[:1000] if i not in ds.corpus]):
            raise typer.BadParameter(f"index {index} holds ids that dataset {dataset!r} lacks, e.g. {missing[:3]}")
        spec, new_enc = model, load_encoder(model)
        up = create_upgrade(upgrade, old, new_enc.id, new_enc.dim)
        plan_backfill(up, order, new_enc, fetch, seed=seed, then=then,
                      query_log=_query_log(then if order == "demand" else order, ds, up))
    ex = _executor(executor, spec, new_enc, ray_address, num_actors)
    try:
        runner = BackfillRunner(up, fetch, ex, batch_size, cost_per_hour=cost_per_hour)
        if eval_every is None:
            console.print(_status_line(runner.run(until=until)))
        else:
            _run_with_curve(runner, up, ds, new_enc, parse_every(eval_every), modes.split(","), adapter, seed, out,
                            calibration_docs, max_test_queries or None)
    finally:
        if hasattr(ex, "close"):
            ex.close()  # a local Ray instance started by the executor


def _query_log(order: str, ds, up) -> np.ndarray | None:
    """Up to 5000 of the dataset's train queries, encoded by the old model, stand in for a query log."""
    if order != "popularity":
        return None
    return encoder_for_model_id(up.old_model_id).encode(list(ds.train_queries.values())[:5000])


def _calibration(up, ds, old_enc, new_enc, n_docs: int, seed: int) -> ScoreCalibration:
    """Fit the score calibration on up to 1000 train queries and ``n_docs`` random indexed documents."""
    rng = np.random.default_rng(seed)
    ids = [up.old.ids[i] for i in rng.choice(len(up.old), min(n_docs, len(up.old)), replace=False)]
    queries = list(ds.train_queries.values())[:1000]
    return ScoreCalibration().fit_paired(new_enc.encode(queries), new_enc.encode([ds.corpus[i] for i in ids]),
                                         old_enc.encode(queries), up.old.get(ids))


def _run_with_curve(runner, up, ds, new_enc, step: float, modes: list[str], adapter: Path | None, seed: int,
                    out: Path, calibration_docs: int, max_test_queries: int | None) -> None:
    from hotswap.backfill import read_plan

    test = ds.restrict(up.old.ids, max_test_queries=max_test_queries, rng=np.random.default_rng(seed))
    texts = list(test.queries.values())
    old_enc = encoder_for_model_id(up.old_model_id)
    calibration = _calibration(up, ds, old_enc, new_enc, calibration_docs, seed) if "calibrated" in modes else None
    evaluator = QrelsEvaluator(list(test.queries), test.qrels, new_enc.encode(texts), old_enc.encode(texts),
                               modes=modes, adapter=load_adapter(adapter) if adapter else None,
                               calibration=calibration)
    if "adapted" in modes and adapter is None:
        evaluator.skipped["adapted"] = "no --adapter given"
    policy = read_plan(up)["policy"]
    points = backfill_curve(runner, evaluator, fractions_every(step),
                            on_point=lambda f, p: console.print(f"{f:.0%}: " + ", ".join(
                                f"{m} nDCG@10 {v['ndcg@10']:.3f}" for m, v in p.items())))
    curves = curve_rows(policy, points)
    final = runner.status()
    sample = [ds.corpus[i] for i in up.old.ids[:256]]
    raw = raw_encode_rate(new_enc, sample)
    result = {"dataset": ds.name, "old_model": up.old_model_id, "new_model": up.new_model_id, "curves": curves,
              "throughput": {"runner_items_s": final.items_per_s, "raw_encode_items_s": raw,
                             "raw_encode_sample": len(sample)},
              "skipped_modes": dict(evaluator.skipped), "n_test_queries": len(texts)}
    console.print(curve_table(result))
    write_results(result, out)
    plot_curves(result, out / "backfill.png")
    console.print(f"wrote {out / 'backfill.json'} and {out / 'backfill.png'}; {_status_line(final)}")
