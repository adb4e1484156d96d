"""The events an analysis looks at, with their unit: the common start of every analysis query.

`build_scope` returns CTEs ending in `scoped`: the project's events in the range, each with
`session_key` (the tracker's session id, else a new session after `session_timeout` of inactivity)
and `unit_id` (visitor, session or user). A user is the event's user id, else the user its visitor was
last linked to by identify/alias (the `identities` table), else any user id the visitor's events carry,
else the visitor. `build_units` adds `units`: one row per unit with its
first event time and, when asked, its breakdown segment.

Several ranges in one scan (`ranges`, e.g. a period and the one before it): every event of each range
carries `range_no` (its index), and sessions and users are derived within each range as if it had been
queried alone, so a unit never spans two ranges; a unit is then `(range_no, unit_id)`.

Sessions from inactivity need each visitor's events in time order (window functions, the costly part
of a session scope): only the events without a tracker session id go through them, and events at the
same instant always share a session (a gap of zero is no inactivity).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from keystep.conversions.definitions import Unit
from keystep.events.schema import EVENT_DIMENSIONS
from keystep.query import PROPERTY_PREFIX, Query
from keystep.sql.goals import json_path
from keystep.sql.params import Params

SEGMENT_NULL = "(none)"

DateRange = tuple[date | None, date | None]  # first and last day, inclusive (None: unbounded)


def build_range_filter(query: Query, params: Params, alias: str = "") -> str:
    col = f"{alias}." if alias else ""
    parts = ["true"]
    if query.project is not None:
        parts.append(f"{col}project = {params.bind(query.project)}")
    lo, hi = query.utc_bounds()
    if lo is not None:
        parts.append(f"{col}ts >= {params.bind(lo)}")
    if hi is not None:
        parts.append(f"{col}ts < {params.bind(hi)}")
    return " AND ".join(parts)


def _visitor_key(query: Query) -> str:
    """Visitor ids are unique within a project; across projects they are qualified by it."""
    return "visitor_id" if query.project is not None else "(project || chr(31) || visitor_id)"


def needs_sessions(query: Query, unit: Unit | None = None) -> bool:
    return (unit or query.unit) is Unit.SESSION


def build_scope(query: Query, params: Params, unit: Unit | None = None, *,
                ranges: Sequence[DateRange] | None = None) -> str:
    """CTEs (without the leading WITH) ending in `scoped`; with `ranges` (instead of the query's own
    start and end) each event carries `range_no`, and units are derived per range."""
    unit = unit or query.unit
    visitor = _visitor_key(query)
    ctes = [_scoped_events(query, params, ranges)]
    partition = f"range_no, {visitor}" if ranges is not None else visitor
    source = "scoped_events"
    if unit is Unit.SESSION:
        timeout_us = params.bind(int(query.session_timeout.total_seconds() * 1_000_000))
        # RANGE (the default frame): events at one instant are peers and get the same number
        ctes.append(
            "session_gaps AS (SELECT *, CASE WHEN lag(ts) OVER w IS NULL"
            f" OR epoch_us(ts) - epoch_us(lag(ts) OVER w) > {timeout_us} THEN 1 ELSE 0 END AS new_session"
            f" FROM scoped_events WHERE session_id IS NULL WINDOW w AS (PARTITION BY {partition} ORDER BY ts))"
        )
        ctes.append(
            f"sessionized AS (SELECT * EXCLUDE (new_session), concat({visitor}, '#n', CAST(sum(new_session) OVER"
            f" (PARTITION BY {partition} ORDER BY ts) AS VARCHAR)) AS session_key FROM session_gaps"
            f" UNION ALL SELECT *, concat({visitor}, '#s', session_id) AS session_key FROM scoped_events"
            " WHERE session_id IS NOT NULL)"
        )
        source = "sessionized"
    if unit is Unit.USER:
        # identify/alias links (the latest per visitor) tie a visitor's anonymous events to its user
        project = f"WHERE project = {params.bind(query.project)}" if query.project is not None else ""
        ctes.append(
            f"linked AS (SELECT {_visitor_key(query)} AS link_visitor, arg_max(user_id, ts) AS linked_user"
            f" FROM identities {project} GROUP BY 1)"
        )
        ctes.append(f"identified AS (SELECT * EXCLUDE (link_visitor) FROM {source}"
                    f" LEFT JOIN linked ON link_visitor = {visitor})")
        source = "identified"
    unit_expr = {
        Unit.VISITOR: visitor,
        Unit.SESSION: "session_key",
        Unit.USER: f"coalesce(user_id, linked_user, max(user_id) OVER (PARTITION BY {partition}), {visitor})",
    }[unit]
    session_key = "" if unit is Unit.SESSION else "NULL AS session_key, "
    ctes.append(f"scoped AS (SELECT *, {session_key}{unit_expr} AS unit_id, {visitor} AS visitor_key FROM {source})")
    return ",\n".join(ctes)


def _scoped_events(query: Query, params: Params, ranges: Sequence[DateRange] | None) -> str:
    """`scoped_events`: the query's events (inlined where it is read twice: DuckDB then scans the table
    once per reader, reading only the columns and row groups each needs); with `ranges`, those of each
    range with its `range_no` (ranges may overlap: an event then comes once per range)."""
    if ranges is None:
        return f"scoped_events AS NOT MATERIALIZED (SELECT * FROM events WHERE {build_range_filter(query, params)})"
    if not ranges:
        raise ValueError("no ranges to scope")
    parts = [
        f"SELECT *, {i} AS range_no FROM events"
        f" WHERE {build_range_filter(query.with_(start=start, end=end), params)}"
        for i, (start, end) in enumerate(ranges)
    ]
    return "scoped_events AS NOT MATERIALIZED (" + " UNION ALL ".join(parts) + ")"


def build_segment(query: Query, params: Params) -> str:
    """The per-unit breakdown expression, evaluated in an aggregate over `scoped` grouped by unit_id.

    Event attributes take the value of the unit's first event; `landing_page` is its first path;
    `visitor_type` is `returning` when the visitor was seen before the unit's first event
    (`first_seen` must be joined), else `new`.
    """
    name = query.breakdown
    if name is None:
        return "NULL"
    if name in EVENT_DIMENSIONS:
        expr = f"arg_min({name}, ts)"
    elif name == "landing_page":
        expr = "arg_min(path, ts)"
    elif name == "visitor_type":
        return "CASE WHEN min(ts) > min(first_seen_ts) THEN 'returning' ELSE 'new' END"
    elif name.startswith(PROPERTY_PREFIX):
        expr = f"arg_min(json_extract_string(properties, {params.bind(json_path(name[len(PROPERTY_PREFIX):]))}), ts)"
    else:
        raise ValueError(f"unknown breakdown {name!r}")
    return f"coalesce(CAST({expr} AS VARCHAR), {params.bind(SEGMENT_NULL)})"


def build_units(query: Query, params: Params, unit: Unit | None = None, *,
                ranges: Sequence[DateRange] | None = None, aggregates: Sequence[str] = ()) -> str:
    """CTEs ending in `units(unit_id, first_ts, segment)`; includes `build_scope`. With `ranges`, one row
    per range and unit, `range_no` first; `aggregates`: further per-unit columns (aggregates over the
    unit's rows of `scoped`, each with its alias), computed in the same pass."""
    ctes = [build_scope(query, params, unit, ranges=ranges)]
    join = ""
    if query.breakdown == "visitor_type":
        project = f"WHERE project = {params.bind(query.project)}" if query.project is not None else ""
        ctes.append(
            f"first_seen AS (SELECT {_visitor_key(query)} AS visitor_key, min(ts) AS first_seen_ts"
            f" FROM events {project} GROUP BY 1)"
        )
        join = " JOIN first_seen USING (visitor_key)"
    keys = "range_no, unit_id" if ranges is not None else "unit_id"
    extra = "".join(f", {a}" for a in aggregates)
    ctes.append(
        f"units AS (SELECT {keys}, min(ts) AS first_ts, {build_segment(query, params)} AS segment{extra}"
        f" FROM scoped{join} GROUP BY {keys})"
    )
    return ",\n".join(ctes)


def build_local_day(query: Query, params: Params, column: str = "ts") -> str:
    """The calendar day (or the Monday of the week) of a UTC timestamp in the reporting timezone.

    Within the query's range the timezone's UTC offsets are known in advance (`utc_offsets`), so the local
    time is the timestamp plus the offset in force (a CASE over the few transitions), far cheaper per row
    than converting through the timezone database; outside it (or in an unbounded range) it is converted."""
    local = f"timezone({params.bind(query.timezone)}, CAST({column} AS TIMESTAMPTZ))"
    lo, hi = query.utc_bounds()
    if lo is not None and hi is not None:
        spans = utc_offsets(query.timezone, lo, hi)
        shifts = " ".join(f"WHEN {column} < {params.bind(until)} THEN to_seconds({params.bind(offset)})"
                          for until, offset in spans)
        local = (f"CASE WHEN {column} >= {params.bind(lo)} AND {column} < {params.bind(hi)}"
                 f" THEN {column} + CASE {shifts} END ELSE {local} END")
    if query.granularity is not None and query.granularity.value == "week":
        return f"CAST(date_trunc('week', {local}) AS DATE)"
    return f"CAST({local} AS DATE)"


@lru_cache(maxsize=256)
def utc_offsets(timezone: str, lo: datetime, hi: datetime) -> tuple[tuple[datetime, int], ...]:
    """The timezone's UTC offsets (seconds) over [lo, hi) (naive UTC): `(until, offset)` pairs, in order,
    each in force up to `until` (exclusive), the last until `hi`. Transitions are found day by day (no
    timezone changes its offset twice within a day), then to the microsecond by bisection."""
    zone = ZoneInfo(timezone)

    def offset(at: datetime) -> int:
        delta = at.replace(tzinfo=UTC).astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    spans: list[tuple[datetime, int]] = []
    step = timedelta(days=1)
    at, current = lo, offset(lo)
    while at < hi:
        nxt = min(at + step, hi)
        if nxt < hi and offset(nxt) != current:
            before, after = at, nxt  # the change lies in (before, after]
            while after - before > timedelta(microseconds=1):
                middle = before + (after - before) / 2
                before, after = (middle, after) if offset(middle) == current else (before, middle)
            spans.append((after, current))
            at, current = after, offset(after)
            continue
        at = nxt
    spans.append((hi, current))
    return tuple(spans)
