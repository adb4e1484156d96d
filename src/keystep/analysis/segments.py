"""Which segments convert differently: each segment against the rest of the units, Holm-corrected.

Pure: counts in, frozen results out. For every segment the rate (with its Wilson interval) is compared
with the rate of all *other* units together (a two-proportion test of the segment against the rest),
and the p-values of one family (the segments of one goal, or of one funnel step) are adjusted with
Holm's step-down method so that the chance of flagging any segment by luck stays at `alpha`.
Segments are assumed to partition the units (each unit in exactly one segment, as a breakdown does);
when they do not cover all units, pass the overall counts as `total`.

Time to convert is a curve with censored units, not a rate: a two-proportion test of "converted"
would count a unit that started the clock a minute before the end of observation as a failure.
`compare_curves` therefore tests each segment's curve against the curve of all other units pooled with
the log-rank test (`keystep.stats.survival.log_rank_against_rest`), Holm-adjusted the same way; its
direction says whether the segment converts faster (more conversions than expected had it converted
like the rest) or slower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from keystep.stats.multiple_testing import holm
from keystep.stats.proportions import Rate, compute_rate, two_proportion_test
from keystep.stats.survival import LogRankTest, log_rank_against_rest

ALPHA = 0.05


class Direction(Enum):
    HIGHER = "higher"
    LOWER = "lower"
    SAME = "same"


class Pace(Enum):
    """A time-to-convert curve against the rest's: more conversions than expected (faster) or fewer."""

    FASTER = "faster"
    SLOWER = "slower"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class SegmentComparison:
    """One segment against the rest of the units."""

    segment: str
    converted: int
    eligible: int
    rate: Rate
    rest_converted: int
    rest_eligible: int
    rest_rate: Rate
    p_value: float | None  # None: not testable (the segment or the rest has no eligible unit)
    adjusted_p: float | None  # Holm-adjusted across the family's testable segments
    significant: bool  # adjusted_p < alpha
    direction: Direction  # of the segment's rate relative to the rest's


def compare_segments(
    counts: Mapping[str, tuple[int, int]],
    *,
    total: tuple[int, int] | None = None,
    alpha: float = ALPHA,
) -> tuple[SegmentComparison, ...]:
    """`counts`: segment -> (converted, eligible), one family. `total`: (converted, eligible) over all
    units (default: the sums of `counts`). Returns one comparison per segment, in the order given."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    for segment, (converted, eligible) in counts.items():
        if not 0 <= converted <= eligible:
            raise ValueError(f"{segment!r}: need 0 <= converted <= eligible, got {converted}, {eligible}")
    all_converted, all_eligible = total if total is not None else (
        sum(c for c, _ in counts.values()),
        sum(n for _, n in counts.values()),
    )
    p_values: dict[str, float] = {}
    for segment, (converted, eligible) in counts.items():
        rest_c, rest_n = all_converted - converted, all_eligible - eligible
        if rest_c < 0 or rest_n < 0 or rest_c > rest_n:
            raise ValueError(f"{segment!r} has more units than the total {all_converted}/{all_eligible}")
        if eligible > 0 and rest_n > 0:
            p_values[segment] = _p_value(converted, eligible, rest_c, rest_n)
    adjusted = _holm(p_values)
    out = []
    for segment, (converted, eligible) in counts.items():
        rest_c, rest_n = all_converted - converted, all_eligible - eligible
        adj = adjusted.get(segment)
        out.append(SegmentComparison(
            segment=segment,
            converted=converted,
            eligible=eligible,
            rate=compute_rate(converted, eligible),
            rest_converted=rest_c,
            rest_eligible=rest_n,
            rest_rate=compute_rate(rest_c, rest_n),
            p_value=p_values.get(segment),
            adjusted_p=adj,
            significant=adj is not None and adj < alpha,
            direction=_direction(converted, eligible, rest_c, rest_n),
        ))
    return tuple(out)


def _direction(x1: int, n1: int, x2: int, n2: int) -> Direction:
    if n1 == 0 or n2 == 0 or x1 * n2 == x2 * n1:
        return Direction.SAME
    return Direction.HIGHER if x1 * n2 > x2 * n1 else Direction.LOWER


def _p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    return float(two_proportion_test(x1, n1, x2, n2).p_value)


@dataclass(frozen=True, slots=True)
class CurveComparison:
    """One segment's time-to-convert curve against the rest of the units' (log-rank test)."""

    segment: str
    converted: int  # conversions (events) in the segment
    expected: float | None  # conversions expected had it converted like the rest; None without rows
    p_value: float | None  # None: not testable (no conversion while it and the rest had units at risk)
    adjusted_p: float | None  # Holm-adjusted across the testable segments
    significant: bool  # adjusted_p < alpha
    direction: Pace  # converted against expected


def compare_curves(
    curves: Mapping[str, Sequence[tuple[float, bool, int]]], *, alpha: float = ALPHA
) -> tuple[CurveComparison, ...]:
    """`curves`: segment -> its rows (duration, converted (else censored), units), one family. Returns one
    comparison per segment, in the order given; a segment without rows is not testable."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    rows = [(segment, *row) for segment, curve in curves.items() for row in curve]
    tests = log_rank_against_rest(
        [d for _, d, _, _ in rows], [e for _, _, e, _ in rows], [s for s, _, _, _ in rows], [w for _, _, _, w in rows]
    )
    p_values = {s: t.p_value for s, t in tests.items() if t.p_value is not None}
    adjusted = _holm(p_values)
    out = []
    for segment in curves:
        test = tests.get(segment)
        adj = adjusted.get(segment)
        out.append(CurveComparison(
            segment=segment,
            converted=test.observed if test else 0,
            expected=test.expected if test else None,
            p_value=p_values.get(segment),
            adjusted_p=adj,
            significant=adj is not None and adj < alpha,
            direction=_pace(test),
        ))
    return tuple(out)


def _pace(test: LogRankTest | None) -> Pace:
    if test is None or test.p_value is None or math.isclose(test.observed, test.expected, abs_tol=1e-12):
        return Pace.SAME
    return Pace.FASTER if test.observed > test.expected else Pace.SLOWER


def _holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values of one family, by segment."""
    if not p_values:
        return {}
    return dict(zip(p_values, (float(p) for p in holm(list(p_values.values()))), strict=True))
