"""Confidence sequences: valid under continuous peeking, dual to their p-values, wider than fixed CIs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keystep.stats.effects import compute_effect
from keystep.stats.frequentist import compute_welch_test
from keystep.stats.sequential import (
    compute_sequential_test,
    sequential_halfwidth,
    sequential_rho,
    sequential_test_from_effect,
)
from keystep.stats.sufficient import MeanStats


def test_peeking_after_every_batch_keeps_the_false_positive_rate() -> None:
    """A/A experiments looked at 50 times: the confidence sequence rarely ever excludes 0, while a
    fixed-horizon z interval checked at every look does far more often."""
    rng = np.random.default_rng(2024)
    runs, looks, batch = 400, 50, 100
    alpha = 0.05
    x = rng.normal(0, 1, (runs, looks * batch))
    y = rng.normal(0, 1, (runs, looks * batch))
    ever_seq = np.zeros(runs, dtype=bool)
    ever_fixed = np.zeros(runs, dtype=bool)
    for k in range(1, looks + 1):
        n = k * batch
        diff = y[:, :n].mean(axis=1) - x[:, :n].mean(axis=1)
        se = np.sqrt(y[:, :n].var(axis=1, ddof=1) / n + x[:, :n].var(axis=1, ddof=1) / n)
        rho = sequential_rho(alpha, 5000)
        half = np.array([sequential_halfwidth(s**2 * 2 * n, 2 * n, alpha, rho) for s in se])
        ever_seq |= np.abs(diff) > half
        ever_fixed |= np.abs(diff) > 1.959963984540054 * se
    assert ever_seq.mean() <= alpha
    assert ever_fixed.mean() > 2 * alpha


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.5, 5.0),
    st.floats(-0.5, 0.5),
    st.integers(50, 20000),
    st.sampled_from([0.01, 0.05, 0.1]),
    st.sampled_from([500.0, 5000.0, 50000.0]),
)
def test_two_sided_p_value_is_dual_to_the_interval(
    sd: float, shift: float, n: int, alpha: float, tuning: float
) -> None:
    control = MeanStats(n, 10.0 * n, (100.0 + sd**2) * n)
    mean_b = 10.0 + shift
    treatment = MeanStats(n, mean_b * n, (mean_b**2 + sd**2) * n)
    r = compute_sequential_test(control, treatment, difference_type="absolute", alpha=alpha, tuning=tuning)
    excludes = r.ci[0] > 0 or r.ci[1] < 0
    if abs(r.p_value - alpha) > 1e-9:
        assert excludes == (r.p_value < alpha)


def test_one_sided_p_value_is_where_the_bound_touches_zero() -> None:
    control = MeanStats(3000, 1396.87, 52377.9767)
    treatment = MeanStats(3461, 2422.7, 134698.29)
    effect = compute_effect(control, treatment, difference_type="absolute")
    r = sequential_test_from_effect(effect, alternative="greater")
    assert 1e-5 < r.p_value < 0.4999
    # The bound at alpha = p (with rho of the configured alpha) sits on 0, to bisection accuracy.
    n = effect.n_total
    rho = sequential_rho(0.05, 5000, two_sided=False)
    lower = effect.point_estimate - sequential_halfwidth(effect.se**2 * n, n, r.p_value, rho, two_sided=False)
    assert abs(lower) < 1e-3


def test_confidence_sequence_is_wider_than_the_fixed_interval() -> None:
    control = MeanStats(5000, 5000.0, 15000.0)
    treatment = MeanStats(5000, 5200.0, 16000.0)
    fixed = compute_welch_test(control, treatment)
    seq = compute_sequential_test(control, treatment)
    assert seq.point_estimate == pytest.approx(fixed.point_estimate)
    assert seq.ci[0] < fixed.ci[0] and seq.ci[1] > fixed.ci[1]
    assert seq.p_value >= fixed.p_value


def test_one_sided_sequential_rejects_large_alpha() -> None:
    effect = compute_effect(MeanStats(100, 100.0, 300.0), MeanStats(100, 120.0, 400.0))
    with pytest.raises(ValueError):
        sequential_test_from_effect(effect, alpha=0.5, alternative="less")
