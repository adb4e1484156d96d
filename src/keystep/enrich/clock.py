"""When an event happened: the client's timestamp, corrected for the client's clock, never in the future.

- `ts` (ISO 8601 with or without offset, epoch seconds or milliseconds; see `keystep.events.timestamps`)
  is required to parse when given; an event without one happened when it was received.
- Clock skew: when the client says when it sent the batch (`sent_at`, per event or per request), the
  difference `received_at − sent_at` is the client's clock error plus the network delay. A difference
  under `SKEW_TOLERANCE` (150 s) is left alone (it is mostly delay); a larger one is added to `ts`, as
  Segment and PostHog do, so a phone whose clock is an hour off still files its events at the right time.
- An event more than `FUTURE_LIMIT` (23 h) after the receive time, after the correction, is clamped to
  the receive time with a warning.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from keystep.collector.pipeline import Context, Drop, Incoming
from keystep.events.timestamps import TimestampError, parse_timestamp

SKEW_TOLERANCE = timedelta(seconds=150)
FUTURE_LIMIT = timedelta(hours=23)


def _parse(value: object) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_timestamp(value)


@lru_cache(maxsize=256)
def _sent_text(text: str) -> datetime | None:
    """`_parse` of a `sent_at` text, cached: a batch's events carry the same one (an error is not cached)."""
    return _parse(text)


def correct_time(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    value = event.get("ts")
    if value is None or (isinstance(value, str) and not value.strip()):  # (`_parse`, inline: every event has one)
        event["ts"] = context.received_at
        return event
    try:
        ts = parse_timestamp(value)
    except TimestampError as exc:
        return Drop("invalid_timestamp", f"ts: {exc}", "ts")
    sent = event.get("sent_at", context.sent_at)
    if sent is not None:
        try:
            sent_at = _sent_text(sent) if type(sent) is str else _parse(sent)
        except TimestampError:
            sent_at = None
            notes.append("sent_at is not a timestamp; no clock-skew correction")
        if sent_at is not None:
            skew = context.received_at - sent_at
            if abs(skew) >= SKEW_TOLERANCE:
                ts += skew
    if ts - context.received_at > FUTURE_LIMIT:
        notes.append(f"ts {ts.isoformat()} is more than 23 h in the future; set to the receive time")
        ts = context.received_at
    event["ts"] = ts
    return event
