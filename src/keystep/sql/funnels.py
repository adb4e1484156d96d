"""Funnels: per step, the units that reached it and the time it took them from the previous step.

For every unit: how far it got (its *level*: the number of leading steps it reached) and one *path*
(when it completed each of those steps); then counts and quantiles per step, over all units and, with a
breakdown, per segment. The `strict` and `any_order` modes are one statement (`build_funnel`). The
`ordered` mode, the one people use most, is each unit's step events grouped together (by visitor: the
step events with their store-assigned visitor numbers, `build_visitor_steps`, grouped by counting;
sessions and users: grouped by the database, `build_ordered_sequences`), a compiled linear scan per
unit as ClickHouse's `windowFunnel` does it (`keystep.analysis.funnel_paths`: no SQL formulation came
near, see docs/performance.md), and the same counts and quantiles over its result
(`build_aggregate`). Rows (see `COLUMNS`):

- `segment`: the unit's segment (`keystep.sql.scope.build_segment`), NULL in the row over all units;
- `all_segments`: true in the row over all units;
- `units`: a list, per step k, of the units that reached step k (level >= k);
- `median_us` / `p90_us`: lists, per step k, of the median and 90th percentile (`quantile_cont`, linear
  interpolation) of the time from step k-1 to step k along each unit's path, in microseconds, over
  the units that reached step k; NULL for step 1 and for steps no unit reached.

Only events in the query's range count (the range is cut at local midnights of the reporting timezone);
the window is absolute time (microseconds) from the unit's first step, inclusive of its end, so a DST
change in the reporting timezone does not stretch or shrink it. Units are those of `funnel.unit` (the
query's own unit is not used).

Modes (`FunnelMode`); a step is *done* by an event matching the step's matchers, and one event may
match several steps:

- `ordered` (the default) equals ClickHouse's `windowFunnel(window)(ts, step1, ..., stepN)` in its
  default mode (checked against chdb in the tests). A unit reaches step k when it has events e1..ek,
  ej matching step j, with non-decreasing timestamps (ts(e1) <= ts(e2) <= ... <= ts(ek)) and
  ts(ek) - ts(e1) <= window. Equal timestamps count as in step order, and the same event may serve
  several consecutive steps: this is what windowFunnel does, because it sorts the (timestamp, step)
  pairs of matching events by timestamp and then by step number. Other events may come in between;
  repeated steps are allowed (any occurrence of step 1 may start the window).
  Path: from each occurrence of step 1, each next step is its first occurrence at or after the previous
  step (the greedy path reaches as far as any path from that start); the unit's path is the one from
  its earliest step-1 occurrence that reaches the unit's level.
- `strict`: as `ordered`, but consecutive steps must be consecutive events of the unit: e(j+1) is the
  event right after ej in the unit's events in the range, ordered by (ts, project, event_id) (so an
  event serves at most one step, and any other event in between, matching a step or not, breaks the
  chain). ClickHouse's `strict_order` differs on purpose: it stops looking at the first non-matching
  event after the unit's first step-1 event, even when a later attempt is clean, and ignores
  intervening events that match some step. Path: the earliest step-1 event whose chain reaches the
  unit's level.
- `any_order`: a unit reaches step k when it did steps 1..k, in any order, within one window: there are
  events e1..ek, ej matching step j (one event may serve several steps), with
  max ts - min ts <= window. It suffices to try, as the window's start t, each time the unit did any
  step, and take the first occurrence of every step in [t, t + window]. Path: the earliest such start
  reaching the unit's level; step k's time is when steps 1..k were all done (the latest of their
  first occurrences), so the time from step k-1 to step k is never negative.

So strict <= ordered <= any_order at every step. The time of step k in a path is when the path had
completed steps 1..k; in `ordered` and `strict` that is simply the time of step k's event.
"""

from __future__ import annotations

from keystep.backends.base import SQL
from keystep.conversions.definitions import Funnel, FunnelMode, Unit
from keystep.query import Query
from keystep.sql.goals import build_match
from keystep.sql.params import Params
from keystep.sql.scope import build_range_filter, build_scope, build_units

COLUMNS: tuple[str, ...] = ("segment", "all_segments", "units", "median_us", "p90_us")

MAX_STEPS = 32  # as windowFunnel


