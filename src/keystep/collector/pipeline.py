"""From what a client sent to canonical events: an ordered list of small pure steps.

A wire format (`keystep.collector.wire`) turns a request body into *incoming* events: dicts that use the
canonical column names where the format has them (`event`, `event_id`, `ts`, `visitor_id`, `user_id`,
`session_id`, `url`, `referrer`, `revenue`, `currency`, `properties` as a dict, ...) plus the request
facts a step may need (`user_agent`, `ip`, `sent_at`, `original_event`). Each step takes one incoming
event and the request `Context` and returns the event (changed or not) or a `Drop`:

- a `Drop` with `rejected=True` is bad input: the client is told the index and the reason, and the raw
  event is kept in `rejected_events`;
- a `Drop` with `rejected=False` is traffic keystep does not count (bots, referrer spam): dropped
  quietly, counted in `/metrics` as `events_dropped_total{reason=...}`.

Steps may add warnings (a truncated string, a clamped timestamp). The last step (`finalize`) completes
the canonical columns, with `ts`/`received_at` as naive UTC datetimes and `properties` as JSON text; the
spool record takes exactly those columns, so the request facts (`ip` above all) are never stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keystep.events.schema import EVENT_COLUMN_NAMES, RAW_LIMIT
from keystep.events.timestamps import TsFormat
from keystep.importers.normalize import FieldError, normalize_value, properties_object

Incoming = dict[str, Any]
log = logging.getLogger("keystep.collector")


@dataclass(frozen=True, slots=True)
class Context:
    """What the request says about the events it carries."""

    project: str
    received_at: datetime  # naive UTC: when keystep received the request
    route: str
    ip: str | None = None  # used for the cookieless visitor id only; never stored
    user_agent: str | None = None  # the request's User-Agent header (an event may carry its own)
    sent_at: object = None  # the client's clock when it sent the batch (raw), for clock-skew correction
    salt: bytes = b""  # today's cookieless salt


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str  # a short stable name (metrics label), e.g. missing_event, invalid_timestamp, bot
    detail: str = ""  # what was wrong, for people
    field: str | None = None
    rejected: bool = True  # bad input (kept in rejected_events) vs uncounted traffic (dropped quietly)


Step = Callable[[Incoming, Context, list[str]], "Incoming | Drop"]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int  # position in the request's batch
    drop: Drop
    raw: str  # the incoming event as JSON, truncated to RAW_LIMIT


@dataclass(slots=True)
class Outcome:
    accepted: list[dict[str, Any]] = field(default_factory=list)  # canonical events
    rejected: list[Rejection] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    accepted_index: list[int] = field(default_factory=list)  # each accepted event's position in the batch


def raw_json(event: Mapping[str, Any]) -> str:
    """An incoming event as JSON text for `rejected_events`, without the IP, cut to `RAW_LIMIT`; a lone
    surrogate (which no UTF-8 encoder takes, so the record could not be written) becomes U+FFFD."""
    text = json.dumps({k: v for k, v in event.items() if k != "ip"}, default=str, ensure_ascii=False)[:RAW_LIMIT]
    if not text.isascii():  # UTF-16 with surrogatepass writes a lone surrogate as its unit; decoding replaces it
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def run_pipeline(events: Sequence[Incoming], context: Context, steps: Sequence[Step]) -> Outcome:
    outcome = Outcome()
    accepted, accepted_index = outcome.accepted, outcome.accepted_index
    for index, original in enumerate(events):
        event: Incoming = dict(original)
        notes: list[str] = []
        drop: Drop | None = None
        for step in steps:
            try:
                result = step(event, context, notes)
            except Exception as exc:  # a value no step foresaw: reject this event, never the request
                log.exception("step %s failed on batch index %d", step.__name__, index)
                result = Drop("unreadable_event", f"could not read the event ({type(exc).__name__}: {exc})")
            if result is not event:  # (the event itself, as most steps return it, is no Drop)
                if isinstance(result, Drop):
                    drop = result
                    break
                event = result
        if notes:
            outcome.warnings.extend((index, note) for note in notes)
        if drop is None:
            accepted.append(event)
            accepted_index.append(index)
        elif drop.rejected:
            outcome.rejected.append(Rejection(index, drop, raw_json(original)))
        else:
            outcome.dropped[drop.reason] += 1
    return outcome


# -- the steps that every pipeline has -------------------------------------------------------------

REQUIRED_TEXT = ("event",)


def require_event(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    given = event.get("event")
    if not isinstance(given, str) or not (name := given.strip()):
        return Drop("missing_event", "every event needs a name (`event`)", "event")
    if name is not given:  # (strip gives the text itself when there is nothing to strip)
        event["event"] = name
    return event


def require_visitor(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    """A visitor id: the client's, else the user id; the cookieless step (when present) runs before."""
    given = event.get("visitor_id")
    visitor = given.strip() if type(given) is str else _id_text(given)  # (`_id_text` of a text, inline)
    if visitor:
        if visitor is not given:
            event["visitor_id"] = visitor
        if isinstance(event.get("user_id"), int):
            event["user_id"] = str(event["user_id"])
        return event
    user = _id_text(event.get("user_id"))
    if user:
        event["visitor_id"] = user
        return event
    return Drop("missing_visitor_id", "an event needs a visitor id (or a user id)", "visitor_id")


