"""One request's events through the pipeline, into one spool record: pure, no I/O.

The steps, in order: the per-event size limit and unreadable batch items first, then the string
clean-up, the event name, the clock, the canonical columns, the enrichment from URL, referrer and user
agent (dropping bots and referrer spam), the cookieless visitor id, the visitor id, the event id, and
`finalize`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from keystep.collector.pipeline import (
    Context,
    Drop,
    Incoming,
    Outcome,
    Step,
    assign_event_id,
    check_columns,
    finalize,
    require_event,
    require_visitor,
    run_pipeline,
)
from keystep.collector.wire import Parsed
from keystep.collector.writer import encode_record
from keystep.enrich import ENRICHMENT_STEPS
from keystep.enrich.clock import correct_time
from keystep.events.timestamps import TimestampError, parse_timestamp

MAX_EVENT = 32 << 10  # bytes of one event as JSON


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
    rejected = [
        {"project": context.project, "received_at": context.received_at, "source": context.route,
         "location": f"batch index {r.index}", "field": r.drop.field, "reason": r.drop.detail or r.drop.reason,
         "raw": r.raw}
        for r in outcome.rejected
    ]
    identities = [_identity(i, context) for i in parsed.identities]
    record = encode_record(outcome.accepted, rejected, [i for i in identities if i is not None])
    return Ingested(outcome, record)


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
