"""Intervals adjusted to agree with adjusted p-values."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from keystep.stats.multiplicity import adjust_p_values, adjusted_confidence_interval


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
@pytest.mark.parametrize("p_adj", [0.001, 0.02, 0.06, 0.3])
def test_adjusted_interval_excludes_zero_exactly_when_adjusted_p_is_below_alpha(
    alpha: float, p_adj: float
) -> None:
    low, high = adjusted_confidence_interval(0.12, p_adj, alpha=alpha)
    assert (low > 0) == (p_adj < alpha)
    assert (low + high) / 2 == pytest.approx(0.12)


def test_unadjusted_p_gives_back_the_normal_interval() -> None:
    estimate, se = 0.08, 0.03
    p = 2 * sps.norm.sf(estimate / se)
    assert adjusted_confidence_interval(estimate, p) == pytest.approx(
        (estimate - 1.959964 * se, estimate + 1.959964 * se)
    )


def test_adjustment_never_narrows_and_p_one_is_unbounded() -> None:
    raw = (-0.5, 0.7)
    assert adjusted_confidence_interval(0.1, 0.04, raw_ci=raw) == raw
    assert adjusted_confidence_interval(-0.1, 1.0) == (-math.inf, math.inf)
    assert adjusted_confidence_interval(0.0, 0.5) == (0.0, 0.0)


def test_dispatch_by_name() -> None:
    ps = [0.01, 0.04, 0.03]
    assert adjust_p_values(ps, "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert adjust_p_values(ps, "benjamini-hochberg") == pytest.approx([0.03, 0.04, 0.04])
    with pytest.raises(ValueError):
        adjust_p_values(ps, "bonferroni")  # type: ignore[arg-type]
