"""Kaplan–Meier curves against lifelines' `KaplanMeierFitter`: S(t), the exponential Greenwood (log(−log))
band, and the quantiles of the event distribution with their Brookmeyer–Crowley intervals; the log-rank
test of each group against the rest against `lifelines.statistics.logrank_test`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times, qth_survival_times

from keystep.stats.survival import LogRankTest, SurvivalCurve, kaplan_meier, log_rank_against_rest

# (duration, observed, weight): small integer durations so that events and censorings share times often
Row = tuple[int, bool, int]
rows_strategy = st.lists(
    st.tuples(st.integers(0, 12), st.booleans(), st.integers(1, 4)), min_size=1, max_size=30
)


def fit_lifelines(rows: Sequence[Row], confidence: float = 0.95, *, weighted: bool = True) -> KaplanMeierFitter:
    durations = [float(d) for d, _, _ in rows]
    observed = [e for _, e, _ in rows]
    weights = [float(w) for _, _, w in rows] if weighted else None
    with warnings.catch_warnings():
        # lifelines warns about non-integer weights / robust variance only for fractional weights; silence
        # anything informational so the assertion output stays readable
        warnings.simplefilter("ignore")
        return KaplanMeierFitter(alpha=1 - confidence).fit(durations, observed, weights=weights)


def ours(rows: Sequence[Row], confidence: float = 0.95) -> SurvivalCurve:
    return kaplan_meier([d for d, _, _ in rows], [e for _, e, _ in rows], [w for _, _, w in rows], confidence)


def bands(kmf: KaplanMeierFitter) -> tuple[pd.Series, pd.Series]:
    """(lower, upper) columns of lifelines' interval, picked by name, not by position."""
    ci = kmf.confidence_interval_
    lower = next(c for c in ci.columns if "lower" in c)
    upper = next(c for c in ci.columns if "upper" in c)
    return ci[lower], ci[upper]


def first_at_or_below(curve: pd.Series, level: float, tol: float = 1e-9) -> float:
    """The first time a (lifelines) curve is at or below `level`, allowing for float round-off: lifelines
    computes S as exp(Σ log(1 − d/n)), so an exact 0.5 may come out as 0.5000000000000001."""
    hits = curve.index[curve.to_numpy() <= level + tol]
    return float(hits[0]) if len(hits) else math.inf


@settings(max_examples=120, deadline=None)
@given(rows_strategy, st.sampled_from([0.95, 0.9, 0.8]))
def test_curve_and_band_match_lifelines(rows: list[Row], confidence: float) -> None:
    km = ours(rows, confidence)
    kmf = fit_lifelines(rows, confidence)
    sf = kmf.survival_function_.iloc[:, 0]
    lo, hi = bands(kmf)
    # one entry per distinct duration, events or censorings
    assert list(km.times) == sorted({float(d) for d, _, _ in rows})
    table = kmf.event_table
    for i, t in enumerate(km.times):
        assert km.at_risk[i] == pytest.approx(table.loc[t, "at_risk"])
        assert km.events[i] == pytest.approx(table.loc[t, "observed"])
        assert km.censored[i] == pytest.approx(table.loc[t, "censored"])
        assert km.survival[i] == pytest.approx(sf.loc[t], abs=1e-12)
        lower, upper = km.lower[i], km.upper[i]
        if lower is None or upper is None:
            # undefined where S is 1 or 0; lifelines fills the band with S itself there
            assert lower is None and upper is None
            assert km.survival[i] == pytest.approx(1.0) or km.survival[i] == pytest.approx(0.0, abs=1e-12)
            assert (lo.loc[t], hi.loc[t]) == (pytest.approx(km.survival[i], abs=1e-9),) * 2
        else:
            assert 0.0 < km.survival[i] < 1.0
            assert lower == pytest.approx(lo.loc[t], rel=1e-9, abs=1e-12)
            assert upper == pytest.approx(hi.loc[t], rel=1e-9, abs=1e-12)
            assert lower <= km.survival[i] <= upper


@settings(max_examples=120, deadline=None)
@given(rows_strategy)
def test_survival_at_is_the_step_function(rows: list[Row]) -> None:
    km = ours(rows)
    kmf = fit_lifelines(rows)
    last = max(d for d, _, _ in rows)
    probes = [k / 2 for k in range(0, 2 * last + 4)]  # between, at and after the durations
    expected = kmf.survival_function_at_times(probes).to_numpy()
    assert km.survival_at(-1.0) == 1.0  # before any time (lifelines' timeline starts at 0)
    for t, s in zip(probes, expected, strict=True):
        assert km.survival_at(t) == pytest.approx(float(s), abs=1e-12), t


