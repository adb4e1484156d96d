"""GA4's Measurement Protocol: `POST /mp/collect` and its validation server, `POST /debug/mp/collect`.

`POST /mp/collect?measurement_id=G-XXXX&api_secret=SECRET` (web streams) or `?firebase_app_id=...&
api_secret=...` (app streams) with `{"client_id" | "app_instance_id", "user_id", "timestamp_micros",
"user_properties", "events": [{"name", "params": {...}, "timestamp_micros"}]}`. There is no official
Python client: servers post this JSON themselves (gtag.js does not speak it).

**The write key is `api_secret`**: create the stream's secret as the project's write key, or send the
project's write key where GA4 wants the secret.

Fields (Measurement Protocol → event):

- `events[].name` → `event`;
- `client_id`, else `app_instance_id` → `visitor_id`; `user_id` → `user_id` (with a visitor id also an
  identity link);
- `events[].timestamp_micros`, else `params.timestamp_micros`, else the request's `timestamp_micros`
  (epoch microseconds) → `ts`; else the receive time;
- `params.page_location`, `page_referrer`, `session_id` → `url`, `referrer`, `session_id`;
- `params.value` with `params.currency` → `revenue`, `currency`; a value without a currency stays a
  property (GA4 counts no revenue without one);
- `params.transaction_id` → `event_id`: as it is for `purchase` (GA4 deduplicates purchases on it),
  `"<name>:<transaction_id>"` for any other event, so that the `refund` of an order is not taken for a
  resend of its `purchase`. Without one, the content hash (a resend with the same `timestamp_micros` is
  stored once);
- other params (`page_title`, `engagement_time_msec`, `items`, ...) → properties;
- `user_properties` (`{name: {"value": v}}`) → property `user_properties`, `{name: v}`;
- the query's `measurement_id` / `firebase_app_id` → properties;
- `device.category` (desktop, mobile, tablet), `device.browser`, `device.operating_system` →
  `device_type`, `browser`, `os`; `user_location.country_id` → `country`;
- `ip_override` → `ip` (a request fact, never stored).

Not kept: `user_data` (hashed e-mail addresses and phone numbers), `consent`, `non_personalized_ads`.
`/mp/collect` stores what keystep's own rules accept (it is not bound by GA4's quotas: a 26th event or
an event name of 41 characters is stored) and, like GA4, answers **204 No Content** whatever the events
held; rejected events are kept in `rejected_events` with their index.

`/debug/mp/collect` stores nothing (`Parsed.validate_only`) and answers 200 `{"validationMessages":
[{"fieldPath", "description", "validationCode"}]}`, like GA4's validation server: GA4's rules below, then
what keystep itself would reject (`VALUE_INVALID`, e.g. a currency that is not three letters). An event
that breaks a GA4 rule is not checked further. As GA4's server, it does not judge the measurement id;
unlike it, it needs a known `api_secret` (keystep finds the project by it).

GA4's rules, and where they are documented:

- at most 25 events per request (`EXCEEDED_MAX_ENTITIES`); `events` present and non-empty and
  `client_id` (or `app_instance_id` with `firebase_app_id`) present (`VALUE_REQUIRED`): the Measurement
  Protocol reference, developers.google.com/analytics/devguides/collection/protocol/ga4/reference;
- event names: at most 40 characters, starting with a letter, only letters, digits and underscores
  (`NAME_INVALID`: GA4's own example answers `_badEventName` with "Names must start with an alphabetic
  character."); not reserved (`NAME_RESERVED`): the names of `RESERVED_EVENT_NAMES` and the prefixes
  `firebase_`, `google_`, `ga_`. Sources: firebase.google.com/docs/reference/android/com/google/firebase/
  analytics/FirebaseAnalytics.Event (the list, the 40 characters, the pattern, the prefixes) and the app
  section of support.google.com/analytics/answer/13316687 (`app_install`, `firebase_campaign`, the
  in-app message events). Letters include non-English ones (13316687: "Event names can include English
  and non-English words and letters"). The *web* list of 13316687 (`page_view`, `click`, `scroll`, ...)
  names the events GA4 collects itself for events created in its UI; the Measurement Protocol takes
  `page_view` and the like, so they are not reserved here;
- at most 25 parameters per event (`EXCEEDED_MAX_ENTITIES`); parameter names at most 40 characters and
  of the same pattern (`NAME_INVALID`), not starting with `_`, `firebase_`, `ga_`, `google_` or `gtag.`
  (`NAME_RESERVED`); string values at most 100 characters, `page_title` 300, `page_referrer` 420,
  `page_location` 1,000 (`VALUE_OUT_OF_BOUNDS`); values strings or numbers, `items` a list of objects
  (`VALUE_INVALID`). Sources: support.google.com/analytics/answer/9267744 (event collection limits:
  25 parameters, 40 and 100 characters), support.google.com/firebase/answer/6317485 (the three longer
  page parameters), 13316687 (the reserved parameter prefixes);
- at most 25 user properties (`EXCEEDED_MAX_ENTITIES`); names at most 24 characters (`NAME_INVALID`),
  not `first_open_time`, `first_visit_time`, `first_open_after_install`, `last_deep_link_referrer` or
  `user_id` and not starting with `_`, `firebase_`, `ga_` or `google_` (`NAME_RESERVED`); each
  `{"value": v}` (`VALUE_INVALID`), string values at most 36 characters (`VALUE_OUT_OF_BOUNDS`); `user_id`
  at most 256 characters (`VALUE_OUT_OF_BOUNDS`). Sources: 9267744 and 13316687;
- `timestamp_micros` an integer (`VALUE_INVALID`), the body under 130,000 bytes (`VALUE_OUT_OF_BOUNDS`;
  the reference's limitations, as github.com/TundraSoft/tundra-connect's GA4 schema constants restate).

The codes are those GA4 documents (developers.google.com/analytics/devguides/collection/protocol/ga4/
validating-events): `VALUE_INVALID`, `VALUE_REQUIRED`, `NAME_INVALID`, `NAME_RESERVED`,
`VALUE_OUT_OF_BOUNDS` ("the value provided was too large"), `EXCEEDED_MAX_ENTITIES`, `NAME_DUPLICATED`
(a JSON object cannot name a key twice once parsed, so it is never given). Which code GA4 gives for a too
long value is not documented; keystep says `VALUE_OUT_OF_BOUNDS` for every length and size limit.
Not checked: GA4's 72-hour window for `timestamp_micros` (keystep stores older events) and the
item-scoped custom parameter count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from keystep.collector.pipeline import Incoming, Outcome
from keystep.collector.wire import Parsed, Reply, Request, Route, WireError, json_body, reject

MAX_EVENTS = 25
MAX_PARAMS = 25
MAX_NAME = 40
MAX_VALUE = 100
LONG_VALUES = {"page_title": 300, "page_referrer": 420, "page_location": 1000}
MAX_USER_PROPERTIES = 25
MAX_USER_PROPERTY_NAME = 24
MAX_USER_PROPERTY_VALUE = 36
MAX_USER_ID = 256
MAX_BODY = 130_000

RESERVED_EVENT_NAMES = frozenset({
    "ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure", "app_background",
    "app_clear_data", "app_exception", "app_install", "app_remove", "app_store_refund",
    "app_store_subscription_cancel", "app_store_subscription_convert", "app_store_subscription_renew",
    "app_update", "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update", "dynamic_link_first_open",
    "error", "firebase_campaign", "firebase_in_app_message_action", "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression", "first_open", "first_visit", "in_app_purchase", "notification_dismiss",
    "notification_foreground", "notification_open", "notification_receive", "os_update", "session_start",
    "session_start_with_rollout", "user_engagement",
})
RESERVED_EVENT_PREFIXES = ("firebase_", "google_", "ga_")
RESERVED_PARAM_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
RESERVED_USER_PROPERTY_NAMES = frozenset({
    "first_open_time", "first_visit_time", "first_open_after_install", "last_deep_link_referrer", "user_id"})
RESERVED_USER_PROPERTY_PREFIXES = ("_", "firebase_", "ga_", "google_")

DEVICE_TYPES = {"desktop", "mobile", "tablet"}
_EPOCH = datetime(1970, 1, 1)
_MARK = "ga4-validation:"  # a debug rejection that carries GA4 validation messages (JSON) rather than a reason

Message = dict[str, str]


def _load(request: Request) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise WireError('expected {"client_id": ..., "events": [{"name": ..., "params": {...}}]}')
    return body


def _timestamp(value: Any) -> Any:
    """Epoch microseconds as ISO 8601 (UTC); anything else as it is, for the clock step to reject."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        try:
            return (_EPOCH + timedelta(microseconds=int(value))).isoformat()
        except OverflowError:
            return value
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, "g") if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _event(item: Any, body: Mapping[str, Any], request: Request) -> Incoming:
    if not isinstance(item, dict):
        return reject(item, 'expected an event object {"name": ..., "params": {...}}')
    params = item.get("params", {})
    if not isinstance(params, dict):
        return reject(item, "`params` must be an object")
    properties = dict(params)
    name = item.get("name")
    event: Incoming = {"event": name}
    visitor = body.get("client_id", body.get("app_instance_id"))
    for column, value in (("visitor_id", visitor), ("user_id", body.get("user_id")), ("ip", body.get("ip_override"))):
        if value not in (None, ""):
            event[column] = value
    micros = item.get("timestamp_micros", properties.pop("timestamp_micros", None))
    if micros is None:
        micros = body.get("timestamp_micros")
    if micros is not None:
        event["ts"] = _timestamp(micros)
    for column, key in (("url", "page_location"), ("referrer", "page_referrer"), ("session_id", "session_id")):
        value = properties.pop(key, None)
        if value not in (None, ""):
            event[column] = value
    if properties.get("value") is not None and properties.get("currency") not in (None, ""):
        event["revenue"] = properties.pop("value")
        event["currency"] = properties.pop("currency")
    transaction = _text(properties.get("transaction_id"))
    if transaction:
        event["event_id"] = transaction if name == "purchase" else f"{name}:{transaction}"
    device = body.get("device")
    if isinstance(device, dict):
        category = device.get("category")
        if isinstance(category, str) and category.strip().lower() in DEVICE_TYPES:
            event["device_type"] = category.strip().lower()
        for column, key in (("browser", "browser"), ("os", "operating_system")):
            if device.get(key) not in (None, ""):
                event[column] = device[key]
    location = body.get("user_location")
    if isinstance(location, dict) and location.get("country_id") not in (None, ""):
        event["country"] = location["country_id"]
    user_properties = body.get("user_properties")
    if isinstance(user_properties, dict) and user_properties:
        properties["user_properties"] = {
            k: v.get("value") if isinstance(v, dict) else v for k, v in user_properties.items()}
    for stream in ("measurement_id", "firebase_app_id"):
        if request.query.get(stream):
            properties[stream] = request.query[stream]
    if properties:
        event["properties"] = properties
    return event


