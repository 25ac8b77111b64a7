"""Every backfill order of the library, ``popularity`` included: its query log is the client's ``queries`` or the
texts of the queries the service answered (bounded, persisted in ``queries.json``, a damaged file tolerated)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from hotswap.backfill import ORDERINGS, read_plan
from hotswap.serve import ConflictError, create_app
from hotswap.serve.query_log import QUERY_LOG_NAME, QueryLog
from hotswap.serve.schemas import UpgradeRequest
from hotswap.serve.service import SERVICE_ORDERS
from tests.serve.toy import NEW, Services, corpus, create

N = 80
service = Services(batch_size=8)


@pytest.fixture
def collection(tmp_path):
    create(tmp_path / "col", N)
    yield tmp_path / "col"
    service.close()


def test_the_service_offers_every_ordering_of_the_library():
    assert set(SERVICE_ORDERS) == set(ORDERINGS)
    for order in ORDERINGS:
        assert UpgradeRequest(model=NEW, order=order).order == order


@pytest.mark.parametrize("order", [o for o in ORDERINGS if o != "popularity"])
def test_each_other_order_plans_and_completes(collection, order):
    svc = service(collection)
    svc.start_upgrade(NEW, order=order, batch_size=16)
    svc.thread.join()
    assert svc.status()["state"] == "complete" and read_plan(svc.upgrade)["policy"] == order


def test_popularity_backfills_what_the_sent_queries_retrieve_first(collection):
    svc = service(collection, delay=0.02)
    wanted = ["doc-0005", "doc-0017", "doc-0033"]
    queries = [corpus(N)[i] for i in wanted]
    svc.start_upgrade(NEW, order="popularity", queries=queries)
    svc.pause()
    plan = read_plan(svc.upgrade)
    assert plan["policy"] == "popularity" and set(wanted) <= set(plan["ids"][:30])
    svc.rollback()


def test_popularity_without_any_query_is_409_naming_the_fix(collection):
    svc = service(collection)
    with pytest.raises(ConflictError, match="send 'queries' .* or serve some searches first"):
        svc.start_upgrade(NEW, order="popularity")
    assert svc.status()["state"] == "idle" and not list(collection.glob("upgrade-*"))
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        r = c.post("/upgrade", json={"model": NEW, "order": "popularity"})
        assert r.status_code == 409 and "serve some searches first" in r.json()["detail"]
        r = c.post("/upgrade", json={"model": NEW, "order": "random", "queries": ["x"]})
        assert r.status_code == 400 and "popularity" in r.json()["detail"]
        assert c.post("/upgrade", json={"model": NEW, "order": "popularity", "queries": [" "]}).status_code == 422
        assert c.post("/upgrade", json={"model": NEW, "order": "popularity",
                                        "queries": ["x" * 5000]}).status_code == 422
        assert c.post("/upgrade", json={"model": NEW, "order": "popularity", "queries": []}).status_code == 422
        r = c.post("/upgrade", json={"model": NEW, "order": "popularity", "queries": ["text of doc 9"]})
        assert r.status_code == 200 and r.json()["upgrade"]["order"] == "popularity"


def test_popularity_uses_the_queries_the_service_answered_across_a_restart(collection):
    svc = service(collection)
    for i in (9, 21, 9, 44):
        svc.search([f"text of doc {i}"], 3)
    assert svc.status()["queries_logged"] == 3  # distinct texts
    service.close(svc)  # saves the log
    saved = json.loads((collection / QUERY_LOG_NAME).read_text())["queries"]
    assert saved == ["text of doc 21", "text of doc 9", "text of doc 44"]  # oldest first, a repeat moves last
    again = service(collection, delay=0.02)
    again.start_upgrade(NEW, order="popularity")
    again.pause()
    assert {"doc-0009", "doc-0021", "doc-0044"} <= set(read_plan(again.upgrade)["ids"][:30])
    again.rollback()


def test_the_query_log_is_bounded_saved_in_batches_and_survives_damage(tmp_path):
    path = tmp_path / QUERY_LOG_NAME
    log = QueryLog(path, limit=3, save_every=4)
    log.add(["a", "b", "c"])
    assert not path.exists()  # fewer than save_every since the last save
    log.add(["a", "d"])
    assert log.texts() == ["c", "a", "d"] and json.loads(path.read_text())["queries"] == ["c", "a", "d"]
    log.add(["e"])
    assert QueryLog(path).texts() == ["c", "a", "d"]  # not saved yet
    assert log.save() and QueryLog(path).texts() == ["a", "d", "e"]
    for damage in ('{"queries": ["a", "b"', "[1, 2]", '{"queries": 5}', "\x00\x01"):
        path.write_text(damage)
        damaged = QueryLog(path)
        assert damaged.texts() == [] and damaged.problem
        damaged.add(["fresh"])
        assert damaged.save() and QueryLog(path).texts() == ["fresh"]


def test_a_damaged_query_log_does_not_stop_the_service(collection):
    (collection / QUERY_LOG_NAME).write_text("not json at all")
    svc = service(collection)
    assert svc.search(["text of doc 3"], 1)[2][0, 0] == "doc-0003"
    svc.start_upgrade(NEW, order="popularity")  # the query it just answered is the log
    svc.thread.join()
    assert svc.status()["state"] == "complete"