@settings(max_examples=150, deadline=None)
@given(rows_strategy, st.sampled_from([0.25, 0.5, 0.75, 0.1, 0.9]))
def test_quantiles_match_lifelines(rows: list[Row], q: float) -> None:
    """The q-quantile of the event distribution is lifelines' (1 − q)-th survival time, and its interval
    comes from the bands: the *lower* band reaches 1 − q first, so it gives the lower time bound."""
    km = ours(rows)
    kmf = fit_lifelines(rows)
    sf = kmf.survival_function_.iloc[:, 0]
    lo, hi = bands(kmf)
    got = km.quantile(q)
    level = 1 - q
    assert got.value == first_at_or_below(sf, level)
    assert got.lower == first_at_or_below(lo, level)
    assert got.upper == first_at_or_below(hi, level)
    assert got.lower <= got.value <= got.upper
    # where no curve value sits within round-off of the level, lifelines' own functions agree exactly
    near = any(abs(float(v) - level) < 1e-9 for v in [*sf, *lo, *hi])
    if not near:
        # one column gives a scalar, two columns a one-row frame
        assert got.value == float(qth_survival_times(level, kmf.survival_function_))
        ci = qth_survival_times(level, kmf.confidence_interval_)
        assert got.lower == float(ci.filter(like="lower").iloc[0, 0])
        assert got.upper == float(ci.filter(like="upper").iloc[0, 0])
        if q == 0.5:
            assert got.value == kmf.median_survival_time_
            med = median_survival_times(kmf.confidence_interval_)
            assert (got.lower, got.upper) == (
                float(med.filter(like="lower").iloc[0, 0]),
                float(med.filter(like="upper").iloc[0, 0]),
            )


def test_median_and_its_interval_on_a_worked_example() -> None:
    """Continuous durations (no ties with the level), checked against lifelines' `median_survival_times`."""
    rng = np.random.default_rng(20260302)
    durations = rng.exponential(10.0, 60).round(3)
    censor_at = rng.exponential(25.0, 60).round(3)
    observed = durations <= censor_at
    times = np.minimum(durations, censor_at)
    km = kaplan_meier(times.tolist(), observed.tolist())
    kmf = KaplanMeierFitter().fit(times, observed)
    med = median_survival_times(kmf.confidence_interval_)
    got = km.quantile(0.5)
    assert got.value == kmf.median_survival_time_
    assert got.lower == med["KM_estimate_lower_0.95"].iloc[0]
    assert got.upper == med["KM_estimate_upper_0.95"].iloc[0]
    assert got.lower < got.value < got.upper


@settings(max_examples=100, deadline=None)
@given(rows_strategy)
def test_weights_equal_repeated_rows(rows: list[Row]) -> None:
    weighted = ours(rows)
    repeated = [(d, e, 1) for d, e, w in rows for _ in range(w)]
    assert ours(repeated) == weighted
    # and lifelines, fed the repeated rows without weights, gives the same curve
    kmf = fit_lifelines(repeated, weighted=False)
    sf = kmf.survival_function_.iloc[:, 0]
    assert list(weighted.survival) == pytest.approx([sf.loc[t] for t in weighted.times], abs=1e-12)


def test_events_and_censorings_at_the_same_time_by_hand() -> None:
    """Censored units at tᵢ are still at risk at tᵢ. Durations 2, 2 (censored), 2, 4, 5 (censored), 7:
    t=2: 6 at risk (the censored one included), 2 events → S = 4/6; t=4: 3 at risk, 1 event → S = 4/6 · 2/3;
    t=5: censoring only; t=7: 1 at risk, 1 event → S = 0."""
    km = kaplan_meier([2, 2, 2, 4, 5, 7], [True, False, True, True, False, True])
    assert km.times == (2.0, 4.0, 5.0, 7.0)
    assert km.at_risk == (6, 3, 2, 1)
    assert km.events == (2, 1, 0, 1)
    assert km.censored == (1, 0, 1, 0)
    s2, s4 = 4 / 6, 4 / 6 * 2 / 3
    assert km.survival == pytest.approx((s2, s4, s4, 0.0))
    # Greenwood at t=2: 2 / (6·4); log(−log) band with z = 1.959964
    g = 2 / (6 * 4)
    z = 1.959963984540054
    half = z * math.sqrt(g) / abs(math.log(s2))
    assert km.lower[0] == pytest.approx(math.exp(-math.exp(math.log(-math.log(s2)) + half)))
    assert km.upper[0] == pytest.approx(math.exp(-math.exp(math.log(-math.log(s2)) - half)))
    assert km.lower[3] is None and km.upper[3] is None  # S = 0
    assert km.survival_at(1.9) == 1.0 and km.survival_at(2) == pytest.approx(s2)
    assert km.survival_at(6.99) == pytest.approx(s4) and km.survival_at(100) == 0.0
    # S first reaches 0.5 at t=4 (S = 4/9 there); 25% have converted by t=2 (S = 2/3 ≤ 0.75)
    assert km.quantile(0.5).value == 4.0
    assert km.quantile(0.25).value == 2.0
    assert km.quantile(0.6).value == 7.0  # needs S ≤ 0.4: only at 7


