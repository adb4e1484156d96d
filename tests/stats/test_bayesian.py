"""Bayesian effect analysis: risk by numerical integration, chance to win by Monte Carlo, conjugacy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from keystep.stats.bayesian import (
    GaussianPosterior,
    GaussianPrior,
    bayesian_test_from_effect,
    compute_bayesian_test,
    expected_loss,
)
from keystep.stats.effects import compute_effect
from keystep.stats.sufficient import MeanStats, ProportionStats


@pytest.mark.parametrize(("mean", "sd"), [(0.1, 0.05), (-0.02, 0.3), (0.0, 1.0), (3.0, 0.2)])
def test_expected_loss_matches_numerical_integration(mean: float, sd: float) -> None:
    density = sps.norm(mean, sd).pdf
    lo, hi = mean - 12 * sd, mean + 12 * sd
    keep_control = integrate.quad(lambda d: max(d, 0.0) * density(d), lo, hi, points=[0.0], limit=200)[0]
    ship = integrate.quad(lambda d: max(-d, 0.0) * density(d), lo, hi, points=[0.0], limit=200)[0]
    assert expected_loss(mean, sd) == pytest.approx((keep_control, ship), abs=1e-9)


def test_expected_loss_far_tails_and_degenerate_posterior() -> None:
    assert expected_loss(5.0, 0.01) == (5.0, 0.0)
    assert expected_loss(-5.0, 0.01) == (0.0, 5.0)
    assert expected_loss(0.3, 0.0) == (0.3, 0.0)


def test_chance_to_win_and_interval_agree_with_posterior_draws() -> None:
    control, treatment = ProportionStats(1000, 100), ProportionStats(1000, 118)
    r = compute_bayesian_test(control, treatment)
    draws = np.random.default_rng(3).normal(r.point_estimate, r.se, 200_000)
    assert r.chance_to_win == pytest.approx((draws > 0).mean(), abs=0.005)
    assert r.ci == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), abs=0.005)
    assert r.risk == pytest.approx((np.maximum(draws, 0).mean(), np.maximum(-draws, 0).mean()), abs=0.002)


def test_proper_prior_is_the_conjugate_normal_update() -> None:
    effect = compute_effect(MeanStats(50, 500.0, 5200.0), MeanStats(50, 540.0, 6000.0))
    prior = GaussianPrior(0.02, 0.01, proper=True)
    r = bayesian_test_from_effect(effect, prior=prior)
    # Posterior ∝ N(Δ̂, v)·N(m0, v0): evaluate the product on a grid and normalise.
    grid = np.linspace(-1, 1, 200_001)
    log_post = sps.norm.logpdf(effect.point_estimate, grid, effect.se) + sps.norm.logpdf(grid, 0.02, 0.1)
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    mean = float((grid * weights).sum())
    sd = math.sqrt(float(((grid - mean) ** 2 * weights).sum()))
    assert r.point_estimate == pytest.approx(mean, abs=1e-6)
    assert r.se == pytest.approx(sd, abs=1e-6)


def test_vague_proper_prior_approaches_the_flat_prior() -> None:
    effect = compute_effect(MeanStats(50, 500.0, 5200.0), MeanStats(50, 540.0, 6000.0))
    flat = bayesian_test_from_effect(effect)
    vague = bayesian_test_from_effect(effect, prior=GaussianPrior(0.5, 1e9, proper=True))
    assert vague.point_estimate == pytest.approx(flat.point_estimate, rel=1e-6)
    assert flat.point_estimate == pytest.approx(effect.point_estimate)
    assert flat.ci == pytest.approx(
        (
            effect.point_estimate - 1.959963984540054 * effect.se,
            effect.point_estimate + 1.959963984540054 * effect.se,
        )
    )


def test_absolute_effects_scale_the_relative_prior_by_the_control_mean() -> None:
    control, treatment = MeanStats(40, 400.0, 4100.0), MeanStats(40, 420.0, 4500.0)
    prior = GaussianPrior(0.1, 0.04, proper=True)
    absolute = compute_bayesian_test(control, treatment, difference_type="absolute", prior=prior)
    effect = compute_effect(control, treatment, difference_type="absolute")
    v0, m0 = 0.04 * 10.0**2, 0.1 * 10.0
    precision = 1 / effect.variance + 1 / v0
    assert absolute.point_estimate == pytest.approx(
        (effect.point_estimate / effect.variance + m0 / v0) / precision
    )


def test_inverse_metrics_flip_chance_to_win_and_risk() -> None:
    control, treatment = MeanStats(100, 1000.0, 10400.0), MeanStats(100, 1040.0, 11200.0)
    up = compute_bayesian_test(control, treatment)
    down = compute_bayesian_test(control, treatment, inverse=True)
    assert down.chance_to_win == pytest.approx(1 - up.chance_to_win)
    assert down.risk == (up.risk[1], up.risk[0])


def test_posterior_quantiles() -> None:
    post = GaussianPosterior(1.0, 4.0)
    assert post.quantile(0.5) == pytest.approx(1.0)
    assert post.quantile(0.975) == pytest.approx(1.0 + 2 * 1.959963984540054)
    assert post.cdf(1.0) == pytest.approx(0.5)
