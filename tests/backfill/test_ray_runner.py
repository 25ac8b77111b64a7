"""RayExecutor: a backfill on Ray Data actors stores exactly what the local runner stores (same checksum), in
plan order, refuses another model before writing anything, and pauses/resumes like the local runner.

Real model (the bundled ``static`` encoder) on 300 real Debian documents; one local Ray instance for the module.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from hotswap.backfill import BackfillRunner, LocalExecutor, gallery_checksum, plan_backfill, request_pause  # noqa: E402
from hotswap.backfill.ray_runner import RayExecutor  # noqa: E402
from hotswap.data import load_dataset  # noqa: E402
from hotswap.encoders import load_encoder  # noqa: E402
from hotswap.errors import ModelMismatchError  # noqa: E402
from hotswap.store import create_store  # noqa: E402
from hotswap.upgrade import create_upgrade

pytestmark = pytest.mark.realmodel

N_DOCS, BATCH, OLD_MODEL, OLD_DIM = 300, 32, "old@test", 24


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the whole module (actors start per ``map`` call, Ray itself once)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, ignore_reinit_error=True)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    return load_dataset("debian", max_docs=N_DOCS).corpus


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("static")


def fetcher(corpus):
    return lambda ids: [corpus[i] for i in ids]


def make_upgrade(path, corpus, encoder):
    """An old index of the corpus (random vectors of a made-up old model), an upgrade to ``static``, a random plan."""
    ids = sorted(corpus)
    X = np.random.default_rng(0).standard_normal((len(ids), OLD_DIM)).astype(np.float32)
    old = create_store(path / "old", model_id=OLD_MODEL, dim=OLD_DIM)
    old.add(ids, X / np.linalg.norm(X, axis=1, keepdims=True), model_id=OLD_MODEL)
    up = create_upgrade(path / "upgrade", old, new_model_id=encoder.id, new_dim=encoder.dim)
    plan_backfill(up, "random", encoder, fetcher(corpus), seed=0)
    return up


@pytest.fixture(scope="module")
def local_checksum(tmp_path_factory, corpus, encoder):
    up = make_upgrade(tmp_path_factory.mktemp("local"), corpus, encoder)
    status = BackfillRunner(up, fetcher(corpus), LocalExecutor(encoder), BATCH, progress=False).run()
    assert status.state == "done" and status.done == N_DOCS
    return gallery_checksum(up)


def test_ray_backfill_stores_what_the_local_runner_stores(tmp_path, ray_cluster, corpus, encoder, local_checksum):
    up = make_upgrade(tmp_path, corpus, encoder)
    ex = RayExecutor("static", num_actors=2, expected_model_id=up.new_model_id)
    status = BackfillRunner(up, fetcher(corpus), ex, BATCH, progress=False).run()
    assert (status.state, status.done, status.total) == ("done", N_DOCS, N_DOCS)
    assert gallery_checksum(up) == local_checksum
    runner = BackfillRunner(up, fetcher(corpus), ex, BATCH, progress=False)
    assert up.new.ids == runner.plan_ids()  # committed in plan order
    assert len(up.new.manifest.segments) == -(-N_DOCS // BATCH)  # one segment per plan batch, same boundaries


def test_map_yields_every_batch_in_input_order_with_its_ids(ray_cluster, corpus, encoder):
    ids = sorted(corpus)
    sizes = [1, 17, 64, 3, 40, 2, 90, 5, 30, 48]  # uneven batches; window 2 keeps refilling the feed
    batches, start = [], 0
    for n in sizes:
        batches.append((ids[start:start + n], [corpus[i] for i in ids[start:start + n]]))
        start += n
    ex = RayExecutor("static", num_actors=2, window=2)
    assert ex.model_id == encoder.id
    out = list(ex.map(iter(batches)))  # a lazy iterator, as BackfillRunner passes
    assert [o[0] for o in out] == [b[0] for b in batches]
    for (_, items), (_, X) in zip(batches, out, strict=True):
        np.testing.assert_array_equal(X, encoder.encode(items, show_progress=False))
    assert list(ex.map(iter([]))) == []  # nothing to encode: no actor started


@pytest.mark.filterwarnings("ignore:The minimum number of concurrent actors")  # one batch for two actors
def test_model_mismatch_is_refused_before_anything_is_written(tmp_path, ray_cluster, corpus, encoder):
    up = make_upgrade(tmp_path, corpus, encoder)
    wrong = RayExecutor("static", expected_model_id="static@000000000000")
    with pytest.raises(ModelMismatchError, match="static@000000000000"):
        wrong.map(iter([]))  # refused when map is called, before a batch is fetched or an actor started
    with pytest.raises(ModelMismatchError):
        BackfillRunner(up, fetcher(corpus), wrong, BATCH, progress=False).run()
    assert len(up.new) == 0

    # a worker node whose installed weights differ from the driver's: its first result is refused
    other_weights = RayExecutor("static")
    other_weights._model_id = "static@ffffffffffff"  # what the driver believes the actors load
    ids = sorted(corpus)[:BATCH]
    with pytest.raises(ModelMismatchError, match="Ray actor encoded with"):
        next(other_weights.map(iter([(ids, fetcher(corpus)(ids))])))


def test_pause_then_resume_on_ray_equals_a_clean_local_run(tmp_path, ray_cluster, corpus, encoder, local_checksum):
    up = make_upgrade(tmp_path, corpus, encoder)
    ex = RayExecutor("static", num_actors=2, window=4)
    seen = []

    def pause_after_two(status):
        seen.append(status.done)
        if len(seen) == 2:
            request_pause(up.path)

    first = BackfillRunner(up, fetcher(corpus), ex, BATCH, progress=False).run(on_batch=pause_after_two)
    assert (first.state, first.done) == ("paused", 2 * BATCH)  # stopped after the current batch
    second = BackfillRunner(up, fetcher(corpus), ex, BATCH, progress=False).run()
    assert (second.state, second.done) == ("done", N_DOCS)
    assert gallery_checksum(up) == local_checksum


def test_executor_takes_a_spec_not_an_encoder(encoder):
    with pytest.raises(TypeError, match="spec"):
        RayExecutor(encoder)
    with pytest.raises(ValueError):
        RayExecutor("static", num_actors=0)


def test_items_travel_without_pickle():
    from hotswap.backfill.ray_runner import pack_items, unpack_items

    texts = ["a", "ünïcode", ""]
    assert pack_items(texts)[:1] == b"J" and unpack_items(pack_items(texts)) == texts
    images = [np.full((2, 3), i, np.uint8) for i in range(4)]
    back = unpack_items(pack_items(images))
    assert pack_items(images)[:1] == b"N" and all((a == b).all() and a.dtype == b.dtype for a, b in zip(images, back))
    with pytest.raises(ValueError):  # objects that only a pickle could carry are refused
        pack_items([{"a": 1}, None])
