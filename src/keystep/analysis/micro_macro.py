"""Micro → macro: which micro conversions lead to the macro, how strongly, how early and for how much.

Definitions (the counting rule is in `keystep.sql.micro_macro`):

- A unit *did* micro goal m when its first m came at or before its first macro, or it has no macro.
  Everyone else *did not* (including units that did m only after their first macro: `after_only`).
- `did` / `did_not`: the macro rate of each group, with a 95% Wilson interval.
- `lift`: rate(did) ÷ rate(did not), with its 95% interval and the two-sided p-value of "no difference".
- `frequency`: the share of all units that did the micro.
- `preceded_share`: the share of macro units whose first macro the micro preceded (or coincided with).
- `lag_median_s`: the median time from the micro's first occurrence to the first macro, over the
  macro units it preceded.
- Values (V = a unit's total macro value in the range; every macro of a unit that did the micro follows
  the micro):
  - `value_per_unit`: mean V over the units that did the micro: the macro value expected to follow it;
  - `value_per_unit_without`: mean V over the units that did not;
  - `incremental_value`: their difference, with a 95% normal (Welch) interval from the sums and sums of
    squares: the macro value associated with doing the micro, per unit (observational, not causal);
  - `value_per_macro_unit`: mean V over the macro units that did the micro (value per converter).
- With a breakdown, each segment's macro rate (macro units ÷ units) is compared with the rate of all
  other units (`rest_rate`) by the two-proportion test, the p-values Holm-adjusted across the segments,
  as for conversions and funnels (`keystep.analysis.segments.compare_segments`). The overall group has
  None in these fields.

`suggest` ranks micro goals as leading indicators of the macro; its score and rules are documented on
`compute_suggestions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from statistics import NormalDist
from typing import Any

from keystep.analysis.segments import ALPHA, Direction, compare_segments
from keystep.backends.base import Backend, Rows
from keystep.conversions.definitions import Definitions, Goal, MacroType, Unit
from keystep.query import Query
from keystep.sql.micro_macro import TOTAL, build_micro_macro
from keystep.stats.proportions import rate_ratio, wilson_interval

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class GroupRate:
    """Macro units among units, with a 95% Wilson interval (None when there are no units)."""

    units: int
    macro_units: int
    rate: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class LiftEstimate:
    """rate(did) ÷ rate(did not); None where undefined (a group without units or an empty ratio)."""

    ratio: float | None
    lower: float | None
    upper: float | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class ValueDifference:
    """Mean macro value per unit, did minus did not, with a 95% Welch (normal) interval."""

    difference: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class MicroEffect:
    goal: str
    label: str
    category: str | None
    frequency: float | None
    did: GroupRate
    did_not: GroupRate
    lift: LiftEstimate
    preceded_share: float | None
    after_only: int
    lag_median_s: float | None
    value_per_unit: float | None
    value_per_unit_without: float | None
    incremental_value: ValueDifference
    value_per_macro_unit: float | None


@dataclass(frozen=True, slots=True)
class MicroMacroGroup:
    """Every micro goal's effect within one segment (segment None: all units)."""

    segment: str | None
    units: int
    macro_units: int
    macro_rate: GroupRate
    value_sum: float
    value_per_unit: float | None
    micro: tuple[MicroEffect, ...]
    # a segment's macro rate against the rest of the units' (module doc); None (False) for all units
    rest_rate: GroupRate | None = None
    p_value: float | None = None  # two-proportion test against the rest; None also when not testable
    adjusted_p: float | None = None  # Holm-adjusted across the segments
    significant: bool = False  # adjusted_p < alpha
    direction: Direction | None = None


@dataclass(frozen=True, slots=True)
class MicroMacroResult:
    macro: str
    macro_label: str
    currency: str | None
    unit: Unit
    project: str | None
    start: date | None
    end: date | None
    breakdown: str | None
    overall: MicroMacroGroup
    segments: tuple[MicroMacroGroup, ...]
    alpha: float = ALPHA  # the level at which segments are flagged


# -- the stats we lean on ----------------------------------------------------------------------------


def _group_rate(x: int, n: int) -> GroupRate:
    if n == 0:
        return GroupRate(0, 0, None, None, None)
    lower, upper = _interval(wilson_interval(x, n, CONFIDENCE))
    return GroupRate(n, x, x / n, lower, upper)


def _interval(value: Any) -> tuple[float, float]:
    """(lower, upper) from a tuple or an object with `lower`/`upper`."""
    if isinstance(value, tuple):
        return float(value[0]), float(value[1])
    return float(value.lower), float(value.upper)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _lift(x1: int, n1: int, x2: int, n2: int) -> LiftEstimate:
    if n1 == 0 or n2 == 0 or x2 == 0:
        return LiftEstimate(None, None, None, None)
    lift = rate_ratio(x1, n1, x2, n2)
    return LiftEstimate(_finite(lift.ratio), _finite(lift.lower), _finite(lift.upper), _finite(lift.p_value))


