"""Welch t tests against scipy, and the relative-effect delta method against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from keystep.stats.effects import BASELINE_ZERO, ZERO_VARIANCE, compute_effect
from keystep.stats.frequentist import compute_welch_test
from keystep.stats.sufficient import MeanStats, ProportionStats


def mean_stats(xs: np.ndarray) -> MeanStats:
    return MeanStats(xs.size, float(xs.sum()), float((xs**2).sum()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_absolute_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(10, 3, 40 + seed)
    b = rng.normal(11, 5, 25 + 7 * seed)
    ours = compute_welch_test(mean_stats(a), mean_stats(b), difference_type="absolute", alpha=0.1)
    ref = sps.ttest_ind_from_stats(
        b.mean(), b.std(ddof=1), b.size, a.mean(), a.std(ddof=1), a.size, equal_var=False
    )
    assert ours.point_estimate == pytest.approx(b.mean() - a.mean())
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    full = sps.ttest_ind(b, a, equal_var=False)
    assert ours.dof == pytest.approx(full.df, rel=1e-9)
    low, high = full.confidence_interval(0.9)
    assert ours.ci == pytest.approx((low, high), rel=1e-9)
    for alternative in ("greater", "less"):
        one = compute_welch_test(
            mean_stats(a), mean_stats(b), difference_type="absolute", alternative=alternative
        )
        ref_one = sps.ttest_ind(b, a, equal_var=False, alternative=alternative)
        assert one.p_value == pytest.approx(ref_one.pvalue, rel=1e-9)
        lo1, hi1 = ref_one.confidence_interval(0.95)
        assert one.ci == pytest.approx((lo1, hi1), rel=1e-9)


def test_relative_effect_and_its_delta_method_se_match_simulation() -> None:
    rng = np.random.default_rng(5)
    n, reps = 800, 1500
    a = rng.exponential(2.0, (reps, n))
    b = rng.exponential(2.3, (reps, n))
    lifts = b.mean(axis=1) / a.mean(axis=1) - 1
    effects = [compute_effect(mean_stats(a[i]), mean_stats(b[i])) for i in range(40)]
    assert effects[0].point_estimate == pytest.approx(lifts[0])
    assert np.std(lifts, ddof=1) == pytest.approx(np.mean([e.se for e in effects]), rel=0.1)


def test_relative_interval_covers_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(9)
    reps, n = 600, 300
    a = rng.binomial(1, 0.2, (reps, n))
    b = rng.binomial(1, 0.24, (reps, n))
    true_lift = 0.24 / 0.2 - 1
    covered = 0
    for i in range(reps):
        r = compute_welch_test(ProportionStats(n, int(a[i].sum())), ProportionStats(n, int(b[i].sum())))
        covered += r.ci[0] <= true_lift <= r.ci[1]
    assert 0.92 <= covered / reps <= 0.98


def test_p_value_and_interval_agree() -> None:
    a, b = MeanStats(200, 200.0, 600.0), MeanStats(210, 240.0, 700.0)
    r = compute_welch_test(a, b, alpha=0.05)
    excludes_zero = r.ci[0] > 0 or r.ci[1] < 0
    assert excludes_zero == (r.p_value < 0.05)
    assert r.significant == excludes_zero


def test_not_estimable_effects_are_reported_not_raised() -> None:
    flat = compute_welch_test(MeanStats(10, 10.0, 10.0), MeanStats(10, 12.0, 20.0))
    assert flat.error == ZERO_VARIANCE and math.isnan(flat.p_value) and not flat.significant
    zero = compute_effect(ProportionStats(10, 0), ProportionStats(10, 3))
    assert zero.error == ZERO_VARIANCE  # p(1-p) = 0 in control
    base = compute_effect(MeanStats(10, 0.0, 10.0), MeanStats(10, 3.0, 10.0))
    assert base.error == BASELINE_ZERO
