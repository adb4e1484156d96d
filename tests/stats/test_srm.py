"""Sample ratio mismatch against scipy's chi-square goodness-of-fit test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from keystep.stats.srm import DEFAULT_SRM_THRESHOLD, compute_srm


@pytest.mark.parametrize(
    ("users", "weights"),
    [
        ([5000, 5100], [1, 1]),
        ([310, 98], [0.75, 0.25]),
        ([980, 1010, 1100, 900], [0.25] * 4),
        ([70, 30], [2, 1]),
    ],
)
def test_matches_scipy_chisquare(users: list[int], weights: list[float]) -> None:
    total = sum(users)
    w = np.asarray(weights) / sum(weights)
    ref = sps.chisquare(users, f_exp=w * total)
    r = compute_srm(users, weights)
    assert r.chi_square == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.dof == len(users) - 1


def test_flags_only_below_the_threshold() -> None:
    assert DEFAULT_SRM_THRESHOLD == 0.001
    assert compute_srm([1000, 1200], [0.5, 0.5]).mismatch  # p ≈ 2e-5
    assert not compute_srm([1000, 1080], [0.5, 0.5]).mismatch  # p ≈ 0.08
    assert compute_srm([1000, 1080], [0.5, 0.5], threshold=0.1).mismatch


def test_zero_weight_arms_are_left_out() -> None:
    with_idle_arm = compute_srm([1000, 1200, 900], [0.5, 0.5, 0])
    assert with_idle_arm.p_value == pytest.approx(compute_srm([1000, 1200], [0.5, 0.5]).p_value)
    assert with_idle_arm.expected == (1100.0, 1100.0, None)


@pytest.mark.parametrize(
    ("users", "weights"), [([1000], [0.5, 0.5]), ([0, 0], [0.5, 0.5]), ([10, 20], [1, 0])]
)
def test_nothing_to_test_gives_p_one(users: list[int], weights: list[float]) -> None:
    r = compute_srm(users, weights)
    assert r.p_value == 1.0 and not r.mismatch


def test_false_alarm_rate_under_correct_assignment_is_near_the_threshold() -> None:
    rng = np.random.default_rng(0)
    counts = rng.multinomial(10_000, [0.5, 0.3, 0.2], size=4000)
    p = np.array([compute_srm(c.tolist(), [5, 3, 2]).p_value for c in counts])
    assert (p < 0.05).mean() == pytest.approx(0.05, abs=0.012)
