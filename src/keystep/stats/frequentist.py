"""Fixed-horizon frequentist tests: Welch's unequal-variance t test, one- and two-sided.

With an effect estimate ``Δ̂`` and its standard error ``se`` (:mod:`keystep.stats.effects`) the statistic is
``t = Δ̂ / se`` on Welch–Satterthwaite degrees of freedom

    ν = (σ²_B/n_B + σ²_A/n_A)² / (σ⁴_B/(n_B²(n_B−1)) + σ⁴_A/(n_A²(n_A−1)))

computed from the per-unit arm variances (also for relative effects, as gbstats does). Intervals use the
t quantile: two-sided ``Δ̂ ± t_{1−α/2,ν}·se``; ``"greater"`` (H1: treatment > control) gives
``[Δ̂ − t_{1−α,ν}·se, +∞)`` and ``"less"`` gives ``(−∞, Δ̂ + t_{1−α,ν}·se]``.
Reference: Welch (1947); gbstats ``frequentist/tests.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats as sps

from keystep.stats.effects import ArmStatistic, DifferenceType, EffectEstimate, compute_effect
from keystep.stats.sufficient import ArmSummary

__all__ = [
    "Alternative",
    "FrequentistResult",
    "compute_welch_test",
    "welch_dof",
    "welch_test_from_effect",
]

Alternative = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True)
class FrequentistResult:
    """A test of the effect: estimate, standard error, interval ``(lower, upper)`` (infinite on the open side
    of one-sided tests), p-value and degrees of freedom; ``error`` set when not estimable."""

    point_estimate: float
    se: float
    ci: tuple[float, float]
    p_value: float
    dof: float
    alpha: float
    alternative: Alternative
    effect: EffectEstimate
    error: str | None = None

    @property
    def significant(self) -> bool:
        return self.error is None and self.p_value < self.alpha


def welch_dof(control: ArmSummary, treatment: ArmSummary) -> float:
    """Welch–Satterthwaite degrees of freedom from the per-unit variances (1 when undefined)."""
    va, vb, na, nb = control.variance, treatment.variance, control.n, treatment.n
    if na <= 1 or nb <= 1 or va <= 0 or vb <= 0:
        return 1.0
    num = (vb / nb + va / na) ** 2
    den = vb**2 / (nb**2 * (nb - 1)) + va**2 / (na**2 * (na - 1))
    return float(num / den)


def _failed(effect: EffectEstimate, alpha: float, alternative: Alternative) -> FrequentistResult:
    nan = math.nan
    return FrequentistResult(nan, nan, (nan, nan), nan, nan, alpha, alternative, effect, effect.error)


def welch_test_from_effect(
    effect: EffectEstimate, *, alpha: float = 0.05, alternative: Alternative = "two-sided"
) -> FrequentistResult:
    """Welch t test of an already estimated effect (H0: effect = 0)."""
    if effect.error is not None:
        return _failed(effect, alpha, alternative)
    dof = welch_dof(effect.control, effect.treatment)
    est, se = effect.point_estimate, effect.se
    t_stat = est / se
    dist = sps.t(dof)
    if alternative == "two-sided":
        p = 2.0 * float(dist.sf(abs(t_stat)))
        half = float(dist.ppf(1 - alpha / 2)) * se
        ci = (est - half, est + half)
    elif alternative == "greater":
        p = float(dist.sf(t_stat))
        ci = (est - float(dist.ppf(1 - alpha)) * se, math.inf)
    elif alternative == "less":
        p = float(dist.cdf(t_stat))
        ci = (-math.inf, est + float(dist.ppf(1 - alpha)) * se)
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    return FrequentistResult(est, se, ci, p, dof, alpha, alternative, effect)


def compute_welch_test(
    control: ArmStatistic,
    treatment: ArmStatistic,
    *,
    difference_type: DifferenceType = "relative",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> FrequentistResult:
    """Welch t test of ``treatment`` against ``control`` from sufficient statistics."""
    effect = compute_effect(control, treatment, difference_type=difference_type)
    return welch_test_from_effect(effect, alpha=alpha, alternative=alternative)
