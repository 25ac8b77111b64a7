"""Progress for long jobs: a rich bar (rate and ETA) on a terminal, plain lines in a log file or a pipe.

``progress_bar`` / ``maybe_progress`` pick the kind from ``sys.stderr.isatty()``: a rich bar redraws itself,
which a log file cannot show, so there ``PlainProgress`` prints a line such as
``encode minilm: 4,096/20,000 (20%), 310 texts/s, about 51 s left`` at most every 10 s and once at the end.
Both go to stderr, so they never mix into a command's (JSON) output on stdout.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, TextIO

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

PROGRESS_THRESHOLD = 2000
PLAIN_INTERVAL_S = 10.0


def progress_bar(transient: bool = True, field: str = "rate") -> Progress | PlainProgress:
    """A bar showing done/total, a free text field (``rate``: items per second) and time remaining: rich on a
    terminal (stderr), else ``PlainProgress``."""
    if not _stderr_is_terminal():
        return PlainProgress()
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(f"[cyan]{{task.fields[{field}]}}"), TimeRemainingColumn(), transient=transient,
        console=Console(stderr=True),
    )


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


class NullProgress:
    """Stands in for ``progress_bar()`` when no bar should show: same ``with`` / ``add_task`` / ``update``."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> TaskID:
        return TaskID(0)

    def update(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class PlainTask:
    """One job that ``PlainProgress`` follows; ``speed`` is items per second since it was added (None at first)."""

    description: str
    total: float | None
    completed: float
    fields: dict[str, Any]
    started_at: float
    start_completed: float
    now: Callable[[], float] = dc_field(repr=False)
    finished: bool = False  # its last line ("took ...") is printed

    @property
    def speed(self) -> float | None:
        took, done = self.now() - self.started_at, self.completed - self.start_completed
        return done / took if took > 0 and done > 0 else None


class PlainProgress:
    """Progress as plain lines on ``stream`` (stderr): at most one per ``interval`` seconds, and a last one per
    job when it reaches its total (else when the ``with`` block ends). Offers what callers use of a rich bar:
    ``with``, ``add_task``, ``update``, ``tasks[i].speed``; ``clock`` is replaceable for tests."""

    def __init__(self, interval: float = PLAIN_INTERVAL_S, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self._stream, self.clock = float(interval), stream, clock
        self.tasks: list[PlainTask] = []
        self._last_print = clock()

    def __enter__(self) -> PlainProgress:
        self._last_print = self.clock()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        ending = "took" if exc_type is None else "stopped after"
        for task in self.tasks:
            if not task.finished:
                self._print(task, ending)

    def add_task(self, description: str, total: float | None = None, completed: float = 0,
                 **fields: Any) -> TaskID:
        """Follow a new job; returns its task id for ``update`` (a plain int, typed as rich's)."""
        now = self.clock()
        self.tasks.append(PlainTask(description, total, completed, dict(fields), now, completed, self.clock))
        return TaskID(len(self.tasks) - 1)

    def update(self, task: TaskID, *, advance: float | None = None, completed: float | None = None,
               total: float | None = None, description: str | None = None, **fields: Any) -> None:
        """Move job ``task`` on (``advance``) or to ``completed``, set fields; print if ``interval`` has passed."""
        t = self.tasks[task]
        if completed is not None:
            t.completed = completed
        if advance is not None:
            t.completed += advance
        if total is not None:
            t.total = total
        if description is not None:
            t.description = description
        t.fields.update(fields)
        if t.total and t.completed >= t.total and not t.finished:
            self._print(t, "took")  # done: its last line now, not when the ``with`` block ends
        elif self.clock() - self._last_print >= self.interval and not t.finished:
            self._print(t)

    def _print(self, task: PlainTask, ending: str | None = None) -> None:
        stream = self._stream or sys.stderr  # looked up late: a test or a CLI runner may swap sys.stderr
        print(plain_line(task, ending), file=stream, flush=True)
        task.finished = task.finished or ending is not None
        self._last_print = self.clock()


def plain_line(task: PlainTask, ending: str | None = None) -> str:
    """``desc: done/total (pct%)``, then the job's text fields (e.g. its rate or loss) or else its speed, then
    the time left, or (a last line) ``ending`` and the time it ran: ``took 12 s``."""
    done = f"{task.completed:,.0f}"
    parts = [f"{done}/{task.total:,.0f} ({_percent(task.completed, task.total)})" if task.total else done]
    extras = [str(v) for v in task.fields.values() if v not in (None, "")]
    speed = task.speed
    if not extras and speed:
        extras.append(f"{speed:,.3g}/s" if speed < 100 else f"{speed:,.0f}/s")
    parts += extras
    if ending:
        parts.append(f"{ending} {_duration(task.now() - task.started_at)}")
    elif speed and task.total:
        parts.append(f"about {_duration(max(task.total - task.completed, 0) / speed)} left")
    return f"{task.description}: {', '.join(parts)}"


def _percent(done: float, total: float) -> str:
    return f"{100 * done / total:.0f}%"


def _duration(seconds: float) -> str:
    """``51 s``, ``3 min 20 s``, ``2 h 5 min``: how long, to the precision a person reads a log with."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s < 600 else f"{round(seconds / 60)} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def maybe_progress(show: bool, transient: bool = True, field: str = "rate") -> Progress | PlainProgress | NullProgress:
    """``progress_bar(...)`` (rich on a terminal, else plain lines) when ``show``, else a ``NullProgress``."""
    return progress_bar(transient, field) if show else NullProgress()


def batched_encode(
    encode_batch: Callable[[Sequence[str], int], np.ndarray],
    texts: Sequence[str],
    batch_size: int,
    dim: int,
    label: str,
    show_progress: bool | None = None,
) -> np.ndarray:
    """Encode ``texts`` in chunks of ``8 * batch_size``, showing progress when ``show_progress``
    (default: inputs of at least ``PROGRESS_THRESHOLD`` texts)."""
    texts = list(texts)
    if not texts:
        return np.empty((0, dim), dtype=np.float32)
    show = len(texts) >= PROGRESS_THRESHOLD if show_progress is None else show_progress
    if not show:
        return np.asarray(encode_batch(texts, batch_size), dtype=np.float32)
    out = np.empty((len(texts), dim), dtype=np.float32)
    chunk = max(batch_size, 1) * 8
    started = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(label, total=len(texts), rate="")
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            out[start : start + len(part)] = encode_batch(part, batch_size)
            took, done = time.perf_counter() - started, start + len(part)
            bar.update(task, advance=len(part), rate=f"{done / took:,.0f} texts/s" if took > 0 else "")
    return out
