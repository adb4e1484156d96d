"""`keystep serve`: one store, the collector routes and the JSON query API.

Every ingest route reads the body within limits and hands it to `keystep.collector.ingest.handle`,
which parses it with its wire format, finds the project by its write key, runs the pipeline and renders
the reply (CPU work: in a thread, or with `workers` set in one of that many worker processes, so that it
escapes the interpreter lock); the route then waits until the resulting spool record is fsynced before
it answers. The ingest routes are reached past FastAPI's routing and request handling (`IngestRoutes`),
which cost more than the rest of the server's work on a request. The writer thread stores spooled
records in DuckDB. Shutdown (SIGTERM) stops accepting, answers the requests in flight, flushes the
spool, drains it into the store and stops the worker processes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pydantic import Field as PydanticField
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from keystep.backends.duckdb import DuckDBBackend
from keystep.collector import keys
from keystep.collector.body import BodyError, read_body
from keystep.collector.ingest import Answer, Processed, Received, default_steps, failure, handle, warm_up
from keystep.collector.metrics import Metrics
from keystep.collector.pipeline import Step
from keystep.collector.spool import Spool, SpoolClosed, SpoolOverloaded
from keystep.collector.wire import Parsed, Route, bearer
from keystep.collector.wire.registry import WIRE_FORMATS
from keystep.collector.workers import WorkerGone, Workers
from keystep.collector.writer import Writer
from keystep.conversions.definitions import Definitions, Unit
from keystep.conversions.editing import edit_definitions
from keystep.enrich.cookieless import SaltStore, salt_day
from keystep.experiments.exposures import exposure_event, variant_for

RETRY_AFTER_S = 2
HOLD_SECONDS = 10.0  # the longest a request waits for the writer to make room before it gets 503
log = logging.getLogger("keystep.collector")


class Assignment(BaseModel):
    experiment: str
    unit_id: str = PydanticField(min_length=1, max_length=200)
    record: bool = True
    key: str | None = None


@dataclass
class Settings:
    db: Path
    spool: Path | None = None  # default: next to the database, `<db>.spool`
    definitions: Definitions = field(default_factory=Definitions)
    config: Path | None = None  # the definitions file, which the dashboard's editor writes
    max_pending_bytes: int = 512 << 20
    hold_pending_bytes: int = 48 << 20  # above it a request waits for the writer (flow control), see `_accept`
    salts: Path | None = None  # default: next to the database, `<db>.salts`
    workers: int = 0  # processes that run the pipeline; 0: threads of the server process

    @property
    def spool_dir(self) -> Path:
        return self.spool or self.db.with_name(self.db.name + ".spool")

    @property
    def salt_dir(self) -> Path:
        return self.salts or self.db.with_name(self.db.name + ".salts")


@dataclass
class Collector:
    """What the routes share while the app runs."""

    settings: Settings
    backend: DuckDBBackend
    spool: Spool
    writer: Writer
    metrics: Metrics
    steps: tuple[Step, ...]
    salt: Callable[[datetime], bytes]
    write_keys: keys.WriteKeyCache
    pool: Workers | None = None
    accepting: bool = True

    def project_now(self, secret: str) -> str | None:
        """The project of a write key, looked up in the store when not cached (call it in a thread)."""
        return self.write_keys.project(secret, time.monotonic()).project

    async def known_key(self, secret: str) -> keys.KnownKey:
        """The project of a write key, for a worker process that has not heard of it lately."""
        now = time.monotonic()
        known = self.write_keys.cached(secret, now)
        return known if known is not None else await run_in_threadpool(self.write_keys.project, secret, now)


def _freeze_startup_objects() -> None:
    """Exempt what startup made (modules, the app, caches: ~10^5 objects) from the garbage collector's
    full passes, which otherwise stop every request for tens of milliseconds now and then."""
    gc.collect()
    gc.freeze()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _daily_salt(directory: Path) -> Callable[[datetime], bytes]:
    """Today's cookieless salt; yesterday's and older are purged once a day (48 h retention)."""
    store = SaltStore(directory)
    today: dict[date, bytes] = {}

    def salt(now: datetime) -> bytes:
        day = salt_day(now)
        if day not in today:
            store.purge(now)
            today.clear()
            today[day] = store.salt_for(day)
        return today[day]

    return salt


def create_app(settings: Settings) -> FastAPI:
    state: dict[str, Collector] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = DuckDBBackend(settings.db)
        spool = Spool(settings.spool_dir, max_pending_bytes=settings.max_pending_bytes)
        metrics = Metrics()
        writer = Writer(spool, backend, on_stored=metrics.record_stored)
        writer.drain()  # what the last run acknowledged but did not store
        writer.start()
        steps = default_steps()
        pool = Workers(settings.workers) if settings.workers > 0 else None
        if pool is not None:
            await pool.start()
        else:
            await run_in_threadpool(warm_up, steps)
        state["c"] = Collector(settings, backend, spool, writer, metrics, steps,
                               _daily_salt(settings.salt_dir), keys.WriteKeyCache(backend), pool)
        app.state.collector = state["c"]
        # the funnel scan compiles (or loads from numba's cache) in the background, not on the first funnel
        from keystep.analysis import funnel_paths

        threading.Thread(target=funnel_paths.warm_up, name="funnel-warm-up", daemon=True).start()
        _freeze_startup_objects()
        try:
            yield
        finally:
            c = state.pop("c")
            c.accepting = False
            spool.close()
            writer.stop()
            writer.drain()
            backend.close()
            if pool is not None:
                await pool.close()

    app = FastAPI(title="keystep", version="0.1.0", lifespan=lifespan,
                  description="Collector (the wire formats of keystep, Segment, RudderStack, PostHog, Snowplow, "
                              "Umami, Mixpanel and GA4) and the JSON query API.")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> Response:
        """Ready to acknowledge events: the writer runs and the spool accepts."""
        c = state.get("c")
        if c is None or not c.accepting or not c.writer.alive or (c.pool is not None and not c.pool.alive):
            return JSONResponse({"status": "not ready"}, status_code=503)
        if c.spool.pending_bytes > c.spool.max_pending_bytes * 0.9:
            return JSONResponse({"status": "overloaded", "pending_bytes": c.spool.pending_bytes}, status_code=503)
        return JSONResponse({"status": "ready", "pending_bytes": c.spool.pending_bytes,
                             "writer_error": c.writer.last_error})

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        c = state["c"]
        c.metrics.pending.set(c.spool.pending_bytes)
        return Response(generate_latest(c.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    endpoints: dict[str, tuple[frozenset[str], Endpoint]] = {}
    for routes in WIRE_FORMATS:
        for route in routes:
            endpoint = _ingest_endpoint(route, state)
            app.add_api_route(route.path, endpoint, methods=list(route.methods),
                              tags=["collect"], name=route.name or route.path, include_in_schema=True)
            endpoints[route.path] = (frozenset(route.methods), endpoint)
    app.add_middleware(IngestRoutes, endpoints=endpoints)  # added first: inside the dashboard's middleware

    @app.post("/api/v1/assign", tags=["experiments"])
    async def assign(request: Request, body: Assignment) -> Response:
        """The variant a unit sees in an experiment (GrowthBook-compatible hashing), recorded as its exposure
        unless `record` is false. Authenticated with the project's write key, as browsers call it."""
        c = state["c"]
        try:
            experiment = c.settings.definitions.experiment(body.experiment)
        except KeyError as exc:
            return _error(404, str(exc.args[0]))
        variant = variant_for(experiment, body.unit_id)
        recorded = False
        headers = {k.lower(): v for k, v in request.headers.items()}
        key = bearer(headers) or headers.get("x-keystep-key") or body.key
        if variant is not None and body.record:
            event = exposure_event(experiment, body.unit_id, variant, user=experiment.unit is Unit.USER)
            received = _received(c, "/api/v1/assign", request, headers, b"", Parsed([event], write_key=key))
            processed = await _accept(c, None, received)
            if isinstance(processed, _Refusal):
                return _error(503, processed.message, **_RETRY)
            if processed.refused:
                return _response(processed.answer)
            recorded = bool(processed.accepted)
        return JSONResponse({"experiment": experiment.key, "unit_id": body.unit_id, "variant": variant,
                             "in_experiment": variant is not None, "recorded": recorded})

    from keystep.api.routes import add_query_routes

    def edit(change: Callable[[Any], None]) -> Definitions:
        if settings.config is None:
            raise ValueError("the server runs without a definitions file (start it with --config)")
        settings.definitions = edit_definitions(settings.config, change)
        return settings.definitions

    add_query_routes(app, lambda: state["c"].backend, lambda: state["c"].settings.definitions,
                     edit if settings.config is not None else None)

    from keystep.web.app import Dashboard, add_dashboard

    def set_definitions(definitions: Definitions) -> None:
        settings.definitions = definitions

    add_dashboard(app, Dashboard(lambda: state["c"].backend, lambda: settings.definitions, set_definitions,
                                 lambda: settings.config))
    return app


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


