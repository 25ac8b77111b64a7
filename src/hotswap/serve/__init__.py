"""The search service: a collection served over HTTP whose embedding model is upgraded while it answers.

``Collection`` (on-disk state, ``serving.json``), ``SearchService`` (search + upgrade life cycle),
``create_app`` (FastAPI), run by ``hotswap serve --store PATH``.
"""

from hotswap.serve.collection import Collection
from hotswap.serve.service import ConflictError, SearchService

__all__ = ["Collection", "ConflictError", "SearchService", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # FastAPI is imported only by those who serve over HTTP
        from hotswap.serve.app import create_app

        return create_app
    raise AttributeError(name)
