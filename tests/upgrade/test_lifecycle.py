"""The upgrade state machine shared by the CLI and the service, and the commit / rollback of a plain index's
upgrade (``hotswap.upgrade.finish``) on every backend, including a commit cut short and run again."""

from __future__ import annotations

import numpy as np
import pytest

from hotswap.backfill import BackfillRunner, LocalExecutor, plan_backfill
from hotswap.errors import HotswapError, UpgradeStateError
from hotswap.store import create_store, open_store
from hotswap.upgrade import create_upgrade, open_upgrade
from hotswap.upgrade.finish import ASIDE, COMMIT_MARK, commit_upgrade, finishing, rollback_upgrade
from hotswap.upgrade.lifecycle import STATES, check_action, upgrade_state
from tests.backfill.toy import ToyEncoder, fetch, gallery_ids, unit_vector

OLD, NEW, N = "toy-old@1", "toy-new@1", 30
IDS = gallery_ids(N)


@pytest.mark.parametrize("done,total,running,intent,error,state", [
    (0, 10, False, "planned", None, "planned"),
    (3, 10, True, "running", None, "backfilling"),
    (3, 10, True, "paused", None, "backfilling"),  # a live run between two points of a curve
    (3, 10, False, "paused", None, "paused"),
    (3, 10, False, "running", None, "interrupted"),
    (10, 10, False, "running", None, "complete"),
    (10, 10, True, "paused", None, "complete"),
    (3, 10, False, "running", "disk full", "failed"),
])
def test_one_state(done, total, running, intent, error, state):
    assert upgrade_state(done, total, running=running, intent=intent, error=error) == state
    assert state in STATES


def test_actions_by_state():
    check_action("complete", "commit")
    check_action("paused", "resume")
    check_action("backfilling", "pause")
    for state in STATES:
        check_action(state, "rollback")
    with pytest.raises(UpgradeStateError, match="cannot commit an upgrade that is paused"):
        check_action("paused", "commit")
    with pytest.raises(UpgradeStateError, match="cannot pause an upgrade that is paused"):
        check_action("paused", "pause")
    with pytest.raises(ValueError, match="unknown upgrade intent"):
        upgrade_state(0, 1, running=False, intent="sleeping")


@pytest.fixture(params=["faiss", "qdrant", "pg"])
def upgraded(request, tmp_path):
    """``(old index URI, upgrade folder)``: a toy index of N items and a complete upgrade of it."""
    if request.param == "qdrant":
        pytest.importorskip("qdrant_client")
    if request.param == "pg":
        pytest.importorskip("pgserver")
    uri = f"{request.param}://{tmp_path / 'old'}"
    with create_store(uri, OLD, 8, "ip") as old:
        old.add(IDS, np.stack([unit_vector(i, 8, OLD) for i in IDS]), OLD)
    with create_upgrade(tmp_path / "up", uri, NEW, 12) as up:
        plan_backfill(up, "random", ToyEncoder(dim=12), fetch)
        BackfillRunner(up, fetch, LocalExecutor(ToyEncoder(dim=12)), 8, progress=False).run()
    return uri, tmp_path / "up"


def test_commit_serves_the_new_model_where_the_old_one_was(upgraded):
    uri, folder = upgraded
    out = commit_upgrade(folder)
    assert out["model_id"] == NEW and not folder.exists()
    with open_store(uri) as store:
        assert store.model_id == NEW and sorted(store.ids) == sorted(IDS)
        Q = ToyEncoder(dim=12).encode(fetch(IDS[:3]))
        assert store.search(Q, 1, model_id=NEW)[1][:, 0].tolist() == IDS[:3]


def test_rollback_keeps_the_old_index_and_drops_the_new_vectors(upgraded):
    uri, folder = upgraded
    out = rollback_upgrade(folder)
    assert out["model_id"] == OLD and not folder.exists()
    with open_store(uri) as store:
        assert store.model_id == OLD and len(store) == N
    with create_upgrade(folder, uri, NEW, 12) as again:  # the new model's vectors are gone: a fresh start works
        assert len(again.new) == 0


def test_a_faiss_commit_cut_short_finishes_when_run_again(tmp_path):
    with create_store(tmp_path / "old", OLD, 8, "ip") as old:
        old.add(IDS, np.stack([unit_vector(i, 8, OLD) for i in IDS]), OLD)
    folder = tmp_path / "up"
    with create_upgrade(folder, tmp_path / "old", NEW, 12) as up:
        plan_backfill(up, "random", ToyEncoder(dim=12), fetch)
        BackfillRunner(up, fetch, LocalExecutor(ToyEncoder(dim=12)), 8, progress=False).run()
    # killed after the old index was moved aside and before the new one took its place
    (folder / COMMIT_MARK).write_text("{}")
    (tmp_path / "old").rename(tmp_path / ("old" + ASIDE))
    assert finishing(folder) == "commit"
    with pytest.raises(HotswapError, match="being committed"):
        rollback_upgrade(folder)
    commit_upgrade(folder)
    assert not (tmp_path / ("old" + ASIDE)).exists() and not folder.exists()
    with open_store(tmp_path / "old") as store:
        assert store.model_id == NEW and len(store) == N


def test_a_commit_of_a_missing_upgrade_names_the_folder(tmp_path):
    with pytest.raises(HotswapError, match="upgrade.json"):
        commit_upgrade(tmp_path / "nothing")


def test_open_upgrade_after_commit_is_refused(upgraded):
    _, folder = upgraded
    commit_upgrade(folder)
    with pytest.raises(HotswapError):
        open_upgrade(folder)
