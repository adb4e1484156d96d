"""Conversion rates per goal: the database counts, per goal [per segment] [per period], four numbers.

One statement for all goals (and, with `ranges`, for several date ranges). Per unit (session, visitor or
user) the database decides, for every goal, whether the unit is eligible, how many matching events
(actions) it did and what they were worth; then it sums those per goal and grouping set. Rows (see
`COLUMNS`):

- `range_no`: the index of the range in `ranges` (0 without); each range's rows are those the query
  over that range alone would give (sessions and users are derived within the range);
- `goal`: the goal's position in the given sequence;
- `segment` / `period`: NULL in the rows that span all segments / all periods (`all_segments`,
  `all_periods` say which rows are totals; segments are never NULL themselves, see `SEGMENT_NULL`);
- `eligible_units`: eligible units. Without an eligibility rule every unit with an event in the range
  is eligible; with one, the units with at least one event in the range matching the rule;
- `converted_units`: eligible units with at least one event matching the goal (the order of the
  eligibility event and the conversion does not matter: both are unit-level facts over the range);
- `actions`: matching events of eligible units; `value_sum`: what those events are worth;
- `currency_min` / `currency_max`: the smallest and largest `currency` column value among those events
  (equal when the events agree on one currency).

Periods (`query.granularity`): a unit belongs to the day (or the week, starting Monday) of its *first
event in the range*, cut in the reporting timezone; its eligibility, conversion, actions and value are
all counted in that period, even when the conversion itself happened on a later day. So the periods
partition the units and add up to the totals.

The plan, for speed (a goal's per-unit numbers as 20-odd filtered aggregates over every event cost
more than everything else together): one pass over the scope groups the events into units (first event,
segment, eligibility) while the events that match some goal go on, one row per goal they match, to a
much smaller aggregate per unit and goal; the sums per grouping set then come from the units (eligible
units) and from the (unit, goal) rows of eligible units (the rest).
"""

from __future__ import annotations

from collections.abc import Sequence

from keystep.backends.base import SQL
from keystep.conversions.definitions import Goal
from keystep.query import Query
from keystep.sql.goals import build_match, build_value
from keystep.sql.params import Params
from keystep.sql.scope import DateRange, build_local_day, build_units

COLUMNS: tuple[str, ...] = (
    "range_no",
    "goal",
    "segment",
    "period",
    "all_segments",
    "all_periods",
    "eligible_units",
    "converted_units",
    "actions",
    "value_sum",
    "currency_min",
    "currency_max",
)


