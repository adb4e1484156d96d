"""Conversion rates per goal: the database counts, per goal [per segment] [per period], four numbers.

One statement for all goals. Per unit (session, visitor or user) the database decides, for every goal,
whether the unit is eligible, how many matching events (actions) it did and what they were worth; then
it sums those per goal and grouping set. Rows (see `COLUMNS`):

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
"""

from __future__ import annotations

from collections.abc import Sequence

from keystep.backends.base import SQL
from keystep.conversions.definitions import Goal
from keystep.query import Query
from keystep.sql.goals import build_match, build_value
from keystep.sql.params import Params
from keystep.sql.scope import build_local_day, build_units

COLUMNS: tuple[str, ...] = (
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


def build_conversions(query: Query, goals: Sequence[Goal]) -> SQL:
    """Rows `COLUMNS` for every goal: one row over all units, plus one per segment when the query has a
    breakdown, plus one per period when it has a granularity. Goals with no eligible unit may have no rows."""
    if not goals:
        raise ValueError("no goals to measure")
    p = Params()
    units = build_units(query, p)
    per_goal: list[str] = []
    for i, goal in enumerate(goals):
        match = build_match(goal.match, p)
        eligible = f"bool_or({build_match(goal.eligible, p)})" if goal.eligible else "true"
        value = build_value(goal.value, p)
        per_goal.append(
            f"{eligible} AS e{i}, count(*) FILTER (WHERE {match}) AS a{i},"
            f" coalesce(sum({value}) FILTER (WHERE {match}), 0.0) AS v{i},"
            f" min(currency) FILTER (WHERE {match}) AS cl{i}, max(currency) FILTER (WHERE {match}) AS ch{i}"
        )
    period = "CAST(NULL AS DATE)"
    if query.granularity is not None:
        period = build_local_day(query, p, "u.first_ts")
    long = "\n  UNION ALL ".join(
        f"SELECT {i} AS goal, segment, period, e{i} AS eligible, a{i} AS actions, v{i} AS value,"
        f" cl{i} AS currency_min, ch{i} AS currency_max FROM per_unit"
        for i in range(len(goals))
    )
    sets = ["(goal)"]
    segment, period_out = "CAST(NULL AS VARCHAR) AS segment", "CAST(NULL AS DATE) AS period"
    all_segments = all_periods = "true"
    if query.breakdown is not None:
        sets.append("(goal, segment)")
        segment, all_segments = "segment", "GROUPING(segment) = 1"
    if query.granularity is not None:
        sets.append("(goal, period)")
        period_out, all_periods = "period", "GROUPING(period) = 1"
    text = f"""WITH {units},
unit_goals AS (
  SELECT unit_id, {", ".join(per_goal)}
  FROM scoped GROUP BY unit_id
),
per_unit AS (
  SELECT g.*, u.segment, {period} AS period
  FROM unit_goals g JOIN units u USING (unit_id)
),
per_goal AS (
  {long}
)
SELECT goal, {segment}, {period_out},
       {all_segments} AS all_segments, {all_periods} AS all_periods,
       count(*) FILTER (WHERE eligible) AS eligible_units,
       count(*) FILTER (WHERE eligible AND actions > 0) AS converted_units,
       coalesce(sum(actions) FILTER (WHERE eligible), 0) AS actions,
       coalesce(sum(value) FILTER (WHERE eligible), 0.0) AS value_sum,
       min(currency_min) FILTER (WHERE eligible) AS currency_min,
       max(currency_max) FILTER (WHERE eligible) AS currency_max
FROM per_goal
GROUP BY GROUPING SETS ({", ".join(sets)})
ORDER BY goal, all_segments DESC, all_periods DESC, segment, period"""
    return p.sql(text)
