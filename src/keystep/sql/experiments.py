"""An experiment's sufficient statistics: per variant and day of first exposure, per metric, the sums the
statistics engine needs (n, Σy, Σy², and for CUPED Σx, Σx², Σxy with x the same metric before exposure).

- A unit (visitor or user) is *exposed* at its first exposure event of the experiment in the range
  (`keystep.experiments.definitions` names the events and properties; ties in time go to the lower
  event id), in the variant that event names (a key or a 0-based index). Exposures naming no known
  variant are counted apart (`variant` NULL).
  Targeting conditions apply to the exposure event.
- y, per metric: with the goal's events after the first exposure (at or after it; within `window` when
  the experiment has one; before the range's end): conversion → 1 when any, else 0; count → how many;
  value → their summed value.
- x: the same over the `lookback` before the first exposure (CUPED's pre-exposure covariate).

Rows: `variant` (its position, NULL for unknown), `day` (of the first exposure, reporting timezone), `n`,
then per metric i `s{i}`, `ss{i}`, `x{i}`, `xx{i}`, `xy{i}`, and for a ratio metric also its
denominator's `z{i}`, `zz{i}` and `yz{i}`. Totals are the sums over days.
"""

from __future__ import annotations

from datetime import timedelta

from keystep.backends.base import SQL
from keystep.conversions.definitions import Unit
from keystep.experiments.definitions import (
    EXPERIMENT_PROPERTIES,
    EXPOSURE_EVENTS,
    VARIANT_PROPERTIES,
    Experiment,
    Measure,
    Metric,
)
from keystep.query import Query
from keystep.sql.goals import build_match, build_value, json_path
from keystep.sql.params import Params
from keystep.sql.scope import build_local_day, build_scope

LOOKBACK = timedelta(days=14)


def _property(names: tuple[str, ...], p: Params) -> str:
    return "coalesce(" + ", ".join(f"json_extract_string(properties, {p.bind(json_path(n))})" for n in names) + ")"


def build_experiment(experiment: Experiment, query: Query, *, lookback: timedelta = LOOKBACK) -> SQL:
    p = Params()
    lo, _ = query.utc_bounds()
    scope = build_scope(query.with_(start=None), p, experiment.unit)  # pre-exposure events may be earlier
    exposure_events = ", ".join(p.bind(e) for e in EXPOSURE_EVENTS)
    experiment_prop = _property(EXPERIMENT_PROPERTIES, p)
    variant_prop = _property(VARIANT_PROPERTIES, p)
    variant_case = " ".join(
        f"WHEN raw = {p.bind(name)} OR raw = {p.bind(str(i))} THEN {i}" for i, name in enumerate(experiment.variants)
    )
    targeting = f" AND {build_match(experiment.targeting, p)}" if experiment.targeting else ""
    since = f" AND ts >= {p.bind(lo)}" if lo is not None else ""
    window = p.bind(int(experiment.window.total_seconds() * 1e6)) if experiment.window is not None else None
    lookback_us = p.bind(int(lookback.total_seconds() * 1e6))
    after = "s.ts >= f.exposed_at" + (
        f" AND epoch_us(s.ts) - epoch_us(f.exposed_at) <= {window}" if window is not None else "")
    before = f"s.ts < f.exposed_at AND epoch_us(f.exposed_at) - epoch_us(s.ts) <= {lookback_us}"
    per_metric, sums = [], []
    for i, metric in enumerate(experiment.metrics):
        post, pre = _per_unit(metric, after, p), _per_unit(metric, before, p)
        per_metric.append(f"CAST({post} AS DOUBLE) AS y{i}, CAST({pre} AS DOUBLE) AS x{i}")
        sums.append(f"sum(y{i}) AS s{i}, sum(y{i} * y{i}) AS ss{i}, sum(x{i}) AS x{i}, sum(x{i} * x{i}) AS xx{i},"
                    f" sum(x{i} * y{i}) AS xy{i}")
        if metric.over is not None:  # a ratio: the denominator's per-unit value and its products
            per_metric.append(f"CAST({_per_unit(metric.over, after, p)} AS DOUBLE) AS z{i}")
            sums.append(f"sum(z{i}) AS z{i}, sum(z{i} * z{i}) AS zz{i}, sum(y{i} * z{i}) AS yz{i}")
    day = build_local_day(query, p, "exposed_at")
    text = f"""WITH {scope},
exposures AS (
  SELECT unit_id, ts, event_id, {variant_prop} AS raw FROM scoped
  WHERE event IN ({exposure_events}) AND {experiment_prop} = {p.bind(experiment.key)}{targeting}{since}
),
first_exposure AS (
  SELECT unit_id, ts AS exposed_at, CASE {variant_case} END AS variant FROM exposures
  QUALIFY row_number() OVER (PARTITION BY unit_id ORDER BY ts, event_id) = 1
),
unit_metrics AS (
  SELECT f.unit_id, f.variant, f.exposed_at, {", ".join(per_metric)}
  FROM first_exposure f JOIN scoped s USING (unit_id)
  GROUP BY f.unit_id, f.variant, f.exposed_at
)
SELECT variant, {day} AS day, count(*) AS n, {", ".join(sums)}
FROM unit_metrics GROUP BY ALL ORDER BY variant NULLS LAST, day"""
    return p.sql(text)


def _per_unit(metric: Metric, when: str, p: Params) -> str:
    """One unit's value of a metric (a conversion flag, a count or a value) over its events matching `when`."""
    match = f"{build_match(metric.goal.match, p)} AND {when}"
    if metric.measure is Measure.VALUE:
        return f"coalesce(sum({build_value(metric.goal.value, p)}) FILTER (WHERE {match}), 0.0)"
    if metric.measure is Measure.COUNT:
        return f"count(*) FILTER (WHERE {match})"
    return f"CAST(bool_or({match}) AS INTEGER)"


def build_baselines(metrics: tuple[Metric, ...], unit: Unit, query: Query) -> SQL:
    """Per metric, over every unit with an event in the range (no exposure needed): n, Σy, Σy² — the
    baselines an experiment plan starts from — and the first and last time a unit was first seen."""
    p = Params()
    scope = build_scope(query, p, unit)
    per_metric, sums = [], []
    for i, metric in enumerate(metrics):
        per_metric.append(f"CAST({_per_unit(metric, 'true', p)} AS DOUBLE) AS y{i}")
        sums.append(f"sum(y{i}) AS s{i}, sum(y{i} * y{i}) AS ss{i}")
    text = f"""WITH {scope},
per_unit AS (SELECT unit_id, min(ts) AS first_ts, {", ".join(per_metric)} FROM scoped GROUP BY unit_id)
SELECT count(*) AS n, min(first_ts) AS first_seen, max(first_ts) AS last_seen, {", ".join(sums)} FROM per_unit"""
    return p.sql(text)
