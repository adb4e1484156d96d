"""Segment's and RudderStack's HTTP tracking API (the two share it): `analytics-python`, `rudder-sdk-python`,
analytics.js and the other Segment-compatible libraries.

Routes (all `POST`):

- `/v1/batch` (the server libraries) and `/v1/b` (analytics.js in batching mode): `{"batch": [...],
  "sentAt": ..., "writeKey": ..., "context": {...}}`; each message names its `type`. The batch's
  `context` is merged under each message's own (as Segment does);
- one call per request: `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/identify`, `/v1/alias`,
  `/v1/group`, and analytics.js's one-letter forms of them, `/v1/t`, `/v1/p`, `/v1/s`, `/v1/i`, `/v1/a`,
  `/v1/g`. The path gives the type.

The write key: HTTP basic auth with the key as the user name and an empty password (the server
libraries), else `writeKey` in the body (analytics.js; the first message's in a batch), else a bearer
token. The app inflates gzip bodies (the RudderStack library gzips by default).

A `track`, `page` or `screen` message becomes one event:

| message                                        | event                                                |
| ---------------------------------------------- | ---------------------------------------------------- |
| `messageId`                                    | `event_id` (a resend with the same id is stored once) |
| `timestamp`, else `originalTimestamp`          | `ts`                                                 |
| `sentAt` of the message, else of the batch     | `sent_at` (the clock-skew correction)                |
| `anonymousId` / `userId`                       | `visitor_id` / `user_id`                             |
| `event` (track); `page` → `page_view`, `screen` → `screen_view` | `event` (renamed: see `ECOMMERCE_TO_GA4`)  |
| `properties` (page, screen: plus `name`, `category`) | `properties`                                   |
| `context.page.url`, `.referrer`, `.path` (page: else `properties.url`, ...) | `url`, `referrer`, `path` |
| `context.campaign.source/medium/name/term/content` | `utm_source/medium/campaign/term/content`         |
| `context.userAgent`, `context.ip`              | `user_agent`, `ip` (request facts; the ip is never stored) |
| `context.sessionId` (RudderStack)              | `session_id`                                         |
| `properties.revenue` (purchase, refund: else `total`, else `value`), `properties.currency` | `revenue`, `currency` |

Other context (library, locale, device, ...), `integrations`, and the traits of identify and group calls
are not kept (keystep has no profiles). An invalid message (not an object, an unknown `type`, an alias
without `previousId`, `properties` that is no object) is rejected alone, by its index.

Identity: an `identify` with both `anonymousId` and `userId` links the two (`source` `identify`); an
`alias` links `previousId` to `userId` (`source` `alias`); a track, page or screen that carries both ids
links them too (`source` `event`). `identify`, `alias` and `group` messages are **not stored as events**:
they describe who someone is, not something they did, and a server-side identify (a user id and traits,
no page) would otherwise count as a visit of its own in every visitor and session rate. They keep their
place in the batch (dropped quietly, counted in `/metrics` as `events_dropped_total{reason="identify"}`
etc.), so the reply's rejection indices are the client's own.

Reply: `200 {"success": true, ...}`, as Segment's API answers (the libraries look only at the status:
analytics-python accepts any 2xx, rudder-sdk-python exactly 200), with keystep's `accepted`, `rejected`
(index into the batch, reason, field, detail), `dropped` and `warnings`. An error (400, 401, 403, 413,
415, 503) is `{"success": false, "code": ..., "message": ...}`: the libraries raise `APIError(status,
code, message)` from those two fields.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from keystep.collector.ingest import response_body
from keystep.collector.pipeline import Incoming, Outcome
from keystep.collector.wire import Parsed, Reply, Request, Route, WireError, bearer, json_body, reject

# Segment's (and RudderStack's and PostHog's) e-commerce and B2B spec names → GA4's recommended event
# names, matched ignoring case and runs of spaces. The original name is kept as `original_event`.
# Names without a GA4 counterpart are stored as they are: Product List Filtered, Checkout Step Viewed,
# Checkout Step Completed, Order Updated, Order Cancelled, Coupon Entered/Applied/Denied/Removed (a
# coupon is a GA4 parameter, not an event), Product Removed from Wishlist, Product Reviewed, Signed Out.
ECOMMERCE_TO_GA4: dict[str, str] = {
    "Products Searched": "search",
    "Product List Viewed": "view_item_list",
    "Promotion Viewed": "view_promotion",
    "Promotion Clicked": "select_promotion",
    "Product Clicked": "select_item",
    "Product Viewed": "view_item",
    "Product Added": "add_to_cart",
    "Wishlist Product Added to Cart": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Cart Viewed": "view_cart",
    "Checkout Started": "begin_checkout",
    "Payment Info Entered": "add_payment_info",
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Product Added to Wishlist": "add_to_wishlist",
    "Product Shared": "share",
    "Cart Shared": "share",
    "Signed Up": "sign_up",
    "Signed In": "login",
    "Lead Generated": "generate_lead",
    "Form Submitted": "form_submit",  # GA4's enhanced-measurement name; a form is not always a lead
}
_BY_KEY = {" ".join(name.lower().split()): ga4 for name, ga4 in ECOMMERCE_TO_GA4.items()}
# where GA4 reads the order's value: Segment's `revenue` first, then `total`, then `value`
ORDER_EVENTS = frozenset({"purchase", "refund"})

_UTM = (("source", "utm_source"), ("medium", "utm_medium"), ("name", "utm_campaign"), ("term", "utm_term"),
        ("content", "utm_content"))
_EVENT_TYPES = {"track": None, "page": "page_view", "screen": "screen_view"}
_NOT_EVENTS = ("identify", "alias", "group")
_KINDS = frozenset((*_EVENT_TYPES, *_NOT_EVENTS))


def ga4_name(name: Any) -> str | None:
    """The GA4 name for a Segment spec event name, else None."""
    return _ga4_name(name) if isinstance(name, str) else None


@lru_cache(maxsize=4096)  # event names repeat from message to message
def _ga4_name(name: str) -> str | None:
    return _BY_KEY.get(" ".join(name.lower().split()))


def commerce(event: Incoming, properties: Mapping[str, Any], revenue_keys: tuple[str, ...] = ("revenue",),
             currency_keys: tuple[str, ...] = ("currency",)) -> None:
    """Rename a spec event to its GA4 name (keeping `original_event`) and take revenue and currency."""
    name = event.get("event")
    if isinstance(name, str):
        mapped = _ga4_name(name)
        if mapped is not None:
            event["original_event"] = name
            event["event"] = name = mapped
        if name in ORDER_EVENTS:
            revenue_keys = (*revenue_keys, "total", "value")
    for key in revenue_keys:  # the first given
        if (value := properties.get(key)) is not None:
            event["revenue"] = value
            break
    for key in currency_keys:
        if (value := properties.get(key)) is not None:
            event["currency"] = value
            break


def an_id(value: Any) -> str | None:
    """An id as text (libraries may send numbers); None when absent or blank."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return (format(value, "g") if isinstance(value, float) else str(value)).strip() or None