def _check(funnel: Funnel) -> int:
    """The funnel's window in microseconds, after checking its size."""
    n = len(funnel.steps)
    if not 1 <= n <= MAX_STEPS:
        raise ValueError(f"a funnel has 1 to {MAX_STEPS} steps, got {n}")
    window_us = int(funnel.window.total_seconds() * 1_000_000)
    if window_us < 0:
        raise ValueError("the funnel window must not be negative")
    return window_us


def build_funnel(funnel: Funnel, query: Query) -> SQL:
    """Rows `COLUMNS` for the `strict` and `any_order` modes: one over all units that did step 1 (zero
    counts when none did), plus one per segment when the query has a breakdown. (The `ordered` mode is
    `build_visitor_steps` or `build_ordered_sequences`, a scan per unit, then `build_aggregate`.)"""
    if funnel.mode is FunnelMode.ORDERED:
        raise ValueError("the ordered mode is a scan per unit and build_aggregate")
    window_us = _check(funnel)
    p = Params()
    breakdown = query.breakdown is not None
    ctes = [(build_units if breakdown else build_scope)(query, p, funnel.unit)]
    flags = [build_match(step.match, p) for step in funnel.steps]
    window = p.bind(window_us)
    if funnel.mode is FunnelMode.STRICT:
        ctes.extend(_strict(flags, window))
    else:
        ctes.extend(_any_order(flags, window, materialize=funnel.unit is not Unit.VISITOR))
    segment = "units.segment" if breakdown else "CAST(NULL AS VARCHAR)"
    join = " JOIN units USING (unit_id)" if breakdown else ""
    ctes.append(f"funnel_units AS (SELECT {segment} AS segment, paths.* FROM paths{join})")
    return p.sql("WITH " + ",\n".join(ctes) + "\n" + _aggregate(len(flags), breakdown))


def build_time_span(query: Query) -> SQL:
    """`(first_us, last_us, first_visitor, last_visitor)`: the earliest and latest event time (microseconds
    since the epoch) and the lowest and highest visitor number in the query's project and range."""
    p = Params()
    return p.sql("SELECT epoch_us(min(ts)) AS first_us, epoch_us(max(ts)) AS last_us,"
                 " min(visitor_no) AS first_visitor, max(visitor_no) AS last_visitor"
                 f" FROM events WHERE {build_range_filter(query, p)}")


def packs(funnel: Funnel, first_us: int, last_us: int) -> bool:
    """Whether the step events of a span fit the packed form of `build_visitor_steps` and
    `build_ordered_sequences` (`base_us=first_us`): the time since the span's start, shifted left by
    one bit per step, in a signed 64-bit integer."""
    return (last_us - first_us).bit_length() + len(funnel.steps) <= 62


def build_visitor_steps(funnel: Funnel, query: Query, base_us: int | None = None) -> SQL:
    """The `ordered` mode's input by visitor: one row per step event of the range, with its
    `visitor_no`, in storage order (a batch's events lie in visitor order), and its time `t`
    (microseconds) and mask `m` (bit j set when the event matches step j+1):

    - with `base_us` (the span's start, when `packs`): `packed`, (t - base_us) * 2^steps + m, one
      column instead of two;
    - without: `ts`, t since the epoch, and `mask`, m.

    `keystep.analysis.funnel_paths.group_by_key` groups them by visitor number, then its scan walks
    each visitor."""
    _check(funnel)
    p = Params()
    if base_us is None:
        columns = "epoch_us(ts) AS ts, mask"
    else:
        columns = f"(epoch_us(ts) - {p.bind(base_us)}) * {1 << len(funnel.steps)} + mask AS packed"
    return p.sql(
        f"WITH {build_scope(query, p, Unit.VISITOR)}\nSELECT visitor_no, {columns} FROM"
        f" (SELECT visitor_no, ts, {_step_mask(funnel, p)} AS mask FROM scoped) WHERE mask > 0"
    )


