"""qdrant-client local mode (``qdrant://PATH``): each model a named vector on the same points."""

from hotswap.store.base import Backend
from hotswap.store.qdrant.store import (
                                        QdrantStore,
                                        add_model_vector,
                                        create_qdrant_store,
                                        open_qdrant_store,
                                        remove_model_vector,
                                        serve_model_vector,
)

BACKEND = Backend("qdrant", "database", create=create_qdrant_store, open=open_qdrant_store,
                  add_model=add_model_vector, drop_model=remove_model_vector,
                  serve_model=serve_model_vector)

__all__ = ["BACKEND", "QdrantStore", "add_model_vector", "create_qdrant_store", "open_qdrant_store",
           "remove_model_vector", "serve_model_vector"]
