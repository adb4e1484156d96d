"""Sufficient statistics: moments agree with numpy on the raw data, and merging equals concatenating."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keystep.stats.sufficient import MeanStats, ProportionStats, RatioStats, covariance, merge

values = st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=2, max_size=40)


def mean_stats(xs: list[float] | np.ndarray) -> MeanStats:
    arr = np.asarray(xs, dtype=float)
    return MeanStats(arr.size, float(arr.sum()), float((arr**2).sum()))


def ratio_stats(m: np.ndarray, d: np.ndarray) -> RatioStats:
    return RatioStats(mean_stats(m), mean_stats(d), float((m * d).sum()))


@settings(max_examples=60, deadline=None)
@given(values, values)
def test_merged_mean_stats_equal_those_of_concatenated_data(a: list[float], b: list[float]) -> None:
    merged = mean_stats(a) + mean_stats(b)
    whole = np.array(a + b)
    assert merged.n == whole.size
    assert merged.mean == pytest.approx(whole.mean(), abs=1e-9)
    assert merged.variance == pytest.approx(np.var(whole, ddof=1), rel=1e-6, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=50), st.lists(st.booleans(), min_size=1, max_size=50))
def test_merged_proportions_equal_those_of_concatenated_data(a: list[bool], b: list[bool]) -> None:
    merged = merge(ProportionStats(len(a), sum(a)), ProportionStats(len(b), sum(b)))
    whole = np.array(a + b, dtype=float)
    assert merged == ProportionStats(whole.size, whole.sum())
    assert merged.variance == pytest.approx(np.var(whole, ddof=0))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 30), st.integers(3, 30))
def test_merged_ratio_stats_equal_those_of_concatenated_data(seed: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    m1, m2 = rng.gamma(2, 3, n1), rng.gamma(2, 3, n2)
    d1, d2 = rng.integers(1, 5, n1).astype(float), rng.integers(1, 5, n2).astype(float)
    merged = ratio_stats(m1, d1) + ratio_stats(m2, d2)
    whole = ratio_stats(np.concatenate([m1, m2]), np.concatenate([d1, d2]))
    assert merged.n == whole.n
    assert merged.mean == pytest.approx(whole.mean)
    assert merged.variance == pytest.approx(whole.variance)


def test_mean_variance_is_the_sample_variance() -> None:
    xs = np.array([1.0, 2.0, 4.0, 8.0])
    assert mean_stats(xs).variance == pytest.approx(np.var(xs, ddof=1))
    assert MeanStats(1, 3.0, 9.0).variance == 0.0


def test_ratio_delta_method_variance_matches_the_linearised_data() -> None:
    """The delta-method variance of Σm/Σd equals the sample variance of the linearisation
    (m − R·d)/d̄ computed directly on the units (Deng et al. 2018)."""
    rng = np.random.default_rng(7)
    d = rng.integers(1, 6, 500).astype(float)
    m = d * rng.gamma(2.0, 1.5, 500)
    stats = ratio_stats(m, d)
    r = m.sum() / d.sum()
    linearised = (m - r * d) / d.mean()
    assert stats.mean == pytest.approx(r)
    assert stats.variance == pytest.approx(np.var(linearised, ddof=1), rel=1e-9)


def test_ratio_delta_variance_predicts_the_sampling_variance() -> None:
    rng = np.random.default_rng(11)
    n, reps = 400, 800
    d = rng.poisson(3, (reps, n)) + 1.0
    m = d * rng.exponential(2.0, (reps, n)) + rng.normal(0, 1, (reps, n))
    ratios = m.sum(axis=1) / d.sum(axis=1)
    predicted = np.mean([ratio_stats(m[i], d[i]).variance / n for i in range(50)])
    assert np.var(ratios, ddof=1) == pytest.approx(predicted, rel=0.15)


def test_covariance_forms() -> None:
    x = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    px, py = ProportionStats(5, x.sum()), ProportionStats(5, y.sum())
    assert covariance(5, px, py, float((x * y).sum())) == pytest.approx(np.cov(x, y, ddof=0)[0, 1])
    mx, my = mean_stats(x), mean_stats(y)
    assert covariance(5, mx, my, float((x * y).sum())) == pytest.approx(np.cov(x, y, ddof=1)[0, 1])


def test_ratio_requires_the_same_units() -> None:
    with pytest.raises(ValueError):
        RatioStats(MeanStats(3, 1.0, 1.0), MeanStats(4, 1.0, 1.0), 0.0)
