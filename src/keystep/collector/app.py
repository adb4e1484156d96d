"""`keystep serve`: one store, the collector routes and the JSON query API.

Every ingest route reads the body within limits, parses it with its wire format, finds the project by
its write key, runs the pipeline (CPU work: in a thread, or with `workers` set in one of that many worker
processes, so that it escapes the interpreter lock) and waits until the resulting spool record is fsynced
before it answers. The writer thread stores spooled records in DuckDB. Shutdown (SIGTERM) stops
accepting, answers the requests in flight, flushes the spool, drains it into the store and stops the
worker processes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pydantic import Field as PydanticField
from starlette.concurrency import run_in_threadpool

from keystep.backends.duckdb import DuckDBBackend
from keystep.collector import keys
from keystep.collector.body import BodyError, inflate, read_body
from keystep.collector.ingest import Processed, default_steps, process, warm_up
from keystep.collector.metrics import Metrics
from keystep.collector.pipeline import Context, Step
from keystep.collector.spool import Spool, SpoolClosed, SpoolOverloaded
from keystep.collector.wire import Parsed, Reply, Route, WireError, bearer
from keystep.collector.wire import Request as WireRequest
from keystep.collector.wire.registry import WIRE_FORMATS
from keystep.collector.workers import WorkerGone, Workers
from keystep.collector.writer import Writer
from keystep.conversions.definitions import Definitions, Unit
from keystep.conversions.editing import edit_definitions
from keystep.enrich.cookieless import SaltStore, salt_day
from keystep.experiments.exposures import exposure_event, variant_for

RETRY_AFTER_S = 2
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

    for routes in WIRE_FORMATS:
        for route in routes:
            app.add_api_route(route.path, _ingest_endpoint(route, state), methods=list(route.methods),
                              tags=["collect"], name=route.name or route.path, include_in_schema=True)

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
            accepted = await _accept(c, None, "/api/v1/assign", Parsed([event], write_key=key), request, headers)
            if isinstance(accepted, _Refusal):
                return _error(accepted.status, accepted.message, **accepted.headers)
            recorded = bool(accepted.accepted)
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


def _browser_agent(header: str | None) -> str | None:
    """The request's User-Agent stands for its events only when a browser sent it: a server-side SDK's
    (`analytics-python/2.3`, `python-httpx`) says nothing about the visitor and must not mark its events
    as bots. Server SDKs pass the visitor's user agent in the payload instead."""
    return header if header and header.startswith("Mozilla/") else None


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _failure(route: Route, status: int, message: str, **headers: str) -> Response:
    """An error reply in the route's own form when its clients need one (Mixpanel's read `status`)."""
    if route.fail is None:
        return _error(status, message, **headers)
    response = _reply(route.fail(status, message))
    response.headers.update(headers)
    return response


def _ingest_endpoint(route: Route, state: dict[str, Collector]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        c = state.get("c")
        if c is None or not c.accepting:
            return _failure(route, 503, "shutting down", **{"Retry-After": str(RETRY_AFTER_S)})
        started = time.perf_counter()
        response = await _ingest(c, route, request)
        c.metrics.requests.labels(route.path, str(response.status_code)).inc()
        c.metrics.latency.labels(route.path).observe(time.perf_counter() - started)
        return response

    endpoint.__doc__ = f"Collect events ({route.name or route.path})."
    return endpoint


async def _ingest(c: Collector, route: Route, request: Request) -> Response:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        body = inflate(await read_body(headers, request.stream()), headers)
    except BodyError as exc:
        return _failure(route, exc.status, exc.message)
    form: dict[str, str] = {}
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    wire_request = _wire_request(request, body, headers, form)
    try:
        parsed = route.parse(wire_request)
    except WireError as exc:
        return _failure(route, 400, str(exc))
    except Exception as exc:  # a shape the parser did not foresee is bad input too, never a 5xx
        log.exception("parsing a %s body failed", route.path)
        return _failure(route, 400, f"could not read the body ({type(exc).__name__}: {exc})")
    accepted = await _accept(c, route, route.path, parsed, request, headers)
    if isinstance(accepted, _Refusal):
        return _failure(route, accepted.status, accepted.message, **accepted.headers)
    m = c.metrics
    m.received.labels(route.path).inc(len(parsed.events))
    if not parsed.validate_only:
        m.accepted.labels(route.path).inc(accepted.accepted)
        for reason in accepted.rejected:
            m.rejected.labels(reason).inc()
        for reason, n in accepted.dropped.items():
            m.dropped.labels(reason).inc(n)
        m.warnings.inc(accepted.warned)
    return _reply(accepted.reply)


@dataclass(frozen=True)
class _Refusal:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


async def _accept(c: Collector, route: Route | None, path: str, parsed: Parsed, request: Request,
                  headers: dict[str, str]) -> Processed | _Refusal:
    """Authorize by write key, run the pipeline and wait for the fsync of the spool record."""
    if not parsed.write_key:
        return _Refusal(401, "no write key: send the project's write key")
    if keys.key_kind(parsed.write_key) is keys.KeyKind.READ:
        return _Refusal(403, "a read key cannot send events; use the project's write key")
    now = time.monotonic()
    known, project = c.write_keys.cached(parsed.write_key, now)
    if not known:  # a look-up in the store: off the event loop
        project = await run_in_threadpool(c.write_keys.project, parsed.write_key, now)
    if project is None:
        return _Refusal(401, "unknown or revoked write key")
    received_at = _now()
    context = Context(
        project=project, received_at=received_at, route=path,
        ip=request.client.host if request.client else None, user_agent=_browser_agent(headers.get("user-agent")),
        sent_at=parsed.sent_at, salt=c.salt(received_at),
    )
    retry = {"Retry-After": str(RETRY_AFTER_S)}
    if c.pool is None:
        processed = await run_in_threadpool(process, route, parsed, context, c.steps)
    else:
        try:
            processed = await c.pool.run(route.path if route else None, parsed, context)
        except WorkerGone as exc:
            return _Refusal(503, f"{exc}; nothing was acknowledged, retry", retry)
    if processed.record is not None:
        try:
            future = c.spool.append(processed.record)
        except (SpoolOverloaded, SpoolClosed) as exc:
            return _Refusal(503, f"busy, retry later ({exc})", retry)
        try:
            await asyncio.wrap_future(future)
        except OSError as exc:
            return _Refusal(503, f"could not write the spool ({exc}); nothing was acknowledged", retry)
    return processed


def _wire_request(request: Request, body: bytes, headers: dict[str, str], form: dict[str, str]) -> WireRequest:
    return WireRequest(method=request.method, path=request.url.path, body=body, headers=headers,
                       query=dict(request.query_params), form=form)


def _reply(reply: Reply) -> Response:
    if isinstance(reply.body, bytes):
        return Response(reply.body, status_code=reply.status, media_type=reply.media_type)
    if reply.body is None:
        return Response(status_code=reply.status)
    return JSONResponse(reply.body, status_code=reply.status)