def build_ordered_sequences(funnel: Funnel, query: Query, base_us: int | None = None) -> SQL:
    """The `ordered` mode's input for sessions and users (units the store does not number): one row per
    unit that did any step, with its `segment` (NULL without a breakdown) and its step events in no
    particular order, each event a time and a mask as in `build_visitor_steps`:

    - with `base_us`: `packed`, a list of (t - base_us) * 2^steps + m;
    - without: `ts`, the list of t since the epoch, and `masks`, the list of m.

    `keystep.analysis.funnel_paths` scans them."""
    _check(funnel)
    p = Params()
    breakdown = query.breakdown is not None
    ctes = [(build_units if breakdown else build_scope)(query, p, funnel.unit)]
    ctes.append(
        f"hits AS (SELECT * FROM (SELECT unit_id, ts, {_step_mask(funnel, p)} AS mask FROM scoped) WHERE mask > 0)"
    )
    segment = "any_value(units.segment)" if breakdown else "CAST(NULL AS VARCHAR)"
    join = " JOIN units USING (unit_id)" if breakdown else ""
    # no ORDER BY in the lists: ordered aggregates cost DuckDB a sort per unit and list, about twice the
    # grouping; the scan sorts the units whose events come out of time order
    if base_us is None:
        lists = "list(epoch_us(hits.ts)) AS ts, list(mask) AS masks"
    else:
        lists = f"list((epoch_us(hits.ts) - {p.bind(base_us)}) * {1 << len(funnel.steps)} + mask) AS packed"
    return p.sql(
        "WITH " + ",\n".join(ctes) + f"\nSELECT {segment} AS segment, {lists} FROM hits{join} GROUP BY unit_id"
    )


def _step_mask(funnel: Funnel, p: Params) -> str:
    """An event's step mask: bit j set when it matches step j+1."""
    bits = " + ".join(
        f"CASE WHEN {build_match(step.match, p)} THEN {1 << j} ELSE 0 END" for j, step in enumerate(funnel.steps)
    )
    return f"CAST({bits} AS BIGINT)"


def build_aggregate(funnel: Funnel, query: Query, *, by_visitor: bool) -> SQL:
    """Rows `COLUMNS` from a relation `supplied(..., level, p1..pn)` supplied by the caller (one row per
    unit that did any step, `pk` in microseconds); units with level 0 never entered the funnel. Rows by
    unit (`build_ordered_sequences`) carry their `segment`; rows by visitor (`build_visitor_steps`) carry
    `visitor_no`, and with a breakdown each visitor's segment is computed here."""
    steps, breakdown = len(funnel.steps), query.breakdown is not None
    if not (by_visitor and breakdown):
        return SQL(f"WITH funnel_units AS (SELECT * FROM supplied WHERE level >= 1)\n{_aggregate(steps, breakdown)}")
    p = Params()
    units = build_units(query, p, Unit.VISITOR, aggregates=("any_value(visitor_no) AS visitor_no",))
    return p.sql(
        f"WITH {units},\nfunnel_units AS (SELECT units.segment, supplied.* FROM supplied JOIN units USING (visitor_no)"
        f" WHERE level >= 1)\n{_aggregate(steps, breakdown)}"
    )


def _hits(flags: list[str], materialize: bool) -> str:
    """The unit's events that match at least one step, with one boolean per step. Materialized when the
    scope is costly to compute twice (sessions and users need window functions over all events);
    for visitors it is inlined into each step (DuckDB then scans the table once, keeping only the
    columns and rows the steps use)."""
    cols = ", ".join(f"{flag} AS h{j}" for j, flag in enumerate(flags, 1))
    any_step = " OR ".join(f"h{j}" for j in range(1, len(flags) + 1))
    how = "MATERIALIZED" if materialize else "NOT MATERIALIZED"
    return f"hits AS {how} (SELECT * FROM (SELECT unit_id, ts, {cols} FROM scoped) WHERE {any_step})"


def _step_tables(n: int) -> list[str]:
    return [f"s{j} AS (SELECT unit_id, ts FROM hits WHERE h{j})" for j in range(1, n + 1)]


def _within(ts: str, start: str, window: str) -> str:
    return f"{ts} <= {start} + to_microseconds({window})"