def basic_user(headers: Mapping[str, str]) -> str | None:
    """The user name of `Authorization: Basic base64(user:password)`."""
    value = headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _message(item: Any, kind: str | None, shared_context: Mapping[str, Any]) -> tuple[Incoming, list[dict[str, Any]]]:
    if not isinstance(item, dict):
        return reject(item, "expected a message object"), []
    kind = kind or item.get("type")
    if type(kind) is not str or kind not in _KINDS:  # (the usual types, as sent: nothing to clean)
        if not isinstance(kind, str) or not kind.strip():
            return reject(item, "a message needs a `type` (track, page, screen, identify, alias or group)"), []
        kind = kind.strip().lower()
    ts = item.get("timestamp")
    if ts is None:
        ts = item.get("originalTimestamp")
    anonymous, user = item.get("anonymousId"), item.get("userId")  # (`an_id`; a text inline, as the usual id)
    anonymous = (anonymous.strip() or None) if type(anonymous) is str else an_id(anonymous)
    user = (user.strip() or None) if type(user) is str else an_id(user)
    if kind not in _EVENT_TYPES:  # (track, page and screen are events; the others are not)
        if kind == "identify":
            if not (anonymous or user):
                return reject(item, "an identify needs a userId or an anonymousId"), []
            linked = anonymous and user
            return {"_skip": "identify"}, [{"visitor_id": anonymous, "user_id": user, "ts": ts, "source": "identify"}
                                           ] if linked else []
        if kind == "alias":
            previous = an_id(item.get("previousId"))
            if not (previous and user):
                return reject(item, "an alias needs a previousId and a userId"), []
            return {"_skip": "alias"}, [{"visitor_id": previous, "user_id": user, "ts": ts, "source": "alias"}]
        if kind == "group":
            return {"_skip": "group"}, []
        return reject(item, f"unknown message type {kind!r}"), []
    properties = item.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return reject(item, "`properties` must be an object"), []
    own = item.get("context")
    context = own if isinstance(own, dict) else {}
    if shared_context:
        context = {**shared_context, **context}
    page = _dict(context.get("page"))
    event: Incoming = {"event_id": item.get("messageId")}
    if kind == "track":
        event["event"] = item.get("event")
    else:
        event["event"] = _EVENT_TYPES[kind]
        properties = dict(properties)  # (a copy gets the name and category: the message stays as it was sent)
        for key in ("name", "category"):
            if item.get(key) is not None:
                properties.setdefault(key, item[key])
    for column in ("url", "referrer", "path"):
        value = page.get(column)
        if value is None and kind != "track":
            value = properties.get(column)
        if value is not None:
            event[column] = value
    campaign = context.get("campaign")
    if campaign and isinstance(campaign, dict):
        for key, column in _UTM:
            if campaign.get(key) is not None:
                event[column] = campaign[key]
    for key, column in (("userAgent", "user_agent"), ("ip", "ip"), ("sessionId", "session_id")):
        if (value := context.get(key)) is not None:
            event[column] = value
    if ts is not None:
        event["ts"] = ts
    if (value := item.get("sentAt")) is not None:
        event["sent_at"] = value
    event["visitor_id"], event["user_id"] = anonymous, user
    commerce(event, properties)
    event["properties"] = properties
    links = [{"visitor_id": anonymous, "user_id": user, "ts": ts, "source": "event"}] if anonymous and user else []
    return event, links


