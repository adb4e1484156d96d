"""Snowplow's tracker protocol: the trackers' `POST /com.snowplowanalytics.snowplow/tp2` and `GET /i`.

- `POST /com.snowplowanalytics.snowplow/tp2`: `{"schema": "iglu:com.snowplowanalytics.snowplow/
  payload_data/jsonschema/1-0-4", "data": [event, ...]}`, each event the protocol's flat map of short
  field names to values (the Python tracker sends every value as text);
- `GET /i?e=pv&url=...`: one event as query parameters (the Python tracker's `method="get"`, the
  JavaScript tracker's pixel), answered with a 1×1 transparent GIF.

**The write key is the app id `aid`**: set the tracker's app id to the project's write key
(`Snowplow.create_tracker(..., app_id=KEY)`, `Tracker(..., app_id=KEY)`, the JavaScript tracker's
`appId: KEY`). A batch belongs to the app id of its first event that has one; an event with another app
id is rejected alone (one request, one project).

Fields (tracker protocol → event):

- `e`, the event type: `pv` (page view) → `page_view`; `pp` (page ping) → `page_ping`; `se` (structured
  event) → its action `se_ac`, with `category` (`se_ca`), `label` (`se_la`), `property` (`se_pr`) and
  `value` (`se_va`, a number) in properties; `ue` (self-describing event) → the name of its schema
  (`iglu:com.acme/add_to_cart/jsonschema/1-0-0` → `add_to_cart`), read from `ue_pr` (JSON) or `ue_px`
  (base64url JSON), its data in properties and the schema URI as `event_schema`; `tr` (transaction) →
  `purchase` with `revenue` `tr_tt` and `currency` `tr_cu`, and `order_id` (`tr_id`), `affiliation`,
  `tax`, `shipping`, `city`, `state`, `country` in properties; `ti` (transaction item) →
  `transaction_item` with `order_id`, `sku`, `name`, `category`, `price`, `quantity`, `currency` in
  properties and **no revenue** (the order's `tr` event carries its total: the items' prices as revenue
  would count the order twice); any other type → its code;
- `eid` → `event_id` (a resend is stored once);
- `ttm` (true timestamp, ms), else `dtm` (device created, ms) → `ts`; `stm` (device sent, ms) →
  `sent_at`, the clock-skew correction of `dtm`; none for `ttm`, which the caller set (Snowplow's
  `derived_tstamp` rule);
- `duid` (domain user id), else `tnuid`, else `nuid` → `visitor_id`; `sid` (domain session id) →
  `session_id`; `uid` → `user_id` (with `duid` also recorded as an identity link);
- `url`, `refr`, `ua`, `ip` → `url`, `referrer`, `user_agent`, `ip` (request facts; the ip is never
  stored);
- `cx` (base64url) / `co` (JSON) contexts → `contexts` in properties, the list of `{"schema", "data"}`
  entities;
- `page`, `p`, `tna`, `tv`, `lang`, `res`, `vp`, `cd`, `tz`, `cs`, `ds`, `vid` → properties `page_title`,
  `platform`, `tracker_namespace`, `tracker_version`, `language`, `screen_resolution`, `viewport`,
  `color_depth`, `timezone`, `charset`, `document_size`, `session_index`; any other field → properties,
  under its protocol name.

An event that is not an object, or whose `ue_px`/`ue_pr`/`cx`/`co` cannot be decoded, is rejected alone
with its index. Reply: `POST` answers 200 with keystep's usual JSON (the trackers look only at the status:
any 2xx is success, and 400, 401, 403, 410 and 422 are not retried); `GET /i` answers the GIF whatever the
event held (a request keystep refuses as a whole, e.g. for an unknown app id, gets its JSON 4xx).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from keystep.collector.pipeline import Incoming, Outcome
from keystep.collector.wire import Parsed, Reply, Request, Route, WireError, json_body, loads_json, reject

# A 1×1 transparent GIF89a (43 bytes), as Snowplow's collectors answer the pixel.
PIXEL = base64.b64decode("R0lGODlhAQABAPAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")

EVENT_TYPES = {"pv": "page_view", "pp": "page_ping", "tr": "purchase", "ti": "transaction_item"}
RENAMED = {
    "page": "page_title", "p": "platform", "tna": "tracker_namespace", "tv": "tracker_version",
    "lang": "language", "res": "screen_resolution", "vp": "viewport", "cd": "color_depth", "tz": "timezone",
    "cs": "charset", "ds": "document_size", "vid": "session_index",
    "se_ca": "category", "se_la": "label", "se_pr": "property", "se_va": "value",
    "tr_id": "order_id", "tr_af": "affiliation", "tr_tx": "tax", "tr_sh": "shipping", "tr_ci": "city",
    "tr_st": "state", "tr_co": "country",
    "ti_id": "order_id", "ti_sk": "sku", "ti_nm": "name", "ti_ca": "category", "ti_pr": "price",
    "ti_qu": "quantity", "ti_cu": "currency",
}
NUMERIC = {"se_va", "tr_tx", "tr_sh", "ti_pr", "ti_qu", "vid", "cd"}
# Fields that go to columns or are read here, so not copied into properties.
CONSUMED = {"e", "aid", "eid", "dtm", "stm", "ttm", "duid", "tnuid", "nuid", "sid", "uid", "url", "refr", "ua",
            "ip", "se_ac", "ue_pr", "ue_px", "cx", "co", "tr_tt", "tr_cu"}


class _Unreadable(ValueError):
    pass


def _json_field(event: Mapping[str, Any], plain: str, encoded: str) -> Any:
    """The JSON of `plain` (as text), else of base64url `encoded`; None when neither is present."""
    if event.get(plain) not in (None, ""):
        text = event[plain]
        source = plain
    elif event.get(encoded) not in (None, ""):
        value = event[encoded]
        if not isinstance(value, str):
            raise _Unreadable(f"{encoded} is not base64url text")
        try:
            standard = value.strip().replace("-", "+").replace("_", "/")
            text = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _Unreadable(f"{encoded} is not base64url-encoded UTF-8") from None
        source = encoded
    else:
        return None
    if not isinstance(text, str):
        return text  # a JSON body may carry the object itself
    try:
        return loads_json(text)
    except orjson.JSONDecodeError:
        raise _Unreadable(f"{source} is not valid JSON") from None


def _schema_name(schema: Any) -> str | None:
    """`iglu:com.acme/add_to_cart/jsonschema/1-0-0` → `add_to_cart`."""
    if not isinstance(schema, str):
        return None
    parts = schema.removeprefix("iglu:").split("/")
    return parts[1] if len(parts) == 4 and parts[1] else None


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def _event(item: Any) -> tuple[Incoming, dict[str, Any] | None]:
    if not isinstance(item, dict):
        return reject(item, "expected a tracker-protocol event object"), None
    try:
        return _read(item)
    except _Unreadable as exc:
        return reject(item, str(exc)), None


def _read(item: dict[str, Any]) -> tuple[Incoming, dict[str, Any] | None]:
    kind = str(item.get("e") or "")
    properties: dict[str, Any] = {}
    event: Incoming = {"event": EVENT_TYPES.get(kind, kind) or None}
    if kind == "se":
        event["event"] = item.get("se_ac")
    elif kind == "ue":
        envelope = _json_field(item, "ue_pr", "ue_px")
        inner = envelope.get("data") if isinstance(envelope, dict) else None
        name = _schema_name(inner.get("schema")) if isinstance(inner, dict) else None
        if not isinstance(inner, dict) or name is None:
            raise _Unreadable("ue_pr/ue_px holds no self-describing event ({\"schema\": \"iglu:...\", \"data\": ...})")
        event["event"] = name
        data = inner.get("data")
        properties.update(data if isinstance(data, dict) else {"data": data})
        properties["event_schema"] = inner["schema"]
    elif kind == "tr":
        event["revenue"] = item.get("tr_tt")
        event["currency"] = item.get("tr_cu")
    contexts = _json_field(item, "co", "cx")
    if contexts is not None:
        entities = contexts.get("data") if isinstance(contexts, dict) else None
        if not isinstance(entities, list):
            raise _Unreadable("co/cx holds no contexts ({\"schema\": \"iglu:...contexts...\", \"data\": [...]})")
        properties["contexts"] = entities
    for name, value in item.items():
        if name in CONSUMED or value is None or value == "":
            continue
        properties.setdefault(RENAMED.get(name, name), _number(value) if name in NUMERIC else value)
    if item.get("eid"):
        event["event_id"] = item["eid"]
    if item.get("ttm") not in (None, ""):
        event["ts"] = item["ttm"]  # the caller's own time: no skew correction (Snowplow's derived_tstamp)
    elif item.get("dtm") not in (None, ""):
        event["ts"] = item["dtm"]
        if item.get("stm") not in (None, ""):
            event["sent_at"] = item["stm"]
    visitor = item.get("duid") or item.get("tnuid") or item.get("nuid")
    for column, value in (("visitor_id", visitor), ("session_id", item.get("sid")), ("user_id", item.get("uid")),
                          ("url", item.get("url")), ("referrer", item.get("refr")),
                          ("user_agent", item.get("ua")), ("ip", item.get("ip"))):
        if value not in (None, ""):
            event[column] = value
    if properties:
        event["properties"] = properties
    link = None
    if visitor and item.get("uid"):
        link = {"visitor_id": str(visitor), "user_id": str(item["uid"]), "ts": event.get("ts"), "source": "event"}
    return event, link


def _parsed(items: list[Any]) -> Parsed:
    key = next((i["aid"] for i in items if isinstance(i, dict) and isinstance(i.get("aid"), str) and i["aid"]), None)
    events: list[Incoming] = []
    identities: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict) and item.get("aid") not in (None, "", key):
            events.append(reject(item, "the event's app id (aid) is not the batch's: one request, one project"))
            continue
        event, link = _event(item)
        events.append(event)
        if link is not None:
            identities.append(link)
    return Parsed(events, write_key=key, identities=identities)


def parse_post(request: Request) -> Parsed:
    body = json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise WireError('expected {"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/...", "data": [...]}')
    return _parsed(body["data"])


def parse_get(request: Request) -> Parsed:
    return _parsed([dict(request.query)])


def pixel(outcome: Outcome) -> Reply:
    return Reply(200, PIXEL, "image/gif")


ROUTES = (
    Route("/com.snowplowanalytics.snowplow/tp2", ("POST",), parse_post, name="snowplow"),
    Route("/i", ("GET",), parse_get, pixel, name="snowplow-pixel"),
)