def _strict(flags: list[str], window: str) -> list[str]:
    n = len(flags)
    cols = ", ".join(f"{flag} AS h{j}" for j, flag in enumerate(flags, 1))
    leads = "".join(
        f", coalesce(lead(h{j}, {j - 1}) OVER w, false) AS x{j}, lead(ts, {j - 1}) OVER w AS u{j}"
        for j in range(2, n + 1)
    )
    ctes = [
        f"seq AS (SELECT unit_id, ts, project, event_id, {cols} FROM scoped)",
        f"led AS (SELECT unit_id, ts AS t1, h1, row_number() OVER w AS rn{leads} FROM seq"
        " WINDOW w AS (PARTITION BY unit_id ORDER BY ts, project, event_id) QUALIFY h1)",
    ]
    # ok_k: steps 2..k were the events right after step 1, within the window
    oks: list[str] = []
    for j in range(2, n + 1):
        prev = f"{oks[-1]} AND " if oks else ""
        oks.append(f"{prev}x{j} AND {_within(f'u{j}', 't1', window)}")
    level = " + ".join(["1"] + [f"({ok})::INTEGER" for ok in oks])
    times = "".join(f", CASE WHEN {ok} THEN u{j} END AS t{j}" for j, ok in enumerate(oks, 2))
    # ties in time between starts: the earlier in the event order (rn)
    ctes.append(_paths(n, f"SELECT unit_id, t1{times}, {level} AS level, rn FROM led", start="rn"))
    return ctes


def _any_order(flags: list[str], window: str, materialize: bool) -> list[str]:
    n = len(flags)
    ctes = [
        _hits(flags, materialize),
        *_step_tables(n),
        "a0 AS (SELECT DISTINCT unit_id, ts AS t0 FROM hits)",
    ]
    for j in range(1, n + 1):
        ctes.append(
            f"a{j} AS (SELECT a.*, CASE WHEN {_within('s.ts', 'a.t0', window)} THEN s.ts END AS n{j}"
            f" FROM a{j - 1} a ASOF LEFT JOIN s{j} s ON a.unit_id = s.unit_id AND s.ts >= a.t0)"
        )
    oks = [" AND ".join(f"n{i} IS NOT NULL" for i in range(1, j + 1)) for j in range(1, n + 1)]
    level = " + ".join(f"({ok})::INTEGER" for ok in oks)
    # step k's time: when steps 1..k were all done (the window's start t0 is the earliest of them)
    times = ", ".join(
        f"CASE WHEN {ok} THEN greatest({', '.join(f'n{i}' for i in range(1, j + 1))}) END AS t{j}"
        for j, ok in enumerate(oks, 1)
    )
    ctes.append(
        _paths(
            n,
            f"SELECT * FROM (SELECT unit_id, t0, {times}, {level} AS level FROM a{n}) WHERE level >= 1",
            start="epoch_us(t0)",
        )
    )
    return ctes


def _paths(n: int, candidates: str, start: str = "epoch_us(t1)") -> str:
    """`paths(unit_id, level, p1..pn)`: per unit, the highest level of its candidate starts, and the path
    (`pk`: when step k was completed, NULL beyond the level) of the earliest start reaching it."""
    key = f"{start} - level * 100000000000000000"  # level first, then the earliest start
    cols = ", ".join(f"epoch_us(arg_min(t{k}, {key})) AS p{k}" for k in range(1, n + 1))
    return f"paths AS (SELECT unit_id, max(level) AS level, {cols} FROM ({candidates}) GROUP BY unit_id)"


def _aggregate(n: int, breakdown: bool) -> str:
    units = ", ".join(["count(*)"] + [f"count(*) FILTER (WHERE level >= {k})" for k in range(2, n + 1)])
    quantiles = [
        f"quantile_cont(p{k} - p{k - 1}, [0.5, 0.9]) FILTER (WHERE level >= {k})"
        for k in range(2, n + 1)
    ]
    median = ", ".join(["NULL"] + [f"{q}[1]" for q in quantiles])
    p90 = ", ".join(["NULL"] + [f"{q}[2]" for q in quantiles])
    select = f"[{units}] AS units, [{median}]::DOUBLE[] AS median_us, [{p90}]::DOUBLE[] AS p90_us"
    if not breakdown:
        return f"SELECT CAST(NULL AS VARCHAR) AS segment, true AS all_segments, {select} FROM funnel_units"
    return (
        f"SELECT segment, GROUPING(segment) = 1 AS all_segments, {select}"
        " FROM funnel_units GROUP BY GROUPING SETS ((), (segment))"
    )
