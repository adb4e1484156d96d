"""A pure-Python reference for conversion counts: written from the definitions' documented meaning, not
from the SQL. Events are plain dicts with the canonical columns (`ts` naive UTC, `properties` a dict)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from keystep.conversions.definitions import Condition, Goal, Matcher, Op, Unit, Value
from keystep.events.schema import COLUMNS_BY_NAME, EVENT_DIMENSIONS, Kind
from keystep.query import PROPERTY_PREFIX, Granularity, Query

Event = Mapping[str, Any]
Key = tuple[int, str | None, date | None]  # (goal index, segment or None for all, period or None for all)
# eligible units, converted units, actions, value, lowest and highest currency
Counts = tuple[int, int, int, float, str | None, str | None]


def glob_match(pattern: str, text: str | None) -> bool:
    if text is None:
        return False
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, flags=re.DOTALL) is not None


def field_text(event: Event, name: str) -> str | None:
    if name in COLUMNS_BY_NAME and COLUMNS_BY_NAME[name].kind is not Kind.JSON:
        value = event.get(name)
        if value is None:
            return None
        return repr(float(value)) if isinstance(value, float) else str(value)
    props = event.get("properties") or {}
    value = props.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_number(event: Event, name: str) -> float | None:
    text = field_text(event, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def condition_holds(event: Event, c: Condition) -> bool:
    text, number = field_text(event, c.field), field_number(event, c.field)
    v = c.value
    if c.op is Op.EQ:
        return number == v if isinstance(v, float) else text == v
    if c.op is Op.NE:
        if isinstance(v, float):
            return number is None or number != v
        return text is None or text != v
    if c.op is Op.CONTAINS:
        return text is not None and str(v) in text
    if c.op is Op.GT:
        return number is not None and number > float(v)  # type: ignore[arg-type]
    if c.op is Op.LT:
        return number is not None and number < float(v)  # type: ignore[arg-type]
    values = v if isinstance(v, tuple) else (v,)
    if all(isinstance(x, float) for x in values):
        return number is not None and number in values
    return text is not None and text in [format(x, "g") if isinstance(x, float) else x for x in values]


def matcher_holds(event: Event, m: Matcher) -> bool:
    if m.events and event["event"] not in m.events:
        return False
    if m.path is not None and not glob_match(m.path, event.get("path")):
        return False
    if m.url is not None and not glob_match(m.url, event.get("url")):
        return False
    return all(condition_holds(event, c) for c in m.conditions)


def matches(event: Event, matchers: Sequence[Matcher]) -> bool:
    return any(matcher_holds(event, m) for m in matchers)


def event_value(event: Event, value: Value | None) -> float:
    if value is None:
        return 0.0
    if value.fixed is not None:
        return value.fixed
    assert value.source is not None
    number = field_number(event, value.source)
    return 0.0 if number is None else number


def in_range(events: Sequence[Event], query: Query) -> list[Event]:
    zone = ZoneInfo(query.timezone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), zone).astimezone(UTC).replace(tzinfo=None)

    lo = midnight(query.start) if query.start else None
    hi = midnight(query.end + timedelta(days=1)) if query.end else None
    return [e for e in events
            if (query.project is None or e["project"] == query.project)
            and (lo is None or e["ts"] >= lo) and (hi is None or e["ts"] < hi)]


def unit_ids(events: Sequence[Event], query: Query) -> list[str]:
    """The unit of each event (same order)."""
    if query.unit is Unit.VISITOR:
        return [e["visitor_id"] for e in events]
    if query.unit is Unit.USER:
        known: dict[str, str] = {}
        for e in events:
            if e.get("user_id") is not None:
                known[e["visitor_id"]] = max(known.get(e["visitor_id"], e["user_id"]), e["user_id"])
        return [e.get("user_id") or known.get(e["visitor_id"]) or e["visitor_id"] for e in events]
    out: list[str] = [""] * len(events)
    by_visitor: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        if e.get("session_id") is not None:
            out[i] = f"{e['visitor_id']}#s{e['session_id']}"
        else:
            by_visitor[e["visitor_id"]].append(i)
    for visitor, idx in by_visitor.items():
        idx.sort(key=lambda i: events[i]["ts"])
        number, last = 0, None
        for i in idx:
            if last is None or events[i]["ts"] - last > query.session_timeout:
                number += 1
            last = events[i]["ts"]
            out[i] = f"{visitor}#n{number}"
    return out


def segment_of(unit_events: Sequence[Event], all_events: Sequence[Event], query: Query) -> str | None:
    name = query.breakdown
    if name is None:
        return None
    ordered = sorted(unit_events, key=lambda e: e["ts"])
    first = ordered[0]
    if name == "visitor_type":
        visitors = {e["visitor_id"] for e in unit_events}
        seen = min(e["ts"] for e in all_events
                   if e["visitor_id"] in visitors and e["project"] == first["project"])
        return "returning" if first["ts"] > seen else "new"
    # the value of the earliest event that has one (as scope.build_segment does: arg_min skips NULLs)
    for event in ordered:
        if name == "landing_page":
            value = event.get("path")
        elif name in EVENT_DIMENSIONS:
            value = event.get(name)
        else:
            assert name.startswith(PROPERTY_PREFIX)
            value = field_text(event, name[len(PROPERTY_PREFIX):])
        if value is not None:
            return str(value)
    return "(none)"


def period_of(ts: datetime, query: Query) -> date:
    day = ts.replace(tzinfo=UTC).astimezone(ZoneInfo(query.timezone)).date()
    if query.granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day


def reference_counts(events: Sequence[Event], goals: Sequence[Goal], query: Query) -> dict[Key, Counts]:
    scoped = in_range(events, query)
    units: dict[str, list[Event]] = defaultdict(list)
    for e, u in zip(scoped, unit_ids(scoped, query), strict=True):
        units[u].append(e)
    out: dict[Key, list[Any]] = {}
    for unit_events in units.values():
        segment = segment_of(unit_events, events, query)
        period = period_of(min(e["ts"] for e in unit_events), query) if query.granularity else None
        for gi, goal in enumerate(goals):
            keys: list[Key] = [(gi, None, None)]
            if query.breakdown is not None:
                keys.append((gi, segment, None))
            if query.granularity is not None:
                keys.append((gi, None, period))
            for key in keys:
                out.setdefault(key, [0, 0, 0, 0.0, None, None])
            if goal.eligible and not any(matches(e, goal.eligible) for e in unit_events):
                continue
            done = [e for e in unit_events if matches(e, goal.match)]
            currencies = [e["currency"] for e in done if e.get("currency") is not None]
            for key in keys:
                acc = out[key]
                acc[0] += 1
                acc[1] += bool(done)
                acc[2] += len(done)
                acc[3] += sum(event_value(e, goal.value) for e in done)
                if currencies:
                    acc[4] = min([*currencies, *([acc[4]] if acc[4] else [])])
                    acc[5] = max([*currencies, *([acc[5]] if acc[5] else [])])
    return {k: (v[0], v[1], v[2], v[3], v[4], v[5]) for k, v in out.items()}