def _parse(request: Request, body: dict[str, Any], items: list[Any]) -> tuple[list[Incoming], list[dict[str, Any]]]:
    events = [_event(item, body, request) for item in items]
    visitor, user = _text(body.get("client_id", body.get("app_instance_id"))), _text(body.get("user_id"))
    ts = next((e["ts"] for e in events if "ts" in e), None)
    identities = [{"visitor_id": visitor, "user_id": user, "ts": ts, "source": "event"}] if visitor and user else []
    return events, identities


def parse(request: Request) -> Parsed:
    body = _load(request)
    items = body.get("events")
    if not isinstance(items, list):
        raise WireError("`events` must be a list of events")
    events, identities = _parse(request, body, items)
    return Parsed(events, write_key=request.query.get("api_secret") or None, identities=identities)


# -- the validation server -------------------------------------------------------------------------


def _message(path: str, description: str, code: str) -> Message:
    return {"fieldPath": path, "description": description, "validationCode": code}


def _name_problem(name: str, limit: int) -> str | None:
    if len(name) > limit:
        return f"Names must be {limit} characters or fewer."
    if not name[:1].isalpha():
        return "Names must start with an alphabetic character."
    if not all(c.isalnum() or c == "_" for c in name):
        return "Names may only contain alphanumeric characters and underscores."
    return None


