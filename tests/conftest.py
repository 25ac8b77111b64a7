"""Shared fixtures. Real-model tests are marked ``realmodel`` (small, run in CI) or ``slow`` (opt-in)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# milvus-lite's gRPC installs fork handlers that can abort a forked child while its threads run; the pg backend
# forks (pg_ctl, run as another user) from the same test process, and a child that execs needs none of them
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = rng.standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def pg_server_uri(tmp_path_factory):
    """The URI of a PostgreSQL server (an embedded one, started once per session) standing in for a user's own:
    tests address it as ``postgres://...?table=NAME`` like any server."""
    pytest.importorskip("pgserver")
    from hotswap.store.pg.server import Target, connect, release

    t = Target("seed", folder=tmp_path_factory.mktemp("pg-server"))
    yield connect(t).server.get_uri()
    release(t)


def postgres_uri(server_uri: str, folder) -> str:
    """A store URI on ``server_uri`` whose table name is unique to ``folder`` (a test's tmp path)."""
    import hashlib

    return f"{server_uri}{'&' if '?' in server_uri else '?'}table=t_{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}"
