"""Progress: plain lines on stderr when it is not a terminal (a log file, a pipe), a rich bar when it is."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from rich.progress import Progress

from hotswap.encoders import progress
from hotswap.encoders.progress import NullProgress, PlainProgress, batched_encode, maybe_progress, progress_bar


class Clock:
    """A fake monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def lines(capsys) -> list[str]:
    out = capsys.readouterr()
    assert out.out == ""  # progress never goes to stdout
    return out.err.splitlines()


def test_plain_lines_at_most_every_interval_and_at_the_end(capsys):
    clock = Clock()
    with PlainProgress(interval=10, clock=clock) as bar:
        task = bar.add_task("encode minilm", total=20_000, rate="")
        clock.t += 5
        bar.update(task, advance=2_048, rate="310 texts/s")
        assert lines(capsys) == []  # under 10 s since the start: quiet
        clock.t += 8.2
        bar.update(task, advance=2_048, rate="310 texts/s")
        assert lines(capsys) == ["encode minilm: 4,096/20,000 (20%), 310 texts/s, about 51 s left"]
        clock.t += 9
        bar.update(task, advance=4_000)
        assert lines(capsys) == []
        clock.t += 50
        bar.update(task, completed=20_000, rate="")
        assert bar.tasks[0].speed == pytest.approx(20_000 / 72.2)
        assert lines(capsys) == ["encode minilm: 20,000/20,000 (100%), 277/s, took 1 min 12 s"]  # done: at once
        clock.t += 1
        bar.update(task, rate="x")
    assert lines(capsys) == []  # its last line was printed already
    with PlainProgress(interval=10, clock=clock) as bar:
        task = bar.add_task("backfill -> minilm@abc", total=1_000, completed=400, rate="")
        clock.t += 125
        bar.update(task, completed=600, rate="1.6 items/s")
    assert lines(capsys) == ["backfill -> minilm@abc: 600/1,000 (60%), 1.6 items/s, about 4 min 10 s left",
                             "backfill -> minilm@abc: 600/1,000 (60%), 1.6 items/s, took 2 min 5 s"]


def test_plain_progress_says_when_a_job_stopped_early(capsys):
    clock = Clock()
    try:
        with PlainProgress(clock=clock) as bar:
            task = bar.add_task("task 1 fiqa", total=50, loss="")
            clock.t += 3
            bar.update(task, advance=1, loss="loss 0.731")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert lines(capsys) == ["task 1 fiqa: 1/50 (2%), loss 0.731, stopped after 3 s"]


def test_plain_progress_with_a_tiny_real_interval(capsys):
    import time

    with PlainProgress(interval=0.01) as bar:
        task = bar.add_task("fit", total=None)
        time.sleep(0.02)
        bar.update(task, advance=3)
    out = lines(capsys)
    assert out[0].startswith("fit: 3, ") and out[0].endswith("/s") and len(out) == 2 and "took 0 s" in out[1]


def test_maybe_progress_picks_by_terminal(monkeypatch):
    assert isinstance(maybe_progress(False), NullProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert isinstance(maybe_progress(True), PlainProgress) and isinstance(progress_bar(), PlainProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert isinstance(maybe_progress(True, field="loss"), Progress)


def test_batched_encode_reports_in_plain_lines(capsys, monkeypatch):
    monkeypatch.setattr(progress, "PlainProgress", lambda: PlainProgress(interval=0))
    calls = []

    def encode_batch(texts, batch_size):
        calls.append(len(texts))
        return np.ones((len(texts), 2), dtype=np.float32)

    X = batched_encode(encode_batch, [f"t{i}" for i in range(40)], 2, 2, "encode toy", show_progress=True)
    assert X.shape == (40, 2) and calls == [16, 16, 8]
    out = lines(capsys)
    assert out[0].startswith("encode toy: 16/40 (40%), ") and "texts/s" in out[0] and "left" in out[0]
    assert out[-1].startswith("encode toy: 40/40 (100%), ") and "took" in out[-1]
    batched_encode(encode_batch, ["a", "b"], 2, 2, "encode toy")  # short inputs: no progress by default
    assert lines(capsys) == []
