"""Time to convert: per unit, the clock from its first micro conversion to its first macro conversion.

The database classifies every unit and returns counts, never events: one row per
(segment, status, duration in whole seconds) with the number of units.

Statuses
- `converted`: the unit's first `to` conversion came at or after its first `from` conversion;
  duration = first `to` − first `from`, floored to whole seconds.
- `censored`: the unit did a `from` conversion but no `to` conversion in the range; it is right-censored
  at the end of observation, the last event time of the whole scope (all units, the range's last event):
  duration = observation end − first `from`, floored to whole seconds.
- `macro_first`: the unit's first `to` conversion came before its first `from` conversion. It is
  excluded from the curve (its first macro was not preceded by a micro), and counted.
- `macro_only`: a `to` conversion but no `from` conversion at all: never entered the curve; counted.
Units with neither are not returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from keystep.backends.base import SQL
from keystep.conversions.definitions import Matcher
from keystep.query import Query
from keystep.sql.goals import build_match
from keystep.sql.params import Params
from keystep.sql.scope import build_units

CONVERTED = "converted"
CENSORED = "censored"
MACRO_FIRST = "macro_first"
MACRO_ONLY = "macro_only"
STATUSES: tuple[str, ...] = (CONVERTED, CENSORED, MACRO_FIRST, MACRO_ONLY)

COLUMNS: tuple[str, ...] = ("segment", "status", "duration_s", "units", "observation_end")


def build_time_to_convert(query: Query, start: Sequence[Matcher], end: Sequence[Matcher]) -> SQL:
    """Rows `(segment, status, duration_s, units, observation_end)`; `duration_s` is NULL for the statuses
    outside the curve. `start` matches the `from` conversions (e.g. every micro goal), `end` the `to`
    conversions (e.g. every macro goal)."""
    p = Params()
    start_match = build_match(start, p)
    end_match = build_match(end, p)
    statuses = {name: p.bind(name) for name in STATUSES}
    text = f"""WITH {build_units(query, p)},
observation AS (SELECT max(ts) AS end_ts FROM scoped),
firsts AS (
  SELECT unit_id,
         min(ts) FILTER (WHERE {start_match}) AS start_ts,
         min(ts) FILTER (WHERE {end_match}) AS end_ts
  FROM scoped GROUP BY unit_id
),
classified AS (
  SELECT u.segment,
         CASE WHEN f.start_ts IS NULL THEN {statuses[MACRO_ONLY]}
              WHEN f.end_ts IS NULL THEN {statuses[CENSORED]}
              WHEN f.end_ts < f.start_ts THEN {statuses[MACRO_FIRST]}
              ELSE {statuses[CONVERTED]} END AS status,
         CASE WHEN f.start_ts IS NULL THEN NULL
              WHEN f.end_ts IS NULL THEN (epoch_us(o.end_ts) - epoch_us(f.start_ts)) // 1000000
              WHEN f.end_ts < f.start_ts THEN NULL
              ELSE (epoch_us(f.end_ts) - epoch_us(f.start_ts)) // 1000000 END AS duration_s
  FROM firsts f JOIN units u USING (unit_id) CROSS JOIN observation o
  WHERE f.start_ts IS NOT NULL OR f.end_ts IS NOT NULL
)
SELECT segment, status, duration_s, count(*) AS units, (SELECT end_ts FROM observation) AS observation_end
FROM classified
GROUP BY segment, status, duration_s
ORDER BY segment, status, duration_s"""
    return p.sql(text)