def test_all_censored_never_reaches_any_quantile() -> None:
    km = kaplan_meier([1, 3, 3, 8], [False] * 4, [2, 1, 1, 5])
    assert km.survival == (1.0, 1.0, 1.0)
    assert km.lower == (None, None, None) and km.upper == (None, None, None)
    assert km.at_risk == (9, 7, 5)
    for q in (0.01, 0.5, 0.99):
        got = km.quantile(q)
        assert (got.value, got.lower, got.upper) == (math.inf, math.inf, math.inf)
    kmf = KaplanMeierFitter().fit([1, 3, 8], [0, 0, 0], weights=[2, 2, 5])
    assert kmf.median_survival_time_ == math.inf


def test_curve_that_stops_above_the_level_has_infinite_quantile() -> None:
    # 10 units, one event at t=1 then everyone censored at 5: S = 0.9 forever after
    km = kaplan_meier([1, 5], [True, False], [1, 9])
    assert km.quantile(0.1).value == 1.0
    assert km.quantile(0.5).value == math.inf
    assert km.survival_at(1_000) == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("durations", "observed", "weights"),
    [
        ([1, 2], [True], None),  # lengths differ
        ([1, 2], [True, False], [1]),
        ([1, -2], [True, False], None),  # negative duration
        ([1, float("nan")], [True, False], None),
        ([1, 2], [True, False], [1, -1]),  # negative weight
    ],
)
def test_bad_inputs_raise(durations: list[float], observed: list[bool], weights: list[int] | None) -> None:
    with pytest.raises(ValueError):
        kaplan_meier(durations, observed, weights)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_quantile_outside_zero_one_raises(q: float) -> None:
    with pytest.raises(ValueError):
        kaplan_meier([1, 2], [True, True]).quantile(q)


# -- the log-rank test ---------------------------------------------------------------------------------

# (duration, observed, weight, group): few distinct durations, so that ties and censorings at event times
# are common, and groups that may have no event or be censored before every event
GroupedRow = tuple[int, bool, int, str]
grouped_rows = st.lists(
    st.tuples(st.integers(0, 8), st.booleans(), st.integers(1, 4), st.sampled_from("abc")), min_size=1, max_size=40
)


def lifelines_vs_rest(rows: Sequence[GroupedRow], group: str) -> tuple[float, float]:
    """(statistic, p) of lifelines' two-sample log-rank test of `group` against every other row."""
    inside = [r for r in rows if r[3] == group]
    rest = [r for r in rows if r[3] != group]
    result = logrank_test(
        [d for d, _, _, _ in inside], [d for d, _, _, _ in rest],
        [e for _, e, _, _ in inside], [e for _, e, _, _ in rest],
        weights_A=[float(w) for _, _, w, _ in inside], weights_B=[float(w) for _, _, w, _ in rest],
    )
    return float(result.test_statistic), float(result.p_value)


def grouped_ours(rows: Sequence[GroupedRow]) -> dict[str, LogRankTest]:
    return log_rank_against_rest([d for d, _, _, _ in rows], [e for _, e, _, _ in rows],
                                 [g for _, _, _, g in rows], [w for _, _, w, _ in rows])


@settings(max_examples=150, deadline=None)
@given(grouped_rows)
def test_log_rank_matches_lifelines(rows: list[GroupedRow]) -> None:
    got = grouped_ours(rows)
    assert list(got) == list(dict.fromkeys(g for _, _, _, g in rows))  # in order of appearance
    for group, test in got.items():
        assert test.observed == sum(w for _, e, w, g in rows if e and g == group)
        if len(got) == 1:  # nothing to compare with: no variance, not testable
            assert test.p_value is None and test.variance == 0.0
            continue
        statistic, p = lifelines_vs_rest(rows, group)
        if test.statistic is None:
            # no event while both sides had units at risk: lifelines' pseudo-inverse of a zero variance gives 0
            assert test.variance == 0.0 and test.p_value is None
            assert statistic == pytest.approx(0.0, abs=1e-12)
        else:
            assert test.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-12)
            assert test.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(grouped_rows)