def _check_value(index: int, param: str, value: Any, limit: int, out: list[Message]) -> None:
    if isinstance(value, str) and len(value) > limit:
        out.append(_message("events.params", f"Event at index: [{index}] has param [{param}] with a value of "
                                             f"{len(value)} characters; at most {limit} are allowed.",
                            "VALUE_OUT_OF_BOUNDS"))


def _check_event(index: int, item: Any) -> list[Message]:
    out: list[Message] = []
    if not isinstance(item, dict):
        return [_message("events", f"Event at index: [{index}] is not an object.", "VALUE_INVALID")]
    name = item.get("name")
    if not isinstance(name, str) or not name:
        out.append(_message("events", f"Event at index: [{index}] has no name.", "VALUE_REQUIRED"))
    elif problem := _name_problem(name, MAX_NAME):
        out.append(_message("events", f"Event at index: [{index}] has invalid name [{name}]. {problem}",
                            "NAME_INVALID"))
    elif name in RESERVED_EVENT_NAMES or name.startswith(RESERVED_EVENT_PREFIXES):
        out.append(_message("events", f"Event at index: [{index}] has name [{name}] which is reserved.",
                            "NAME_RESERVED"))
    params = item.get("params", {})
    if not isinstance(params, dict):
        return [*out, _message("events.params", f"Event at index: [{index}] has params that are not an object.",
                               "VALUE_INVALID")]
    if len(params) > MAX_PARAMS:
        out.append(_message("events.params", f"Event at index: [{index}] has {len(params)} params; at most "
                                             f"{MAX_PARAMS} are allowed.", "EXCEEDED_MAX_ENTITIES"))
    for param, value in params.items():
        if param.startswith(RESERVED_PARAM_PREFIXES):
            out.append(_message("events.params", f"Event at index: [{index}] has param [{param}] whose name is "
                                                 "reserved.", "NAME_RESERVED"))
        elif problem := _name_problem(param, MAX_NAME):
            out.append(_message("events.params", f"Event at index: [{index}] has invalid param [{param}]. "
                                                 f"{problem}", "NAME_INVALID"))
        if param == "items":
            if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
                out.append(_message("events.params.items", f"Event at index: [{index}] has items that are not a "
                                                           "list of objects.", "VALUE_INVALID"))
                continue
            for entry in value:
                for key, item_value in entry.items():
                    _check_value(index, f"items.{key}", item_value, MAX_VALUE, out)
        elif value is not None and not isinstance(value, str | int | float):
            out.append(_message("events.params", f"Event at index: [{index}] has param [{param}] whose value is "
                                                 "not a string or a number.", "VALUE_INVALID"))
        else:
            _check_value(index, param, value, LONG_VALUES.get(param, MAX_VALUE), out)
    micros = item.get("timestamp_micros", params.get("timestamp_micros"))
    if micros is not None and not _is_integer(micros):
        out.append(_message("events.timestamp_micros", f"Event at index: [{index}] has a timestamp_micros that is "
                                                       "not an integer.", "VALUE_INVALID"))
    return out


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _check_request(request: Request, body: Mapping[str, Any]) -> list[Message]:
    out: list[Message] = []
    if len(request.body) >= MAX_BODY:
        out.append(_message("", f"The body is {len(request.body):,} bytes; it must be smaller than {MAX_BODY:,}.",
                            "VALUE_OUT_OF_BOUNDS"))
    app = bool(request.query.get("firebase_app_id"))
    field = "app_instance_id" if app else "client_id"
    if body.get(field) in (None, ""):
        out.append(_message(field, f"Measurement requires an {field}." if app else "Measurement requires a client_id.",
                            "VALUE_REQUIRED"))
    user_id = body.get("user_id")
    if isinstance(user_id, str) and len(user_id) > MAX_USER_ID:
        out.append(_message("user_id", f"user_id is {len(user_id)} characters; at most {MAX_USER_ID} are allowed.",
                            "VALUE_OUT_OF_BOUNDS"))
    if body.get("timestamp_micros") is not None and not _is_integer(body["timestamp_micros"]):
        out.append(_message("timestamp_micros", "timestamp_micros must be an integer (epoch microseconds).",
                            "VALUE_INVALID"))
    events = body.get("events")
    if not isinstance(events, list) or not events:
        out.append(_message("events", "Measurement requires at least one event.", "VALUE_REQUIRED"))
    elif len(events) > MAX_EVENTS:
        out.append(_message("events", f"The request has {len(events)} events; at most {MAX_EVENTS} are allowed.",
                            "EXCEEDED_MAX_ENTITIES"))
    out.extend(_check_user_properties(body.get("user_properties")))
    return out


