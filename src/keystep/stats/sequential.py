"""Sequential testing valid under continuous peeking: asymptotic confidence sequences.

Always-valid intervals of Waudby-Smith, Arnold, Wu, Howard & Ramdas, "Time-uniform central limit theory
and asymptotic confidence sequences" (arXiv:2103.06476), Gaussian-mixture boundary, as used by GrowthBook.
The mixture is tuned so the boundary is tightest at an expected total sample size ``N*``
(``sequential_tuning_parameter``, default 5,000):

    ρ = sqrt((−2 ln a + ln(1 − 2 ln a)) / N*),   a = α (two-sided) or 2α (one-sided)

With ``N = n_A + n_B`` units so far and ``s² = N·se²`` (``se`` of the effect estimate), the half-widths are

    two-sided:  sqrt(s²) · sqrt( 2(Nρ² + 1) / (N²ρ²) · ln( sqrt(Nρ² + 1) / α ) )
    one-sided:  sqrt(s²) · sqrt( 2(Nρ² + 1) / (N²ρ²) · ln( 1 + sqrt(Nρ² + 1) / (2α) ) )

Two-sided p-values are the reciprocal of the mixture e-value (eq. 155 of the paper, capped at 1):
``p = min(1, sqrt(Nρ²+1) · exp(−ρ² S² / (2(Nρ²+1))))`` with ``S² = N·Δ̂²/se²``. One-sided p-values are
found as gbstats does: bisection for the α at which the interval's finite bound touches 0, over
``α ∈ [1e-5, 0.4999]`` with ``ρ`` held at its value for the configured α, stopping when the bound is within
1e-6 of 0 (so it can differ from the exact root by ~1e-4); values at the ends of the range are returned
as the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from keystep.stats.effects import ArmStatistic, DifferenceType, EffectEstimate, compute_effect
from keystep.stats.frequentist import Alternative

__all__ = [
    "DEFAULT_TUNING",
    "SequentialResult",
    "compute_sequential_test",
    "sequential_halfwidth",
    "sequential_rho",
    "sequential_test_from_effect",
]

DEFAULT_TUNING = 5000.0
MIN_ALPHA = 1e-5
MAX_ALPHA = 0.4999
_BISECTION_TOLERANCE = 1e-6
_BISECTION_ITERATIONS = 100


def sequential_rho(alpha: float, tuning: float = DEFAULT_TUNING, *, two_sided: bool = True) -> float:
    """Mixture parameter ``ρ`` tuned for ``N* = tuning`` total units."""
    a = alpha if two_sided else 2 * alpha
    return math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning)


def sequential_halfwidth(s2: float, n: float, alpha: float, rho: float, *, two_sided: bool = True) -> float:
    """Half-width of the confidence sequence at ``n`` total units for ``s² = n·se²``."""
    nr2 = n * rho**2
    factor = 2 * (nr2 + 1) / (n**2 * rho**2)
    if two_sided:
        return math.sqrt(s2) * math.sqrt(factor * math.log(math.sqrt(nr2 + 1) / alpha))
    return math.sqrt(s2 * factor * math.log(1 + math.sqrt(nr2 + 1) / (2 * alpha)))


@dataclass(frozen=True)
class SequentialResult:
    """An always-valid test of the effect: estimate, standard error, confidence sequence ``(lower, upper)``
    at this look, always-valid p-value, and the tuning used."""

    point_estimate: float
    se: float
    ci: tuple[float, float]
    p_value: float
    alpha: float
    alternative: Alternative
    tuning: float
    rho: float
    effect: EffectEstimate
    error: str | None = None

    @property
    def significant(self) -> bool:
        return self.error is None and self.p_value < self.alpha


def _interval(
    est: float, s2: float, n: float, alpha: float, rho: float, alternative: Alternative
) -> tuple[float, float]:
    if alternative == "two-sided":
        half = sequential_halfwidth(s2, n, alpha, rho, two_sided=True)
        return (est - half, est + half)
    half = sequential_halfwidth(s2, n, alpha, rho, two_sided=False)
    if alternative == "greater":
        return (est - half, math.inf)
    if alternative == "less":
        return (-math.inf, est + half)
    raise ValueError(f"unknown alternative {alternative!r}")


def _one_sided_p_value(est: float, s2: float, n: float, rho: float, alternative: Alternative) -> float:
    greater = alternative == "greater"

    def bound(alpha: float) -> float:
        lower, upper = _interval(est, s2, n, alpha, rho, alternative)
        return lower if greater else upper

    def excludes_zero(value: float) -> bool:
        return value > 0 if greater else value < 0

    def short_of_zero(value: float) -> bool:
        return value < 0 if greater else value > 0

    if excludes_zero(bound(MIN_ALPHA)):
        return MIN_ALPHA
    if short_of_zero(bound(MAX_ALPHA)):
        return MAX_ALPHA
    lo, hi = MIN_ALPHA, MAX_ALPHA
    alpha = 0.5 * (lo + hi)
    for _ in range(_BISECTION_ITERATIONS):
        diff = bound(alpha)
        if short_of_zero(diff):
            lo = alpha
        else:
            hi = alpha
        alpha = 0.5 * (lo + hi)
        if abs(diff) < _BISECTION_TOLERANCE:
            return alpha
    return math.nan


def sequential_test_from_effect(
    effect: EffectEstimate,
    *,
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    alternative: Alternative = "two-sided",
) -> SequentialResult:
    """Confidence sequence and always-valid p-value for an already estimated effect."""
    two_sided = alternative == "two-sided"
    rho = sequential_rho(alpha, tuning, two_sided=two_sided)
    nan = math.nan
    if effect.error is not None:
        ci = (nan, nan)
        return SequentialResult(nan, nan, ci, nan, alpha, alternative, tuning, rho, effect, effect.error)
    if not two_sided and alpha >= 0.5:
        raise ValueError("one-sided sequential tests need alpha < 0.5")
    est, se, n = effect.point_estimate, effect.se, float(effect.n_total)
    s2 = se**2 * n
    ci = _interval(est, s2, n, alpha, rho, alternative)
    if two_sided:
        nr2p1 = n * rho**2 + 1
        st2 = est**2 * n / se**2
        p = min(1.0, math.sqrt(nr2p1) * math.exp(-(rho**2) * st2 / (2 * nr2p1)))
    else:
        p = _one_sided_p_value(est, s2, n, rho, alternative)
    return SequentialResult(est, se, ci, p, alpha, alternative, tuning, rho, effect)


def compute_sequential_test(
    control: ArmStatistic,
    treatment: ArmStatistic,
    *,
    difference_type: DifferenceType = "relative",
    alpha: float = 0.05,
    tuning: float = DEFAULT_TUNING,
    alternative: Alternative = "two-sided",
) -> SequentialResult:
    """Always-valid test of ``treatment`` against ``control`` from sufficient statistics."""
    effect = compute_effect(control, treatment, difference_type=difference_type)
    return sequential_test_from_effect(effect, alpha=alpha, tuning=tuning, alternative=alternative)
