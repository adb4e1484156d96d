"""Thompson-sampling weights: favour the better arm, match the analytic two-arm odds, respect floors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from keystep.stats.bandit import (
    ArmPosterior,
    apply_weight_floor,
    arm_posterior,
    compute_thompson_weights,
)
from keystep.stats.sufficient import ProportionStats


def test_two_arm_weights_match_the_analytic_probability() -> None:
    a, b = ArmPosterior(0.10, 0.01), ArmPosterior(0.115, 0.012)
    r = compute_thompson_weights([a, b], draws=100_000, rng=1)
    exact = sps.norm.cdf((b.mean - a.mean) / np.hypot(a.sd, b.sd))
    assert r.weights[1] == pytest.approx(exact, abs=0.005)
    assert sum(r.weights) == pytest.approx(1.0)


def test_deterministic_for_a_seed_and_lower_is_better_flips() -> None:
    arms = [ArmPosterior(1.0, 0.5), ArmPosterior(1.2, 0.5), ArmPosterior(0.9, 0.5)]
    assert compute_thompson_weights(arms, rng=7) == compute_thompson_weights(arms, rng=7)
    low = compute_thompson_weights(arms, rng=7, lower_is_better=True)
    assert int(np.argmax(low.weights)) == 2


def test_simulated_bandit_shifts_traffic_to_the_best_arm() -> None:
    """Run a small seeded bandit: traffic is reweighted daily from the arms' posteriors; by the end the
    arm with the highest true conversion rate receives most of the traffic."""
    rng = np.random.default_rng(42)
    rates = [0.05, 0.05, 0.08]
    conversions = np.zeros(3)
    units = np.zeros(3)
    weights: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3)
    for _ in range(15):
        daily = rng.multinomial(1000, weights)
        units += daily
        conversions += rng.binomial(daily, rates)
        posteriors = [
            arm_posterior(ProportionStats(int(n), c)) for n, c in zip(units, conversions, strict=True)
        ]
        weights = compute_thompson_weights(posteriors, rng=rng, min_weight=0.01).weights
    assert weights[2] > 0.9
    assert units[2] > units[0] and units[2] > units[1]


def test_weight_floor_keeps_every_arm_exploring() -> None:
    floored = apply_weight_floor([0.0, 0.005, 0.995], 0.02)
    assert floored[0] == pytest.approx(0.02) and floored[1] == pytest.approx(0.02)
    assert sum(floored) == pytest.approx(1.0)
    cascade = apply_weight_floor([0.02, 0.03, 0.95], 0.1)  # lifting one arm pushes the next below the floor
    assert min(cascade) >= 0.1 - 1e-12 and sum(cascade) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        apply_weight_floor([0.5, 0.5], 0.6)


def test_arm_posterior_from_sufficient_statistics() -> None:
    flat = arm_posterior(ProportionStats(400, 40))
    assert flat.mean == pytest.approx(0.1)
    assert flat.sd == pytest.approx(np.sqrt(0.09 / 400))
    shrunk = arm_posterior(ProportionStats(400, 40), prior_mean=0.2, prior_variance=0.09 / 400)
    assert shrunk.mean == pytest.approx(0.15)