def _check_user_properties(user_properties: Any) -> list[Message]:
    if user_properties is None:
        return []
    if not isinstance(user_properties, dict):
        return [_message("user_properties", "user_properties must be an object.", "VALUE_INVALID")]
    out: list[Message] = []
    if len(user_properties) > MAX_USER_PROPERTIES:
        out.append(_message("user_properties", f"There are {len(user_properties)} user properties; at most "
                                               f"{MAX_USER_PROPERTIES} are allowed.", "EXCEEDED_MAX_ENTITIES"))
    for name, entry in user_properties.items():
        if name in RESERVED_USER_PROPERTY_NAMES or name.startswith(RESERVED_USER_PROPERTY_PREFIXES):
            out.append(_message("user_properties", f"User property [{name}] has a reserved name.", "NAME_RESERVED"))
        elif problem := _name_problem(name, MAX_USER_PROPERTY_NAME):
            out.append(_message("user_properties", f"User property [{name}] has an invalid name. {problem}",
                                "NAME_INVALID"))
        if not isinstance(entry, dict) or "value" not in entry:
            out.append(_message("user_properties", f'User property [{name}] must be {{"value": ...}}.',
                                "VALUE_INVALID"))
        elif isinstance(entry["value"], str) and len(entry["value"]) > MAX_USER_PROPERTY_VALUE:
            out.append(_message("user_properties", f"User property [{name}] has a value of {len(entry['value'])} "
                                                   f"characters; at most {MAX_USER_PROPERTY_VALUE} are allowed.",
                                "VALUE_OUT_OF_BOUNDS"))
    return out


