"""Power, MDE, sample size and mid-experiment power: internal consistency and simulation."""

from __future__ import annotations

import numpy as np
import pytest

from keystep.stats.bayesian import GaussianPrior
from keystep.stats.frequentist import compute_welch_test
from keystep.stats.power import (
    MetricDesign,
    compute_mde,
    compute_mid_experiment_power,
    compute_power,
    compute_power_curve,
    compute_sample_size,
    mid_experiment_power,
    periods_needed,
)
from keystep.stats.sufficient import ProportionStats


def test_power_at_the_mde_is_the_target_power() -> None:
    metric = MetricDesign.conversion(0.08, 0.1)
    for tuning in (None, 5000.0):
        mde = compute_mde(metric, 60_000, 2, power=0.8, sequential_tuning=tuning)
        assert mde is not None
        achieved = compute_power(metric.with_effect(mde), 60_000, 2, sequential_tuning=tuning)
        assert achieved == pytest.approx(0.8, abs=2e-3)  # the MDE ignores the far tail


def test_mde_needs_enough_units() -> None:
    assert compute_mde(MetricDesign(1.0, 100.0, 0.1), 100, 2) is None


def test_power_matches_a_simulation_of_the_test() -> None:
    rng = np.random.default_rng(12)
    metric = MetricDesign.conversion(0.1, 0.15)
    n_total = 8000
    n = n_total // 2
    predicted = compute_power(metric, n_total, 2)
    reps = 600
    a = rng.binomial(n, 0.1, reps)
    b = rng.binomial(n, 0.115, reps)
    rejected = [
        compute_welch_test(ProportionStats(n, int(x)), ProportionStats(n, int(y))).p_value < 0.05
        for x, y in zip(a, b, strict=True)
    ]
    assert 0.3 < predicted < 0.8
    assert np.mean(rejected) == pytest.approx(predicted, abs=0.06)


def test_sample_size_is_the_smallest_with_enough_power() -> None:
    metric = MetricDesign(20.0, 900.0, 0.05)
    n = compute_sample_size(metric, 3, power=0.8)
    assert n is not None
    assert compute_power(metric, n, 3) >= 0.8 > compute_power(metric, n - 1, 3)
    sequential = compute_sample_size(metric, 3, power=0.8, sequential_tuning=5000)
    assert sequential is not None and sequential > n


def test_power_curve_grows_and_periods_needed() -> None:
    curve = compute_power_curve(MetricDesign(0.1, 0.5, 0.3), 4500, 9, 3)
    powers = [p.power for p in curve]
    assert powers == sorted(powers)
    week = periods_needed(curve, 0.8)
    assert week is not None and curve[week - 1].power >= 0.8 > curve[week - 2].power
    assert periods_needed(curve, 0.999) is None


@pytest.mark.parametrize(
    ("tuning", "prior"), [(None, None), (5000.0, None), (None, GaussianPrior(0.0, 0.01, proper=True))]
)
def test_mid_experiment_scaling_factor_reaches_the_target(
    tuning: float | None, prior: GaussianPrior | None
) -> None:
    result = compute_mid_experiment_power(0.004, 2000, 0.05, sequential_tuning=tuning, prior=prior)
    assert result.scaling_factor is not None and result.scaling_factor > 0
    at = mid_experiment_power(
        result.scaling_factor,
        effect_variance=0.004,
        n_pairwise=2000,
        target_mde=0.05,
        sequential_tuning=tuning,
        prior=prior,
    )
    assert at == pytest.approx(0.8, abs=1e-5)
    assert result.additional_units == pytest.approx(result.scaling_factor * 2000)
    assert result.days_needed(1000.0) == pytest.approx(result.scaling_factor * 2000 / 1000.0)
    # More data than the current sample, with the same power rule, always helps.
    assert (
        mid_experiment_power(
            0.0,
            effect_variance=0.004,
            n_pairwise=2000,
            target_mde=0.05,
            sequential_tuning=tuning,
            prior=prior,
        )
        < at
    )


def test_mid_experiment_already_powered_and_hopeless() -> None:
    assert compute_mid_experiment_power(1e-5, 2000, 0.05).scaling_factor == 0.0
    hopeless = compute_mid_experiment_power(1e6, 10, 1e-6)
    assert hopeless.scaling_factor is None and hopeless.upper_bound_hit
