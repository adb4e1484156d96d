"""One request's events through the pipeline, into one spool record: pure, no I/O.

The steps, in order: the per-event size limit and unreadable batch items first, then the string
clean-up, the event name, the clock, the canonical columns, the enrichment from URL, referrer and user
agent (dropping bots and referrer spam), the cookieless visitor id, the visitor id, the event id, and
`finalize`. The accepted events become one Arrow table (`keystep.collector.record`), built here, once.

`process` is what an ingest request needs from the pipeline: the spool record, the reply in the route's
form, and the counts for the metrics. It runs in a thread of the server process, or (`keystep serve
--workers N`) in one of N worker processes (`keystep.collector.workers`), since it is CPU work under
Python's interpreter lock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

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
from keystep.collector.wire import Parsed, Reply, Route
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
    size = len(orjson.dumps(event, default=str))
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
class Processed:
    """What an ingest request keeps of its pipeline run (small enough to send between processes)."""

    record: bytes | None  # the spool record; None: nothing to store
    reply: Reply  # the answer, once the record is fsynced
    accepted: int
    rejected: list[str] = field(default_factory=list)  # the reason of each rejected event
    dropped: Counter[str] = field(default_factory=Counter)
    warned: int = 0  # events with at least one warning


def process(route: Route | None, parsed: Parsed, context: Context, steps: Sequence[Step]) -> Processed:
    """The pipeline for one request, and its reply in the route's form (`route` None: the native reply)."""
    ingested = compute_record(parsed, context, steps)
    outcome = ingested.outcome
    reply = route.respond(outcome) if route is not None and route.respond else Reply(body=response_body(outcome))
    return Processed(ingested.record, reply, len(outcome.accepted), [r.drop.reason for r in outcome.rejected],
                     outcome.dropped, len({i for i, _ in outcome.warnings}))


def warm_up(steps: Sequence[Step]) -> None:
    """Run one made-up request through the steps and the record encoding, so that what loads on first use
    (pyarrow's pandas bridge, the user-agent parser's rules) loads before the first real request."""
    from datetime import UTC, datetime

    event = {"event": "page_view", "visitor_id": "warm-up", "url": "https://example.com/?utm_source=x",
             "referrer": "https://www.google.com/", "properties": {"k": "v"},
             "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"}
    context = Context(project="warm-up", received_at=datetime.now(UTC).replace(tzinfo=None), route="warm-up")
    compute_record(Parsed([event]), context, steps)
