"""Which segments convert differently: each segment against the rest of the units, Holm-corrected.

Pure: counts in, frozen results out. For every segment the rate (with its Wilson interval) is compared
with the rate of all *other* units together (a two-proportion test of the segment against the rest),
and the p-values of one family (the segments of one goal, or of one funnel step) are adjusted with
Holm's step-down method so that the chance of flagging any segment by luck stays at `alpha`.
Segments are assumed to partition the units (each unit in exactly one segment, as a breakdown does);
when they do not cover all units, pass the overall counts as `total`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from keystep.stats.multiple_testing import holm
from keystep.stats.proportions import Rate, compute_rate, two_proportion_test

ALPHA = 0.05


class Direction(Enum):
    HIGHER = "higher"
    LOWER = "lower"
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
    adjusted = dict(zip(p_values, _holm(list(p_values.values())), strict=True))
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


def _holm(p_values: list[float]) -> list[float]:
    if not p_values:
        return []
    return [float(p) for p in holm(p_values)]
