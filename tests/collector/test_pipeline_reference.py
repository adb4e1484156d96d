"""The pipeline's steps against the step-by-step code they replaced, kept here as reference implementations:
the string clean-up (which now keeps values that need no cleaning as they are instead of copying them),
the timestamp parser and the clock step (which now reads each `sent_at` once, cached), the id and name
steps, the URL, channel and user-agent steps, `finalize`, and Segment's messages — each compared on many
generated inputs (texts with non-ASCII characters, lone surrogates, NULs and past every limit, numbers as
ids, missing fields, deep and wide properties, timestamps in every form and garbage). The references are
the earlier code, copied; none is derived from the code under test. (The pipeline's runner is compared
with the plain loop of `test_pipeline_pure`.)"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import islice
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystep.collector.ingest import default_steps, limit_event, render
from keystep.collector.pipeline import (
    Context,
    Drop,
    Incoming,
    Step,
    _properties_json,
    assign_event_id,
    check_columns,
    finalize,
    require_event,
    require_visitor,
    run_pipeline,
)
from keystep.collector.wire import Reply, segment
from keystep.enrich import strings
from keystep.enrich.bots import drop_bots, drop_referrer_spam
from keystep.enrich.channels import PAID_CLICK_IDS, _bare, _channel, _referral_medium, assign_channel
from keystep.enrich.clock import FUTURE_LIMIT, SKEW_TOLERANCE, correct_time
from keystep.enrich.cookieless import assign_cookieless_id
from keystep.enrich.urls import _url_facts, host_of, read_url
from keystep.enrich.useragent import COLUMNS, describe, parse_user_agent, user_agent_of
from keystep.events.timestamps import TimestampError, TsFormat, parse_timestamp

from .test_pipeline_pure import reference_pipeline

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
CONTEXT = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch", ip="203.0.113.9",
                  user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", salt=b"s" * 32,
                  sent_at="2026-03-02T11:00:00Z")

# -- the reference implementations (the earlier code) --------------------------------------------------

EVENT_NAME_LIMIT, PROPERTY_KEY_LIMIT, TEXT_LIMIT, URL_LIMIT = 200, 200, 2_000, 4_000
MAX_PROPERTIES, MAX_DEPTH, MAX_NOTES = 500, 32, 20
COLUMN_LIMITS = {"event": EVENT_NAME_LIMIT, "original_event": EVENT_NAME_LIMIT, "url": URL_LIMIT, "referrer": URL_LIMIT}
_SURROGATE = re.compile("[\ud800-\udfff]")


def ref_clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def ref_clean_strings(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    found: list[str] = []
    for name, value in event.items():
        if isinstance(value, str):
            if ((len(value) <= 200 or len(value) <= COLUMN_LIMITS.get(name, TEXT_LIMIT))
                    and value.isascii() and "\x00" not in value):
                continue
            if name != "properties":
                event[name] = _ref_fit(ref_clean_text(value), COLUMN_LIMITS.get(name, TEXT_LIMIT), name, found)
        elif value is None or type(value) in (int, float, bool) or name == "properties":
            continue
        elif isinstance(value, Mapping | list | tuple):
            event[name] = _ref_clean_value(value, name, 1, found)
    properties = event.get("properties")
    if isinstance(properties, str):
        try:
            parsed = json.loads(ref_clean_text(properties))
        except (ValueError, RecursionError):
            parsed = None
        parsed = parsed if isinstance(parsed, dict) else None
        if parsed is None:
            event["properties"] = ref_clean_text(properties)
        properties = parsed
    if type(properties) is dict or isinstance(properties, Mapping):
        event["properties"] = _ref_clean_object(properties, "properties", 1, found)
    elif isinstance(properties, list | tuple):
        event["properties"] = _ref_clean_value(properties, "properties", 1, found)
    if found:
        notes.extend(found[:MAX_NOTES])
        if len(found) > MAX_NOTES:
            notes.append(f"{len(found) - MAX_NOTES} more values truncated or dropped")
    return event


def _ref_fit(text: str, limit: int, where: str, found: list[str]) -> str:
    if len(text) <= limit:
        return text
    found.append(f"{where}: truncated from {len(text)} to {limit} characters")
    return text[:limit]


def _ref_label(key: str) -> str:
    return key if len(key) <= 40 else key[:37] + "..."


def _ref_clean_object(value: Mapping[Any, Any], where: str, depth: int, found: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if len(value) > MAX_PROPERTIES:
        found.append(f"{where}: {len(value) - MAX_PROPERTIES} keys beyond the first {MAX_PROPERTIES} dropped")
    for raw_key, item in islice(value.items(), MAX_PROPERTIES):
        key = ref_clean_text(raw_key if isinstance(raw_key, str) else str(raw_key))
        key = _ref_fit(key, PROPERTY_KEY_LIMIT, f"{where} key {_ref_label(key)}", found)
        if key in out:
            found.append(f"{where}.{_ref_label(key)}: a second key with this name once cleaned; dropped")
            continue
        out[key] = _ref_clean_value(item, f"{where}.{_ref_label(key)}", depth, found)
    return out


def _ref_clean_value(value: Any, where: str, depth: int, found: list[str]) -> Any:
    if isinstance(value, str):
        return _ref_fit(ref_clean_text(value), TEXT_LIMIT, where, found)
    if isinstance(value, Mapping | list | tuple):
        if depth >= MAX_DEPTH:
            found.append(f"{where}: nested deeper than {MAX_DEPTH} levels; set to null")
            return None
        if isinstance(value, Mapping):
            return _ref_clean_object(value, where, depth + 1, found)
        return [_ref_clean_value(item, f"{where}[{i}]", depth + 1, found) for i, item in enumerate(value)]
    return value


_MIN_TS, _MAX_TS = datetime(2000, 1, 1), datetime(2100, 1, 1)
_EPOCH = datetime(1970, 1, 1)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def ref_parse_timestamp(value: object, fmt: TsFormat = TsFormat.AUTO) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise TimestampError("empty")
        if fmt is not TsFormat.ISO and ":" not in text and _NUMBER.fullmatch(text):
            return _ref_from_number(Decimal(text), value, fmt)
        if fmt in (TsFormat.SECONDS, TsFormat.MILLISECONDS):
            raise TimestampError(f"{_ref_show(value)} is not a number of epoch {_ref_unit(fmt)}")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            if _NUMBER.fullmatch(text):
                raise TimestampError(f"{_ref_show(value)} is a number, not an ISO 8601 timestamp") from None
            raise TimestampError(f"{_ref_show(value)} is not an ISO 8601 timestamp or an epoch number") from None
        return _ref_in_range(_ref_naive_utc(parsed), value)
    if value is None:
        raise TimestampError("empty")
    if isinstance(value, datetime):
        return _ref_in_range(_ref_naive_utc(value), value)
    if isinstance(value, date):
        return _ref_in_range(datetime(value.year, value.month, value.day), value)
    if isinstance(value, bool):
        raise TimestampError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            number = Decimal("NaN")
        else:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return _ref_from_number(number, value, fmt)
    raise TimestampError(f"{_ref_show(value)} ({type(value).__name__}) is not a timestamp")


def _ref_from_number(number: Decimal, original: object, fmt: TsFormat) -> datetime:
    if not number.is_finite():
        raise TimestampError(f"{_ref_show(original)} is not a finite number")
    if fmt is TsFormat.ISO:
        raise TimestampError(f"{_ref_show(original)} is a number, not an ISO 8601 timestamp")
    if fmt is TsFormat.AUTO:
        fmt = TsFormat.MILLISECONDS if abs(number) >= 100_000_000_000 else TsFormat.SECONDS
    if abs(number) >= Decimal(10) ** 16:
        raise TimestampError(f"{_ref_show(original)} read as epoch {_ref_unit(fmt)} is out of range")
    scale = 1_000_000 if fmt is TsFormat.SECONDS else 1_000
    micros = int((number * scale).to_integral_value(ROUND_HALF_EVEN))
    try:
        result = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise TimestampError(f"{_ref_show(original)} read as epoch {_ref_unit(fmt)} is out of range") from None
    if not _MIN_TS <= result < _MAX_TS:
        raise TimestampError(
            f"{_ref_show(original)} read as epoch {_ref_unit(fmt)} is {result.isoformat()}, "
            f"outside {_MIN_TS.date()}..{_MAX_TS.date()} (another unit or format?)"
        )
    return result


def _ref_in_range(result: datetime, original: object) -> datetime:
    if not _MIN_TS <= result < _MAX_TS:
        raise TimestampError(f"{_ref_show(original)} is outside {_MIN_TS.date()}..{_MAX_TS.date()}")
    return result


def _ref_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    offset = moment.utcoffset()
    if offset:
        try:
            moment -= offset
        except OverflowError:
            raise TimestampError(f"{moment.isoformat()} is out of range") from None
    return moment.replace(tzinfo=None)


def _ref_unit(fmt: TsFormat) -> str:
    return "milliseconds" if fmt is TsFormat.MILLISECONDS else "seconds"


def _ref_show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ref_time(value: object) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return ref_parse_timestamp(value)


def ref_correct_time(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    try:
        ts = _ref_time(event.get("ts"))
    except TimestampError as exc:
        return Drop("invalid_timestamp", f"ts: {exc}", "ts")
    if ts is None:
        event["ts"] = context.received_at
        return event
    sent = event.get("sent_at", context.sent_at)
    if sent is not None:
        try:
            sent_at = _ref_time(sent)
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


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def ref_require_event(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        return Drop("missing_event", "every event needs a name (`event`)", "event")
    event["event"] = name.strip()
    return event


def ref_read_url(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    url = event.get("url")
    if isinstance(url, str):
        path, utm, click = _url_facts(url.strip())
        if path is not None and _blank(event.get("path")):
            event["path"] = path
        for name, value in utm:
            if _blank(event.get(name)):
                event[name] = value
        if click is not None:
            properties: Any = event.get("properties")
            if properties is None:
                properties = event["properties"] = {}
            if isinstance(properties, dict) and "click_id_type" not in properties and "click_id" not in properties:
                properties["click_id_type"] = click[0]  # in place: `ref_clean_strings` copied the properties
                properties["click_id"] = click[1][:TEXT_LIMIT]
    event["referrer_host"] = host_of(event.get("referrer"))
    return event


def _ref_lower(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _ref_traffic(event: Incoming) -> tuple[str, str, str]:
    source, medium, campaign = (_ref_lower(event.get("utm_source")), _ref_lower(event.get("utm_medium")),
                                _ref_lower(event.get("utm_campaign")))
    if source or medium:
        return source or "(not set)", medium or "(not set)", campaign
    properties = event.get("properties")
    click = _ref_lower(properties.get("click_id_type")) if isinstance(properties, dict) else ""
    if click in PAID_CLICK_IDS:
        return *PAID_CLICK_IDS[click], campaign
    referrer = event.get("referrer_host") or host_of(event.get("referrer"))
    if isinstance(referrer, str) and referrer:
        host = _bare(referrer.lower())
        if host != _bare(host_of(event.get("url")) or ""):
            return host, _referral_medium(host), campaign
    if click == "fbclid":
        return "facebook", "referral", campaign
    return "(direct)", "(none)", campaign


def ref_assign_channel(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    if _ref_lower(event.get("channel")):
        return event
    event["channel"] = _channel(*_ref_traffic(event))
    return event


def ref_parse_user_agent(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    user_agent = user_agent_of(event, context)
    if user_agent is None:
        return event
    for name, value in zip(COLUMNS, describe(user_agent), strict=True):
        if value is not None and _blank(event.get(name)):
            event[name] = value
    return event


def ref_require_visitor(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    for key in ("visitor_id", "user_id"):
        value = event.get(key)
        if not isinstance(value, str):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            value = format(value, "g") if isinstance(value, float) else str(value)
        value = value.strip()
        if value:
            event["visitor_id"] = value
            if key == "visitor_id" and isinstance(event.get("user_id"), int):
                event["user_id"] = str(event["user_id"])
            return event
    return Drop("missing_visitor_id", "an event needs a visitor id (or a user id)", "visitor_id")


def ref_assign_event_id(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    given = event.get("event_id")
    if given is not None and str(given).strip():
        event["event_id"] = str(given).strip()[:128]
        return event
    content = json.dumps({k: event.get(k) for k in ("event", "ts", "visitor_id", "user_id", "url", "properties")},
                         default=str, sort_keys=True)
    event["event_id"] = "h" + hashlib.blake2b(content.encode(), digest_size=16).hexdigest()
    return event


def ref_finalize(event: Incoming, context: Context, notes: list[str]) -> Incoming | Drop:
    properties = event.get("properties")
    if type(properties) is not dict and not isinstance(properties, Mapping):
        properties = {}
    original = event.get("original_event")
    if original and original != event["event"] and "original_event" not in properties:
        properties = {**properties, "original_event": original}
    event["project"] = context.project
    event["received_at"] = context.received_at
    if event.get("ts") is None:
        event["ts"] = context.received_at
    event["properties"] = json.dumps(properties, ensure_ascii=False, default=str) if properties else None
    return event


REFERENCE_STEPS: tuple[Step, ...] = (
    limit_event, ref_clean_strings, ref_require_event, ref_correct_time, check_columns, ref_read_url,
    ref_assign_channel, ref_parse_user_agent, drop_bots, drop_referrer_spam, assign_cookieless_id,
    ref_require_visitor, ref_assign_event_id, ref_finalize,
)


# -- generated inputs ---------------------------------------------------------------------------------

_chars = st.characters(exclude_categories=())  # any code point: lone surrogates and NUL too
_odd = st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d\ude00", "\ud83d", "é", "中", "😀", " ", "\t", "\u2028"])
short_texts = st.text(_chars, max_size=12) | st.builds(lambda a, b: a + b, st.text(max_size=6), _odd)
long_texts = st.builds(lambda base, n, tail: base * n + tail, st.sampled_from(["a", "é", "ab", " ", "\x00", "\ud800"]),
                       st.sampled_from([39, 40, 41, 199, 200, 201, 1999, 2000, 2001, 3999, 4000, 4001, 4100]),
                       st.sampled_from(["", " ", "\x00", "\ud800", "é"]))
plain_texts = st.sampled_from(["", " ", "x", " page_view ", "purchase", "Order Completed", "USD", " eur ", "12.5",
                               "v1", "u-9", "google", "cpc", "news", "email", "(direct)", "Paid Search", "null",
                               "https://shop.example/p?utm_source=google&utm_medium=cpc&gclid=1",
                               "https://shop.example/?fbclid=z", "http://[::1", "/pricing?utm_campaign=Sale",
                               "https://www.google.com/", "semalt.com", "https://mail.google.com/",
                               "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148",
                               "Mozilla/5.0 (compatible; Googlebot/2.1)",
                               "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120"])
texts = plain_texts | short_texts | long_texts
numbers = st.integers(-(2**70), 2**70) | st.floats() | st.sampled_from([0, 1, -1, 2**63, 2**64, 1.5, -0.0, 1e16, 1e-7])
scalars = st.none() | st.booleans() | numbers | texts
keys = texts | st.integers(-5, 5) | st.sampled_from([None, True, 1.5, "click_id_type", "click_id", "original_event"])


def _deep(n: int, leaf: Any) -> Any:
    for i in range(n):
        leaf = {"d": leaf} if i % 2 else [leaf]
    return leaf


values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4) | st.lists(children, max_size=3).map(tuple)
                      | st.dictionaries(keys, children, max_size=4)
                      | st.dictionaries(st.text(max_size=4), children, max_size=3).map(OrderedDict)
                      | st.dictionaries(st.text(max_size=4), children, max_size=3).map(MappingProxyType)),
    max_leaves=12,
)
wide = st.builds(lambda n, v: {f"k{i}": v for i in range(n)}, st.sampled_from([0, 1, 499, 500, 501, 640]),
                 st.sampled_from([1, "x", None, "\x00", [1], {"a": 1}]))
deep = st.builds(_deep, st.integers(28, 36), scalars)
plain_properties = st.dictionaries(st.sampled_from(["item_id", "price", "name", "plan", "n"]),
                                   st.none() | st.booleans() | st.integers(-99, 99) | st.floats(-1e6, 1e6)
                                   | st.sampled_from(["p1", "x", "pro", ""]), max_size=4)
properties = (plain_properties | values | wide | deep | st.dictionaries(keys, values, max_size=5)
              | st.dictionaries(st.text(max_size=5), values, max_size=4).map(lambda d: json.dumps(d, default=str))
              | st.sampled_from(["[1, 2]", "not json", "", " ", '{"a": "\\u0000"}', "3", "{\"a\": 1}" + " " * 2000]))
stamps = (
    st.builds(lambda d, tz, sep, spec, z, pad: pad + (d.replace(tzinfo=tz).isoformat(sep, spec).replace("+00:00", "Z")
                                                      if z else d.replace(tzinfo=tz).isoformat(sep, spec)) + pad,
              st.datetimes(datetime(1990, 1, 1), datetime(2110, 1, 1)),
              st.none() | st.just(UTC)
              | st.timedeltas(-timedelta(hours=23, minutes=59), timedelta(hours=23, minutes=59)).map(timezone),
              st.sampled_from(["T", " "]), st.sampled_from(["auto", "hours", "minutes", "seconds", "milliseconds",
                                                             "microseconds"]),
              st.booleans(), st.sampled_from(["", " ", "\t"]))
    | st.datetimes(datetime(1990, 1, 1), datetime(2110, 1, 1)).map(lambda d: d.date().isoformat())
    | st.integers(-(10**18), 10**18) | st.integers(946_684_800, 4_102_444_799) | st.integers(10**11, 4 * 10**12)
    | st.floats() | st.floats(9e8, 4e12)
    | st.builds(lambda n, form: form.format(n), st.floats(9e8, 4e12), st.sampled_from(["{}", "{:.3f}", " {:.0f} ",
                                                                                       "+{}", "{:e}", "{:E}"]))
    | st.sampled_from(["2026-03-02T11:00:00.123456789Z", "20260302T110000Z", "2026-W10-1", "2026-03-02T24:00:00",
                       "2026-02-30", "2026-03-02T11:00:00,5", "2026-03-02T11", "12:00", ".5", "1764504000.", "nan",
                       "inf", "-inf", "1e400", "１７６４５０４０００", "0001-01-01T00:00:00+00:01",
                       "9999-12-31T23:59:59-23:59", "2026-03-02T11:00:00+25:00", "", "  ", "garbage", "1e9"])
    | st.builds(datetime, st.integers(1990, 2110), st.integers(1, 12), st.integers(1, 28))
    | st.datetimes(datetime(1990, 1, 1), datetime(2110, 1, 1), timezones=st.just(UTC))
    | st.dates(date(1990, 1, 1), date(2110, 1, 1))
    | st.none() | st.booleans() | st.lists(st.integers(), max_size=1) | texts
)
ids = texts | numbers | st.none() | st.booleans() | st.sampled_from(["v1", " v2 ", "", "  "]) | values
FIELDS = ("event", "event_id", "ts", "visitor_id", "user_id", "session_id", "url", "referrer", "path", "revenue",
          "currency", "properties", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "channel",
          "device_type", "browser", "os", "country", "sent_at", "user_agent", "ip", "original_event", "other")
by_field: dict[str, Any] = {"event": texts | plain_texts | values, "event_id": ids, "visitor_id": ids, "user_id": ids,
                            "ts": stamps, "sent_at": stamps, "properties": properties,
                            "url": plain_texts | texts | values, "referrer": plain_texts | texts | values,
                            "user_agent": plain_texts | texts | values,
                            "ip": st.sampled_from(["203.0.113.5", " ", "", 5])}
anything = st.lists(st.sampled_from(FIELDS), max_size=10).flatmap(
    lambda names: st.fixed_dictionaries({name: by_field.get(name, scalars | values) for name in names}))
usual = st.fixed_dictionaries(  # events as the SDKs send them, so the usual path is taken often
    {"event": st.sampled_from(["page_view", "purchase", " add_to_cart "]),
     "ts": st.sampled_from(["2026-03-02T11:00:00.001000+00:00", "2026-03-02T11:00:00Z", "1772449200"]) | stamps},
    optional={"event_id": st.sampled_from(["e-1", " e-2 ", ""]) | st.integers(),
              "visitor_id": st.sampled_from(["v1", " v2 ", "", 12]) | ids,
              "user_id": st.sampled_from(["u1", 7, None, ""]),
              "url": st.sampled_from(["https://shop.example/p/1?utm_source=google&utm_medium=cpc",
                                      "https://shop.example/?gclid=abc", "https://shop.example/?fbclid=z&x=1",
                                      "/pricing?msclkid=1&utm_campaign=Sale"]) | plain_texts,
              "referrer": plain_texts, "user_agent": plain_texts, "properties": plain_properties | properties,
              "revenue": st.sampled_from([12.5, "3"]) | numbers | texts,
              "currency": st.sampled_from(["USD", "eur", "EURO", "", None]), "channel": st.sampled_from(["", "Email"]),
              "path": st.sampled_from(["", " ", "/given"]), "utm_source": st.sampled_from(["", "given"]),
              "original_event": st.sampled_from(["Order Completed", "page_view"]), "sent_at": stamps})
events = usual | anything


def _copy(value: Any) -> Any:
    """A deep copy that keeps each container's type (`copy.deepcopy` cannot copy a mappingproxy)."""
    if isinstance(value, MappingProxyType):
        return MappingProxyType({k: _copy(v) for k, v in value.items()})
    if isinstance(value, dict):
        return type(value)((k, _copy(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_copy(v) for v in value)
    return value


def _same(a: Any, b: Any) -> None:
    """Equal values of the same types, all the way down (`repr` shows both)."""
    assert repr(a) == repr(b)


# -- the comparisons ----------------------------------------------------------------------------------


@SETTINGS
@given(events)
def test_clean_strings_gives_what_the_copying_clean_up_gave(event: dict[str, Any]) -> None:
    incoming = _copy(event)
    before = repr(incoming)
    got_notes: list[str] = []
    expected_notes: list[str] = []
    got = strings.clean_strings(dict(incoming), CONTEXT, got_notes)
    expected = ref_clean_strings(_copy(event), CONTEXT, expected_notes)
    _same(got, expected)
    assert got_notes == expected_notes
    assert repr(incoming) == before  # nothing of the incoming event was changed in place


@SETTINGS
@given(properties | values)
def test_an_object_that_needs_no_cleaning_is_kept_and_one_that_does_is_copied(value: Any) -> None:
    if not isinstance(value, Mapping):
        value = {"p": value}
    before = repr(value)
    found: list[str] = []
    got = strings._clean_object(value, "properties", 1, found)
    expected_found: list[str] = []
    expected = _ref_clean_object(value, "properties", 1, expected_found)
    _same(got, expected)
    assert found == expected_found
    assert repr(value) == before
    if got is value:  # kept only when the copy would have been the same, a dict, with nothing noted
        assert type(value) is dict and not found and repr(expected) == before


def test_clean_objects_are_kept_and_the_copy_starts_where_a_change_does() -> None:
    nested = {"a": "x", "b": [1, "y", {"c": None}], "d": 1.5}
    assert strings._clean_object(nested, "properties", 1, []) is nested
    changed = {"a": "x", "b": [1, "y\x00", {"c": None}], "d": 1.5}
    out = strings._clean_object(changed, "properties", 1, [])
    assert out == {"a": "x", "b": [1, "y", {"c": None}], "d": 1.5}
    assert out is not changed and out["b"] is not changed["b"] and out["b"][2] is changed["b"][2]
    assert changed["b"][1] == "y\x00"  # the incoming object as it was
    assert strings._clean_value(("a", 1), "p", 1, []) == ["a", 1]  # a tuple becomes a list
    proxy = MappingProxyType({"a": 1})
    assert strings._clean_object(proxy, "properties", 1, []) == {"a": 1}


@SETTINGS
@given(stamps, st.sampled_from(list(TsFormat)))
def test_parse_timestamp_gives_what_the_earlier_parser_gave(value: Any, fmt: TsFormat) -> None:
    def outcome(parse: Any) -> tuple[str, Any]:
        try:
            result = parse(value, fmt)
        except TimestampError as exc:
            return "error", str(exc)
        assert type(result) is datetime and result.tzinfo is None
        return "ok", (result, result.fold)

    assert outcome(parse_timestamp) == outcome(ref_parse_timestamp)


@SETTINGS
@given(stamps, stamps | st.just("absent"), stamps | st.none())
def test_correct_time_gives_what_the_earlier_clock_step_gave(ts: Any, sent_at: Any, request_sent_at: Any) -> None:
    context = Context(project="shop", received_at=datetime(2026, 3, 2, 12, 0, 0, 250_000), route="/api/collect",
                      sent_at=request_sent_at)
    _same_clock(ts, sent_at, context)


def _same_clock(ts: Any, sent_at: Any, context: Context) -> None:
    event: dict[str, Any] = {"ts": ts} if sent_at == "absent" else {"ts": ts, "sent_at": sent_at}
    got_notes: list[str] = []
    expected_notes: list[str] = []
    got = correct_time(dict(event), context, got_notes)
    expected = ref_correct_time(dict(event), context, expected_notes)
    _same(got, expected)
    assert got_notes == expected_notes


# a batch's events share the request's `sent_at` or carry equal ones, of one type or of several (the clock step
# caches what a `sent_at` reads as)
sent_ats = stamps | st.sampled_from([1772448000, 1772448000.0, True, "1772448000", " 1772448000 ", Decimal(1772448000),
                                     "2026-03-02T11:00:00Z", datetime(2026, 3, 2, 11), date(2026, 3, 2), [1], {"a": 1}])


@SETTINGS
@given(st.lists(st.tuples(stamps, sent_ats | st.just("absent")), min_size=1, max_size=8), sent_ats | st.none())
def test_correct_time_over_a_batch_gives_what_the_uncached_clock_step_gave(
        batch: list[tuple[Any, Any]], request_sent_at: Any) -> None:
    context = Context(project="shop", received_at=datetime(2026, 3, 2, 12, 0, 0, 250_000), route="/v1/batch",
                      sent_at=request_sent_at)
    for ts, sent_at in batch * 2:  # (twice: the second time, every `sent_at` has been read before)
        _same_clock(ts, sent_at, context)


@SETTINGS
@given(events)
def test_the_single_steps_give_what_the_earlier_ones_gave(event: dict[str, Any]) -> None:
    pairs = ((require_event, ref_require_event), (require_visitor, ref_require_visitor),
             (assign_event_id, ref_assign_event_id), (read_url, ref_read_url), (assign_channel, ref_assign_channel),
             (parse_user_agent, ref_parse_user_agent))
    for step, reference in pairs:
        got_notes: list[str] = []
        expected_notes: list[str] = []
        try:
            got: Any = step(_copy(event), CONTEXT, got_notes)
        except Exception as exc:
            got = (type(exc), str(exc))
        try:
            expected: Any = reference(_copy(event), CONTEXT, expected_notes)
        except Exception as exc:
            expected = (type(exc), str(exc))
        _same(got, expected)
        assert got_notes == expected_notes, step.__name__


@SETTINGS
@given(events)
def test_finalize_gives_what_the_earlier_one_gave(event: dict[str, Any]) -> None:
    event.setdefault("event", "x")
    cleaned = ref_clean_strings(_copy(event), CONTEXT, [])
    assert isinstance(cleaned, dict)
    for candidate in (cleaned, _copy(event)):
        try:
            expected: Any = ref_finalize(_copy(candidate), CONTEXT, [])
        except (TypeError, ValueError, RecursionError) as exc:
            expected = type(exc)
        try:
            got: Any = finalize(_copy(candidate), CONTEXT, [])
        except (TypeError, ValueError, RecursionError) as exc:
            got = type(exc)
        _same(got, expected)


@SETTINGS
@given(st.lists(events, max_size=6))
def test_the_pipeline_gives_what_the_earlier_steps_gave(items: list[dict[str, Any]]) -> None:
    before = repr(items)
    got = run_pipeline(items, CONTEXT, default_steps())
    assert repr(items) == before  # the incoming events are left as they were, at every depth
    expected = reference_pipeline(_copy(items), CONTEXT, REFERENCE_STEPS)
    _same(got.accepted, expected.accepted)
    assert got.accepted_index == expected.accepted_index
    _same(got.rejected, expected.rejected)
    assert got.dropped == expected.dropped
    assert got.warnings == expected.warnings


def test_the_properties_text_is_what_json_dumps_writes() -> None:
    for value in ({"a": 1, "b": [1.5, None, True], "é": "ü\x00", "n": float("nan")}, {"k": datetime(2026, 3, 2)}):
        assert _properties_json(value) == json.dumps(value, ensure_ascii=False, default=str)


# -- Segment's messages ---------------------------------------------------------------------------------


def ref_an_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return (format(value, "g") if isinstance(value, float) else str(value)).strip() or None


def ref_commerce(event: Incoming, properties: Mapping[str, Any], revenue_keys: tuple[str, ...] = ("revenue",),
                 currency_keys: tuple[str, ...] = ("currency",)) -> None:
    mapped = segment.ga4_name(event.get("event"))
    if mapped is not None:
        event["original_event"] = event["event"]
        event["event"] = mapped
    name = event.get("event")
    keys = revenue_keys + (("total", "value") if isinstance(name, str) and name in ("purchase", "refund") else ())
    for key in keys:
        if properties.get(key) is not None:
            event["revenue"] = properties[key]
            break
    for key in currency_keys:
        if properties.get(key) is not None:
            event["currency"] = properties[key]
            break


def ref_message(item: Any, kind: str | None, shared_context: Mapping[str, Any]) -> tuple[Any, list[Any]]:
    if not isinstance(item, dict):
        return {"_reject": "expected a message object", "_raw": item}, []
    kind = kind or item.get("type")
    if not isinstance(kind, str) or not kind.strip():
        return {"_reject": "a message needs a `type` (track, page, screen, identify, alias or group)", "_raw": item}, []
    kind = kind.strip().lower()
    ts = item.get("timestamp")
    if ts is None:
        ts = item.get("originalTimestamp")
    anonymous, user = ref_an_id(item.get("anonymousId")), ref_an_id(item.get("userId"))
    if kind == "identify":
        if not (anonymous or user):
            return {"_reject": "an identify needs a userId or an anonymousId", "_raw": item}, []
        return {"_skip": "identify"}, ([{"visitor_id": anonymous, "user_id": user, "ts": ts, "source": "identify"}]
                                       if anonymous and user else [])
    if kind == "alias":
        previous = ref_an_id(item.get("previousId"))
        if not (previous and user):
            return {"_reject": "an alias needs a previousId and a userId", "_raw": item}, []
        return {"_skip": "alias"}, [{"visitor_id": previous, "user_id": user, "ts": ts, "source": "alias"}]
    if kind == "group":
        return {"_skip": "group"}, []
    if kind not in ("track", "page", "screen"):
        return {"_reject": f"unknown message type {kind!r}", "_raw": item}, []
    properties = item.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return {"_reject": "`properties` must be an object", "_raw": item}, []
    properties = dict(properties)
    own = item.get("context")
    context = own if isinstance(own, dict) else {}
    if shared_context:
        context = {**shared_context, **context}
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    event: dict[str, Any] = {"event_id": item.get("messageId")}
    if kind == "track":
        event["event"] = item.get("event")
    else:
        event["event"] = "page_view" if kind == "page" else "screen_view"
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
        for key, column in (("source", "utm_source"), ("medium", "utm_medium"), ("name", "utm_campaign"),
                            ("term", "utm_term"), ("content", "utm_content")):
            if campaign.get(key) is not None:
                event[column] = campaign[key]
    for key, column in (("userAgent", "user_agent"), ("ip", "ip"), ("sessionId", "session_id")):
        if context.get(key) is not None:
            event[column] = context[key]
    if ts is not None:
        event["ts"] = ts
    if item.get("sentAt") is not None:
        event["sent_at"] = item["sentAt"]
    event["visitor_id"], event["user_id"] = anonymous, user
    ref_commerce(event, properties)
    event["properties"] = properties
    return event, ([{"visitor_id": anonymous, "user_id": user, "ts": ts, "source": "event"}] if anonymous and user
                   else [])


message_ids = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | texts | st.just([1])
spec_names = st.sampled_from(["Order Completed", "order  completed", "Order Refunded", "Product Added", "purchase",
                              "refund", "Signed Up", "custom"])
messages = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["track", "page", "screen", "identify", "alias", "group", " Track ", "bogus", "", 3]),
    "event": spec_names | texts | st.none() | st.integers(),
    "messageId": message_ids, "anonymousId": message_ids, "userId": message_ids, "previousId": message_ids,
    "timestamp": stamps, "originalTimestamp": stamps, "sentAt": stamps | st.none(),
    "name": texts | st.none(), "category": texts | st.none(),
    "properties": st.none() | st.integers() | st.dictionaries(
        st.sampled_from(["revenue", "total", "value", "currency", "url", "referrer", "path", "name", "x"]),
        st.none() | numbers | texts, max_size=5),
    "context": st.none() | st.just([]) | st.fixed_dictionaries({}, optional={
        "page": st.none() | st.just(3) | st.dictionaries(st.sampled_from(["url", "referrer", "path"]),
                                                          st.none() | texts, max_size=3),
        "campaign": st.none() | st.just({}) | st.just("x") | st.dictionaries(
            st.sampled_from(["source", "medium", "name", "term", "content"]), st.none() | texts, max_size=3),
        "userAgent": st.none() | texts, "ip": st.none() | texts, "sessionId": st.none() | st.integers() | texts}),
}) | st.none() | st.integers() | st.just([])


