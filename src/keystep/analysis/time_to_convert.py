"""Time to convert: a Kaplan–Meier curve from each unit's first micro to its first macro conversion.

Definitions (the SQL is `keystep.sql.time_to_convert`):

- The clock starts at the unit's first `from` conversion in the range (any micro goal, or `--from-goal`)
  and stops at its first `to` conversion (any macro goal, or `--to-goal`), at or after the start.
  Durations are whole seconds (floored).
- Units that did not convert are right-censored at the end of observation: the last event in the
  range, across all units (not dropped, and not at their own last event: a visitor may come back, and
  for sessions that cannot convert any more the curve simply flattens).
- Units whose first macro came *before* their first micro are excluded from the curve and counted as
  `macro_first`; units with a macro and no micro are counted as `macro_only`.
- `quantiles` are the Kaplan–Meier times by which 25%, 50% and 75% of the units that started the clock
  have converted, with 95% intervals; None when the curve never gets there (common: most units never
  convert). `converted_quantiles` are plain quantiles of the durations of units that did convert
  (descriptive: censoring makes them lean short). `milestones` give the share converted within
  1 min, 10 min, 1 h, 1 d, 7 d and 30 d.
- With a breakdown, each segment's curve is compared with the curve of all other units that started
  the clock (pooled) by the log-rank test, the p-values Holm-adjusted across the segments
  (`keystep.analysis.segments.compare_curves`): a two-proportion test of "converted" would ignore
  censoring. `expected` is the conversions the segment would have had at the rest's pace; `direction`
  is `faster` when it had more (`slower` when fewer). The overall group has None in these fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from keystep.analysis.segments import ALPHA, Pace, compare_curves
from keystep.backends.base import Backend, Rows
from keystep.conversions.definitions import Definitions, Goal, Kind, Matcher, Unit
from keystep.query import Query
from keystep.sql.time_to_convert import CENSORED, CONVERTED, MACRO_FIRST, MACRO_ONLY, build_time_to_convert
from keystep.stats.survival import SurvivalCurve, kaplan_meier

QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75)
MILESTONES_S: tuple[int, ...] = (60, 600, 3600, 86400, 7 * 86400, 30 * 86400)


@dataclass(frozen=True, slots=True)
class QuantileEstimate:
    """The time (seconds) by which a share `q` of the units have converted, with its 95% interval."""

    q: float
    seconds: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One step of the curve: at `seconds`, `converted` = 1 − S(t) with its 95% interval."""

    seconds: float
    at_risk: int
    events: int
    censored: int
    converted: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class Milestone:
    seconds: float
    converted: float


@dataclass(frozen=True, slots=True)
class TimeToConvertGroup:
    segment: str | None
    started: int
    converted: int
    censored: int
    macro_first: int
    macro_only: int
    quantiles: tuple[QuantileEstimate, ...]
    converted_quantiles: tuple[QuantileEstimate, ...]
    milestones: tuple[Milestone, ...]
    curve: tuple[CurvePoint, ...]
    # a segment against the rest of the units (module doc); None (False) for all units
    expected: float | None = None  # conversions expected at the rest's pace (log-rank)
    p_value: float | None = None  # log-rank test against the rest; None also when not testable
    adjusted_p: float | None = None  # Holm-adjusted across the segments
    significant: bool = False  # adjusted_p < alpha
    direction: Pace | None = None  # faster: more conversions than expected; slower: fewer


@dataclass(frozen=True, slots=True)
class TimeToConvertResult:
    start_goals: tuple[str, ...]
    end_goals: tuple[str, ...]
    start_label: str
    end_label: str
    unit: Unit
    project: str | None
    start: date | None
    end: date | None
    observation_end: datetime | None
    breakdown: str | None
    overall: TimeToConvertGroup
    segments: tuple[TimeToConvertGroup, ...]
    alpha: float = ALPHA  # the level at which segments are flagged


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _empirical_quantile(durations: Sequence[tuple[int, int]], q: float) -> float | None:
    """The plain `q` quantile (the smallest duration d with at least q of the units at or below it)."""
    total = sum(n for _, n in durations)
    if total == 0:
        return None
    seen = 0
    for d, n in sorted(durations):
        seen += n
        if seen >= q * total - 1e-12:
            return float(d)
    return float(sorted(durations)[-1][0])


