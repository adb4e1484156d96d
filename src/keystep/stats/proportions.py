"""Proportions: a rate with its Wilson interval, two rates compared (difference and ratio).

Pure numerics: counts in, frozen results out.

- `wilson_interval(x, n)`: the Wilson score interval (Wilson 1927), which stays inside [0, 1] and keeps
  its coverage for small n and rates near 0 or 1, unlike the normal (Wald) interval.
- `two_proportion_test(x1, n1, x2, n2)`: the pooled two-proportion z-test of p1 = p2 (two-sided), as
  in `statsmodels.stats.proportion.proportions_ztest`.
- `rate_ratio(x1, n1, x2, n2)`: p1 / p2 with the Katz log interval, `var(log RR) = 1/x1 − 1/n1 + 1/x2 − 1/n2`
  (Katz et al. 1978); a zero count in group 1 gives a ratio of 0 with no finite interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _check(x: int, n: int) -> None:
    if n < 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n, got x={x}, n={n}")


@dataclass(frozen=True, slots=True)
class Rate:
    """x of n units, the estimate x/n and its Wilson interval (estimate and bounds None when n = 0)."""

    x: int
    n: int
    estimate: float | None
    lower: float | None
    upper: float | None


def wilson_interval(x: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of x successes in n trials (n > 0)."""
    _check(x, n)
    if n == 0:
        raise ValueError("the Wilson interval needs at least one trial")
    z = _z(confidence)
    p = x / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # at x = 0 (x = n) the lower (upper) bound is exactly 0 (1); computed, it comes out a rounding error
    # away (e.g. 2.8e-17), an interval that would not contain its own estimate
    lower = 0.0 if x == 0 else max(0.0, centre - half)
    upper = 1.0 if x == n else min(1.0, centre + half)
    return lower, upper


def compute_rate(x: int, n: int, confidence: float = CONFIDENCE) -> Rate:
    _check(x, n)
    if n == 0:
        return Rate(0, 0, None, None, None)
    lower, upper = wilson_interval(x, n, confidence)
    return Rate(x, n, x / n, lower, upper)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    difference: float  # p1 − p2
    z: float
    p_value: float  # two-sided


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """Pooled z-test of p1 = p2; p-value 1 when the pooled rate is 0 or 1 (no variation to test)."""
    _check(x1, n1)
    _check(x2, n2)
    if n1 == 0 or n2 == 0:
        raise ValueError("both groups need at least one unit")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return ProportionTest(p1 - p2, 0.0, 1.0)
    z = (p1 - p2) / math.sqrt(variance)
    return ProportionTest(p1 - p2, z, 2 * NormalDist().cdf(-abs(z)))


@dataclass(frozen=True, slots=True)
class RateRatio:
    ratio: float
    lower: float  # may be 0 or inf when a count is zero
    upper: float
    p_value: float  # two-sided, of log RR = 0 (normal approximation); NaN when undefined


def rate_ratio(x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE) -> RateRatio:
    """(x1/n1) ÷ (x2/n2) with the Katz log interval; needs n1, n2 and x2 positive."""
    _check(x1, n1)
    _check(x2, n2)
    if n1 == 0 or n2 == 0 or x2 == 0:
        raise ValueError("the rate ratio needs units in both groups and conversions in the second")
    ratio = (x1 / n1) / (x2 / n2)
    if x1 == 0:
        return RateRatio(0.0, 0.0, math.inf, math.nan)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    log_ratio = math.log(ratio)
    z = _z(confidence)
    p_value = 2 * NormalDist().cdf(-abs(log_ratio) / se) if se > 0 else (1.0 if log_ratio == 0 else 0.0)
    return RateRatio(ratio, math.exp(log_ratio - z * se), math.exp(log_ratio + z * se), p_value)
