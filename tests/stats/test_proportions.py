"""Rates, Wilson intervals, the pooled two-proportion z-test and the Katz rate ratio, against statsmodels and
against the formulas written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from keystep.stats.proportions import Rate, compute_rate, rate_ratio, two_proportion_test, wilson_interval

# normal quantiles, from tables: z_{0.95} = 1.644854, z_{0.975} = 1.959964, z_{0.995} = 2.575829
Z95 = 1.959963984540054


# -- a rate and its Wilson interval ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "n"),
    [(0, 1), (1, 1), (0, 7), (7, 7), (1, 7), (3, 10), (5, 10), (1, 1000), (999, 1000), (37, 250), (0, 5000)],
)
@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99, 0.5])
def test_wilson_matches_statsmodels(x: int, n: int, confidence: float) -> None:
    lower, upper = proportion_confint(x, n, alpha=1 - confidence, method="wilson")
    got = compute_rate(x, n, confidence)
    assert (got.x, got.n) == (x, n)
    assert got.estimate == x / n
    assert (got.lower, got.upper) == (pytest.approx(lower, abs=1e-12), pytest.approx(upper, abs=1e-12))
    assert wilson_interval(x, n, confidence) == (got.lower, got.upper)
    assert 0.0 <= got.lower <= x / n <= got.upper <= 1.0  # type: ignore[operator]


def test_wilson_at_the_edges_by_hand() -> None:
    # x = 0: the lower bound is exactly 0 and the upper is z²/(n + z²); x = n mirrors it
    n = 20
    upper = Z95**2 / (n + Z95**2)
    assert wilson_interval(0, n) == (0.0, pytest.approx(upper))
    assert wilson_interval(n, n) == (pytest.approx(1 - upper), 1.0)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_statsmodels_random(xn: tuple[int, int]) -> None:
    x, n = xn
    lower, upper = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert wilson_interval(x, n) == (pytest.approx(lower, abs=1e-12), pytest.approx(upper, abs=1e-12))


def test_wilson_narrows_as_confidence_drops() -> None:
    widths = [wilson_interval(12, 40, c)[1] - wilson_interval(12, 40, c)[0] for c in (0.99, 0.95, 0.9, 0.5)]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 4


def test_a_rate_of_no_units_is_empty() -> None:
    assert compute_rate(0, 0) == Rate(0, 0, None, None, None)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


@pytest.mark.parametrize(("x", "n"), [(-1, 5), (6, 5), (0, -1), (-1, -1)])
def test_bad_counts_raise(x: int, n: int) -> None:
    with pytest.raises(ValueError):
        compute_rate(x, n)
    with pytest.raises(ValueError):
        wilson_interval(x, n)


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5])
def test_bad_confidence_raises(confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(3, 10, confidence)
    with pytest.raises(ValueError):
        rate_ratio(3, 10, 4, 10, confidence)


# -- two proportions: pooled z-test ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(3, 10, 5, 20), (0, 10, 5, 20), (10, 10, 5, 20), (120, 1000, 90, 1000), (1, 3, 1, 4), (7, 9, 7, 9)],
)
def test_z_test_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    z, p = proportions_ztest([x1, x2], [n1, n2])  # pooled variance by default
    got = two_proportion_test(x1, n1, x2, n2)
    assert got.difference == pytest.approx(x1 / n1 - x2 / n2)
    assert got.z == pytest.approx(float(z), rel=1e-12, abs=1e-12)
    assert got.p_value == pytest.approx(float(p), rel=1e-9, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_z_test_matches_statsmodels_random(a: tuple[int, int], b: tuple[int, int]) -> None:
    (x1, n1), (x2, n2) = a, b
    got = two_proportion_test(x1, n1, x2, n2)
    if x1 + x2 in (0, n1 + n2):
        return  # degenerate: see the next test (statsmodels gives NaN there)
    z, p = proportions_ztest([x1, x2], [n1, n2])
    assert got.z == pytest.approx(float(z), rel=1e-9, abs=1e-12)
    assert got.p_value == pytest.approx(float(p), rel=1e-9, abs=1e-15)
    # the test is symmetric: swapping the groups flips z and keeps p
    swapped = two_proportion_test(x2, n2, x1, n1)
    assert swapped.z == pytest.approx(-got.z) and swapped.p_value == pytest.approx(got.p_value)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(0, 10, 0, 20), (10, 10, 20, 20), (0, 1, 0, 1)])
def test_no_variation_gives_p_one(x1: int, n1: int, x2: int, n2: int) -> None:
    """The documented rule: a pooled rate of 0 or 1 leaves nothing to test, p = 1 and z = 0."""
    got = two_proportion_test(x1, n1, x2, n2)
    assert (got.difference, got.z, got.p_value) == (0.0, 0.0, 1.0)


def test_z_test_by_hand() -> None:
    # 30/100 vs 20/100: pooled 0.25, se = sqrt(0.25·0.75·(2/100)) = sqrt(0.00375), z = 0.1 / se
    got = two_proportion_test(30, 100, 20, 100)
    z = 0.1 / math.sqrt(0.25 * 0.75 * 0.02)
    assert got.z == pytest.approx(z)
    assert got.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(1, 0, 1, 5), (1, 5, 0, 0), (6, 5, 1, 5), (1, 5, -1, 5)])
def test_z_test_bad_inputs_raise(x1: int, n1: int, x2: int, n2: int) -> None:
    with pytest.raises(ValueError):
        two_proportion_test(x1, n1, x2, n2)


# -- the rate ratio and its Katz interval --------------------------------------------------------


def katz(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float, float]:
    """RR, the Katz log interval and the p-value of log RR = 0, written out."""
    rr = (x1 / n1) / (x2 / n2)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    p = math.erfc(abs(math.log(rr)) / se / math.sqrt(2))
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se), p


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(3, 10, 5, 20), (30, 100, 20, 100), (1, 50, 9, 60), (48, 50, 2, 60), (5, 5, 3, 9), (4, 40, 4, 40)],
)
def test_rate_ratio_katz_by_hand_and_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    got = rate_ratio(x1, n1, x2, n2)
    rr, lower, upper, p = katz(x1, n1, x2, n2)
    assert (got.ratio, got.lower, got.upper, got.p_value) == pytest.approx((rr, lower, upper, p), rel=1e-12)
    # statsmodels' 2×2 table: rows are the groups, columns (converted, not)
    table = Table2x2(np.array([[x1, n1 - x1], [x2, n2 - x2]]), shift_zeros=False)  # no +0.5 for a 0 cell
    assert got.ratio == pytest.approx(table.riskratio, rel=1e-12)
    assert (got.lower, got.upper) == pytest.approx(tuple(table.riskratio_confint(alpha=0.05)), rel=1e-12)
    assert got.p_value == pytest.approx(table.riskratio_pvalue(), rel=1e-9)


def test_rate_ratio_other_confidence() -> None:
    # 90%: z_{0.95} = 1.6448536269514722
    got = rate_ratio(12, 80, 20, 200, confidence=0.9)
    rr, lower, upper, _ = katz(12, 80, 20, 200, z=1.6448536269514722)
    assert (got.ratio, got.lower, got.upper) == pytest.approx((rr, lower, upper), rel=1e-12)
    wide = rate_ratio(12, 80, 20, 200, confidence=0.99)
    assert wide.lower < got.lower < got.ratio < got.upper < wide.upper


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
)
def test_swapping_groups_inverts_ratio_and_interval(a: tuple[int, int], b: tuple[int, int]) -> None:
    (x1, n1), (x2, n2) = a, b
    ab, ba = rate_ratio(x1, n1, x2, n2), rate_ratio(x2, n2, x1, n1)
    assert ba.ratio == pytest.approx(1 / ab.ratio, rel=1e-12)
    assert ba.lower == pytest.approx(1 / ab.upper, rel=1e-12)
    assert ba.upper == pytest.approx(1 / ab.lower, rel=1e-12)
    assert ba.p_value == pytest.approx(ab.p_value, rel=1e-9, abs=1e-300)
    # symmetric on the log scale around the ratio
    assert math.log(ab.ratio) - math.log(ab.lower) == pytest.approx(math.log(ab.upper) - math.log(ab.ratio))
    # the interval excludes 1 exactly when p < 0.05
    if abs(ab.p_value - 0.05) > 1e-9:
        assert (ab.lower > 1 or ab.upper < 1) == (ab.p_value < 0.05)


def test_katz_interval_covers_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(7)
    reps, n1, n2, p1, p2 = 4000, 400, 500, 0.12, 0.08
    x1 = rng.binomial(n1, p1, reps)
    x2 = rng.binomial(n2, p2, reps)
    truth = p1 / p2
    covered = [
        (r := rate_ratio(int(a), n1, int(b), n2)).lower <= truth <= r.upper for a, b in zip(x1, x2, strict=True)
    ]
    coverage = sum(covered) / reps
    # binomial sd of the coverage at 0.95 over 4000 runs is 0.0034: allow about 4 sd
    assert 0.935 <= coverage <= 0.965, coverage


def test_zero_conversions_in_the_first_group() -> None:
    got = rate_ratio(0, 10, 3, 10)
    assert (got.ratio, got.lower, got.upper) == (0.0, 0.0, math.inf)
    assert math.isnan(got.p_value)


def test_all_converted_in_both_groups_has_zero_variance() -> None:
    # 1/x − 1/n = 0 on both sides: the log interval collapses onto the ratio; equal ratios give p = 1
    got = rate_ratio(5, 5, 8, 8)
    assert (got.ratio, got.lower, got.upper, got.p_value) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(1, 10, 0, 10), (0, 0, 1, 10), (1, 10, 0, 0), (11, 10, 1, 10), (1, 10, 2, 1)]
)
def test_rate_ratio_bad_inputs_raise(x1: int, n1: int, x2: int, n2: int) -> None:
    with pytest.raises(ValueError):
        rate_ratio(x1, n1, x2, n2)
