"""PostgreSQL + pgvector: a user's server (``postgres://user@host:port/db?table=NAME``) or an embedded one that
hotswap starts in a folder (``pg://PATH``); one table per model, state in the database (``store.py``)."""

from hotswap.store.base import Backend
from hotswap.store.pg.server import Target, target
from hotswap.store.pg.store import (
                                    PgStore,
                                    add_model_table,
                                    adopt_table,
                                    create_pg_store,
                                    drop_model_table,
                                    open_pg_store,
                                    set_serving_model,
)

BACKEND = Backend("postgres", "database", create=create_pg_store, open=open_pg_store, add_model=add_model_table,
                  drop_model=drop_model_table, serve_model=set_serving_model, adopt=adopt_table)

__all__ = ["BACKEND", "PgStore", "Target", "add_model_table", "adopt_table", "create_pg_store", "drop_model_table",
           "open_pg_store", "set_serving_model", "target"]
