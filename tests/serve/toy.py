"""A toy collection for the service tests, and the server process of the kill tests.

``python -m tests.serve.toy COLLECTION PORT [DELAY [N [BATCH]]]`` (from the repository root) serves COLLECTION with the toy
encoders over HTTP on 127.0.0.1:PORT; ``DELAY`` seconds per encoder call slow the backfill down so that a
SIGKILL lands mid-upgrade.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.backfill.toy import ToyEncoder

OLD, NEW, V3 = "toy-old", "toy-new", "toy-v3"
MODELS = (OLD, NEW, V3)  # the names a toy service offers its clients


def corpus(n: int) -> dict[str, str]:
    return {f"doc-{i:04d}": f"text of doc {i}" for i in range(n)}


class ToyLoader:
    """``encoder_loader`` for ``SearchService``: ``toy-old`` (8-d), ``toy-new`` (16-d, ``delay`` s per call),
    ``toy-v3`` (12-d); one encoder per name. Picklable: a backfill worker process loads with it too."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay, self._encoders = delay, None

    def __call__(self, spec: str) -> ToyEncoder:
        if self._encoders is None:
            self._encoders = {OLD: ToyEncoder(dim=8, name=OLD), NEW: ToyEncoder(delay=self.delay, dim=16, name=NEW),
                              V3: ToyEncoder(dim=12, name=V3)}
        if spec not in self._encoders:
            from hotswap.errors import AssetMissingError
            raise AssetMissingError(f"unknown encoder {spec!r}")
        return self._encoders[spec]

    def __getstate__(self) -> dict:
        return {"delay": self.delay, "_encoders": None}


def loader(delay: float = 0.0) -> ToyLoader:
    return ToyLoader(delay)


def create(path: Path, n: int = 200, backend: str = "faiss"):
    from hotswap.serve import Collection

    return Collection.create(path, OLD, loader()(OLD), corpus(n), backend=backend)


class Services:
    """Opens toy ``SearchService``s (``Services(batch_size=8)(path, delay)``) and closes every one a test left
    open (``close()``): a database folder admits one client per process."""

    def __init__(self, **defaults) -> None:
        self.defaults, self.opened = defaults, []

    def __call__(self, path: Path, delay: float = 0.0, **kw):
        from hotswap.serve import SearchService

        svc = SearchService(path, models=MODELS, encoder_loader=loader(delay), **{**self.defaults, **kw})
        self.opened.append(svc)
        return svc

    def close(self, svc=None) -> None:
        """Close ``svc`` now, or every service still open."""
        for one in [svc] if svc is not None else list(self.opened):
            self.opened.remove(one)
            one.close()


def main(argv: list[str]) -> None:
    import uvicorn

    from hotswap.serve import SearchService, create_app

    path, port = Path(argv[0]), int(argv[1])
    delay = float(argv[2]) if len(argv) > 2 else 0.0
    n = int(argv[3]) if len(argv) > 3 else 200
    batch_size = int(argv[4]) if len(argv) > 4 else 16
    service = SearchService(path, corpus(n), models=MODELS, encoder_loader=loader(delay), batch_size=batch_size)
    print("ready", flush=True)
    uvicorn.run(create_app(service), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
