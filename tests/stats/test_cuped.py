"""CUPED against regressions and variances computed directly on simulated unit-level data."""

from __future__ import annotations

import numpy as np
import pytest

from keystep.stats.cuped import (
    CovariateRatioStats,
    CovariateStats,
    adjust,
    adjust_ratio,
    pooled_ratio_theta,
    pooled_theta,
)
from keystep.stats.effects import compute_effect
from keystep.stats.frequentist import compute_welch_test
from keystep.stats.sufficient import MeanStats


def ms(xs: np.ndarray) -> MeanStats:
    return MeanStats(xs.size, float(xs.sum()), float((xs**2).sum()))


def covariate(post: np.ndarray, pre: np.ndarray) -> CovariateStats:
    return CovariateStats(ms(post), ms(pre), float((post * pre).sum()))


def covariate_ratio(mp: np.ndarray, dp: np.ndarray, mq: np.ndarray, dq: np.ndarray) -> CovariateRatioStats:
    return CovariateRatioStats(
        ms(mp),
        ms(dp),
        ms(mq),
        ms(dq),
        m_post_m_pre_sum_of_products=float((mp * mq).sum()),
        d_post_d_pre_sum_of_products=float((dp * dq).sum()),
        m_pre_d_pre_sum_of_products=float((mq * dq).sum()),
        m_post_d_post_sum_of_products=float((mp * dp).sum()),
        m_post_d_pre_sum_of_products=float((mp * dq).sum()),
        m_pre_d_post_sum_of_products=float((mq * dp).sum()),
    )


def simulate(rng: np.random.Generator, n: int, lift: float) -> tuple[np.ndarray, np.ndarray]:
    pre = rng.gamma(2.0, 5.0, n)
    post = 0.8 * pre * (1 + lift) + rng.normal(0, 3, n)
    return post, pre


def test_theta_is_the_pooled_regression_slope_and_adjusted_variance_is_the_residual_variance() -> None:
    rng = np.random.default_rng(1)
    ya, xa = simulate(rng, 300, 0.0)
    yb, xb = simulate(rng, 350, 0.1)
    a, b = covariate(ya, xa), covariate(yb, xb)
    theta = pooled_theta(a, b)
    slope = np.polyfit(np.concatenate([xa, xb]), np.concatenate([ya, yb]), 1)[0]
    assert theta == pytest.approx(slope, rel=1e-9)
    adjusted = adjust(a, theta)
    assert adjusted.mean == pytest.approx(np.mean(ya - theta * xa))
    assert adjusted.variance == pytest.approx(np.var(ya - theta * xa, ddof=1), rel=1e-9)
    assert adjusted.unadjusted_mean == pytest.approx(ya.mean())


def test_cuped_shrinks_the_interval_and_estimates_the_same_effect() -> None:
    rng = np.random.default_rng(2)
    ya, xa = simulate(rng, 2000, 0.0)
    yb, xb = simulate(rng, 2000, 0.05)
    raw = compute_welch_test(ms(ya), ms(yb), difference_type="absolute")
    cuped = compute_welch_test(covariate(ya, xa), covariate(yb, xb), difference_type="absolute")
    assert cuped.se < 0.5 * raw.se
    assert abs(cuped.point_estimate - raw.point_estimate) < 2 * raw.se


def test_relative_cuped_variance_predicts_the_sampling_variance() -> None:
    rng = np.random.default_rng(3)
    lifts, predicted = [], []
    for _ in range(400):
        ya, xa = simulate(rng, 200, 0.0)
        yb, xb = simulate(rng, 200, 0.1)
        effect = compute_effect(covariate(ya, xa), covariate(yb, xb))
        lifts.append(effect.point_estimate)
        predicted.append(effect.variance)
    assert np.var(lifts, ddof=1) == pytest.approx(np.mean(predicted), rel=0.2)


