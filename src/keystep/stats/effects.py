"""Absolute and relative treatment effects and the variance of their estimates.

For arms A (control) and B (treatment) with means ``μ_A, μ_B``, per-unit variances ``σ²_A, σ²_B`` and
``n_A, n_B`` units:

* absolute effect ``Δ = μ_B − μ_A`` with ``var = σ²_B/n_B + σ²_A/n_A``;
* relative effect (lift) ``Δ / |μ_A|`` with the delta-method variance
  ``σ²_B/(μ_A² n_B) + σ²_A μ_B²/(μ_A⁴ n_A)`` (the two arms independent; as gbstats
  ``frequentist_variance`` and GrowthBook's ``frequentistVariance``).

CUPED arms (:mod:`keystep.stats.cuped`) compare adjusted means but divide by the *unadjusted* control
mean, with the CUPED-specific relative variances defined there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from keystep.stats.cuped import (
    CovariateRatioStats,
    CovariateStats,
    adjust_pair,
    relative_variance,
    relative_variance_ratio,
)
from keystep.stats.sufficient import ArmMoments, ArmSummary, summarize

__all__ = [
    "BASELINE_ZERO",
    "ZERO_VARIANCE",
    "ArmStatistic",
    "DifferenceType",
    "EffectEstimate",
    "compute_effect",
    "delta_method_variance",
]

DifferenceType = Literal["absolute", "relative"]
ArmStatistic = ArmMoments | CovariateStats | CovariateRatioStats | ArmSummary
"""Any statistics of one arm the engine can compare."""

ZERO_VARIANCE = "zero_or_negative_variance"
BASELINE_ZERO = "baseline_mean_zero"


def delta_method_variance(
    var_a: float, mean_a: float, n_a: float, var_b: float, mean_b: float, n_b: float, *, relative: bool
) -> float:
    """Variance of the absolute (``σ²_B/n_B + σ²_A/n_A``) or relative effect estimate (delta method,
    ``σ²_B/(μ_A² n_B) + σ²_A μ_B²/(μ_A⁴ n_A)``) from per-unit variances and means."""
    if relative:
        return var_b / (mean_a**2 * n_b) + var_a * mean_b**2 / (mean_a**4 * n_a)
    return var_b / n_b + var_a / n_a


@dataclass(frozen=True)
class EffectEstimate:
    """An effect estimate with its sampling variance and the arm moments it came from.

    ``error`` is set (and the numbers are NaN) when the effect is not estimable: an arm with fewer than
    two units or no variance (:data:`ZERO_VARIANCE`) or a control mean of 0 (:data:`BASELINE_ZERO`).
    ``theta`` is the CUPED coefficient used (0 when unadjusted).
    """

    point_estimate: float
    variance: float
    difference_type: DifferenceType
    control: ArmSummary
    treatment: ArmSummary
    theta: float = 0.0
    error: str | None = None

    @property
    def se(self) -> float:
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan

    @property
    def n_total(self) -> int:
        """Units in both arms (the ``N`` of sequential confidence sequences)."""
        return self.control.n + self.treatment.n

    @property
    def relative(self) -> bool:
        return self.difference_type == "relative"


def _summaries(control: ArmStatistic, treatment: ArmStatistic) -> tuple[ArmSummary, ArmSummary, float]:
    covariate = (CovariateStats, CovariateRatioStats)
    if isinstance(control, covariate) or isinstance(treatment, covariate):
        if not (isinstance(control, covariate) and isinstance(treatment, covariate)):
            raise TypeError("CUPED needs covariate statistics for both arms")
        return adjust_pair(control, treatment)
    a = control if isinstance(control, ArmSummary) else summarize(control)
    b = treatment if isinstance(treatment, ArmSummary) else summarize(treatment)
    return a, b, 0.0


def compute_effect(
    control: ArmStatistic, treatment: ArmStatistic, *, difference_type: DifferenceType = "relative"
) -> EffectEstimate:
    """Estimate the effect of ``treatment`` over ``control`` and its variance.

    Arms may be plain statistics (mean, proportion, ratio, quantile), precomputed :class:`ArmSummary`
    values, or CUPED covariate statistics (then ``θ`` is pooled over both arms).
    """
    a, b, theta = _summaries(control, treatment)
    relative = difference_type == "relative"

    def failed(error: str) -> EffectEstimate:
        return EffectEstimate(math.nan, math.nan, difference_type, a, b, theta, error)

    if a.n <= 1 or b.n <= 1 or a.variance <= 0 or b.variance <= 0:
        return failed(ZERO_VARIANCE)
    if a.mean == 0 or a.unadjusted_mean == 0:
        return failed(BASELINE_ZERO)

    if not relative:
        estimate = b.mean - a.mean
        variance = b.variance / b.n + a.variance / a.n
    else:
        base = abs(a.unadjusted_mean)
        estimate = (b.mean - a.mean) / base
        if theta != 0 and isinstance(control, CovariateStats) and isinstance(treatment, CovariateStats):
            variance = relative_variance(control, treatment, theta)
        elif (
            theta != 0
            and isinstance(control, CovariateRatioStats)
            and isinstance(treatment, CovariateRatioStats)
        ):
            variance = relative_variance_ratio(control, treatment, theta)
        else:
            variance = delta_method_variance(a.variance, base, a.n, b.variance, b.mean, b.n, relative=True)
    if not variance > 0:
        return failed(ZERO_VARIANCE)
    return EffectEstimate(estimate, variance, difference_type, a, b, theta)