def _id_text(value: object) -> str:
    """An id as text, stripped (numbers too: `format(x, "g")` for a float); "" for anything else."""
    if isinstance(value, str):
        return value.strip()
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return (format(value, "g") if isinstance(value, float) else str(value)).strip()


def assign_event_id(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    """The client's message id, else a hash of the event's content with its time: a retried request whose
    events carry a timestamp stores them once (without one, `ts` is the receive time, so a resend counts
    again: the SDKs send message ids)."""
    given = event.get("event_id")
    if given is not None and (text := (given if type(given) is str else str(given)).strip()):
        if text is not given or len(text) > 128:  # (else the id stays as it is)
            event["event_id"] = text[:128]
        return event
    content = json.dumps({k: event.get(k) for k in ("event", "ts", "visitor_id", "user_id", "url", "properties")},
                         default=str, sort_keys=True)
    event["event_id"] = "h" + hashlib.blake2b(content.encode(), digest_size=16).hexdigest()
    return event


def finalize(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    """The canonical columns completed: the project, the receive time, `ts` (the receive time when none),
    properties as JSON text (with the name a wire format renamed, `original_event`). The event keeps what
    else it carries (request facts such as `ip` and `user_agent`, values derived for the steps): the
    record takes exactly the canonical columns (`keystep.collector.record.event_table`), so none of it is
    ever stored."""
    properties = event.get("properties")
    if properties is None or (type(properties) is not dict and not isinstance(properties, Mapping)):
        properties = {}
    original = event.get("original_event")
    if original and original != event["event"] and "original_event" not in properties:
        properties = {**properties, "original_event": original}
    event["project"] = context.project
    event["received_at"] = context.received_at
    if event.get("ts") is None:
        event["ts"] = context.received_at
    event["properties"] = _properties_json(properties) if properties else None
    return event


def _properties_json(properties: Mapping[str, Any]) -> str:
    """`json.dumps(properties, ensure_ascii=False, default=str)`, without making an encoder per call. The
    check for circular references is left out: properties come from parsed JSON, which holds none (and
    `clean_strings` keeps an object as it is only when nothing in it is nested deeper than its limit, so
    never a circular one)."""
    if _ENCODE is None:  # no C accelerator: the standard path
        return json.dumps(properties, ensure_ascii=False, default=str)
    return "".join(_ENCODE(properties, 0))


_MAKE_ENCODER: Callable[..., Callable[[Any, int], Sequence[str]]] | None = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (_MAKE_ENCODER(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
           if _MAKE_ENCODER is not None else None)


TEXT_COLUMNS = tuple(
    name for name in EVENT_COLUMN_NAMES
    if name not in ("project", "event_id", "ts", "received_at", "event", "visitor_id", "properties")
)


def check_columns(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    """Every canonical value fits its column (as in `keystep import`): numbers, currency codes, text;
    properties a JSON object. (Path, UTM tags and click ids come from the URL in `keystep.enrich.urls`.)
    Of several unfit values, the first in the columns' order is named."""
    unfit: tuple[int, Drop] | None = None
    for name, value in event.items():  # (fewer than the columns)
        if value is None or name not in _TEXT_POSITION:
            continue
        if type(value) is str and name in _PLAIN_TEXT:  # what normalize_value does with a plain text
            if (text := value.strip()) is not value or not text:  # (else the value stays as it is)
                event[name] = text or None
            continue
        try:
            event[name] = normalize_value(name, value, _AUTO)
        except FieldError as exc:
            if unfit is None or _TEXT_POSITION[name] < unfit[0]:
                unfit = (_TEXT_POSITION[name], Drop(f"invalid_{name}", f"{name}: {exc}", name))
    if unfit is not None:
        return unfit[1]
    properties = event.get("properties")
    if properties is not None and type(properties) is not dict:  # (a dict is what properties_object keeps)
        try:
            event["properties"] = properties_object(properties)
        except FieldError as exc:
            return Drop("invalid_properties", f"properties: {exc}", "properties")
    return event


_TEXT_POSITION = {name: i for i, name in enumerate(TEXT_COLUMNS)}
_AUTO = TsFormat.AUTO  # (an Enum member read once: reading it from the class each time costs more than the check)
_PLAIN_TEXT = frozenset(TEXT_COLUMNS) - {"revenue", "currency"}