def compute_mean_difference(
    n1: int, s1: float, ss1: float, n2: int, s2: float, ss2: float, confidence: float = CONFIDENCE
) -> ValueDifference:
    """Mean 1 − mean 2 from counts, sums and sums of squares; Welch standard error, normal interval.
    The interval needs at least two units on each side."""
    if n1 == 0 or n2 == 0:
        return ValueDifference(None, None, None)
    m1, m2 = s1 / n1, s2 / n2
    diff = m1 - m2
    if n1 < 2 or n2 < 2:
        return ValueDifference(diff, None, None)
    v1 = max(ss1 - n1 * m1 * m1, 0.0) / (n1 - 1)
    v2 = max(ss2 - n2 * m2 * m2, 0.0) / (n2 - 1)
    se = math.sqrt(v1 / n1 + v2 / n2)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return ValueDifference(diff, diff - z * se, diff + z * se)


# -- building the result -----------------------------------------------------------------------------


def default_macro(definitions: Definitions) -> Goal:
    """The first macro goal of type revenue, else the first macro goal."""
    macro = definitions.macro
    if not macro:
        raise ValueError(f"{definitions.source}: no macro goal is defined")
    for goal in macro:
        if goal.type is MacroType.REVENUE:
            return goal
    return macro[0]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def compute_group(
    segment: str | None, rows: Sequence[dict[str, Any]], micro: Sequence[Goal]
) -> MicroMacroGroup:
    """One segment's rows (goal -1 and one per micro goal) as effects."""
    by_goal = {int(r["goal"]): r for r in rows}
    total = by_goal[TOTAL]
    n, x = int(total["units"]), int(total["macro_units"])
    s, ss = float(total["value_sum"]), float(total["value_sq_sum"])
    effects = []
    for i, goal in enumerate(micro):
        r = by_goal[i]
        n1, x1 = int(r["units"]), int(r["macro_units"])
        s1, ss1 = float(r["value_sum"]), float(r["value_sq_sum"])
        n2, x2, s2, ss2 = n - n1, x - x1, s - s1, ss - ss1
        lag = r["lag_median_s"]
        effects.append(
            MicroEffect(
                goal=goal.name,
                label=goal.title,
                category=goal.category.value if goal.category else None,
                frequency=_ratio(n1, n),
                did=_group_rate(x1, n1),
                did_not=_group_rate(x2, n2),
                lift=_lift(x1, n1, x2, n2),
                preceded_share=_ratio(x1, x),
                after_only=int(r["after_only"]),
                lag_median_s=float(lag) if lag is not None else None,
                value_per_unit=_ratio(s1, n1),
                value_per_unit_without=_ratio(s2, n2),
                incremental_value=compute_mean_difference(n1, s1, ss1, n2, s2, ss2),
                value_per_macro_unit=_ratio(s1, x1),
            )
        )
    return MicroMacroGroup(segment, n, x, _group_rate(x, n), s, _ratio(s, n), tuple(effects))


def compute_micro_macro(
    rows: Rows, query: Query, micro: Sequence[Goal], macro: Goal, *, alpha: float = ALPHA
) -> MicroMacroResult:
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        grouped.setdefault(r["segment"], []).append(r)
    empty = [
        {
            "goal": g,
            "units": 0,
            "macro_units": 0,
            "value_sum": 0.0,
            "value_sq_sum": 0.0,
            "after_only": 0,
            "lag_median_s": None,
        }
        for g in range(TOTAL, len(micro))
    ]
    overall = compute_group(None, grouped.pop(None, empty), micro)
    segments = tuple(
        compute_group(seg, rs, micro) for seg, rs in sorted(grouped.items(), key=lambda kv: str(kv[0]))
    )
    return MicroMacroResult(
        macro=macro.name,
        macro_label=macro.title,
        currency=macro.value.currency if macro.value else None,
        unit=query.unit,
        project=query.project,
        start=query.start,
        end=query.end,
        breakdown=query.breakdown,
        overall=overall,
        segments=_compare_segments(segments, overall, alpha),
        alpha=alpha,
    )


def _compare_segments(
    segments: Sequence[MicroMacroGroup], overall: MicroMacroGroup, alpha: float
) -> tuple[MicroMacroGroup, ...]:
    """The segments, each with its macro rate compared with the rest of the units' (module doc)."""
    compared = compare_segments(
        {str(g.segment): (g.macro_units, g.units) for g in segments},
        total=(overall.macro_units, overall.units),
        alpha=alpha,
    )
    return tuple(
        replace(g, rest_rate=_group_rate(c.rest_converted, c.rest_eligible), p_value=c.p_value,
                adjusted_p=c.adjusted_p, significant=c.significant, direction=c.direction)
        for g, c in zip(segments, compared, strict=True)
    )


def run_micro_macro(
    backend: Backend,
    definitions: Definitions,
    query: Query,
    macro: str | None = None,
    micro: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> MicroMacroResult:
    """Every micro goal (or the named ones) against the macro goal `macro` (default: `default_macro`)."""
    macro_goal = definitions.goal(macro) if macro else default_macro(definitions)
    if macro_goal.kind.value != "macro":
        raise ValueError(f"{macro_goal.name!r} is a micro goal; expected a macro goal")
    micro_goals = tuple(definitions.goal(m) for m in micro) if micro else definitions.micro
    rows = backend.execute(build_micro_macro(query, micro_goals, macro_goal))
    return compute_micro_macro(rows, query, micro_goals, macro_goal, alpha=alpha)
