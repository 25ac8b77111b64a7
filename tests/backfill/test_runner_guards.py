"""What the runner refuses or reports: a second concurrent run, a crash left as "running", the wrong model,
stale PAUSE and temp files from an earlier run."""

from __future__ import annotations

import json

import pytest

from hotswap.backfill import LocalExecutor, request_pause
from hotswap.backfill.runner import CHECKPOINT_NAME, PAUSE_NAME, BackfillRunner
from hotswap.errors import HotswapError, ModelMismatchError
from tests.backfill.toy import ToyEncoder, fetch, make_upgrade, runner


def test_a_second_runner_on_the_same_upgrade_is_refused_while_one_runs(tmp_path):
    up = make_upgrade(tmp_path, 120)
    errors = []

    def start_another(status):
        if not errors:
            with pytest.raises(HotswapError, match="another backfill is running") as e:
                runner(up, batch_size=20).run()
            errors.append(e.value)

    final = runner(up, batch_size=20).run(on_batch=start_another)
    assert errors and final.state == "done" and len(up.new) == 120


def test_pause_is_refused_when_nothing_runs_and_honoured_while_running(tmp_path):
    up = make_upgrade(tmp_path, 120)
    assert request_pause(up.path) is False and not (up.path / PAUSE_NAME).exists()
    asked = []
    status = runner(up, batch_size=20).run(on_batch=lambda s: asked.append(request_pause(up.path)))
    assert asked == [True] and status.state == "paused" and status.done == 20


def test_a_crash_left_as_running_reads_as_interrupted(tmp_path):
    up = make_upgrade(tmp_path, 60)
    runner(up, batch_size=20).run(until=0.5)
    ck = up.path / CHECKPOINT_NAME
    ck.write_text(json.dumps({**json.loads(ck.read_text()), "state": "running"}))  # what SIGKILL leaves
    assert runner(up, batch_size=20).status().state == "interrupted"


def test_stale_pause_and_temp_files_of_an_earlier_run_are_cleared(tmp_path):
    up = make_upgrade(tmp_path, 60)
    (up.path / PAUSE_NAME).touch()
    (up.path / ".checkpoint.json.abc123.tmp").write_text("{")
    status = runner(up, batch_size=20).run()
    assert status.state == "done" and not list(up.path.glob(".*.tmp")) and not (up.path / PAUSE_NAME).exists()


def test_an_executor_with_another_model_is_refused(tmp_path):
    up = make_upgrade(tmp_path, 20)
    other = ToyEncoder(name="toy-other")
    other.id = "toy-other@000000000000"
    with pytest.raises(ModelMismatchError, match="toy-other"):
        BackfillRunner(up, fetch, LocalExecutor(other))
