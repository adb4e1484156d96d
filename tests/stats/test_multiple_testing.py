"""Holm and Benjamini–Hochberg adjusted p-values against statsmodels' `multipletests`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from keystep.stats.multiple_testing import benjamini_hochberg, holm

Adjust = Callable[[Sequence[float]], list[float]]
METHODS: list[tuple[Adjust, str]] = [(holm, "holm"), (benjamini_hochberg, "fdr_bh")]

# p-values drawn from a few values (so ties are common), the ends 0 and 1, and anything in between
p_value = st.one_of(
    st.sampled_from([0.0, 1.0, 0.01, 0.04, 0.05, 0.2]),
    st.floats(0.0, 1.0, allow_nan=False),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(p_value, min_size=1, max_size=25))
@pytest.mark.parametrize(("ours", "method"), METHODS)
def test_matches_statsmodels(ours: Adjust, method: str, ps: list[float]) -> None:
    expected = multipletests(ps, method=method)[1]
    got = ours(ps)
    assert len(got) == len(ps)
    assert got == pytest.approx(list(expected), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("ours", "method"), METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_statsmodels_on_many_tests(ours: Adjust, method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # mostly nulls (uniform) and a few real effects (tiny p-values), shuffled
    ps = np.concatenate([rng.uniform(size=80), rng.uniform(0, 1e-3, size=20)])
    rng.shuffle(ps)
    expected = multipletests(ps, method=method)[1]
    assert ours(ps.tolist()) == pytest.approx(expected.tolist(), rel=1e-12)


def test_holm_by_hand_in_input_order() -> None:
    # sorted: 0.01 (×4), 0.02 (×3), 0.03 (×2), 0.04 (×1) -> 0.04, 0.06, 0.06, 0.06 (kept non-decreasing)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # capped at 1
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_bh_by_hand_in_input_order() -> None:
    # sorted: 0.01·4/1 = 0.04, 0.02·4/2 = 0.04, 0.03·4/3 = 0.04, 0.04·4/4 = 0.04
    assert benjamini_hochberg([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.04, 0.04, 0.04, 0.04])
    # 0.001·3 = 0.003; 0.04·3/2 = 0.06; 0.5·3/3 = 0.5
    assert benjamini_hochberg([0.5, 0.001, 0.04]) == pytest.approx([0.5, 0.003, 0.06])


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
def test_ties_get_equal_adjusted_values(adjust: Adjust) -> None:
    got = adjust([0.02, 0.01, 0.02, 0.02, 0.5])
    assert got[0] == got[2] == got[3]


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
def test_edges(adjust: Adjust) -> None:
    assert adjust([]) == []
    assert adjust([0.03]) == [0.03]  # a family of one is not adjusted
    assert adjust([0.0, 0.0]) == [0.0, 0.0]
    # Holm: 0.2·2 = 0.4, then max(0.4, 1·1) = 1; BH: 1·2/2 = 1, 0.2·2/1 = 0.4
    assert adjust([1.0, 0.2]) == pytest.approx([1.0, 0.4])


@settings(max_examples=200, deadline=None)
@given(st.lists(p_value, min_size=1, max_size=25))
def test_holm_is_never_below_bh_and_both_are_monotone(ps: list[float]) -> None:
    h, b = holm(ps), benjamini_hochberg(ps)
    for raw, hi, bi in zip(ps, h, b, strict=True):
        assert raw <= bi + 1e-15 and bi <= hi + 1e-15 and hi <= 1.0
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    for adjusted in (h, b):
        values = [adjusted[i] for i in order]
        assert values == sorted(values)


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf])
def test_p_values_outside_zero_one_raise(adjust: Adjust, bad: float) -> None:
    with pytest.raises(ValueError):
        adjust([0.2, bad])
