"""Segments against the rest, Holm-corrected: the reusable pure function."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from keystep.analysis.segments import Direction, compare_segments


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
