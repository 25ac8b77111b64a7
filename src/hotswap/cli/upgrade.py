"""``hotswap upgrade status|pause|resume|commit|rollback``: the life cycle of an upgrade of a plain index.

The states are the service's (``hotswap.upgrade.lifecycle``): planned, backfilling, paused, interrupted, complete,
failed; ``state`` is the one field that says where an upgrade stands. An upgrade is named by its folder
(``UPGRADE``, what ``hotswap backfill --upgrade`` wrote) or by its index (``--index``: the upgrade it records).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hotswap.cli.output import JSON, console, emit_json, table
from hotswap.errors import HotswapError

upgrade_app = typer.Typer(help="An upgrade in progress: status, pause, resume, commit, rollback.",
                          no_args_is_help=True)
FOLDER = typer.Argument(None, help="the upgrade folder (what 'hotswap backfill --upgrade' wrote)")
INDEX = typer.Option(None, "--index", help="instead of FOLDER: the index whose upgrade in progress to act on")
INTENTS = {"running": "running", "interrupted": "running", "paused": "paused", "done": "paused",
           "planned": "planned"}


def upgrade_folder(folder: Path | None, index: str | None) -> Path:
    """The upgrade folder: given, or the one the index records (``hotswap backfill`` writes it there)."""
    from hotswap.store.provenance import read_provenance

    if (folder is None) == (index is None):
        raise HotswapError("name the upgrade: its folder (UPGRADE), or --index INDEX (the index being upgraded)")
    if folder is None:
        assert index is not None  # exactly one of folder / index, checked above
        folder = read_provenance(index).get("upgrade")
        if folder is None:
            raise HotswapError(f"{index} records no upgrade in progress; start one with 'hotswap backfill --index "
                               f"{index} --upgrade FOLDER --new MODEL'")
        folder = Path(folder)
    from hotswap.upgrade.finish import finishing

    if not (folder / "upgrade.json").is_file():
        raise HotswapError(f"{folder} is not an upgrade folder (no upgrade.json); start one with 'hotswap backfill'")
    if (left := finishing(folder)) is not None:
        raise HotswapError(f"a {left} of {folder} was started and not finished: run 'hotswap upgrade {left} "
                           f"{folder}' again")
    return folder


def status_of(folder: Path, cost_per_hour: float | None = None) -> dict[str, Any]:
    """Where the upgrade in ``folder`` stands: one ``state`` (``upgrade_state``), progress, rate, time and cost."""
    from hotswap.backfill import BackfillRunner
    from hotswap.backfill.runner import backfill_running
    from hotswap.upgrade import open_upgrade
    from hotswap.upgrade.lifecycle import upgrade_state

    with open_upgrade(folder) as up:
        s = BackfillRunner(up, list, None, cost_per_hour=cost_per_hour).status()
        planned = (folder / "plan.json").is_file()
        intent = INTENTS.get(s.state, "paused") if planned else "planned"
        state = upgrade_state(s.done, s.total, running=backfill_running(folder), intent=intent)
        return {"upgrade": str(folder), "state": state, "requested": intent, "done": s.done, "total": s.total,
                "fraction": s.fraction, "items_per_s": s.items_per_s, "eta_s": s.eta_s, "cost_left": s.cost_left,
                "old_model_id": up.old_model_id, "new_model_id": up.new_model_id, "backend": up.config.get("backend",
                                                                                                         "faiss")}


def status_line(s: dict[str, Any]) -> str:
    eta = f"{s['eta_s'] / 60:.1f} min" if s["eta_s"] is not None else "unknown"
    rate = f"{s['items_per_s']:,.0f} items/s" if s["items_per_s"] else "rate unknown"
    cost = f", cost left {s['cost_left']:.2f}" if s["cost_left"] is not None else ""
    return (f"{s['state']}: {s['done']}/{s['total']} backfilled ({s['fraction']:.0%}), {rate}, time left {eta}"
            f"{cost}")


def status(folder: Path = FOLDER, index: str = INDEX,
           cost_per_hour: float = typer.Option(None, help="price of the encoding machine per hour, for the cost "
                                               "left"),
           json_output: bool = JSON) -> None:
    """Print where the upgrade stands: state, progress, rate, time and cost left.

    Example: hotswap upgrade status indexes/upgrade   (or: hotswap upgrade status --index indexes/old)
    """
    s = status_of(upgrade_folder(folder, index), cost_per_hour)
    if json_output:
        emit_json(s)
        return
    console.print(table(f"upgrade {s['upgrade']}: {s['old_model_id']} -> {s['new_model_id']}",
                        [{**s, "fraction": f"{s['fraction']:.0%}", "items_per_s": _num(s["items_per_s"]),
                          "eta_s": _num(s["eta_s"])}],
                        ["state", "done", "total", "fraction", "items_per_s", "eta_s"]))
    console.print(status_line(s), highlight=False)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def pause(folder: Path = FOLDER, index: str = INDEX, json_output: bool = JSON) -> None:
    """Ask the running backfill to stop after its current batch (it keeps every batch it committed).

    Example: hotswap upgrade pause indexes/upgrade   (continue with: hotswap upgrade resume indexes/upgrade)
    """
    from hotswap.backfill import request_pause
    from hotswap.upgrade.lifecycle import check_action

    path = upgrade_folder(folder, index)
    check_action(status_of(path)["state"], "pause")
    asked = request_pause(path)
    if json_output:
        emit_json({"upgrade": str(path), "pause_requested": asked})
    elif asked:
        console.print(f"asked the backfill in {path} to pause after its current batch")
    else:
        console.print(f"the backfill in {path} stopped before the request; nothing to pause")


def resume(folder: Path = FOLDER, index: str = INDEX,
           dataset: str = typer.Option(None, help="the dataset the index was built from (default: the one it "
                                       "records; 'store' reads the index's own text column)"),
           new: str = typer.Option(None, "--new", help="the new model's folder, when the upgrade cannot find it"),
           batch_size: int = typer.Option(256, help="items per atomic batch"),
           until: float = typer.Option(None, help="stop once this share of the gallery is backfilled (0-1)"),
           json_output: bool = JSON) -> None:
    """Continue the backfill where it stopped (after a pause or a crash), in this process.

    Example: hotswap upgrade resume indexes/upgrade
    """
    from hotswap.cli.backfill import continue_backfill
    from hotswap.upgrade.lifecycle import check_action

    path = upgrade_folder(folder, index)
    check_action(status_of(path)["state"], "resume")
    final = continue_backfill(path, dataset, new, batch_size, until)
    s = status_of(path)
    if json_output:
        emit_json(s)
    else:
        console.print(status_line({**s, "items_per_s": final.items_per_s or s["items_per_s"]}), highlight=False)


def commit(folder: Path = FOLDER, index: str = INDEX, json_output: bool = JSON) -> None:
    """Serve the new model from the index's own location from now on; only once the backfill is complete.

    Example: hotswap upgrade commit indexes/upgrade   (indexes/old then holds the new model's vectors)
    """
    from hotswap.backfill.runner import backfill_running
    from hotswap.store.provenance import read_provenance, record_provenance
    from hotswap.upgrade.finish import COMMIT_MARK, commit_upgrade
    from hotswap.upgrade.lifecycle import check_action

    path = _finishable(folder, index, COMMIT_MARK)
    if not (path / COMMIT_MARK).exists():
        check_action(status_of(path)["state"], "commit")
        if backfill_running(path):
            raise HotswapError(f"the backfill in {path} is still finishing; commit when it has stopped")
    from hotswap.upgrade import open_upgrade

    prov = {}
    if not (path / COMMIT_MARK).exists():
        with open_upgrade(path) as up:
            prov = {**read_provenance(up.old), "new": read_provenance(up.new)}
    out = commit_upgrade(path)
    if prov:  # the committed index keeps its dataset and learns its new model
        record_provenance(out["index"], dataset=prov.get("dataset"),
                          models=[{"id": i, **m} for i, m in prov["new"].get("models", {}).items()])
        _forget_upgrade(out["index"])
    _report(out, f"committed: {out['index']} now serves {out['model_id']}", json_output)


def rollback(folder: Path = FOLDER, index: str = INDEX, json_output: bool = JSON) -> None:
    """Forget the upgrade: the old index serves on (with every write made meanwhile); the new vectors go.

    Example: hotswap upgrade rollback indexes/upgrade
    """
    from hotswap.upgrade.finish import ROLLBACK_MARK, rollback_upgrade
    from hotswap.upgrade.lifecycle import check_action

    path = _finishable(folder, index, ROLLBACK_MARK)
    if not (path / ROLLBACK_MARK).exists():
        state = status_of(path)["state"]
        check_action(state, "rollback")
        if state == "backfilling":
            raise HotswapError(f"the backfill in {path} is running; pause it first (hotswap upgrade pause {path})")
    out = rollback_upgrade(path)
    _forget_upgrade(out["index"])
    _report(out, f"rolled back: {out['index']} serves {out['model_id']} alone", json_output)


def _finishable(folder: Path | None, index: str | None, mark: str) -> Path:
    """The upgrade folder, also when a commit or rollback of it (``mark``) was cut short."""
    if folder is not None and (folder / mark).exists():
        return folder
    return upgrade_folder(folder, index)


def _forget_upgrade(index: str) -> None:
    from hotswap.store.provenance import record_provenance

    record_provenance(index, upgrade=None)


def _report(out: dict, line: str, json_output: bool) -> None:
    if json_output:
        emit_json(out)
    else:
        console.print(line, highlight=False)


COMMANDS = {"status": status, "pause": pause, "resume": resume, "commit": commit, "rollback": rollback}