def simulate_ratio(
    rng: np.random.Generator, n: int, lift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    activity = rng.gamma(3.0, 1.0, n)
    d_pre = rng.poisson(activity) + 1.0
    d_post = rng.poisson(activity) + 1.0
    m_pre = d_pre * activity + rng.normal(0, 1, n)
    m_post = d_post * activity * (1 + lift) + rng.normal(0, 1, n)
    return m_post, d_post, m_pre, d_pre


def test_ratio_covariance_matrix_is_the_sample_covariance() -> None:
    cols = simulate_ratio(np.random.default_rng(4), 250, 0.0)
    stats = covariate_ratio(*cols)
    assert stats.covariance_matrix == pytest.approx(np.cov(np.vstack(cols), ddof=1), rel=1e-9)


def test_ratio_adjustment_reduces_to_the_mean_adjustment_when_denominators_are_one() -> None:
    rng = np.random.default_rng(5)
    post, pre = simulate(rng, 300, 0.0)
    ones = np.ones_like(post)
    ratio = covariate_ratio(post, ones, pre, ones)
    mean = covariate(post, pre)
    for theta in (0.3, 0.8):
        r, m = adjust_ratio(ratio, theta), adjust(mean, theta)
        assert r.mean == pytest.approx(m.mean)
        assert r.variance == pytest.approx(m.variance, rel=1e-9)


def test_ratio_theta_minimises_the_pooled_adjusted_variance() -> None:
    rng = np.random.default_rng(6)
    a = covariate_ratio(*simulate_ratio(rng, 400, 0.0))
    b = covariate_ratio(*simulate_ratio(rng, 400, 0.1))
    theta = pooled_ratio_theta(a, b)
    grid = np.linspace(theta - 0.5, theta + 0.5, 101)
    pooled = [adjust_ratio(a, t).variance + adjust_ratio(b, t).variance for t in grid]
    assert grid[int(np.argmin(pooled))] == pytest.approx(theta, abs=0.011)


def test_relative_cuped_ratio_variance_predicts_the_sampling_variance() -> None:
    rng = np.random.default_rng(7)
    lifts, predicted = [], []
    for _ in range(300):
        a = covariate_ratio(*simulate_ratio(rng, 300, 0.0))
        b = covariate_ratio(*simulate_ratio(rng, 300, 0.1))
        effect = compute_effect(a, b)
        lifts.append(effect.point_estimate)
        predicted.append(effect.variance)
    assert np.var(lifts, ddof=1) == pytest.approx(np.mean(predicted), rel=0.2)


def test_no_covariate_variance_falls_back_to_the_raw_metric() -> None:
    rng = np.random.default_rng(8)
    ya, yb = rng.normal(10, 2, 100), rng.normal(11, 2, 100)
    const = np.full(100, 3.0)
    effect = compute_effect(covariate(ya, const), covariate(yb, const))
    raw = compute_effect(ms(ya), ms(yb))
    assert effect.theta == 0
    assert effect.point_estimate == pytest.approx(raw.point_estimate)
    assert effect.variance == pytest.approx(raw.variance)


def test_mixing_cuped_and_plain_arms_is_refused() -> None:
    post, pre = simulate(np.random.default_rng(9), 20, 0.0)
    with pytest.raises(TypeError):
        compute_effect(covariate(post, pre), ms(post))


def test_merged_covariate_statistics_equal_those_of_concatenated_data() -> None:
    rng = np.random.default_rng(10)
    (y1, x1), (y2, x2) = simulate(rng, 30, 0.0), simulate(rng, 45, 0.0)
    merged_mean = covariate(y1, x1) + covariate(y2, x2)
    whole_mean = covariate(np.concatenate([y1, y2]), np.concatenate([x1, x2]))
    assert merged_mean.n == whole_mean.n
    assert merged_mean.covariance == pytest.approx(whole_mean.covariance)
    assert merged_mean.post.variance == pytest.approx(whole_mean.post.variance)
    cols1, cols2 = simulate_ratio(rng, 30, 0.0), simulate_ratio(rng, 45, 0.0)
    merged = covariate_ratio(*cols1) + covariate_ratio(*cols2)
    whole = covariate_ratio(*(np.concatenate([c1, c2]) for c1, c2 in zip(cols1, cols2, strict=True)))
    assert merged.n == whole.n
    assert merged.covariance_matrix == pytest.approx(whole.covariance_matrix)
    assert merged.mean == pytest.approx(whole.mean)