def compute_group(segment: str | None, rows: Sequence[dict[str, Any]]) -> TimeToConvertGroup:
    """One segment's (status, duration, units) rows as a curve and its summaries."""
    counts = {CONVERTED: 0, CENSORED: 0, MACRO_FIRST: 0, MACRO_ONLY: 0}
    durations: list[float] = []
    observed: list[bool] = []
    weights: list[int] = []
    converted: list[tuple[int, int]] = []
    for r in rows:
        status, n = str(r["status"]), int(r["units"])
        counts[status] += n
        if status in (CONVERTED, CENSORED):
            durations.append(float(r["duration_s"]))
            observed.append(status == CONVERTED)
            weights.append(n)
            if status == CONVERTED:
                converted.append((int(r["duration_s"]), n))
    started = counts[CONVERTED] + counts[CENSORED]
    quantiles: tuple[QuantileEstimate, ...] = tuple(QuantileEstimate(q, None, None, None) for q in QUANTILES)
    milestones: tuple[Milestone, ...] = ()
    curve: tuple[CurvePoint, ...] = ()
    if started:
        km = kaplan_meier(durations, observed, weights)
        quantiles = tuple(_quantile(km, q) for q in QUANTILES)
        milestones = tuple(Milestone(float(s), 1.0 - km.survival_at(s)) for s in MILESTONES_S)
        curve = _curve(km)
    return TimeToConvertGroup(
        segment=segment,
        started=started,
        converted=counts[CONVERTED],
        censored=counts[CENSORED],
        macro_first=counts[MACRO_FIRST],
        macro_only=counts[MACRO_ONLY],
        quantiles=quantiles,
        converted_quantiles=tuple(
            QuantileEstimate(q, _empirical_quantile(converted, q), None, None) for q in QUANTILES
        ),
        milestones=milestones,
        curve=curve,
    )


def _quantile(km: SurvivalCurve, q: float) -> QuantileEstimate:
    est = km.quantile(q)
    return QuantileEstimate(q, _finite(est.value), _finite(est.lower), _finite(est.upper))


def _curve(km: SurvivalCurve) -> tuple[CurvePoint, ...]:
    return tuple(
        CurvePoint(
            seconds=float(t),
            at_risk=int(n),
            events=int(d),
            censored=int(c),
            converted=1.0 - float(s),
            lower=None if hi is None else 1.0 - float(hi),
            upper=None if lo is None else 1.0 - float(lo),
        )
        for t, n, d, c, s, lo, hi in zip(
            km.times, km.at_risk, km.events, km.censored, km.survival, km.lower, km.upper, strict=True
        )
    )


def compute_time_to_convert(
    rows: Rows,
    query: Query,
    start_goals: Sequence[Goal],
    end_goals: Sequence[Goal],
    start_label: str,
    end_label: str,
    *,
    alpha: float = ALPHA,
) -> TimeToConvertResult:
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    everything: list[dict[str, Any]] = []
    observation_end: datetime | None = None
    for r in rows:
        grouped.setdefault(r["segment"], []).append(r)
        everything.append(r)
        observation_end = r["observation_end"]
    # the overall curve pools every segment: equal (status, duration) rows may repeat across segments
    overall = compute_group(None, everything)
    segments: tuple[TimeToConvertGroup, ...] = ()
    if query.breakdown is not None:  # (without one, the only group is the overall one: computed once)
        segments = _compare_segments(tuple(compute_group(seg, rs) for seg, rs in
                                           sorted(grouped.items(), key=lambda kv: str(kv[0]))), grouped, alpha)
    return TimeToConvertResult(
        start_goals=tuple(g.name for g in start_goals),
        end_goals=tuple(g.name for g in end_goals),
        start_label=start_label,
        end_label=end_label,
        unit=query.unit,
        project=query.project,
        start=query.start,
        end=query.end,
        observation_end=observation_end,
        breakdown=query.breakdown,
        overall=overall,
        segments=segments,
        alpha=alpha,
    )


def _compare_segments(
    segments: Sequence[TimeToConvertGroup], rows: dict[str | None, list[dict[str, Any]]], alpha: float
) -> tuple[TimeToConvertGroup, ...]:
    """The segments, each with its log-rank comparison against the rest of the units (module doc)."""
    curves = {
        str(g.segment): [
            (float(r["duration_s"]), r["status"] == CONVERTED, int(r["units"]))
            for r in rows[g.segment]
            if r["status"] in (CONVERTED, CENSORED)
        ]
        for g in segments
    }
    return tuple(
        replace(g, expected=c.expected, p_value=c.p_value, adjusted_p=c.adjusted_p, significant=c.significant,
                direction=c.direction)
        for g, c in zip(segments, compare_curves(curves, alpha=alpha), strict=True)
    )


def _goals(definitions: Definitions, name: str | None, kind: Kind) -> tuple[tuple[Goal, ...], str]:
    if name is None:
        goals = definitions.micro if kind is Kind.MICRO else definitions.macro
        if not goals:
            raise ValueError(f"{definitions.source}: no {kind.value} goal is defined")
        return goals, f"any {kind.value} conversion"
    goal = definitions.goal(name)
    return (goal,), goal.title


def run_time_to_convert(
    backend: Backend,
    definitions: Definitions,
    query: Query,
    *,
    from_goal: str | None = None,
    to_goal: str | None = None,
    alpha: float = ALPHA,
) -> TimeToConvertResult:
    """From the first micro (or `from_goal`) to the first macro (or `to_goal`) per unit (module doc)."""
    start_goals, start_label = _goals(definitions, from_goal, Kind.MICRO)
    end_goals, end_label = _goals(definitions, to_goal, Kind.MACRO)
    start: tuple[Matcher, ...] = tuple(m for g in start_goals for m in g.match)
    end: tuple[Matcher, ...] = tuple(m for g in end_goals for m in g.match)
    rows = backend.execute(build_time_to_convert(query, start, end))
    return compute_time_to_convert(rows, query, start_goals, end_goals, start_label, end_label, alpha=alpha)
