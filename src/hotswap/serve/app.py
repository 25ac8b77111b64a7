"""The HTTP face of ``SearchService`` (FastAPI): search, upgrade control, status, health and Prometheus metrics.

Endpoints (OpenAPI docs at ``/docs``)::

    POST /search                 {"query": "..."} or {"queries": [...]}, "k", optional "mode" -> ids + scores;
                                 mode "cascade" takes "candidates", "encode_budget", "candidate_query"
    POST /upgrade                {"model": "minilm", "adapter": null, "order": "random", "cascade": {...} or null}
                                 -> starts the backfill (with "cascade", cascade is the default mode meanwhile)
    POST /upgrade/pause|resume|rollback|commit
    POST /query-model            {"model": "mpnet", "adapters": [v3->v2, v2->v1]}: new-model queries on the
                                 unchanged index (no re-embedding); POST /query-model/reset to stop
    GET  /status                 models, % backfilled, items/s, ETA, current search mode, cascade counts
    GET  /healthz                200 while the service can answer
    GET  /metrics                Prometheus text format

Errors: malformed bodies 422 (pydantic, naming the field), bodies over 1 MiB 413, a state that forbids the action
409 (``ConflictError``), any other refusal of hotswap's (wrong model, unknown mode, missing adapter) 400 with
its message. Every error body is ``{"detail": message}``. Handlers are plain ``def``: FastAPI runs them in its
thread pool, so a search never waits for an upgrade's control call and vice versa.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hotswap.errors import HotswapError
from hotswap.serve.schemas import (MAX_BODY_BYTES, Hit, QueryModelRequest, SearchRequest, SearchResponse,
                                   UpgradeRequest)
from hotswap.serve.service import ConflictError, SearchService


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


def create_app(service: SearchService) -> FastAPI:
    """The FastAPI app serving ``service`` (closes it, pausing any backfill after its batch, at shutdown)."""
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        service.close()

    app = FastAPI(title="hotswap search service", version="1", lifespan=lifespan,
                  description="Semantic search whose embedding model can be upgraded while it answers.")
    app.state.service, registry = service, CollectorRegistry()
    m = _metrics(registry)

    @app.middleware("http")
    async def limit_and_count(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            response = JSONResponse({"detail": f"request body of {length} bytes is over the {MAX_BODY_BYTES}-byte "
                                               "limit; send fewer or shorter queries"}, status_code=413)
        else:
            response = await call_next(request)
        route = request.scope.get("route")  # the matched route's path: unknown URLs must not grow the label set
        m["requests"].labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    @app.exception_handler(ConflictError)
    async def conflict(_: Request, e: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=409)

    @app.exception_handler(HotswapError)
    async def refused(_: Request, e: HotswapError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.post("/search", response_model=SearchResponse)
    def search(body: SearchRequest) -> SearchResponse:
        started = time.perf_counter()
        mode, D, I = service.search(body.texts, body.k, body.mode, candidates=body.candidates,
                                    encode_budget=body.encode_budget, candidate_query=body.candidate_query)
        m["latency"].labels(mode).observe(time.perf_counter() - started)
        results = [[Hit(id=i, score=float(d)) for d, i in zip(drow, irow) if i is not None] for drow, irow in zip(D, I)]
        model = (service.encoder.id if mode == "old" else service.new_encoder.id if service.new_encoder is not None
                 else service.query_encoder.id)
        return SearchResponse(mode=mode, model_id=model, results=results)

    @app.post("/upgrade")
    def upgrade(body: UpgradeRequest) -> dict:
        cascade = None if body.cascade is None else body.cascade.model_dump(exclude_none=True)
        return service.start_upgrade(body.model, body.adapter, body.order, body.batch_size, body.seed, cascade)

    for action in ("pause", "resume", "rollback", "commit"):
        app.post(f"/upgrade/{action}", name=f"upgrade_{action}")(_control(service, action))

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
        return {"ok": True, "model_id": service.encoder.id, "items": len(service.index)}

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
