"""Micro → macro: per micro goal, the sufficient statistics of units that did it vs those that did not.

Counting rule: a unit *did* a micro goal when its first occurrence of the micro is at or before the
unit's first macro conversion, or when the unit has no macro conversion at all. A micro done only after
the unit's first macro (a post-purchase survey, say) gets no credit: the unit counts as *did not*, and
is also counted in `after_only`. So `did + did_not` is every unit in scope and, among macro units,
*did* means *the micro preceded (or coincided with) its first macro*. Every macro of a unit that did the
micro comes at or after the micro, so the unit's macro value is value that followed the micro.

The unit's macro value is the sum of the macro goal's value over all its macro events in the range.

One scan of the events builds one row per unit (first macro time, macro value, first time of each
micro goal); the result has one row per (segment, goal index) plus a totals row per segment with goal
index -1. With a breakdown, the same rows are also returned for all units together with segment NULL
(segments themselves are never NULL: a missing value is `(none)`):

  segment, goal, units, macro_units, value_sum, value_sq_sum       (for goal -1: every unit)
  for goal >= 0, the same columns over the units that *did* the goal, plus
  after_only   units whose first occurrence of the goal came after their first macro
  lag_median_s median seconds from the goal's first occurrence to the first macro (units that did both)
"""

from __future__ import annotations

from collections.abc import Sequence

from keystep.backends.base import SQL
from keystep.conversions.definitions import Goal
from keystep.query import Query
from keystep.sql.goals import build_match, build_value
from keystep.sql.params import Params
from keystep.sql.scope import build_units

TOTAL = -1
COLUMNS: tuple[str, ...] = (
    "segment",
    "goal",
    "units",
    "macro_units",
    "value_sum",
    "value_sq_sum",
    "after_only",
    "lag_median_s",
)


def build_micro_macro(query: Query, micro: Sequence[Goal], macro: Goal) -> SQL:
    p = Params()
    group = "GROUP BY GROUPING SETS ((segment), ())" if query.breakdown is not None else "GROUP BY segment"
    macro_match = build_match(macro.match, p)
    macro_value = build_value(macro.value, p)
    firsts = "".join(
        f",\n         min(ts) FILTER (WHERE {build_match(g.match, p)}) AS m{i}_ts"
        for i, g in enumerate(micro)
    )
    parts = [
        f"SELECT segment, {p.bind(TOTAL)} AS goal, count(*) AS units,"
        " count(*) FILTER (WHERE macro_ts IS NOT NULL) AS macro_units,"
        " coalesce(sum(value), 0.0) AS value_sum, coalesce(sum(value * value), 0.0) AS value_sq_sum,"
        " 0 AS after_only, CAST(NULL AS DOUBLE) AS lag_median_s"
        f" FROM per_unit {group}"
    ]
    for i in range(len(micro)):
        did = f"(m{i}_ts IS NOT NULL AND (macro_ts IS NULL OR m{i}_ts <= macro_ts))"
        parts.append(
            f"SELECT segment, {p.bind(i)} AS goal, count(*) FILTER (WHERE {did}) AS units,"
            f" count(*) FILTER (WHERE {did} AND macro_ts IS NOT NULL) AS macro_units,"
            f" coalesce(sum(value) FILTER (WHERE {did}), 0.0) AS value_sum,"
            f" coalesce(sum(value * value) FILTER (WHERE {did}), 0.0) AS value_sq_sum,"
            f" count(*) FILTER (WHERE m{i}_ts > macro_ts) AS after_only,"
            f" quantile_cont((epoch_us(macro_ts) - epoch_us(m{i}_ts)) / 1e6, 0.5)"
            f" FILTER (WHERE {did} AND macro_ts IS NOT NULL) AS lag_median_s"
            f" FROM per_unit {group}"
        )
    union = "\nUNION ALL\n".join(parts)
    text = f"""WITH {build_units(query, p)},
unit_firsts AS (
  SELECT unit_id,
         min(ts) FILTER (WHERE {macro_match}) AS macro_ts,
         sum({macro_value}) FILTER (WHERE {macro_match}) AS value{firsts}
  FROM scoped GROUP BY unit_id
),
per_unit AS (
  SELECT u.segment, f.* EXCLUDE (unit_id, value), coalesce(f.value, 0.0) AS value
  FROM units u JOIN unit_firsts f USING (unit_id)
)
SELECT * FROM (
{union}
) ORDER BY segment NULLS FIRST, goal"""
    return p.sql(text)
