"""Chunked encoding with a rich progress bar (rate and ETA) for long inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PROGRESS_THRESHOLD = 2000


def progress_bar(transient: bool = True, field: str = "rate") -> Progress:
    """A rich bar showing done/total, a free text field (``rate``: items per second) and time remaining."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(f"[cyan]{{task.fields[{field}]}}"), TimeRemainingColumn(), transient=transient,
    )


class NullProgress:
    """Stands in for ``progress_bar()`` when no bar should show: same ``with`` / ``add_task`` / ``update``."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, *args: object, **kwargs: object) -> None:
        return None


def maybe_progress(show: bool, transient: bool = True, field: str = "rate") -> Progress | NullProgress:
    """``progress_bar(...)`` when ``show``, else a ``NullProgress``."""
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
    with progress_bar() as bar:
        task = bar.add_task(label, total=len(texts), rate="")
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            out[start : start + len(part)] = encode_batch(part, batch_size)
            bar.update(task, advance=len(part))
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f} texts/s" if speed else "")
    return out
