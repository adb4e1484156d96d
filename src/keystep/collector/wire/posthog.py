"""PostHog's capture API: the `posthog` Python library, posthog-js and the other PostHog SDKs.

Routes (all `POST`, each with and without the trailing slash):

- `/batch/` (the server libraries: `{"api_key": ..., "batch": [...], "sent_at": ...}`), `/e/` and
  `/i/v0/e/` (posthog-js and the documented capture endpoint), `/capture/` (the older one): one event, a
  list of events or `{"batch": [...]}`;
- `/i/v1/analytics/events`: the capture-v1 protocol (`posthog.Client(..., capture_mode="v1")`): the key
  as a bearer token, `{"created_at": ..., "batch": [...]}`, events with a top-level `session_id` and
  `options`, and a per-event reply.

Bodies: JSON; gzip (`Content-Encoding: gzip` or posthog-js's `?compression=gzip-js`: the app inflates
it); base64-encoded JSON (`?compression=base64`, or any body that is not JSON); a form
`data=<base64 or JSON>` (the app parses the form). LZ-string (`compression=lz64`, posthog-js before
2021) is refused with 400. The write key: `api_key` or `token` in the body, else an event's `api_key`
or `properties.token` (posthog-js), else the `token` query parameter, else a bearer token.

An event, PostHog → keystep:

- `uuid` → `event_id`;
- `event` → `event`: `$pageview` → `page_view`, `$pageleave` → `page_leave`, `$screen` → `screen_view`;
  Segment's spec names (PostHog's e-commerce spec uses them) → GA4's (`segment.ECOMMERCE_TO_GA4`); any
  other (`$autocapture`, `$rageclick`, custom names) as it is. A renamed event keeps `original_event`;
- `properties.$device_id` when given, else `distinct_id` (or `properties.distinct_id`) → `visitor_id`;
  `distinct_id` when it differs from `$device_id` (posthog-js after `identify`) → `user_id`;
- `timestamp` (else `sent_at` − `offset` ms, older posthog-js) → `ts`;
- `sent_at` of the body, else the `_` query parameter (posthog-js, epoch ms); v1: the
  `PostHog-Request-Timestamp` header, else `created_at` → `sent_at` (the clock-skew correction; none when
  `$ignore_sent_at` or v1's `options.disable_skew_correction` is set);
- `$current_url`, `$pathname`, `$referrer` (but `$direct`) → `url`, `path`, `referrer`;
- `$raw_user_agent` (else `$useragent`), `$ip` → `user_agent`, `ip` (request facts; the ip is never stored);
- `$session_id` (v1: `session_id`) → `session_id`; `utm_source`, ..., `utm_content` → the UTM columns;
- `revenue` / `$revenue` (purchase, refund: else `total`, else `value`), `currency` / `$currency` →
  `revenue`, `currency`;
- `properties`, all of them as they are (`$lib`, `$set`, `$current_url`, ...) but `token` (the write key)
  → `properties`.

Identity (not stored as events, for the reasons in `segment`; each keeps its place in the batch):
`$identify` links `$anon_distinct_id` (and `$device_id`, when it differs) to `distinct_id`;
`$create_alias` links `distinct_id` to `properties.alias` (the Python library's `alias(previous_id,
distinct_id)` sends the previous id as `distinct_id`); `$merge_dangerously` links `properties.alias` to
`distinct_id`. `$set`, `$set_once`, `$groupidentify` and `$delete_person` change person or group profiles
and are not stored either. Any other event whose `$device_id` differs from its `distinct_id` links them
(`source` `event`).

Reply: `200 {"status": 1, ...}` as PostHog answers (the libraries look only at the status), with
keystep's `accepted`, `rejected` (index, reason, field, detail), `dropped` and `warnings`. The v1 route
answers `{"results": {uuid: {"result": "ok"}, ...}}`, a rejected event as `{"result": "drop",
"details": ...}`, so the library reports it (to `on_error`) rather than retrying it. An error is
`{"type": ..., "code": ..., "detail": ...}` as PostHog's (the libraries read `detail`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson

from keystep.collector.ingest import response_body
from keystep.collector.pipeline import Incoming, Outcome
from keystep.collector.wire import Parsed, Reply, Request, Route, WireError, bearer, json_body, loads_json, reject
from keystep.collector.wire.segment import an_id, commerce
from keystep.events.timestamps import TimestampError, parse_timestamp

EVENT_NAMES = {"$pageview": "page_view", "$pageleave": "page_leave", "$screen": "screen_view"}
PROFILE_EVENTS = {"$set": "person_update", "$set_once": "person_update", "$groupidentify": "group",
                  "$delete_person": "person_update"}
_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_EVENT_ID = re.compile(r'\{"event_id": "((?:[^"\\]|\\.)*)"')


def _from_base64(text: str) -> Any:
    cleaned = "".join(text.strip().replace(" ", "+").split())  # a form decodes an unescaped `+` as a space
    cleaned += "=" * (-len(cleaned) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return loads_json(decode(cleaned))
        except (binascii.Error, ValueError):
            continue
    raise WireError("the body is neither JSON nor base64-encoded JSON")


def _payload(request: Request) -> Any:
    compression = (request.query.get("compression") or request.form.get("compression") or "").lower()
    if compression == "lz64":
        raise WireError("LZ-string bodies (compression=lz64) are not supported: send JSON, gzip-js or base64")
    data: bytes | str = request.form.get("data", request.body)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if not text.strip():
        raise WireError("the body is empty")
    if compression != "base64":
        try:
            return loads_json(data)
        except orjson.JSONDecodeError:
            if text.lstrip()[:1] in ("{", "["):
                raise WireError("the body is not valid JSON") from None
    return _from_base64(text)


def _sent_at_minus(sent_at: Any, offset: Any) -> Any:
    """posthog-js before `timestamp`: the event happened `offset` ms before the batch was sent."""
    if isinstance(offset, bool) or not isinstance(offset, int | float) or sent_at is None:
        return None
    try:
        return parse_timestamp(sent_at) - timedelta(milliseconds=offset)
    except (TimestampError, OverflowError):
        return None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1"))


def _event(item: Any, sent_at: Any, v1: bool) -> tuple[Incoming, list[dict[str, Any]]]:
    if not isinstance(item, dict):
        return reject(item, "expected an event object"), []
    properties = item.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return reject(item, "`properties` must be an object"), []
    properties = {k: v for k, v in properties.items() if k != "token"}
    name = item.get("event")
    distinct = an_id(item.get("distinct_id") if item.get("distinct_id") is not None
                     else properties.get("distinct_id", item.get("$distinct_id")))
    device = an_id(properties.get("$device_id"))
    ts = item.get("timestamp")
    if ts is None:
        ts = _sent_at_minus(sent_at, item.get("offset"))
    if name in ("$identify", "$create_alias", "$merge_dangerously"):
        if not distinct:
            return reject(item, f"{name} needs a distinct_id"), []
        if name == "$identify":
            previous = {an_id(properties.get("$anon_distinct_id")), device} - {None, distinct}
            pairs = [(p, distinct) for p in sorted(previous, key=str)]
        else:
            alias = an_id(properties.get("alias"))
            if not alias:
                return reject(item, f"{name} needs properties.alias"), []
            pairs = [(distinct, alias) if name == "$create_alias" else (alias, distinct)]
        source = {"$identify": "identify", "$create_alias": "alias", "$merge_dangerously": "alias"}[name]
        return {"_skip": source}, [{"visitor_id": v, "user_id": u, "ts": ts, "source": source} for v, u in pairs]
    if isinstance(name, str) and name in PROFILE_EVENTS:
        return {"_skip": PROFILE_EVENTS[name]}, []
    event: Incoming = {"event_id": item.get("uuid"), "event": EVENT_NAMES.get(name, name) if isinstance(name, str)
                       else name}
    if event["event"] != name:
        event["original_event"] = name
    if ts is not None:
        event["ts"] = ts
    options = item["options"] if isinstance(item.get("options"), dict) else {}
    if _truthy(properties.get("$ignore_sent_at")) or _truthy(options.get("disable_skew_correction")):
        event["sent_at"] = None
    visitor, user = (device, distinct if distinct != device else None) if device else (distinct, None)
    event["visitor_id"], event["user_id"] = visitor, user
    for key, column in (("$current_url", "url"), ("$pathname", "path"), ("$ip", "ip")):
        if properties.get(key) is not None:
            event[column] = properties[key]
    referrer = properties.get("$referrer")
    if referrer is not None and referrer != "$direct":
        event["referrer"] = referrer
    agent = properties.get("$raw_user_agent", properties.get("$useragent"))
    if agent is not None:
        event["user_agent"] = agent
    session = item.get("session_id") if v1 and item.get("session_id") is not None else properties.get("$session_id")
    if session is not None:
        event["session_id"] = session
    for column in _UTM:
        if properties.get(column) is not None:
            event[column] = properties[column]
    if v1 and item.get("window_id") is not None:
        properties.setdefault("$window_id", item["window_id"])
    commerce(event, properties, ("revenue", "$revenue"), ("currency", "$currency"))
    event["properties"] = properties
    links = [{"visitor_id": device, "user_id": distinct, "ts": ts, "source": "event"}] if user and device else []
    return event, links


def _key(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse(request: Request) -> Parsed:
    payload = _payload(request)
    shared: Mapping[str, Any] = {}
    if isinstance(payload, dict) and "batch" in payload:
        if not isinstance(payload["batch"], list):
            raise WireError("`batch` must be a list of events")
        items, shared = payload["batch"], payload
    elif isinstance(payload, list):
        items = payload
    elif isinstance(payload, dict):
        items, shared = [payload], payload
    else:
        raise WireError("expected an event object, a list of events or {\"batch\": [...]}")
    key = _key(shared.get("api_key")) or _key(shared.get("token"))
    for item in items:
        if key or not isinstance(item, dict):
            continue
        props = item.get("properties")
        key = _key(item.get("api_key")) or _key(item.get("token")) or (
            _key(props.get("token")) if isinstance(props, dict) else None)
    key = key or _key(request.query.get("token")) or _key(request.query.get("api_key")) or bearer(request.headers)
    sent_at = shared.get("sent_at")
    if sent_at is None and request.query.get("_", "").isdigit():
        sent_at = int(request.query["_"])
    return _parsed(items, sent_at, key, v1=False)


def _parsed(items: list[Any], sent_at: Any, key: str | None, *, v1: bool) -> Parsed:
    events: list[Incoming] = []
    identities: list[dict[str, Any]] = []
    for item in items:
        event, links = _event(item, sent_at, v1)
        events.append(event)
        identities.extend(links)
    return Parsed(events, write_key=key, sent_at=sent_at, identities=identities)


def parse_v1(request: Request) -> Parsed:
    payload = json_body(request)
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        raise WireError("expected {\"batch\": [...]}")
    sent_at = request.headers.get("posthog-request-timestamp") or payload.get("created_at")
    return _parsed(payload["batch"], sent_at, bearer(request.headers), v1=True)


def respond(outcome: Outcome) -> Reply:
    return Reply(body={"status": 1, **response_body(outcome)})


ERROR_TYPES = {400: ("validation_error", "invalid_payload"), 401: ("authentication_error", "invalid_api_key"),
               403: ("authentication_error", "invalid_api_key"), 413: ("validation_error", "payload_too_large"),
               415: ("validation_error", "unsupported_encoding"), 503: ("server_error", "unavailable")}


def fail(status: int, message: str) -> Reply:
    """An error as PostHog answers it: the libraries read `detail` (v0) or `error`/`detail` (v1)."""
    kind, code = ERROR_TYPES.get(status, ("server_error", "error"))
    return Reply(status, {"type": kind, "code": code, "detail": message, "error": message})


def _rejected_id(raw: str) -> str | None:
    """The `event_id` of a rejected event from its raw JSON (which starts with it; it may be truncated)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        match = _EVENT_ID.match(raw)
        return json.loads(f'"{match.group(1)}"') if match else None
    if not isinstance(value, dict):
        return None
    found = value.get("event_id")
    if found is None and isinstance(value.get("_raw"), dict):  # an unreadable item: its own uuid
        found = value["_raw"].get("uuid")
    return str(found) if found is not None else None


def respond_v1(outcome: Outcome) -> Reply:
    results: dict[str, dict[str, str]] = {str(e["event_id"]): {"result": "ok"} for e in outcome.accepted}
    for r in outcome.rejected:
        uuid = _rejected_id(r.raw)
        if uuid is not None:
            results[uuid] = {"result": "drop", "details": r.drop.detail or r.drop.reason}
    return Reply(body={"results": results, **response_body(outcome)})


_PATHS = ("/batch/", "/e/", "/i/v0/e/", "/capture/")
ROUTES: tuple[Route, ...] = (
    *(Route(path, ("POST",), parse, respond, name=f"posthog {path}", fail=fail) for path in _PATHS),
    *(Route(path.rstrip("/"), ("POST",), parse, respond, name=f"posthog {path.rstrip('/')}", fail=fail)
      for path in _PATHS),
    Route("/i/v1/analytics/events", ("POST",), parse_v1, respond_v1, name="posthog capture v1", fail=fail),
)
