"""Bayesian analysis of the effect with a Gaussian likelihood and a Gaussian (or flat) prior.

The effect estimate ``Δ̂`` with sampling variance ``v`` (:mod:`keystep.stats.effects`) is the likelihood
``Δ̂ ~ N(Δ, v)``. With a flat (improper) prior the posterior is ``N(Δ̂, v)``; with a proper prior
``N(m₀, v₀)`` it is the precision-weighted conjugate update

    1/v₁ = 1/v + 1/v₀,    m₁ = v₁ (Δ̂/v + m₀/v₀).

Priors are stated on the relative scale (lift), as GrowthBook does; for absolute effects they are scaled
by the control mean ``μ_A``: mean ``m₀·|μ_A|``, variance ``v₀·μ_A²``.

From the posterior ``N(m₁, s₁²)``: the credible interval uses normal quantiles, chance to win is
``P(Δ > 0) = Φ(m₁/s₁)`` and the risk is the expected loss of each decision,
``[E max(Δ, 0), E max(−Δ, 0)]`` = [loss if control is kept, loss if treatment is shipped], with

    E max(Δ, 0) = m₁ Φ(m₁/s₁) + s₁ φ(m₁/s₁),    E max(−Δ, 0) = −m₁ Φ(−m₁/s₁) + s₁ φ(m₁/s₁)

(the means of truncated normals; for ``|m₁/s₁| > 37`` the tails vanish in double precision and the risk is
``[max(m₁, 0), max(−m₁, 0)]``). Reference: gbstats ``bayesian/tests.py`` (``EffectBayesianABTest``,
``get_risk``); Stucchio, "Bayesian A/B testing at VWO" (2015) for the expected-loss criterion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from keystep.stats.effects import ArmStatistic, DifferenceType, EffectEstimate, compute_effect

__all__ = [
    "BayesianResult",
    "GaussianPosterior",
    "GaussianPrior",
    "bayesian_test_from_effect",
    "compute_bayesian_test",
    "expected_loss",
]

_RISK_Z_LIMIT = 37.0


@dataclass(frozen=True)
class GaussianPrior:
    """Prior on the relative effect (lift); ``proper=False`` is the flat prior and ignores the numbers."""

    mean: float = 0.0
    variance: float = 0.09
    proper: bool = False

    def __post_init__(self) -> None:
        if self.proper and not self.variance > 0:
            raise ValueError("a proper prior needs a positive variance")


def expected_loss(mean: float, sd: float) -> tuple[float, float]:
    """``(E max(Δ, 0), E max(−Δ, 0))`` for ``Δ ~ N(mean, sd²)``: the loss of keeping control and the loss
    of shipping treatment."""
    if sd <= 0:
        return (max(mean, 0.0), max(-mean, 0.0))
    z = mean / sd
    if abs(z) > _RISK_Z_LIMIT:
        return (max(mean, 0.0), max(-mean, 0.0))
    density = float(sps.norm.pdf(z))
    keep_control = mean * float(sps.norm.cdf(z)) + sd * density
    ship_treatment = -mean * float(sps.norm.cdf(-z)) + sd * density
    return (keep_control, ship_treatment)


@dataclass(frozen=True)
class GaussianPosterior:
    """A normal posterior of the effect."""

    mean: float
    variance: float

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the posterior."""
        return float(sps.norm.ppf(q, self.mean, self.sd))

    def cdf(self, x: float) -> float:
        return float(sps.norm.cdf(x, self.mean, self.sd))

    def credible_interval(self, alpha: float = 0.05) -> tuple[float, float]:
        """Equal-tailed ``1 − alpha`` credible interval."""
        return (self.quantile(alpha / 2), self.quantile(1 - alpha / 2))

    @property
    def prob_positive(self) -> float:
        """``P(Δ > 0)``."""
        return float(sps.norm.sf(0.0, self.mean, self.sd))

    @property
    def risk(self) -> tuple[float, float]:
        return expected_loss(self.mean, self.sd)


def posterior(estimate: float, variance: float, prior: GaussianPrior) -> GaussianPosterior:
    """Conjugate update of ``N(estimate, variance)`` with ``prior`` (already on the effect's scale)."""
    if not prior.proper:
        return GaussianPosterior(estimate, variance)
    precision = 1 / variance + 1 / prior.variance
    mean = (estimate / variance + prior.mean / prior.variance) / precision
    return GaussianPosterior(mean, 1 / precision)


@dataclass(frozen=True)
class BayesianResult:
    """Posterior summary of the effect: posterior mean and sd, credible interval, chance to win and risk
    ``(loss if control is kept, loss if treatment is shipped)``; with ``inverse`` (lower is better) chance to
    win is ``P(Δ < 0)`` and the risk pair is mirrored."""

    point_estimate: float
    se: float
    ci: tuple[float, float]
    chance_to_win: float
    risk: tuple[float, float]
    alpha: float
    posterior: GaussianPosterior | None
    effect: EffectEstimate
    error: str | None = None


def bayesian_test_from_effect(
    effect: EffectEstimate,
    *,
    prior: GaussianPrior | None = None,
    alpha: float = 0.05,
    inverse: bool = False,
) -> BayesianResult:
    """Bayesian summary of an already estimated effect; the prior is on the relative scale."""
    if effect.error is not None:
        nan = math.nan
        return BayesianResult(nan, nan, (nan, nan), nan, (nan, nan), alpha, None, effect, effect.error)
    prior = prior or GaussianPrior()
    if prior.proper and not effect.relative:
        base = effect.control.unadjusted_mean
        prior = GaussianPrior(prior.mean * abs(base), prior.variance * base**2, proper=True)
    post = posterior(effect.point_estimate, effect.variance, prior)
    win = post.prob_positive
    risk = post.risk
    if inverse:
        win = 1 - win
        risk = (risk[1], risk[0])
    return BayesianResult(post.mean, post.sd, post.credible_interval(alpha), win, risk, alpha, post, effect)


def compute_bayesian_test(
    control: ArmStatistic,
    treatment: ArmStatistic,
    *,
    difference_type: DifferenceType = "relative",
    prior: GaussianPrior | None = None,
    alpha: float = 0.05,
    inverse: bool = False,
) -> BayesianResult:
    """Bayesian analysis of ``treatment`` against ``control`` from sufficient statistics."""
    effect = compute_effect(control, treatment, difference_type=difference_type)
    return bayesian_test_from_effect(effect, prior=prior, alpha=alpha, inverse=inverse)
