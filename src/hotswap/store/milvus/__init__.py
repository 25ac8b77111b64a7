"""milvus-lite (``milvus://PATH``): one collection per model, an alias naming the served one."""

from hotswap.store.base import Backend
from hotswap.store.milvus.store import (
                                        MilvusStore,
                                        add_model_collection,
                                        create_milvus_store,
                                        drop_model_collection,
                                        open_milvus_store,
                                        set_serving,
)

BACKEND = Backend("milvus", "database", create=create_milvus_store, open=open_milvus_store,
                  add_model=add_model_collection, drop_model=drop_model_collection, serve_model=set_serving)

__all__ = ["BACKEND", "MilvusStore", "add_model_collection", "create_milvus_store", "drop_model_collection",
           "open_milvus_store", "set_serving"]
