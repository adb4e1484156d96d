"""Sufficient statistics of one experiment arm: what SQL returns, and the moments the engine needs.

The database aggregates each arm into a handful of sums (the contract of gbstats, GrowthBook's statistics
engine, and of keystep): ``n`` units, ``Σx`` and ``Σx²`` for a metric, and ``Σxy`` for a pair of metrics
measured on the same units (the numerator and denominator of a ratio, or a metric and its pre-exposure
covariate). Everything here is a frozen dataclass; statistics of the same kind merge with ``a + b`` (or
:func:`merge`), which is exactly the statistics of the concatenated units.

Variance conventions (per unit, not of the mean; divide by ``n`` for the variance of the mean):

* mean metrics: the sample variance ``(Σx² − (Σx)²/n) / (n − 1)``;
* proportions (binary metrics): ``p (1 − p)`` with ``p = Σx / n`` (population form, as gbstats);
* ratios ``Σm / Σd``: the delta method,
  ``var(m)/μd² + var(d)·μm²/μd⁴ − 2·cov(m, d)·μm/μd³`` (Deng, Knoblich & Lu 2018, "Applying the delta
  method in metric analytics").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = [
    "ArmMoments",
    "ArmSummary",
    "MeanStats",
    "MetricStats",
    "ProportionStats",
    "RatioStats",
    "add_metric_stats",
    "covariance",
    "merge",
    "ratio_variance",
    "summarize",
]


class ArmMoments(Protocol):
    """Anything that can stand for one arm in a comparison: unit count, mean and per-unit variance."""

    @property
    def n(self) -> int: ...

    @property
    def mean(self) -> float: ...

    @property
    def variance(self) -> float: ...


@dataclass(frozen=True)
class ArmSummary:
    """The moments of one arm after any adjustment (CUPED): ``mean`` is the estimate compared between arms,
    ``variance`` its per-unit variance, ``unadjusted_mean`` the raw mean that relative effects divide by."""

    n: int
    mean: float
    variance: float
    unadjusted_mean: float


@dataclass(frozen=True)
class MeanStats:
    """Sufficient statistics of a mean metric: ``n``, ``Σx`` and ``Σx²``."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Sample variance ``(Σx² − (Σx)²/n) / (n − 1)``; 0 for fewer than two units."""
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)

    def __add__(self, other: MeanStats) -> MeanStats:
        if not isinstance(other, MeanStats):
            return NotImplemented
        return MeanStats(self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares)


@dataclass(frozen=True)
class ProportionStats:
    """Sufficient statistics of a binary metric: ``n`` units of which ``sum`` converted (Σx² = Σx)."""

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Bernoulli variance ``p (1 − p)`` (population form, as gbstats)."""
        p = self.mean
        return p * (1.0 - p)

    def __add__(self, other: ProportionStats) -> ProportionStats:
        if not isinstance(other, ProportionStats):
            return NotImplemented
        return ProportionStats(self.n + other.n, self.sum + other.sum)


MetricStats = MeanStats | ProportionStats
"""Statistics of a single metric column."""


def covariance(n: int, x: MetricStats, y: MetricStats, sum_of_products: float) -> float:
    """Per-unit covariance of two metrics measured on the same ``n`` units, from ``Σxy``.

    Two proportions use the population form ``Σxy/n − Σx·Σy/n²`` (matching their ``p(1−p)`` variance);
    otherwise the sample form ``(Σxy − Σx·Σy/n) / (n − 1)``. As in gbstats ``compute_covariance``.
    """
    if n <= 1:
        return 0.0
    if isinstance(x, ProportionStats) and isinstance(y, ProportionStats):
        return sum_of_products / n - x.sum * y.sum / n**2
    return (sum_of_products - x.sum * y.sum / n) / (n - 1)


def ratio_variance(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_md: float) -> float:
    """Delta-method variance of ``m / d``: ``var_m/μd² + var_d·μm²/μd⁴ − 2·cov·μm/μd³``."""
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2.0 * cov_md * mean_m / mean_d**3


@dataclass(frozen=True)
class RatioStats:
    """Sufficient statistics of a ratio metric ``Σm / Σd`` (e.g. revenue per session, over users):
    the numerator and denominator statistics over the same ``n`` units and ``Σ m·d``."""

    numerator: MetricStats
    denominator: MetricStats
    sum_of_products: float

    def __post_init__(self) -> None:
        if self.numerator.n != self.denominator.n:
            raise ValueError("numerator and denominator must cover the same units")

    @property
    def n(self) -> int:
        return self.numerator.n

    @property
    def mean(self) -> float:
        """``Σm / Σd`` (0 when the denominator sums to 0)."""
        if self.denominator.sum == 0:
            return 0.0
        return self.numerator.sum / self.denominator.sum

    @property
    def covariance(self) -> float:
        return covariance(self.n, self.numerator, self.denominator, self.sum_of_products)

    @property
    def variance(self) -> float:
        """Per-unit delta-method variance of the ratio (0 when undefined)."""
        if self.denominator.mean == 0 or self.n <= 1:
            return 0.0
        return ratio_variance(
            self.numerator.mean,
            self.numerator.variance,
            self.denominator.mean,
            self.denominator.variance,
            self.covariance,
        )

    def __add__(self, other: RatioStats) -> RatioStats:
        if not isinstance(other, RatioStats):
            return NotImplemented
        return RatioStats(
            add_metric_stats(self.numerator, other.numerator),
            add_metric_stats(self.denominator, other.denominator),
            self.sum_of_products + other.sum_of_products,
        )


def add_metric_stats(a: MetricStats, b: MetricStats) -> MetricStats:
    """Merge two single-metric statistics; a proportion merged with a mean becomes a mean."""
    if isinstance(a, ProportionStats) and isinstance(b, ProportionStats):
        return a + b
    return MeanStats(a.n + b.n, a.sum + b.sum, a.sum_squares + b.sum_squares)


_S = TypeVar("_S", MeanStats, ProportionStats, RatioStats)


def merge(first: _S, *rest: _S) -> _S:
    """Merge statistics of disjoint groups of units (days, segments) into the statistics of their union."""
    total = first
    for item in rest:
        total = total + item
    return total


def summarize(stats: ArmMoments) -> ArmSummary:
    """The :class:`ArmSummary` of unadjusted statistics."""
    mean = stats.mean
    if not math.isfinite(mean):
        raise ValueError("mean is not finite")
    return ArmSummary(n=stats.n, mean=mean, variance=stats.variance, unadjusted_mean=mean)