def test_log_rank_weights_equal_repeated_rows(rows: list[GroupedRow]) -> None:
    repeated = [(d, e, 1, g) for d, e, w, g in rows for _ in range(w)]
    weighted, unweighted = grouped_ours(rows), grouped_ours(repeated)
    assert weighted.keys() == unweighted.keys()
    for group, test in weighted.items():
        other = unweighted[group]
        assert (test.observed, test.expected, test.variance) == pytest.approx(
            (other.observed, other.expected, other.variance), rel=1e-12, abs=1e-12)


def test_log_rank_on_random_data_with_ties_and_censoring() -> None:
    """Three groups of 200 with different hazards, durations rounded to whole units (many ties), censored
    at random: each against the other two, as lifelines computes it."""
    rng = np.random.default_rng(20260302)
    groups = np.repeat(["fast", "middle", "slow"], 200)
    scale = np.repeat([5.0, 7.0, 12.0], 200)
    durations = np.floor(rng.exponential(scale))
    censor_at = np.floor(rng.exponential(15.0, 600))
    observed = durations <= censor_at
    times = np.minimum(durations, censor_at)
    got = log_rank_against_rest(times.tolist(), observed.tolist(), groups.tolist())
    assert len(np.unique(times)) < 100 and 0 < observed.sum() < 600  # ties and censoring, indeed
    for group in ("fast", "middle", "slow"):
        inside = groups == group
        ref = logrank_test(times[inside], times[~inside], observed[inside], observed[~inside])
        assert got[group].statistic == pytest.approx(ref.test_statistic, rel=1e-9)
        assert got[group].p_value == pytest.approx(ref.p_value, rel=1e-9)
    assert got["fast"].observed > got["fast"].expected and got["slow"].observed < got["slow"].expected
    assert got["fast"].p_value is not None and got["fast"].p_value < 1e-3


def test_log_rank_by_hand() -> None:
    """Group a: events at 1 and 2, censored at 3; group b: events at 2 and 4.
    t=1: 5 at risk (a 3, b 2), 1 event: E_a = 3/5, V = (3/5)(2/5) = 6/25;
    t=2: 4 at risk (a 2, b 2), 2 events: E_a += 2 · 2/4 = 1, V += 2 · (1/2)(1/2) · (4 − 2)/(4 − 1) = 1/3;
    t=3: a censoring only; t=4: b alone at risk, 1 event: E_a += 0, V += 0.
    O_a = 2, E_a = 8/5, V = 6/25 + 1/3 = 43/75: χ² = (2/5)² / (43/75) = 12/43, p = P(χ²₁ > 12/43)."""
    got = log_rank_against_rest([1, 2, 3, 2, 4], [True, True, False, True, True], ["a", "a", "a", "b", "b"])
    a, b = got["a"], got["b"]
    assert (a.observed, a.expected, a.variance) == (2, pytest.approx(8 / 5), pytest.approx(43 / 75))
    assert a.statistic == pytest.approx(12 / 43)
    assert a.p_value == pytest.approx(math.erfc(math.sqrt(6 / 43)))  # P(χ²₁ > x) = erfc(√(x/2))
    assert a.p_value == pytest.approx(0.5973, abs=1e-4)
    # two groups: b's test is a's seen from the other side (E_b = 4 events − E_a = 12/5)
    assert (b.observed, b.expected) == (2, pytest.approx(12 / 5))
    assert (b.variance, b.statistic, b.p_value) == (a.variance, pytest.approx(a.statistic), pytest.approx(a.p_value))


def test_log_rank_without_overlap_is_not_testable() -> None:
    # group a is censored before b's only event; b has no unit at risk at a's (there is none): variance 0
    got = log_rank_against_rest([1, 5], [False, True], ["a", "b"])
    assert got["a"] == LogRankTest(observed=0, expected=0.0, variance=0.0, statistic=None, p_value=None)
    assert log_rank_against_rest([], [], []) == {}


@pytest.mark.parametrize(
    ("durations", "observed", "groups", "weights"),
    [
        ([1, 2], [True, False], ["a"], None),  # groups shorter
        ([1, 2], [True], ["a", "b"], None),
        ([1, -2], [True, False], ["a", "b"], None),
        ([1, 2], [True, False], ["a", "b"], [1, -1]),
    ],
)
def test_log_rank_bad_inputs_raise(
    durations: list[float], observed: list[bool], groups: list[str], weights: list[int] | None
) -> None:
    with pytest.raises(ValueError):
        log_rank_against_rest(durations, observed, groups, weights)