@SETTINGS
@given(messages, st.sampled_from([None, None, "track", "page", "identify"]),
       st.sampled_from([{}, {"userAgent": "Mozilla/5.0 (X11)", "ip": "198.51.100.1"}, {"page": {"url": "/a"}}]))
def test_segment_messages_are_read_as_before(item: Any, kind: str | None, shared: dict[str, Any]) -> None:
    _same(segment._message(_copy(item), kind, shared), ref_message(_copy(item), kind, shared))


@SETTINGS
@given(st.fixed_dictionaries({}, optional={"event": spec_names | texts | st.none() | st.integers()}),
       st.dictionaries(st.sampled_from(["revenue", "$revenue", "total", "value", "currency", "$currency"]),
                       st.none() | numbers | texts, max_size=5),
       st.sampled_from([(("revenue",), ("currency",)), (("revenue", "$revenue"), ("currency", "$currency"))]))
def test_commerce_renames_and_takes_revenue_as_before(event: dict[str, Any], properties: dict[str, Any],
                                                      keys: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    got, expected = dict(event), dict(event)
    segment.commerce(got, properties, *keys)
    ref_commerce(expected, properties, *keys)
    _same(got, expected)


# -- the reply ------------------------------------------------------------------------------------------

replies = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | texts,
                       lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children,
                                                                                          max_size=4), max_leaves=10)


@SETTINGS
@given(replies)
def test_a_reply_is_rendered_as_json_dumps_renders_it(body: Any) -> None:
    def rendered(make: Any) -> Any:
        try:
            return make()
        except (ValueError, UnicodeEncodeError) as exc:  # NaN (allow_nan=False); a lone surrogate in UTF-8
            return type(exc), str(exc)

    expected = rendered(lambda: json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None,
                                           separators=(",", ":")).encode("utf-8"))
    got = rendered(lambda: render(Reply(200, body)).body if body is not None else b"")
    assert got == (b"" if body is None else expected)

