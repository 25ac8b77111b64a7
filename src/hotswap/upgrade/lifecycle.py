"""One state machine for an upgrade in progress, read the same way by the CLI (``hotswap upgrade status``) and the
service (``GET /status``)::

    planned --start/resume--> backfilling <--pause/resume--> paused
                                 |   (killed while running: interrupted; resume continues it)
                                 v
                              complete --commit--> (the index serves the new model; the upgrade is gone)
    planned / backfilling / paused / interrupted / complete --rollback--> (the old index alone; the upgrade gone)

``state`` is the one field that names where an upgrade stands; everything else (done, total, rate) is progress.
"""

from __future__ import annotations

from hotswap.errors import UpgradeStateError

STATES = ("planned", "backfilling", "paused", "interrupted", "complete", "failed")
INTENTS = ("planned", "running", "paused")


def upgrade_state(done: int, total: int, *, running: bool, intent: str, error: str | None = None) -> str:
    """Where an upgrade stands.

    ``running``: a backfill is encoding right now (a thread, or a process holding the upgrade's run lock);
    ``intent``: what was last asked of it (``planned``: never started, ``running``, ``paused``); ``error``: why
    its backfill stopped, if it failed. A complete backfill is ``complete`` whatever was asked; one asked to run
    but not running (its process was killed) is ``interrupted``.
    """
    if intent not in INTENTS:
        raise ValueError(f"unknown upgrade intent {intent!r}; expected one of {', '.join(INTENTS)}")
    if error:
        return "failed"
    if done >= total:
        return "complete"
    if running:
        return "backfilling"
    return {"running": "interrupted", "planned": "planned", "paused": "paused"}[intent]


def check_action(state: str, action: str) -> None:
    """Refuse ``action`` (``pause``, ``resume``, ``commit``, ``rollback``) where ``state`` does not allow it, with a
    message naming both and what to do instead. Raises ``UpgradeStateError``."""
    allowed = {
        "pause": ("backfilling",),
        "resume": ("planned", "paused", "interrupted", "failed"),
        "commit": ("complete",),
        "rollback": STATES,
    }[action]
    if state not in allowed:
        hint = {"commit": "commit needs every item re-embedded: resume the backfill and wait",
                "pause": "only a running backfill can be paused",
                "resume": "it is already running or complete"}.get(action, "")
        raise UpgradeStateError(f"cannot {action} an upgrade that is {state}; {hint}")


__all__ = ["INTENTS", "STATES", "check_action", "upgrade_state"]
