"""Thompson-sampling traffic weights for a multi-armed bandit.

Each arm's mean has a Gaussian posterior ``N(m_i, s_i²)`` (for sufficient statistics and a flat prior,
``m_i = x̄_i`` and ``s_i² = σ²_i / n_i``). Thompson sampling (Thompson 1933; Russo et al., "A tutorial on
Thompson sampling", 2018) sends traffic to each arm in proportion to the posterior probability that it is
the best arm, ``w_i = P(μ_i = max_j μ_j)``, estimated here by Monte Carlo: draw every arm's mean
``draws`` times and count how often each is the largest (or smallest, when lower is better).

A floor ``min_weight`` keeps every arm exploring (GrowthBook keeps at least 1% per arm): arms below the floor
get exactly the floor and the remaining mass is shared among the others in proportion to their
probabilities, repeating until no arm is below the floor. The random generator is a parameter (a seed or a
:class:`numpy.random.Generator`) so results are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keystep.stats.sufficient import ArmMoments

__all__ = [
    "ArmPosterior",
    "ThompsonWeights",
    "apply_weight_floor",
    "arm_posterior",
    "compute_thompson_weights",
]


@dataclass(frozen=True)
class ArmPosterior:
    """Gaussian posterior of one arm's mean."""

    mean: float
    sd: float

    def __post_init__(self) -> None:
        if not self.sd >= 0 or not math.isfinite(self.mean):
            raise ValueError("posterior needs a finite mean and a non-negative sd")


def arm_posterior(
    stats: ArmMoments, *, prior_mean: float = 0.0, prior_variance: float | None = None
) -> ArmPosterior:
    """Posterior of an arm's mean from its sufficient statistics: ``N(x̄, σ²/n)`` under a flat prior, or the
    conjugate update with a ``N(prior_mean, prior_variance)`` prior."""
    if stats.n <= 0:
        if prior_variance is None:
            raise ValueError("an arm without units needs a proper prior")
        return ArmPosterior(prior_mean, math.sqrt(prior_variance))
    data_var = stats.variance / stats.n
    if prior_variance is None:
        return ArmPosterior(stats.mean, math.sqrt(data_var))
    if data_var <= 0:
        return ArmPosterior(stats.mean, 0.0)
    precision = 1 / data_var + 1 / prior_variance
    mean = (stats.mean / data_var + prior_mean / prior_variance) / precision
    return ArmPosterior(mean, math.sqrt(1 / precision))


def apply_weight_floor(probabilities: Sequence[float], min_weight: float) -> tuple[float, ...]:
    """Raise every weight to at least ``min_weight`` and rescale the others so the total stays 1."""
    k = len(probabilities)
    if min_weight < 0 or min_weight * k > 1:
        raise ValueError("min_weight must be in [0, 1/number of arms]")
    total = sum(probabilities)
    weights = [p / total for p in probabilities] if total > 0 else [1 / k] * k
    floored: set[int] = set()
    while True:
        free = [i for i in range(k) if i not in floored]
        mass = 1 - min_weight * len(floored)
        free_total = sum(weights[i] for i in free)
        scaled = {i: (weights[i] / free_total * mass if free_total > 0 else mass / len(free)) for i in free}
        low = {i for i, w in scaled.items() if w < min_weight}
        if not low:
            return tuple(min_weight if i in floored else scaled[i] for i in range(k))
        floored |= low


@dataclass(frozen=True)
class ThompsonWeights:
    """Traffic weights (summing to 1) and the raw probabilities that each arm is best."""

    weights: tuple[float, ...]
    best_arm_probabilities: tuple[float, ...]
    draws: int


def compute_thompson_weights(
    posteriors: Sequence[ArmPosterior],
    *,
    draws: int = 10_000,
    rng: np.random.Generator | int | None = None,
    min_weight: float = 0.0,
    lower_is_better: bool = False,
) -> ThompsonWeights:
    """Thompson-sampling weights: the Monte Carlo probability that each arm is best, then the floor."""
    if len(posteriors) < 2:
        raise ValueError("a bandit needs at least two arms")
    if draws < 1:
        raise ValueError("draws must be positive")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    means = np.array([p.mean for p in posteriors])
    sds = np.array([p.sd for p in posteriors])
    samples = generator.normal(means, sds, size=(draws, len(posteriors)))
    best = samples.argmin(axis=1) if lower_is_better else samples.argmax(axis=1)
    counts = np.bincount(best, minlength=len(posteriors))
    probabilities = tuple(float(c) / draws for c in counts)
    return ThompsonWeights(apply_weight_floor(probabilities, min_weight), probabilities, draws)
