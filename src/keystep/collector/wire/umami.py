"""Umami's collect API: `POST /api/send` with `{"type": "event", "payload": {...}}`.

What sends it: Umami's tracker script (`script.js` with `data-host-url` set to the collector), the
`umami-analytics` Python library (`umami.set_url_base(COLLECTOR)`), `@umami/node`.

**The write key is the website id, `payload.website`**: use the project's write key where Umami wants a
website id (`data-website-id="KEY"`, `umami.set_website_id(KEY)`).

Fields (payload → event):

- `name` → `event`; absent or blank: `page_view` (Umami's page view);
- `url` → `url`, as sent (Umami's tracker sends the path and query); `referrer` → `referrer` (blank is
  none);
- `data` → properties; its `revenue` and `currency` (as Umami's revenue reports read them) → `revenue`,
  `currency`;
- `id` → `user_id`: Umami's distinct id, set by `umami.identify(id)`;
- `ip` → `ip` (a request fact, never stored);
- `timestamp` (epoch seconds), when sent → `ts`; else the receive time;
- `title` → property `page_title`; `hostname`, `language`, `screen`, `tag` and any other field →
  properties.

Umami sends **no visitor id**: the collector derives the cookieless one (a daily-salted hash of the IP and
the user agent), as Umami itself does; the `umami-analytics` library sends a browser User-Agent on purpose
(Umami drops bots too). There are no event ids either, so an event is deduplicated only by its content and
time (`assign_event_id`): two identical events without `timestamp` are two events.

`{"type": "identify", ...}` (session data) is no event: nothing is stored. Any other `type` is rejected.
Reply: keystep's usual JSON (`accepted`, `rejected`, ...); Umami answers `{"cache", "sessionId",
"visitId"}`, which the tracker script reads only to send `cache` back and the Python library returns
as it is.
"""

from __future__ import annotations

from typing import Any

from keystep.collector.pipeline import Incoming
from keystep.collector.wire import Parsed, Request, Route, WireError, json_body, reject

CONSUMED = {"website", "name", "url", "referrer", "data", "id", "ip", "timestamp", "title"}


def _event(payload: dict[str, Any]) -> Incoming:
    name = payload.get("name")
    blank = name is None or (isinstance(name, str) and not name.strip())
    event: Incoming = {"event": "page_view" if blank else name}  # a non-text name: the pipeline rejects it
    data = payload.get("data")
    properties: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    if data is not None and not isinstance(data, dict):
        event["properties"] = data  # rejected by the column checks: `data` must be an object
    if "revenue" in properties:
        event["revenue"] = properties.pop("revenue")
        if "currency" in properties:
            event["currency"] = properties.pop("currency")
    for column, key in (("url", "url"), ("referrer", "referrer"), ("user_id", "id"), ("ip", "ip"),
                        ("ts", "timestamp")):
        value = payload.get(key)
        if value not in (None, ""):
            event[column] = value
    if payload.get("title") not in (None, ""):
        properties["page_title"] = payload["title"]
    for key, value in payload.items():
        if key not in CONSUMED and value not in (None, ""):
            properties.setdefault(key, value)
    if properties and "properties" not in event:
        event["properties"] = properties
    return event


def parse(request: Request) -> Parsed:
    body = json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("payload"), dict):
        raise WireError('expected {"type": "event", "payload": {"website": ..., ...}}')
    payload = body["payload"]
    key = payload.get("website")
    kind = body.get("type", "event")
    if kind == "identify":
        events: list[Incoming] = []
    elif kind == "event":
        events = [_event(payload)]
    else:
        events = [reject(body, f"unknown type {kind!r}: Umami sends \"event\" (and \"identify\")")]
    return Parsed(events, write_key=key if isinstance(key, str) and key else None)


ROUTES = (Route("/api/send", ("POST",), parse, name="umami"),)