def _parse(request: Request, kind: str | None) -> Parsed:
    body = json_body(request)
    if not isinstance(body, dict):
        raise WireError("expected a JSON object (a message, or {\"batch\": [...]})")
    if kind is None:
        items = body.get("batch")
        if not isinstance(items, list):
            raise WireError("expected {\"batch\": [...]}: a list of messages")
    else:
        items = [body]
    key = basic_user(request.headers) or body.get("writeKey")
    if not key and items and isinstance(items[0], dict):
        key = items[0].get("writeKey")
    key = key or bearer(request.headers)
    shared_context = _dict(body.get("context")) if kind is None else {}
    events: list[Incoming] = []
    identities: list[dict[str, Any]] = []
    for item in items:
        event, links = _message(item, kind, shared_context)
        events.append(event)
        identities.extend(links)
    return Parsed(events, write_key=key if isinstance(key, str) and key else None,
                  sent_at=body.get("sentAt") if kind is None else None, identities=identities)


def parse_batch(request: Request) -> Parsed:
    return _parse(request, None)


def _single(kind: str) -> Callable[[Request], Parsed]:
    def parse(request: Request) -> Parsed:
        return _parse(request, kind)

    parse.__name__ = f"parse_{kind}"
    return parse


def respond(outcome: Outcome) -> Reply:
    return Reply(body={"success": True, **response_body(outcome)})


ERROR_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 413: "payload_too_large",
               415: "unsupported_media_type", 503: "unavailable"}


def fail(status: int, message: str) -> Reply:
    """An error as the libraries read it: `code` and `message` (else they report `unknown` and the raw body)."""
    return Reply(status, {"success": False, "code": ERROR_CODES.get(status, "error"), "message": message,
                          "error": message})


_SINGLE = ("track", "page", "screen", "identify", "alias", "group")
ROUTES: tuple[Route, ...] = (
    Route("/v1/batch", ("POST",), parse_batch, respond, name="segment batch", fail=fail),
    Route("/v1/b", ("POST",), parse_batch, respond, name="segment batch (analytics.js)", fail=fail),
    *(Route(f"/v1/{kind}", ("POST",), _single(kind), respond, name=f"segment {kind}", fail=fail)
      for kind in _SINGLE),
    *(Route(f"/v1/{kind[0]}", ("POST",), _single(kind), respond, name=f"segment {kind} (analytics.js)", fail=fail)
      for kind in _SINGLE),
)
