"""The events an analysis looks at, with their unit: the common start of every analysis query.

`build_scope` returns CTEs ending in `scoped`: the project's events in the range, each with
`session_key` (the tracker's session id, else a new session after `session_timeout` of inactivity)
and `unit_id` (visitor, session or user). A user is the event's user id, else the user its visitor was
last linked to by identify/alias (the `identities` table), else any user id the visitor's events carry,
else the visitor. `build_units` adds `units`: one row per unit with its
first event time and, when asked, its breakdown segment.
"""

from __future__ import annotations

from keystep.conversions.definitions import Unit
from keystep.events.schema import EVENT_DIMENSIONS
from keystep.query import PROPERTY_PREFIX, Query
from keystep.sql.goals import json_path
from keystep.sql.params import Params

SEGMENT_NULL = "(none)"


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


def build_scope(query: Query, params: Params, unit: Unit | None = None) -> str:
    """CTEs (without the leading WITH) ending in `scoped`."""
    unit = unit or query.unit
    visitor = _visitor_key(query)
    ctes = [f"scoped_events AS (SELECT * FROM events WHERE {build_range_filter(query, params)})"]
    source = "scoped_events"
    session_key = "NULL"
    if unit is Unit.SESSION:
        timeout_us = params.bind(int(query.session_timeout.total_seconds() * 1_000_000))
        ctes.append(
            "session_gaps AS (SELECT *, CASE WHEN session_id IS NOT NULL THEN 0"
            f" WHEN lag(ts) OVER w IS NULL OR epoch_us(ts) - epoch_us(lag(ts) OVER w) > {timeout_us} THEN 1"
            f" ELSE 0 END AS new_session FROM scoped_events"
            f" WINDOW w AS (PARTITION BY {visitor}, session_id IS NULL ORDER BY ts))"
        )
        ctes.append(
            "sessionized AS (SELECT *, sum(new_session) OVER"
            f" (PARTITION BY {visitor}, session_id IS NULL ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session_no"
            " FROM session_gaps)"
        )
        source = "sessionized"
        session_key = (
            f"({visitor} || '#' || coalesce('s' || session_id, 'n' || CAST(session_no AS VARCHAR)))"
        )
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
        Unit.SESSION: session_key,
        Unit.USER: f"coalesce(user_id, linked_user, max(user_id) OVER (PARTITION BY {visitor}), {visitor})",
    }[unit]
    ctes.append(
        f"scoped AS (SELECT *, {session_key} AS session_key, {unit_expr} AS unit_id, {visitor} AS visitor_key"
        f" FROM {source})"
    )
    return ",\n".join(ctes)


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


def build_units(query: Query, params: Params, unit: Unit | None = None) -> str:
    """CTEs ending in `units(unit_id, first_ts, segment)`; includes `build_scope`."""
    ctes = [build_scope(query, params, unit)]
    join = ""
    if query.breakdown == "visitor_type":
        project = f"WHERE project = {params.bind(query.project)}" if query.project is not None else ""
        ctes.append(
            f"first_seen AS (SELECT {_visitor_key(query)} AS visitor_key, min(ts) AS first_seen_ts"
            f" FROM events {project} GROUP BY 1)"
        )
        join = " JOIN first_seen USING (visitor_key)"
    ctes.append(
        f"units AS (SELECT unit_id, min(ts) AS first_ts, {build_segment(query, params)} AS segment"
        f" FROM scoped{join} GROUP BY unit_id)"
    )
    return ",\n".join(ctes)


def build_local_day(query: Query, params: Params, column: str = "ts") -> str:
    """The calendar day (or the Monday of the week) of a UTC timestamp in the reporting timezone."""
    local = f"timezone({params.bind(query.timezone)}, CAST({column} AS TIMESTAMPTZ))"
    if query.granularity is not None and query.granularity.value == "week":
        return f"CAST(date_trunc('week', {local}) AS DATE)"
    return f"CAST({local} AS DATE)"
