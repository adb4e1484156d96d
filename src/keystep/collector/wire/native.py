"""keystep's own format: `POST /api/collect` with one event, a list of events, or `{"batch": [...]}`.

An event: `event` (required), `event_id`, `ts` (or `timestamp`), `visitor_id`, `user_id`, `session_id`,
`url`, `referrer`, `revenue`, `currency`, `properties` (an object), any other canonical column, and
`sent_at`. The batch form may carry `sent_at` and `key` for all its events. The write key comes from
`Authorization: Bearer KEY`, the `X-Keystep-Key` header, a `key` query parameter or the body's `key`
(browsers' `sendBeacon` cannot set headers). When both a visitor id and a user id are given, the link is
recorded as an identity.
"""

from __future__ import annotations

from typing import Any

from keystep.collector.pipeline import Incoming
from keystep.collector.wire import Parsed, Request, Route, WireError, bearer, json_body, reject
from keystep.events.schema import EVENT_COLUMN_NAMES

_FIELDS = frozenset(EVENT_COLUMN_NAMES) - {"project", "received_at"}


def _event(item: Any) -> Incoming:
    if not isinstance(item, dict):
        return reject(item, "expected an event object")
    if item.keys() <= _FIELDS:  # the usual event: only canonical columns, nothing to take apart
        return item
    event: Incoming = {k: v for k, v in item.items() if k in _FIELDS}
    if "ts" not in event and "timestamp" in item:
        event["ts"] = item["timestamp"]
    for extra in ("sent_at", "user_agent"):
        if extra in item:
            event[extra] = item[extra]
    return event


def parse(request: Request) -> Parsed:
    body = json_body(request)
    key = bearer(request.headers) or request.headers.get("x-keystep-key") or request.query.get("key")
    sent_at = None
    if isinstance(body, dict) and "batch" in body:
        if not isinstance(body["batch"], list):
            raise WireError("`batch` must be a list of events")
        items, sent_at = body["batch"], body.get("sent_at")
        key = key or body.get("key")
    elif isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        items = [body]
        key = key or body.get("key")
    else:
        raise WireError("expected an event object, a list of events or {\"batch\": [...]}")
    # (`_event`: an event of canonical columns only is taken as it is, here without a call for it)
    events = [item if type(item) is dict and item.keys() <= _FIELDS else _event(item) for item in items]
    identities = [
        {"visitor_id": str(e["visitor_id"]), "user_id": str(e["user_id"]), "ts": e.get("ts"), "source": "event"}
        for e in events if e.get("visitor_id") and e.get("user_id")
    ]
    return Parsed(events, write_key=key if isinstance(key, str) else None, sent_at=sent_at, identities=identities)


ROUTES = (Route("/api/collect", ("POST",), parse, name="native"),)
