"""Segments against the rest, Holm-corrected: the reusable pure functions (rates and time-to-convert curves)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines.statistics import logrank_test
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from keystep.analysis.segments import Direction, Pace, compare_curves, compare_segments


def test_each_segment_against_the_rest_with_holm() -> None:
    counts = {"a": (30, 100), "b": (20, 100), "c": (10, 100), "d": (0, 0)}
    got = compare_segments(counts)
    assert [c.segment for c in got] == ["a", "b", "c", "d"]
    raw = []
    for name in ("a", "b", "c"):
        x, n = counts[name]
        rest = (60 - x, 300 - n)
        _, p = proportions_ztest([x, rest[0]], [n, rest[1]])  # pooled z-test, as statsmodels does it
        raw.append(float(p))
    _, adjusted, _, _ = multipletests(raw, method="holm")
    by = {c.segment: c for c in got}
    for name, p, adj in zip(("a", "b", "c"), raw, adjusted, strict=True):
        assert by[name].p_value == pytest.approx(p, rel=1e-6)
        assert by[name].adjusted_p == pytest.approx(adj, rel=1e-6)
        assert by[name].significant == (adj < 0.05)
    assert (by["a"].rest_converted, by["a"].rest_eligible) == (30, 200)
    assert by["a"].direction is Direction.HIGHER and by["c"].direction is Direction.LOWER
    assert by["b"].direction is Direction.SAME
    assert by["a"].significant and by["c"].significant and not by["b"].significant
    # a segment without eligible units is reported, not tested, and not part of the Holm family
    assert (by["d"].p_value, by["d"].adjusted_p, by["d"].significant) == (None, None, False)


def test_one_segment_has_no_rest_to_compare_with() -> None:
    (only,) = compare_segments({"all": (5, 10)})
    assert (only.p_value, only.adjusted_p, only.significant) == (None, None, False)
    assert only.direction is Direction.SAME


def test_total_given_for_segments_that_do_not_cover_every_unit() -> None:
    (top,) = compare_segments({"top": (10, 50)}, total=(20, 150))
    assert (top.rest_converted, top.rest_eligible) == (10, 100)
    _, p = proportions_ztest([10, 10], [50, 100])
    assert top.p_value == pytest.approx(float(p), rel=1e-6)
    assert top.adjusted_p == pytest.approx(float(p), rel=1e-6)  # a family of one


def test_alpha_and_bad_counts() -> None:
    strict = compare_segments({"a": (30, 100), "b": (15, 100)}, alpha=1e-6)
    assert not any(c.significant for c in strict)
    assert all(c.adjusted_p is not None and not math.isnan(c.adjusted_p) for c in strict)
    with pytest.raises(ValueError):
        compare_segments({"a": (3, 2)})
    with pytest.raises(ValueError):
        compare_segments({"a": (1, 2)}, total=(0, 1))
    with pytest.raises(ValueError):
        compare_segments({"a": (1, 2)}, alpha=0.0)



def test_each_curve_against_the_rest_with_holm() -> None:
    """Four segments of 80 units with exponential times to convert (whole seconds, so ties), censored at
    random; one more segment without any unit on the curve. Each against the other units pooled, by
    lifelines' log-rank test, Holm-adjusted by statsmodels."""
    rng = np.random.default_rng(7)
    scales = {"fast": 40.0, "a": 100.0, "b": 110.0, "slow": 400.0}
    curves: dict[str, list[tuple[float, bool, int]]] = {}
    for name, scale in scales.items():
        durations = np.floor(rng.exponential(scale, 80))
        censor_at = np.floor(rng.uniform(0, 300, 80))
        curves[name] = [(float(min(d, c)), bool(d <= c), 1) for d, c in zip(durations, censor_at, strict=True)]
    curves["empty"] = []
    got = compare_curves(curves)
    assert [c.segment for c in got] == ["fast", "a", "b", "slow", "empty"]
    raw = []
    for name in scales:
        inside = curves[name]
        rest = [row for other, rows in curves.items() if other != name for row in rows]
        result = logrank_test([d for d, _, _ in inside], [d for d, _, _ in rest],
                              [e for _, e, _ in inside], [e for _, e, _ in rest])
        raw.append(float(result.p_value))
    _, adjusted, _, _ = multipletests(raw, method="holm")
    by = {c.segment: c for c in got}
    for name, p, adj in zip(scales, raw, adjusted, strict=True):
        assert by[name].p_value == pytest.approx(p, rel=1e-9)
        assert by[name].adjusted_p == pytest.approx(adj, rel=1e-9)
        assert by[name].significant == (adj < 0.05)
        assert by[name].converted == sum(e for _, e, _ in curves[name])
    assert by["fast"].significant and by["fast"].direction is Pace.FASTER
    assert by["slow"].significant and by["slow"].direction is Pace.SLOWER
    assert by["fast"].expected is not None and by["fast"].converted > by["fast"].expected
    # a segment with no unit on the curve is reported, not tested, and not part of the Holm family
    empty = by["empty"]
    assert (empty.converted, empty.expected, empty.p_value, empty.adjusted_p) == (0, None, None, None)
    assert (empty.significant, empty.direction) == (False, Pace.SAME)


def test_one_curve_has_no_rest_and_alpha_is_checked() -> None:
    (only,) = compare_curves({"all": [(1.0, True, 3), (5.0, False, 2)]})
    assert (only.converted, only.expected, only.p_value, only.significant) == (3, 3.0, None, False)
    assert only.direction is Pace.SAME
    assert compare_curves({}) == ()
    strict = compare_curves({"a": [(1.0, True, 50)], "b": [(9.0, True, 50)]}, alpha=1e-30)
    assert [c.direction for c in strict] == [Pace.FASTER, Pace.SLOWER] and not any(c.significant for c in strict)
    with pytest.raises(ValueError):
        compare_curves({"a": [(1.0, True, 1)]}, alpha=1.0)
