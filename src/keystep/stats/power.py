"""Planning: power, minimum detectable effect (MDE), sample size and duration; mid-experiment power.

**Before the experiment** (GrowthBook's power calculator). A metric with mean ``μ`` and per-unit variance
``σ²`` (``p(1−p)`` for a conversion rate) and a hoped-for relative effect ``δ``; ``n`` units split evenly
over ``k`` variations gives ``n_v = n/k`` per arm and the relative-effect standard error (delta method,
treatment mean ``μ(1+δ)``, same variance)

    se² = σ²/(μ² n_v) + σ² μ²(1+δ)² / (μ⁴ n_v).

Two-sided power is ``1 − Φ(z* − δ/se) + Φ(−z* − δ/se)`` with ``z* = z_{1−α/2}``. For a sequential design
the standard error is inflated so that ``z*·se`` equals the confidence-sequence half-width at the pairwise
sample size ``N = 2 n_v`` (:mod:`keystep.stats.sequential`): ``se_seq² = se² · N·D(N)/z*²`` with
``D(N) = 2(Nρ²+1)/(N²ρ²) · ln(sqrt(Nρ²+1)/α)``.

The MDE at power ``1−β`` is the relative effect ``δ`` solving ``δ = (z_{1−α/2} + z_{1−β}) · se(δ)``; squaring
gives a quadratic in the treatment mean ``m' = μ(1+δ)``:
``(1 − z²σ²/(n_v μ²)) m'² − 2μ m' + μ² − z²σ²/n_v = 0`` (``σ²`` sequentially inflated for sequential
designs), with no solution when ``n_v ≤ σ² z²/μ²``.

**During the experiment** (gbstats ``MidExperimentPower``). With the current effect variance ``σ̂²_Δ`` over
``N`` pairwise units, adding ``s·N`` more units gives variance ``σ̂²_Δ/(1+s)``. Power to detect ``|MDE|``
uses a Bonferroni critical value ``z_{1−α/(2T)}`` for ``T = (variations − 1) × goal metrics`` tests and a
per-metric target ``power^(1/goal metrics)``; sequential designs use the confidence-sequence half-width at
``N(1+s)``; a proper prior uses the posterior-interval rule (reject when the credible interval excludes 0).
The smallest ``s`` reaching the target is found by doubling and then bisection to within 1e-5 of the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from keystep.stats.bayesian import GaussianPrior
from keystep.stats.effects import delta_method_variance
from keystep.stats.sequential import sequential_halfwidth, sequential_rho

__all__ = [
    "MetricDesign",
    "MidExperimentPower",
    "PowerPoint",
    "compute_mde",
    "compute_mid_experiment_power",
    "compute_power",
    "compute_power_curve",
    "compute_sample_size",
    "mid_experiment_power",
    "periods_needed",
]


@dataclass(frozen=True)
class MetricDesign:
    """Planning inputs for one metric: baseline mean, per-unit variance, relative effect to detect."""

    mean: float
    variance: float
    effect_size: float

    @classmethod
    def conversion(cls, rate: float, effect_size: float) -> MetricDesign:
        """A conversion-rate metric (variance ``p(1−p)``)."""
        if not 0 < rate < 1:
            raise ValueError("conversion rate must be in (0, 1)")
        return cls(rate, rate * (1 - rate), effect_size)

    def with_effect(self, effect_size: float) -> MetricDesign:
        return MetricDesign(self.mean, self.variance, effect_size)


# scalar normal functions from the standard library: scipy's `norm` costs ~10 µs per call in Python, and
# the plans call them thousands of times per page; erfc keeps the tails exact
_STANDARD = NormalDist()


def _z(p: float) -> float:
    return _STANDARD.inv_cdf(p)


def _sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def _sequential_inflation(n_pairwise: float, alpha: float, tuning: float) -> float:
    """``N·D(N)/z*²``: how much a confidence sequence widens a fixed-horizon interval at ``N`` units."""
    rho = sequential_rho(alpha, tuning)
    halfwidth_unit = sequential_halfwidth(n_pairwise, n_pairwise, alpha, rho)  # s² = N → sqrt(N·D(N))
    return halfwidth_unit**2 / _z(1 - alpha / 2) ** 2


def _standard_error(
    metric: MetricDesign, n_total: float, n_variations: int, alpha: float, tuning: float | None
) -> float:
    n_v = n_total / n_variations
    var = delta_method_variance(
        metric.variance,
        metric.mean,
        n_v,
        metric.variance,
        metric.mean * (1 + metric.effect_size),
        n_v,
        relative=True,
    )
    if tuning:
        var *= _sequential_inflation(2 * n_v, alpha, tuning)
    return math.sqrt(var)


def compute_power(
    metric: MetricDesign,
    n_total: float,
    n_variations: int = 2,
    *,
    alpha: float = 0.05,
    two_tailed: bool = True,
    sequential_tuning: float | None = None,
) -> float:
    """Power to detect ``metric.effect_size`` with ``n_total`` units over ``n_variations`` arms."""
    z_star = _z(1 - alpha / 2) if two_tailed else _z(1 - alpha)
    se = _standard_error(metric, n_total, n_variations, alpha, sequential_tuning)
    standardized = metric.effect_size / se
    power = _sf(z_star - standardized)
    if two_tailed:
        power += _cdf(-z_star - standardized)
    return power


def compute_mde(
    metric: MetricDesign,
    n_total: float,
    n_variations: int = 2,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    sequential_tuning: float | None = None,
) -> float | None:
    """Smallest relative effect detectable with ``power`` (two-sided); ``None`` if too few units."""
    if not alpha < power < 1:
        raise ValueError("power must be in (alpha, 1)")
    n_v = n_total / n_variations
    z = _z(1 - alpha / 2) - _z(1 - power)
    m = metric.mean
    v = metric.variance
    if sequential_tuning:
        v *= _sequential_inflation(2 * n_v, alpha, sequential_tuning)
    if n_v <= v * z**2 / m**2:
        return None
    sigma2 = v / n_v
    a = 1 - z**2 * sigma2 / m**2
    b = -2 * m
    c = m**2 - z**2 * sigma2
    treatment_mean = (-b + math.sqrt(b**2 - 4 * a * c)) / (2 * a)
    return (treatment_mean - m) / m


def compute_sample_size(
    metric: MetricDesign,
    n_variations: int = 2,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    sequential_tuning: float | None = None,
    max_units: float = 1e12,
) -> int | None:
    """Smallest total number of units (all arms) with at least ``power``; ``None`` beyond ``max_units``."""

    def enough(n: float) -> bool:
        achieved = compute_power(metric, n, n_variations, alpha=alpha, sequential_tuning=sequential_tuning)
        return achieved >= power

    lo, hi = float(n_variations * 2), float(n_variations * 2)
    while not enough(hi):
        lo, hi = hi, hi * 2
        if hi > max_units:
            return None
    while hi - lo > 1:
        mid = math.floor((lo + hi) / 2)
        if enough(mid):
            hi = mid
        else:
            lo = mid
    return int(hi)


@dataclass(frozen=True)
class PowerPoint:
    """Power and MDE after ``period`` periods (weeks or days) with ``n_total`` units."""

    period: int
    n_total: float
    power: float
    mde: float | None


def compute_power_curve(
    metric: MetricDesign,
    units_per_period: float,
    n_periods: int,
    n_variations: int = 2,
    *,
    alpha: float = 0.05,
    target_power: float = 0.8,
    sequential_tuning: float | None = None,
) -> tuple[PowerPoint, ...]:
    """Power and MDE (at ``target_power``) after each of ``n_periods`` periods of ``units_per_period``."""
    points = []
    for period in range(1, n_periods + 1):
        n = units_per_period * period
        power = compute_power(metric, n, n_variations, alpha=alpha, sequential_tuning=sequential_tuning)
        mde = compute_mde(
            metric, n, n_variations, power=target_power, alpha=alpha, sequential_tuning=sequential_tuning
        )
        points.append(PowerPoint(period, n, power, mde))
    return tuple(points)


def periods_needed(curve: tuple[PowerPoint, ...], target_power: float = 0.8) -> int | None:
    """The first period whose power reaches ``target_power`` (``None`` if none does).

    The duration of an experiment with several goal metrics is the maximum over its metrics.
    """
    return next((p.period for p in curve if p.power >= target_power), None)


# --- mid-experiment --------------------------------------------------------------------------------


def mid_experiment_power(
    scaling_factor: float,
    *,
    effect_variance: float,
    n_pairwise: int,
    target_mde: float,
    alpha: float = 0.05,
    num_tests: int = 1,
    prior: GaussianPrior | None = None,
    sequential_tuning: float | None = None,
) -> float:
    """Power to detect ``|target_mde|`` after adding ``scaling_factor × n_pairwise`` units."""
    mde = abs(target_mde)
    var = effect_variance / (1 + scaling_factor)
    sd = math.sqrt(var)
    multiplier = _z(1 - alpha / (2 * num_tests))
    if prior is not None and prior.proper:
        precision = 1 / prior.variance + 1 / var
        reach = var * math.sqrt(precision) * multiplier
        shift = var * prior.mean / prior.variance
        return _sf((reach - shift - mde) / sd) + _cdf(-(reach + shift + mde) / sd)
    if sequential_tuning:
        a = alpha / num_tests
        rho = sequential_rho(a, sequential_tuning)
        halfwidth = sequential_halfwidth(
            n_pairwise * effect_variance, n_pairwise * (1 + scaling_factor), a, rho
        )
    else:
        halfwidth = multiplier * sd
    return _sf((halfwidth - mde) / sd) + _cdf(-(halfwidth + mde) / sd)


@dataclass(frozen=True)
class MidExperimentPower:
    """How many more units reach the target power: ``scaling_factor × n_pairwise`` more
    (``additional_units``); ``scaling_factor`` 0 means already powered, ``None`` that even 2²⁷ times the
    current sample is not enough (``upper_bound_hit``)."""

    scaling_factor: float | None
    additional_units: float | None
    power: float | None
    target_power: float
    upper_bound_hit: bool = False

    def days_needed(self, units_per_day: float) -> float | None:
        """Days of further traffic at ``units_per_day`` (pairwise units) to add ``additional_units``."""
        if self.additional_units is None or units_per_day <= 0:
            return None
        return self.additional_units / units_per_day


_MAX_DOUBLINGS = 27
_MAX_BISECTIONS = 100
_POWER_TOLERANCE = 1e-5


def compute_mid_experiment_power(
    effect_variance: float,
    n_pairwise: int,
    target_mde: float,
    *,
    alpha: float = 0.05,
    target_power: float = 0.8,
    num_goal_metrics: int = 1,
    num_variations: int = 2,
    prior: GaussianPrior | None = None,
    sequential_tuning: float | None = None,
) -> MidExperimentPower:
    """Additional sample needed so that a (metric, variation) reaches ``target_power`` for ``target_mde``.

    ``effect_variance`` is the current sampling variance of the effect estimate (``EffectEstimate.variance``)
    and ``n_pairwise`` the units in control and this variation; ``prior`` (on the effect's scale) switches
    to the Bayesian rule when proper.
    """
    if effect_variance <= 0 or n_pairwise <= 0:
        raise ValueError("effect_variance and n_pairwise must be positive")
    num_tests = (num_variations - 1) * num_goal_metrics
    goal = target_power ** (1 / num_goal_metrics)

    def power(s: float) -> float:
        return mid_experiment_power(
            s,
            effect_variance=effect_variance,
            n_pairwise=n_pairwise,
            target_mde=target_mde,
            alpha=alpha,
            num_tests=num_tests,
            prior=prior,
            sequential_tuning=sequential_tuning,
        )

    current = power(0.0)
    if current > goal:
        return MidExperimentPower(0.0, 0.0, current, target_power)
    scaling = 1.0
    current = power(scaling)
    for _ in range(_MAX_DOUBLINGS):
        if current >= goal:
            break
        scaling *= 2
        current = power(scaling)
    if current < goal:
        return MidExperimentPower(None, None, None, target_power, upper_bound_hit=True)
    lower, upper = 0.0, scaling
    diff = current - goal
    for _ in range(_MAX_BISECTIONS):
        if diff > 0:
            upper = scaling
        else:
            lower = scaling
        scaling = 0.5 * (lower + upper)
        current = power(scaling)
        diff = current - goal
        if abs(diff) < _POWER_TOLERANCE:
            break
    return MidExperimentPower(scaling, scaling * n_pairwise, current, target_power)
