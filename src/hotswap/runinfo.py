"""What a results file records about how it was made: versions, hardware, seed, wall time per stage."""

from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("hotswap", "numpy", "torch", "faiss-cpu", "sentence-transformers", "model2vec", "pytrec-eval-terrier")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, str | int]:
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count() or 0,
            "processor": platform.processor() or "unknown"}


class StageTimer:
    """``with timer("encode old"): ...`` accumulates wall seconds per stage in ``timer.seconds``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)