def parse_debug(request: Request) -> Parsed:
    """GA4's rules checked here, as rejections that carry their messages; the pipeline checks keystep's."""
    body = _load(request)
    given = body.get("events")
    items: list[Any] = given if isinstance(given, list) else []
    request_messages = _check_request(request, body)
    if body.get("timestamp_micros") is not None and not _is_integer(body["timestamp_micros"]):
        body = {k: v for k, v in body.items() if k != "timestamp_micros"}  # one message, not one per event
    events, _ = _parse(request, body, items)
    for index, item in enumerate(items):
        messages = _check_event(index, item)
        if messages:
            events[index] = reject(item, _MARK + json.dumps(messages))
    if request_messages:
        events.append(reject(None, _MARK + json.dumps(request_messages)))
    return Parsed(events, write_key=request.query.get("api_secret") or None, validate_only=True)


def respond(outcome: Outcome) -> Reply:
    return Reply(204, None)


def respond_debug(outcome: Outcome) -> Reply:
    messages: list[Message] = []
    for rejection in outcome.rejected:
        detail = rejection.drop.detail
        if detail.startswith(_MARK):
            messages.extend(json.loads(detail[len(_MARK):]))
        else:
            messages.append(_message("events", f"Event at index: [{rejection.index}] is not accepted by keystep: "
                                               f"{detail or rejection.drop.reason}", "VALUE_INVALID"))
    return Reply(200, {"validationMessages": messages})


ROUTES = (
    Route("/mp/collect", ("POST",), parse, respond, name="ga4"),
    Route("/debug/mp/collect", ("POST",), parse_debug, respond_debug, name="ga4-debug"),
)
