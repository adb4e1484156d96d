"""Mixpanel's ingestion API: `/track` (and `/track/`, as mixpanel-js spells it) and `/import`.

The events come as `data=<JSON or base64 JSON>`, form-encoded in a `POST` body (the `mixpanel` Python
library, mixpanel-js) or in the query string of a `GET` (mixpanel-js's image and JSONP transports), or as a
JSON body (`/import`'s newer form): one event `{"event": name, "properties": {...}}` or a list of them.

**The write key is the project token, `properties.token`**: set the library's token to the project's
write key (`Mixpanel(KEY, consumer=Consumer(events_url=COLLECTOR + "/track", import_url=COLLECTOR +
"/import"))`, `mixpanel.init(KEY, {api_host: COLLECTOR})`). A batch belongs to its first event's token
(else a `token` query parameter); an event with another token is rejected alone.

Fields (Mixpanel → event):

- `event` → `event` (`$mp_web_page_view` → `page_view`, the original kept as `original_event`);
- `properties.$insert_id` → `event_id` (a resend is stored once, as Mixpanel deduplicates on it);
- `properties.time` (epoch seconds or milliseconds) → `ts`;
- `properties.$device_id`, else `distinct_id` (without a `$device:` prefix) → `visitor_id`;
  `properties.$user_id` → `user_id` (with a visitor id also an identity link);
- `properties.$current_url`, `$referrer` (`$direct` is none) → `url`, `referrer`;
- `properties.utm_source` ... `utm_content` → the UTM columns;
- `properties.revenue` (when a number) and `currency` (when three letters) → `revenue`, `currency`;
- `properties.ip` → `ip` (a request fact, never stored);
- every other property (`mp_lib`, `$lib_version`, `$os`, `$browser`, `distinct_id`, ...) → properties.

`$identify` (`$anon_id` → `$identified_id`) and `$create_alias` (`distinct_id` → `alias`) record an
identity link and `$merge` nothing; none of the three is stored as an event (they say who someone is, not
what they did), and each keeps its place in the batch so that rejection indices are the client's own.

Reply: `{"status": 1, "error": null}` when every event was taken, as Mixpanel answers `verbose=1` (the
Python library raises unless `status` is 1; it reads the JSON body whatever the HTTP status, so keystep's
errors, 400, 401, 413, 503, answer `{"status": 0, "error": ...}` too); with rejected events `{"status": 0,
"error": ..., "failed_records": [{"index", "field", "message"}]}`, like `/import`'s strict mode. Both carry
`num_records_imported`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from keystep.collector.pipeline import Incoming, Outcome
from keystep.collector.wire import Parsed, Reply, Request, Route, WireError, loads_json, reject

RENAMED_EVENTS = {"$mp_web_page_view": "page_view"}
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _decode(data: str) -> Any:
    """`data` as JSON, or as base64 (standard or URL-safe, padding optional) of JSON."""
    text = data.strip()
    if not text.startswith(("{", "[")):
        try:
            text = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4),
                                    validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise WireError("`data` is neither JSON nor base64-encoded JSON") from None
    try:
        return loads_json(text)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"`data` is not valid JSON: {exc}") from None


def _body(request: Request) -> Any:
    data = request.form.get("data") if request.form else None
    if data is None and request.query.get("data") is not None and not request.body.strip():
        data = request.query["data"]
    if data is not None:
        return _decode(data)
    if not request.body.strip():
        raise WireError("no events: send `data=<JSON>` form-encoded, in the query string, or a JSON body")
    try:
        body = loads_json(request.body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"the body is not valid JSON (nor `data=...` form-encoded): {exc}") from None
    if isinstance(body, dict) and "data" in body and "event" not in body:
        return _decode(body["data"]) if isinstance(body["data"], str) else body["data"]
    return body


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _event(item: dict[str, Any]) -> tuple[Incoming, list[dict[str, Any]]]:
    raw = item.get("properties")
    properties: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    properties.pop("token", None)
    name = item.get("event")
    ts = properties.pop("time", None)
    if name == "$identify":
        anon, user = _text(properties.get("$anon_id")), _text(properties.get("$identified_id"))
        links = [{"visitor_id": anon, "user_id": user, "ts": ts, "source": "identify"}] if anon and user else []
        return {"_skip": "identify"}, links
    if name == "$create_alias":
        original, alias = _text(properties.get("distinct_id")), _text(properties.get("alias"))
        links = [{"visitor_id": original, "user_id": alias, "ts": ts, "source": "alias"}] if original and alias else []
        return {"_skip": "alias"}, links
    if name == "$merge":
        return {"_skip": "merge"}, []
    event: Incoming = {"event": RENAMED_EVENTS.get(name, name) if isinstance(name, str) else name}
    if isinstance(name, str) and name in RENAMED_EVENTS:
        event["original_event"] = name
    if ts is not None:
        event["ts"] = ts
    distinct = _text(properties.get("distinct_id"))
    if distinct and distinct.startswith("$device:"):
        distinct = distinct[len("$device:"):] or None
    device, user = _text(properties.pop("$device_id", None)), _text(properties.pop("$user_id", None))
    visitor = device or distinct
    if visitor:
        event["visitor_id"] = visitor
    if user:
        event["user_id"] = user
    for column, key in (("event_id", "$insert_id"), ("url", "$current_url"), ("ip", "ip")):
        value = properties.pop(key, None)
        if value not in (None, ""):
            event[column] = value
    referrer = properties.pop("$referrer", None)
    if referrer not in (None, "", "$direct"):
        event["referrer"] = referrer
    for column in UTM:
        if properties.get(column) not in (None, ""):
            event[column] = properties.pop(column)
    revenue = properties.get("revenue")
    if (isinstance(revenue, int | float) and not isinstance(revenue, bool)) or (
            isinstance(revenue, str) and _NUMBER.fullmatch(revenue.strip())):
        event["revenue"] = properties.pop("revenue")
        currency = properties.get("currency")
        if isinstance(currency, str) and _CURRENCY.fullmatch(currency.strip()):
            event["currency"] = properties.pop("currency")
    if properties:
        event["properties"] = properties
    links = [{"visitor_id": visitor, "user_id": user, "ts": ts, "source": "event"}] if visitor and user else []
    return event, links


def parse(request: Request) -> Parsed:
    body = _body(request)
    items = body if isinstance(body, list) else [body]
    tokens = [i["properties"].get("token") for i in items
              if isinstance(i, dict) and isinstance(i.get("properties"), dict)]
    key = next((t for t in tokens if isinstance(t, str) and t), None) or request.query.get("token")
    events: list[Incoming] = []
    identities: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("properties", {}), dict):
            events.append(reject(item, 'expected an event object {"event": ..., "properties": {...}}'))
            continue
        token = item.get("properties", {}).get("token")
        if token not in (None, "", key):
            events.append(reject(item, "the event's token is not the batch's: one request, one project"))
            continue
        event, links = _event(item)
        events.append(event)
        identities.extend(links)
    return Parsed(events, write_key=key if isinstance(key, str) else None, identities=identities)


def respond(outcome: Outcome) -> Reply:
    body: dict[str, Any] = {"status": 1, "error": None, "num_records_imported": len(outcome.accepted)}
    if outcome.rejected:
        body["status"] = 0
        body["error"] = f"{len(outcome.rejected)} event(s) rejected; the others were stored"
        body["failed_records"] = [{"index": r.index, "field": r.drop.field, "message": r.drop.detail or r.drop.reason}
                                  for r in outcome.rejected]
    return Reply(200, body)


def fail(status: int, message: str) -> Reply:
    return Reply(status, {"status": 0, "error": message})


ROUTES = tuple(
    Route(path, methods, parse, respond, name="mixpanel", fail=fail)
    for path, methods in (("/track", ("GET", "POST")), ("/track/", ("GET", "POST")), ("/import", ("POST",)),
                          ("/import/", ("POST",)))
)
