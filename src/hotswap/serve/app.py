"""The HTTP face of ``SearchService`` (FastAPI): search, upgrade control, status, health and Prometheus metrics.

Endpoints (OpenAPI docs at ``/docs``)::

    POST /search                 {"query": "..."} or {"queries": [...]}, "k", optional "mode" -> per query a list
                                 of {"id", "score", "text" (its first 200 characters, or null)};
                                 mode "cascade" takes "candidates", "encode_budget", "candidate_query"
    POST /upgrade                {"model": "minilm", "adapter": null, "order": "random", "cascade": {...} or null,
                                 "queries": [...] or null (order "popularity": a query log)}
                                 -> starts the backfill (with "cascade", cascade is the default mode meanwhile;
                                 with a registered blend as "adapter", "blended")
    POST /upgrade/pause|resume|rollback|commit
    POST /documents              {"documents": [{"id": "...", "text": "..."}, ...]}: insert or replace; answered
                                 once durable (texts committed, every index written; during an upgrade both)
    DELETE /documents            {"ids": [...]}: delete (unknown ids are ignored)
    GET  /documents/{id}         the document's text (404 if there is none)
    POST /query-model            {"model": "mpnet", "adapters": [v3->v2, v2->v1]}: new-model queries on the
                                 unchanged index (no re-embedding); POST /query-model/reset to stop
    GET  /status                 "state" (idle, or the upgrade's: planned, backfilling, paused, interrupted,
                                 complete, failed), models, % backfilled, items/s, ETA, current search mode,
                                 cascade counts
    GET  /healthz                200 while the service can answer
    GET  /metrics                Prometheus text format

Errors: malformed bodies 422 (pydantic, naming the field; the input is never echoed back), bodies over 1 MiB
413 (counted as they arrive, chunked too), non-standard JSON 400, a state that forbids the action 409
(``ConflictError``, ``UpgradeStateError``), an unknown document 404, a search costlier than ``MAX_COST`` 422,
more than ``max_searches`` searches at once 429 with ``Retry-After``, any other refusal of hotswap's (wrong
model, unknown mode, missing adapter) 400 with its message. Hosts, origins and keys are checked first
(``hotswap.serve.guard``). Every error body is ``{"detail": message}``. Handlers are plain ``def``: FastAPI runs them in
its thread pool, so a search never waits for an upgrade's control call and vice versa.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hotswap.errors import HotswapError, UpgradeStateError
from hotswap.serve.guard import LOOPBACK, Guard
from hotswap.serve.schemas import (
    MAX_BODY_BYTES,
    MAX_COST,
    DeleteRequest,
    Hit,
    QueryModelRequest,
    SearchRequest,
    SearchResponse,
    UpgradeRequest,
    UpsertRequest,
)
from hotswap.serve.service import ConflictError, NotFoundError, SearchService


def _metrics(registry: CollectorRegistry) -> dict:
    return {
        "requests": Counter("hotswap_requests_total", "HTTP requests", ["endpoint", "status"], registry=registry),
        "latency": Histogram("hotswap_search_seconds", "search latency (encode + search + merge)", ["mode"],
                             registry=registry, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5)),
        "fraction": Gauge("hotswap_backfill_fraction", "share of the gallery re-embedded", registry=registry),
        "rate": Gauge("hotswap_backfill_items_per_second", "backfill rate", registry=registry),
        "version": Gauge("hotswap_collection_version", "serving model version", registry=registry),
        "cascade": {key: Gauge(f"hotswap_cascade_{key}", text, registry=registry) for key, text in (
            ("queries", "cascade queries answered in this upgrade"),
            ("encodes_per_query", "new-model document encodings per cascade query"),
            ("share_already_encoded", "share of cascade candidates that had a new vector before the query"),
            ("written", "documents encoded by cascade searches and written back into the backfill"),
            ("demanded", "documents asked for beyond the encode budget (the demand order's queue)"))},
    }


class Busy(Exception):
    """Every search slot is taken (HTTP 429 with ``Retry-After``)."""


def create_app(service: SearchService, *, api_key: str | None = None, read_key: str | None = None,
               allowed_hosts: Iterable[str] = LOOPBACK, max_searches: int = 8,
               queue_wait_s: float = 5.0) -> FastAPI:
    """The FastAPI app serving ``service`` (closes it, pausing any backfill after its batch, at shutdown).

    ``api_key`` (admin) and ``read_key`` protect the routes (``hotswap.serve.guard``); ``allowed_hosts`` are the
    ``Host`` names it answers; at most ``max_searches`` searches run at once, a further one waits up to
    ``queue_wait_s`` for a slot and is then refused (429)."""
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        service.close()

    app = FastAPI(title="hotswap search service", version="1", lifespan=lifespan,
                  description="Semantic search whose embedding model can be upgraded while it answers.")
    app.state.service, registry = service, CollectorRegistry()
    m = _metrics(registry)
    slots = threading.BoundedSemaphore(max_searches)
    app.add_middleware(Guard, admin_key=api_key, read_key=read_key, allowed_hosts=allowed_hosts,
                       max_body=MAX_BODY_BYTES)

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")  # the matched route's path: unknown URLs must not grow the label set
        m["requests"].labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        """422 naming each bad field and why, without the input (a client's 57 MiB must not come back)."""
        errors = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
                  for err in e.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Busy)
    async def busy(_: Request, e: Busy) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=429, headers={"Retry-After": "1"})

    @app.exception_handler(ConflictError)
    @app.exception_handler(UpgradeStateError)
    async def conflict(_: Request, e: HotswapError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=409)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, e: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(HotswapError)
    async def refused(_: Request, e: HotswapError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.post("/search", response_model=SearchResponse)
    def search(body: SearchRequest) -> SearchResponse:
        cost = sum(len(t) for t in body.texts) * body.k
        if cost > MAX_COST:
            raise HTTPException(422, f"this search costs {cost:,} (characters of all queries x k), over the limit "
                                     f"of {MAX_COST:,}; send fewer or shorter queries, or a smaller k")
        if not slots.acquire(timeout=queue_wait_s):
            raise Busy(f"all {max_searches} search slots stayed busy for {queue_wait_s:g} s; retry in a second")
        try:
            started = time.perf_counter()
            mode, D, I = service.search(body.texts, body.k, body.mode, candidates=body.candidates,
                                        encode_budget=body.encode_budget, candidate_query=body.candidate_query)
            m["latency"].labels(mode).observe(time.perf_counter() - started)
        finally:
            slots.release()
        texts = service.snippets(i for row in I for i in row)  # one batched read for the whole response
        results = [[Hit(id=i, score=float(d), text=texts.get(i)) for d, i in zip(drow, irow) if i is not None]
                   for drow, irow in zip(D, I)]
        model = (service.encoder.id if mode == "old" else service.new_encoder.id if service.new_encoder is not None
                 else service.query_encoder.id)
        return SearchResponse(mode=mode, model_id=model, results=results)

    @app.post("/upgrade")
    def upgrade(body: UpgradeRequest) -> dict:
        cascade = None if body.cascade is None else body.cascade.model_dump(exclude_none=True)
        return service.start_upgrade(body.model, body.adapter, body.order, body.batch_size, body.seed, cascade,
                                     queries=body.queries)

    for action in ("pause", "resume", "rollback", "commit"):
        app.post(f"/upgrade/{action}", name=f"upgrade_{action}")(_control(service, action))

    @app.post("/documents")
    def upsert_documents(body: UpsertRequest) -> dict:
        """Insert or replace documents; the reply means they are durable and searchable."""
        return service.upsert_documents([(d.id, d.text) for d in body.documents])

    @app.delete("/documents")
    def delete_documents(body: DeleteRequest) -> dict:
        return service.delete_documents(body.ids)

    @app.get("/documents/{doc_id:path}")
    def get_document(doc_id: str) -> dict:
        return service.get_document(doc_id)

    @app.post("/query-model")
    def query_model(body: QueryModelRequest) -> dict:
        """Serve queries of another model on the unchanged index through an adapter or a chain of them."""
        return service.set_query_model(body.model, body.adapters)

    @app.post("/query-model/reset")
    def query_model_reset() -> dict:
        return service.reset_query_model()

    @app.get("/status")
    def status() -> dict:
        return service.status()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "model_id": service.encoder.id, "items": service.items}

    @app.get("/metrics")
    def metrics() -> Response:
        s = service.status()
        up = s["upgrade"] or {}
        m["fraction"].set(up.get("fraction", 0.0))
        m["rate"].set(up.get("items_per_s") or 0.0)
        m["version"].set(s["version"])
        for key, gauge in m["cascade"].items():
            gauge.set((s.get("cascade") or {}).get(key, 0.0))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _control(service: SearchService, action: str):
    """A handler with no parameters calling ``service.<action>()`` (pause, resume, rollback, commit)."""
    def handler() -> dict:
        return getattr(service, action)()
    handler.__doc__ = getattr(SearchService, action).__doc__ or f"{action} the upgrade in progress"
    return handler