Endpoint = Callable[[Request], Awaitable[Response]]


class IngestRoutes:
    """The ingest routes' requests straight to their endpoints, past FastAPI's routing and request handling
    (route matching, dependency resolution, exception wrapping: more per request than the rest of the
    server's work on it); every other request, and an ingest path with another method (405), to the app.
    The endpoints are the same ones FastAPI routes to (and documents in the OpenAPI schema)."""

    def __init__(self, app: ASGIApp, endpoints: dict[str, tuple[frozenset[str], Endpoint]]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.endpoints.get(scope["path"])
            if found is not None and scope["method"] in found[0]:
                response = await found[1](Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _response(answer: Answer, **headers: str) -> Response:
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type, headers=headers or None)


def _ingest_endpoint(route: Route, state: dict[str, Collector]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        c = state.get("c")
        if c is None or not c.accepting:
            return _response(failure(route, 503, "shutting down"), **_RETRY)
        started = time.perf_counter()
        response = await _ingest(c, route, request)
        c.metrics.requests.labels(route.path, str(response.status_code)).inc()
        c.metrics.latency.labels(route.path).observe(time.perf_counter() - started)
        return response

    endpoint.__doc__ = f"Collect events ({route.name or route.path})."
    return endpoint


async def _ingest(c: Collector, route: Route, request: Request) -> Response:
    scope = request.scope
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        body = await read_body(headers, request.stream())
    except BodyError as exc:
        return _response(failure(route, exc.status, exc.message))
    processed = await _accept(c, route, _received(c, route.path, request, headers, body))
    if isinstance(processed, _Refusal):
        return _response(failure(route, 503, processed.message), **_RETRY)
    m = c.metrics
    if not processed.refused:
        m.received.labels(route.path).inc(processed.received)
    if not (processed.refused or processed.validate_only):
        m.accepted.labels(route.path).inc(processed.accepted)
        for reason in processed.rejected:
            m.rejected.labels(reason).inc()
        for reason, n in processed.dropped.items():
            m.dropped.labels(reason).inc(n)
        m.warnings.inc(processed.warned)
    return _response(processed.answer)


_RETRY = {"Retry-After": str(RETRY_AFTER_S)}


async def _room_in_spool(c: Collector) -> bool:
    """Wait while the spool holds more unstored bytes than `hold_pending_bytes`: True once it holds fewer,
    False after `HOLD_SECONDS` or when the server stops accepting. (Polled: the writer stores a chunk in
    a few tenths of a second, and a request that need not wait costs one look.)"""
    deadline = time.monotonic() + HOLD_SECONDS
    while c.spool.pending_bytes > c.settings.hold_pending_bytes:
        if not c.accepting or time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@dataclass(frozen=True)
class _Refusal:
    """The server could not take the request (503: retry later); nothing of it was acknowledged."""

    message: str


def _received(c: Collector, path: str, request: Request, headers: dict[str, str], body: bytes,
              parsed: Parsed | None = None) -> Received:
    received_at = _now()
    client = request.scope.get("client")
    return Received(path=path, method=request.method, headers=headers,
                    query=request.scope.get("query_string", b"").decode("latin-1"), body=body,
                    received_at=received_at, ip=client[0] if client else None, salt=c.salt(received_at),
                    parsed=parsed)


async def _accept(c: Collector, route: Route | None, received: Received) -> Processed | _Refusal:
    """The request through its wire format and the pipeline (in a thread or a worker process); then, when
    there is something to store, the wait for the fsync of its spool record.

    Flow control first: while more than `hold_pending_bytes` wait in the spool to be stored, the request
    waits (up to `HOLD_SECONDS`, then 503) before its body is processed. So the server acknowledges no
    faster than its one writer stores, rather than letting the spool grow until requests are refused:
    the writer, the one stage that cannot be run twice, gets the cores it needs, and the pipeline
    workers the rest."""
    if not await _room_in_spool(c):
        return _Refusal("the store is behind; nothing was acknowledged, retry")
    if c.pool is None:
        processed = await run_in_threadpool(handle, received, route, c.project_now, c.steps)
    else:
        try:
            processed = await c.pool.run(received, c.known_key)
        except WorkerGone as exc:
            return _Refusal(f"{exc}; nothing was acknowledged, retry")
    if processed.record is not None:
        try:
            future = c.spool.append(processed.record)
        except (SpoolOverloaded, SpoolClosed) as exc:
            return _Refusal(f"busy, retry later ({exc})")
        try:
            await asyncio.wrap_future(future)
        except OSError as exc:
            return _Refusal(f"could not write the spool ({exc}); nothing was acknowledged")
    return processed
