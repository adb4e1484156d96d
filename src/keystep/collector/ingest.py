"""One ingest request through its wire format and the pipeline, into one spool record: pure, no I/O.

The steps, in order: the per-event size limit and unreadable batch items first, then the string
clean-up, the event name, the clock, the canonical columns, the enrichment from URL, referrer and user
agent (dropping bots and referrer spam), the cookieless visitor id, the visitor id, the event id, and
`finalize`. The accepted events become one Arrow table (`keystep.collector.record`), built here, once.

`handle` is what an ingest request needs once the server has read its body (`Received`): the body
inflated and parsed by the route's wire format, the write key checked and its project found, the
pipeline run, and the answer rendered — the spool record, the reply as bytes, and the counts for the
metrics (`Processed`). It runs in a thread of the server process, or (`keystep serve --workers N`) in
one of N worker processes (`keystep.collector.workers`), since it is CPU work under Python's
interpreter lock. The project of a write key comes from a function it is given: in a thread the
server's key cache, in a worker a table of the keys the server told it about, which raises
`UnknownKey` for a key it has not heard of lately (the server then looks it up and sends the request
again with the key).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pyarrow as pa

from keystep.collector import keys
from keystep.collector.body import BodyError, inflate
from keystep.collector.pipeline import (
    Context,
    Drop,
    Incoming,
    Outcome,
    Rejection,
    Step,
    assign_event_id,
    check_columns,
    finalize,
    raw_json,
    require_event,
    require_visitor,
    run_pipeline,
)
from keystep.collector.record import encode_record, event_table
from keystep.collector.wire import Parsed, Reply, Request, Route, WireError
from keystep.enrich import ENRICHMENT_STEPS
from keystep.enrich.clock import correct_time
from keystep.events.timestamps import TimestampError, parse_timestamp

MAX_EVENT = 32 << 10  # bytes of one event as JSON
log = logging.getLogger("keystep.collector")


def limit_event(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    if "_reject" in event:
        return Drop("unreadable_item", str(event["_reject"]))
    if "_skip" in event:  # a batch item that is no event (identify, alias): its place in the batch kept
        return Drop(str(event["_skip"]), rejected=False)
    try:
        size = len(orjson.dumps(event, default=str))
    except TypeError:  # a lone surrogate (the string clean-up, next, replaces it): measured as the same JSON
        size = len(json.dumps(event, default=str, ensure_ascii=False, separators=(",", ":"))
                   .encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT:
        return Drop("event_too_large", f"the event is {size:,} bytes as JSON; at most {MAX_EVENT:,} are accepted")
    return event


def default_steps() -> tuple[Step, ...]:
    first, *enrichment = ENRICHMENT_STEPS  # clean_strings, then URL, channel, user agent, bots, spam, id
    return (limit_event, first, require_event, correct_time, check_columns, *enrichment, require_visitor,
            assign_event_id, finalize)


@dataclass(frozen=True, slots=True)
class Ingested:
    outcome: Outcome
    record: bytes | None  # None: nothing to store (everything dropped, or a validation request)


def compute_record(parsed: Parsed, context: Context, steps: Sequence[Step]) -> Ingested:
    outcome = run_pipeline(parsed.events, context, steps)
    if parsed.validate_only or not (outcome.accepted or outcome.rejected or parsed.identities):
        return Ingested(outcome, None)
    table = _accepted_table(outcome, parsed)
    rejected = [
        {"project": context.project, "received_at": context.received_at, "source": context.route,
         "location": f"batch index {r.index}", "field": r.drop.field, "reason": r.drop.detail or r.drop.reason,
         "raw": r.raw}
        for r in outcome.rejected
    ]
    identities = [_identity(i, context) for i in parsed.identities]
    record = encode_record(table, rejected, [i for i in identities if i is not None])
    return Ingested(outcome, record)


def _accepted_table(outcome: Outcome, parsed: Parsed) -> pa.Table:
    """The accepted events as one Arrow table. The steps leave every value fit for its column; should one
    not be (a step's bug), that event is rejected alone rather than the request failing or the record
    poisoning the spool."""
    try:
        return event_table(outcome.accepted)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    kept: list[dict[str, Any]] = []
    kept_index: list[int] = []
    for event, index in zip(outcome.accepted, outcome.accepted_index, strict=True):
        try:
            event_table([event])
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            log.error("batch index %d: a canonical value does not fit its column (%s)", index, exc)
            drop = Drop("unreadable_event", f"could not store the event ({type(exc).__name__}: {exc})")
            outcome.rejected.append(Rejection(index, drop, raw_json(parsed.events[index])))
        else:
            kept.append(event)
            kept_index.append(index)
    outcome.accepted[:], outcome.accepted_index[:] = kept, kept_index
    outcome.rejected.sort(key=lambda r: r.index)
    return event_table(kept)


def _identity(link: dict[str, Any], context: Context) -> dict[str, Any] | None:
    visitor, user = link.get("visitor_id"), link.get("user_id")
    if not visitor or not user:
        return None
    try:
        ts = parse_timestamp(link["ts"]) if link.get("ts") is not None else context.received_at
    except TimestampError:
        ts = context.received_at
    return {"project": context.project, "visitor_id": str(visitor)[:200], "user_id": str(user)[:200], "ts": ts,
            "source": link.get("source")}


def response_body(outcome: Outcome) -> dict[str, Any]:
    """The default reply: what was accepted, and which items were rejected and why."""
    return {
        "accepted": len(outcome.accepted),
        "rejected": [{"index": r.index, "reason": r.drop.reason, "field": r.drop.field, "detail": r.drop.detail}
                     for r in outcome.rejected],
        "dropped": sum(outcome.dropped.values()),
        "warnings": [{"index": i, "warning": w} for i, w in outcome.warnings],
    }


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply rendered for the wire, as Starlette renders a `Response`/`JSONResponse`."""

    status: int
    body: bytes
    media_type: str | None


def render(reply: Reply) -> Answer:
    if isinstance(reply.body, bytes):
        return Answer(reply.status, reply.body, reply.media_type)
    if reply.body is None:
        return Answer(reply.status, b"", None)
    return Answer(reply.status, _REPLY.encode(reply.body).encode("utf-8"), "application/json")


# `json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))`, Starlette's
# JSONResponse, with one encoder made once (json.dumps makes one per call for these options)
_REPLY = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def failure(route: Route | None, status: int, message: str) -> Answer:
    """An error reply: in the route's own form when its clients need one (Mixpanel's read `status`), else
    `{"error": message}`."""
    if route is None or route.fail is None:
        return render(Reply(status, {"error": message}))
    return render(route.fail(status, message))


@dataclass(frozen=True, slots=True)
class Processed:
    """What an ingest request keeps of its pipeline run (small enough to send between processes)."""

    record: bytes | None  # the spool record; None: nothing to store
    answer: Answer  # the reply, sent once the record is fsynced
    refused: bool = False  # the whole request was refused (bad body, no or wrong key): `answer` says why
    validate_only: bool = False  # a validation request: its events are counted only as received
    received: int = 0  # events in the body
    accepted: int = 0
    rejected: list[str] = field(default_factory=list)  # the reason of each rejected event
    dropped: Counter[str] = field(default_factory=Counter)
    warned: int = 0  # events with at least one warning


def process(route: Route | None, parsed: Parsed, context: Context, steps: Sequence[Step]) -> Processed:
    """The pipeline for one request, and its reply in the route's form (`route` None: the native reply).
    A validation request (GA4's debug route) stores nothing and counts only as received."""
    ingested = compute_record(parsed, context, steps)
    outcome = ingested.outcome
    reply = route.respond(outcome) if route is not None and route.respond else Reply(body=response_body(outcome))
    if parsed.validate_only:
        return Processed(None, render(reply), validate_only=True, received=len(parsed.events))
    return Processed(ingested.record, render(reply), received=len(parsed.events), accepted=len(outcome.accepted),
                     rejected=[r.drop.reason for r in outcome.rejected], dropped=outcome.dropped,
                     warned=len({i for i, _ in outcome.warnings}))


# -- a whole request -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """An ingest request as the server read it (within the size limit), with the facts only the server
    knows; sent as it is to a worker process."""

    path: str  # the route's path
    method: str
    headers: Mapping[str, str]  # lower-case names
    query: str  # the query string, as sent
    body: bytes  # as on the wire: maybe gzip
    received_at: datetime  # naive UTC
    ip: str | None
    salt: bytes  # today's cookieless salt
    parsed: Parsed | None = None  # events the server made itself (experiment exposures): no body to parse


class UnknownKey(Exception):
    """The project of this write key is not known here: the server looks it up and asks again."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


Projects = Callable[[str], str | None]  # write key -> its project (None: no such active key), or UnknownKey


def handle(received: Received, route: Route | None, projects: Projects, steps: Sequence[Step]) -> Processed:
    """One ingest request: its body read by the route's wire format, the write key checked, the pipeline."""
    parsed = received.parsed if received.parsed is not None else _parse(received, route)
    if isinstance(parsed, Answer):
        return Processed(None, parsed, refused=True)
    if not parsed.write_key:
        return Processed(None, failure(route, 401, "no write key: send the project's write key"), refused=True)
    if keys.key_kind(parsed.write_key) is keys.KeyKind.READ:
        return Processed(None, failure(route, 403, "a read key cannot send events; use the project's write key"),
                         refused=True)
    project = projects(parsed.write_key)
    if project is None:
        return Processed(None, failure(route, 401, "unknown or revoked write key"), refused=True)
    context = Context(project=project, received_at=received.received_at, route=received.path, ip=received.ip,
                      user_agent=_browser_agent(received.headers.get("user-agent")), sent_at=parsed.sent_at,
                      salt=received.salt)
    return process(route, parsed, context, steps)


def _parse(received: Received, route: Route | None) -> Parsed | Answer:
    assert route is not None, "a request without a route carries its events"
    headers = received.headers
    try:
        body = inflate(received.body, headers)
    except BodyError as exc:
        return failure(route, exc.status, exc.message)
    form: dict[str, str] = {}
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    query = dict(parse_qsl(received.query, keep_blank_values=True))
    request = Request(method=received.method, path=received.path, body=body, headers=headers, query=query, form=form)
    try:
        return route.parse(request)
    except WireError as exc:
        return failure(route, 400, str(exc))
    except Exception as exc:  # a shape the parser did not foresee is bad input too, never a 5xx
        log.exception("parsing a %s body failed", route.path)
        return failure(route, 400, f"could not read the body ({type(exc).__name__}: {exc})")


def _browser_agent(header: str | None) -> str | None:
    """The request's User-Agent stands for its events only when a browser sent it: a server-side SDK's
    (`analytics-python/2.3`, `python-httpx`) says nothing about the visitor and must not mark its events
    as bots. Server SDKs pass the visitor's user agent in the payload instead."""
    return header if header and header.startswith("Mozilla/") else None


def warm_up(steps: Sequence[Step]) -> None:
    """Run one made-up request through the steps and the record encoding, so that what loads on first use
    (pyarrow's pandas bridge, the user-agent parser's rules) loads before the first real request."""
    event = {"event": "page_view", "visitor_id": "warm-up", "url": "https://example.com/?utm_source=x",
             "referrer": "https://www.google.com/", "properties": {"k": "v"},
             "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"}
    context = Context(project="warm-up", received_at=datetime.now(UTC).replace(tzinfo=None), route="warm-up")
    compute_record(Parsed([event]), context, steps)
