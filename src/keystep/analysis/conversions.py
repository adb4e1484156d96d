"""Conversion rates per goal, grouped by micro category and macro type, per segment and per period.

The database returns per goal [per segment] [per period] four sums (see `keystep.sql.conversions`);
this module turns them into rates with Wilson 95% intervals, actions per eligible unit, values, and
flags the segments whose rate differs from the rest of the units (`keystep.analysis.segments`).

Meaning of the numbers, per goal:
- eligible units: every unit with an event in the range, or (with an `eligible` rule) the units with
  at least one event in the range matching the rule;
- converted units: eligible units that did the goal at least once; rate = converted / eligible;
- actions: the goal's events done by eligible units; actions per unit = actions / eligible units;
- value: the sum of the goal's value over those actions; `value_per_conversion` divides it by the
  converted units (the average a converting unit is worth), `value_per_action` by the actions;
- periods (`--by day|week`): a unit belongs to the period of its first event in the range (reporting
  timezone), and everything it did in the range is counted there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from keystep.analysis.segments import ALPHA, Direction, compare_segments
from keystep.backends.base import Backend
from keystep.conversions.definitions import Category, Definitions, Goal, Kind, MacroType, Matcher, Unit
from keystep.query import Granularity, Query
from keystep.sql.conversions import build_conversions
from keystep.sql.scope import DateRange
from keystep.stats.proportions import Rate, compute_rate

# Report order and titles of the groups (`Goal.group`).
GROUPS: tuple[tuple[str, str], ...] = (
    (f"{Kind.MACRO.value}:{MacroType.REVENUE.value}", "Macro: revenue"),
    (f"{Kind.MACRO.value}:{MacroType.LEAD.value}", "Macro: lead"),
    (f"{Kind.MACRO.value}:{MacroType.INQUIRY.value}", "Macro: inquiry"),
    (f"{Kind.MICRO.value}:{Category.PROCESS_MILESTONE.value}", "Micro: process milestones"),
    (f"{Kind.MICRO.value}:{Category.SECONDARY_ACTION.value}", "Micro: secondary actions"),
)


@dataclass(frozen=True, slots=True)
class ConversionStats:
    eligible_units: int
    converted_units: int
    rate: Rate  # converted / eligible, Wilson 95% interval
    actions: int
    actions_per_unit: float | None  # actions / eligible units; None without eligible units
    value: float | None  # total value of the actions; None when the goal has no value
    value_per_conversion: float | None  # value / converted units (the average converting unit's worth)
    value_per_action: float | None  # value / actions


@dataclass(frozen=True, slots=True)
class SegmentConversions:
    segment: str
    stats: ConversionStats
    rest_rate: Rate  # the rate of all other units
    p_value: float | None  # two-proportion test, this segment vs the rest; None when not testable
    adjusted_p: float | None  # Holm-adjusted across the goal's segments
    significant: bool  # adjusted_p < alpha
    direction: Direction


@dataclass(frozen=True, slots=True)
class PeriodConversions:
    period: date  # the day, or the Monday of the week, in the reporting timezone
    stats: ConversionStats


@dataclass(frozen=True, slots=True)
class GoalConversions:
    goal: str
    title: str
    kind: Kind
    category: Category | None
    type: MacroType | None
    group: str
    eligible: tuple[Matcher, ...]  # the eligibility rule; empty: every unit in the range
    currency: str | None
    total: ConversionStats
    segments: tuple[SegmentConversions, ...]  # with a breakdown: most eligible units first
    periods: tuple[PeriodConversions, ...]  # with a granularity: in time order, empty periods included
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GoalGroup:
    key: str  # `macro:revenue`, `micro:process_milestone`, ...
    title: str
    goals: tuple[GoalConversions, ...]


@dataclass(frozen=True, slots=True)
class ConversionReport:
    project: str | None
    start: date | None
    end: date | None
    timezone: str
    unit: Unit
    breakdown: str | None
    granularity: Granularity | None
    alpha: float
    groups: tuple[GoalGroup, ...]

    @property
    def goals(self) -> tuple[GoalConversions, ...]:
        return tuple(g for group in self.groups for g in group.goals)


@dataclass(frozen=True, slots=True)
class _Sums:
    eligible: int = 0
    converted: int = 0
    actions: int = 0
    value: float = 0.0


def run_conversions(
    backend: Backend,
    definitions: Definitions,
    query: Query,
    *,
    goals: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> ConversionReport:
    """Measure `goals` (names; default: every goal of the definitions) with one query."""
    return run_conversion_reports(backend, definitions, [query], goals=goals, alpha=alpha)[0]


def run_conversion_reports(
    backend: Backend,
    definitions: Definitions,
    queries: Sequence[Query],
    *,
    goals: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> list[ConversionReport]:
    """The report of each query, from one statement: the queries may differ in their date range (e.g. a
    period and the one before it), granularity and breakdown (each at most one besides none), nothing
    else. Each report is the one `run_conversions` gives for its query."""
    if not queries:
        return []
    combined, ranges = combine_queries(queries)
    chosen = tuple(definitions.goal(name) for name in goals) if goals else definitions.goals
    rows = list(backend.execute(build_conversions(combined, chosen, ranges=ranges))) if chosen else []
    reports = []
    for q in queries:
        number = ranges.index((q.start, q.end))
        reports.append(compute_report(q, chosen, (r for r in rows if r["range_no"] == number), alpha=alpha))
    return reports


def combine_queries(queries: Sequence[Query]) -> tuple[Query, list[DateRange]]:
    """One query that measures all of `queries` (with their breakdown and granularity, if any), and the
    distinct date ranges among them in order of appearance."""
    def one(values: set[Any], what: str) -> Any:
        chosen = values - {None}
        if len(chosen) > 1:
            raise ValueError(f"queries measured together differ in their {what}: {sorted(map(str, chosen))}")
        return next(iter(chosen), None)

    breakdown = one({q.breakdown for q in queries}, "breakdown")
    granularity = one({q.granularity for q in queries}, "granularity")
    combined = queries[0].with_(start=None, end=None, breakdown=breakdown, granularity=granularity)
    for q in queries:
        if q.with_(start=None, end=None, breakdown=breakdown, granularity=granularity) != combined:
            raise ValueError("queries measured together may differ only in range, breakdown and granularity")
    ranges: list[DateRange] = []
    for q in queries:
        if (q.start, q.end) not in ranges:
            ranges.append((q.start, q.end))
    return combined, ranges


def compute_report(
    query: Query, goals: Sequence[Goal], rows: Iterable[dict[str, Any]], *, alpha: float = ALPHA
) -> ConversionReport:
    """The report from the rows of `build_conversions(query, goals)`: pure."""
    totals: dict[int, _Sums] = {}
    currencies: dict[int, tuple[str | None, str | None]] = {}
    segments: dict[int, dict[str, _Sums]] = {}
    periods: dict[int, dict[date, _Sums]] = {}
    for row in rows:
        i = int(row["goal"])
        sums = _Sums(int(row["eligible_units"]), int(row["converted_units"]), int(row["actions"]),
                     float(row["value_sum"]))
        if row["all_segments"] and row["all_periods"]:
            totals[i] = sums
            currencies[i] = (row["currency_min"], row["currency_max"])
        elif row["all_periods"]:
            segments.setdefault(i, {})[str(row["segment"])] = sums
        else:
            periods.setdefault(i, {})[row["period"]] = sums
    all_periods = _period_range(query, {d for per in periods.values() for d in per})
    results = []
    for i, goal in enumerate(goals):
        currency, notes = _currency(goal, *currencies.get(i, (None, None)))
        valued = goal.value is not None
        results.append(GoalConversions(
            goal=goal.name,
            title=goal.title,
            kind=goal.kind,
            category=goal.category,
            type=goal.type,
            group=goal.group,
            eligible=goal.eligible,
            currency=currency,
            total=compute_stats(totals.get(i, _Sums()), valued=valued),
            segments=_segments(segments.get(i, {}), totals.get(i, _Sums()), alpha, valued)
            if query.breakdown else (),
            periods=tuple(
                PeriodConversions(d, compute_stats(periods.get(i, {}).get(d, _Sums()), valued=valued))
                for d in all_periods
            ),
            notes=notes,
        ))
    groups = tuple(
        GoalGroup(key, title, tuple(g for g in results if g.group == key))
        for key, title in GROUPS
        if any(g.group == key for g in results)
    )
    return ConversionReport(
        project=query.project, start=query.start, end=query.end, timezone=query.timezone, unit=query.unit,
        breakdown=query.breakdown, granularity=query.granularity, alpha=alpha, groups=groups,
    )


def compute_stats(sums: _Sums, *, valued: bool = True) -> ConversionStats:
    """Rates and averages from counts; `valued`: the goal has a value (else the value fields are None)."""
    return ConversionStats(
        eligible_units=sums.eligible,
        converted_units=sums.converted,
        rate=compute_rate(sums.converted, sums.eligible),
        actions=sums.actions,
        actions_per_unit=sums.actions / sums.eligible if sums.eligible else None,
        value=sums.value if valued else None,
        value_per_conversion=sums.value / sums.converted if valued and sums.converted else None,
        value_per_action=sums.value / sums.actions if valued and sums.actions else None,
    )


def _segments(
    by_segment: dict[str, _Sums], total: _Sums, alpha: float, valued: bool
) -> tuple[SegmentConversions, ...]:
    order = sorted(by_segment, key=lambda s: (-by_segment[s].eligible, s))
    compared = compare_segments(
        {s: (by_segment[s].converted, by_segment[s].eligible) for s in order},
        total=(total.converted, total.eligible),
        alpha=alpha,
    )
    return tuple(
        SegmentConversions(
            segment=c.segment, stats=compute_stats(by_segment[c.segment], valued=valued),
            rest_rate=c.rest_rate, p_value=c.p_value, adjusted_p=c.adjusted_p, significant=c.significant,
            direction=c.direction,
        )
        for c in compared
    )


def _period_range(query: Query, seen: set[date]) -> tuple[date, ...]:
    """Every period from the range's first to its last (or from the first to the last seen)."""
    if query.granularity is None:
        return ()
    step = timedelta(days=7 if query.granularity is Granularity.WEEK else 1)

    def floor(day: date) -> date:
        return day - timedelta(days=day.weekday()) if query.granularity is Granularity.WEEK else day

    lo = floor(query.start) if query.start else min(seen, default=None)
    hi = floor(query.end) if query.end else max(seen, default=None)
    if lo is None or hi is None:
        return tuple(sorted(seen))
    out = []
    day = lo
    while day <= hi:
        out.append(day)
        day += step
    return tuple(sorted(set(out) | seen))


def _currency(goal: Goal, lowest: str | None, highest: str | None) -> tuple[str | None, tuple[str, ...]]:
    """The goal's declared currency, else (for a value read from the events) the one currency its events
    carry; notes when they disagree."""
    if goal.value is None:
        return None, ()
    declared = goal.value.currency
    if goal.value.source is None:  # a fixed amount: the events' currency column does not apply
        return declared, ()
    notes: list[str] = []
    if lowest is not None and highest is not None and lowest != highest:
        notes.append(f"the events carry several currencies (at least {lowest} and {highest}); "
                     "their values are summed as they are, without conversion")
    elif declared and lowest is not None and lowest != declared:
        notes.append(f"the goal's value is in {declared} but its events carry {lowest}")
    if declared:
        return declared, tuple(notes)
    return (lowest if lowest == highest else None), tuple(notes)