def build_conversions(query: Query, goals: Sequence[Goal], *, ranges: Sequence[DateRange] | None = None) -> SQL:
    """Rows `COLUMNS` for every goal: one row over all units, plus one per segment when the query has a
    breakdown, plus one per period when it has a granularity; per range of `ranges` (default: the query's
    own start and end). Goals with no eligible unit may have no rows."""
    if not goals:
        raise ValueError("no goals to measure")
    ranges = list(ranges) if ranges is not None else [(query.start, query.end)]
    p = Params()
    marks: list[str] = []  # per event: m{i} it matches goal i, v{i} what it is worth
    hits: list[str] = []  # per event and goal it matches
    eligibility: list[str] = []  # per unit: e{i} it is eligible for goal i (goals with a rule)
    eligible_units: list[str] = []  # per grouping set and goal
    for i, goal in enumerate(goals):
        marks.append(f"{build_match(goal.match, p)} AS m{i}")
        value = "CAST(0 AS DOUBLE)"
        if goal.value is not None:
            marks.append(f"CAST({build_value(goal.value, p)} AS DOUBLE) AS v{i}")
            value = f"v{i}"
        hits.append(f"SELECT range_no, unit_id, {i} AS goal, {value} AS value, currency FROM marked WHERE m{i}")
        if goal.eligible:
            eligibility.append(f"bool_or({build_match(goal.eligible, p)}) AS e{i}")
        count = f"count(*) FILTER (WHERE e{i})" if goal.eligible else "count(*)"
        eligible_units.append(f"{{'goal': {i}, 'units': {count}}}")
    rules = " ".join(f"WHEN {i} THEN e{i}" for i, goal in enumerate(goals) if goal.eligible)
    eligible = f"CASE goal {rules} ELSE true END" if rules else "true"
    units = build_units(query, p, ranges=ranges, aggregates=eligibility)
    period = "CAST(NULL AS DATE)"
    if query.granularity is not None:
        lo, hi = _span(ranges)
        period = build_local_day(query.with_(start=lo, end=hi), p, "first_ts")
    sets, goal_sets = ["(range_no)"], ["(range_no, goal)"]
    segment, all_segments = "CAST(NULL AS VARCHAR)", "true"
    period_out, all_periods = "CAST(NULL AS DATE)", "true"
    if query.breakdown is not None:
        sets.append("(range_no, segment)")
        goal_sets.append("(range_no, goal, segment)")
        segment, all_segments = "segment", "GROUPING(segment) = 1"
    if query.granularity is not None:
        sets.append("(range_no, period)")
        goal_sets.append("(range_no, goal, period)")
        period_out, all_periods = "period", "GROUPING(period) = 1"
    keys = f"range_no, {segment} AS segment, {period_out} AS period, {all_segments} AS all_segments," \
           f" {all_periods} AS all_periods"
    any_goal = " OR ".join(f"m{i}" for i in range(len(goals)))
    text = f"""WITH {units},
marked AS MATERIALIZED (
  SELECT * FROM (SELECT range_no, unit_id, currency, {", ".join(marks)} FROM scoped) WHERE {any_goal}
),
hits AS (
  {" UNION ALL ".join(hits)}
),
unit_goals AS (
  SELECT range_no, unit_id, goal, count(*) AS actions, sum(value) AS value_sum,
         min(currency) AS currency_min, max(currency) AS currency_max
  FROM hits GROUP BY range_no, unit_id, goal
),
per_unit AS (SELECT *, {period} AS period FROM units),
eligible AS (
  SELECT {keys}, unnest([{", ".join(eligible_units)}]) AS counts
  FROM per_unit GROUP BY GROUPING SETS ({", ".join(sets)})
),
converted AS (
  SELECT goal, {keys}, count(*) AS converted_units, sum(actions) AS actions, sum(value_sum) AS value_sum,
         min(currency_min) AS currency_min, max(currency_max) AS currency_max
  FROM unit_goals JOIN per_unit USING (range_no, unit_id)
  WHERE {eligible}
  GROUP BY GROUPING SETS ({", ".join(goal_sets)})
)
SELECT e.range_no, e.counts.goal AS goal, e.segment, e.period, e.all_segments, e.all_periods,
       e.counts.units AS eligible_units, coalesce(c.converted_units, 0) AS converted_units,
       coalesce(c.actions, 0) AS actions, coalesce(c.value_sum, 0.0) AS value_sum,
       c.currency_min, c.currency_max
FROM eligible e LEFT JOIN converted c
  ON c.range_no = e.range_no AND c.goal = e.counts.goal AND c.all_segments = e.all_segments
 AND c.all_periods = e.all_periods AND c.segment IS NOT DISTINCT FROM e.segment
 AND c.period IS NOT DISTINCT FROM e.period
ORDER BY e.range_no, goal, e.all_segments DESC, e.all_periods DESC, e.segment, e.period"""
    return p.sql(text)


def _span(ranges: Sequence[DateRange]) -> DateRange:
    """The first and last day of all the ranges (None when one is unbounded on that side)."""
    starts, ends = [r[0] for r in ranges], [r[1] for r in ranges]
    return (None if None in starts else min(d for d in starts if d is not None),
            None if None in ends else max(d for d in ends if d is not None))
