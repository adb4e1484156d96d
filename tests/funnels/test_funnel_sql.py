"""The funnel SQL against the pure-Python reference, on random event logs, in every mode."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from funnel_events import STEP_SETS, WINDOWS, event_logs, ranges
from funnel_reference import Expected, funnel
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import event_table
from keystep.analysis.funnels import funnel_rows
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Funnel, FunnelMode, Matcher, Step, Unit
from keystep.query import Query
from keystep.sql.funnels import (
    MAX_STEPS,
    build_funnel,
    build_ordered_sequences,
    build_time_span,
    build_visitor_steps,
    packs,
)


def run_sql(
    backend: DuckDBBackend,
    steps: tuple[tuple[str, ...], ...],
    window: timedelta,
    mode: FunnelMode,
    query: Query,
    unit: Unit = Unit.VISITOR,
) -> Expected:
    f = Funnel(
        name="f",
        steps=tuple(Step("+".join(names), (Matcher(events=names),)) for names in steps),
        window=window,
        mode=mode,
        unit=unit,
    )
    rows = funnel_rows(backend, f, query)
    assert len(rows) == 1 and rows[0]["all_segments"]
    row = rows[0]
    return Expected(list(row["units"]), list(row["median_us"]), list(row["p90_us"]))


def assert_same(got: Expected, want: Expected) -> None:
    assert got.units == want.units
    for g, w in zip(got.median_us + got.p90_us, want.median_us + want.p90_us, strict=True):
        assert (g is None) == (w is None), (got, want)
        if g is not None and w is not None:
            assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-3), (got, want)


@settings(max_examples=60, deadline=None)
@given(
    events=event_logs(),
    steps=st.sampled_from(STEP_SETS),
    window=st.sampled_from(WINDOWS),
    bounds=ranges(),
    unit=st.sampled_from((Unit.VISITOR, Unit.USER)),
)
def test_every_mode_matches_the_reference(
    events: list[dict[str, Any]],
    steps: tuple[tuple[str, ...], ...],
    window: timedelta,
    bounds: tuple[date | None, date | None, str],
    unit: Unit,
) -> None:
    start, end, tz = bounds
    query = Query(project="test", start=start, end=end, timezone=tz)
    backend = DuckDBBackend(":memory:")
    try:
        backend.insert_events(event_table(events))
        table = event_table(events).to_pylist()  # the rows as stored (event ids, project)
        got = {}
        for mode in FunnelMode:
            want = funnel(table, steps, window, mode.value, unit=unit.value, start=start, end=end, tz=tz)
            got[mode] = run_sql(backend, steps, window, mode, query, unit)
            assert_same(got[mode], want)
    finally:
        backend.close()
    # a strict chain is an ordered chain, and an ordered chain does its steps within one window
    for k in range(len(steps)):
        assert (
            got[FunnelMode.STRICT].units[k]
            <= got[FunnelMode.ORDERED].units[k]
            <= got[FunnelMode.ANY_ORDER].units[k]
        )


@settings(max_examples=30, deadline=None)
@given(events=event_logs(), steps=st.sampled_from(STEP_SETS), window=st.sampled_from(WINDOWS))
def test_ordered_mode_with_many_steps_over_a_long_span(
    events: list[dict[str, Any]], steps: tuple[tuple[str, ...], ...], window: timedelta
) -> None:
    """20 to 32 steps over a year: the times and masks no longer fit one 64-bit integer, so the
    database sends them as two lists; the result must not change."""
    many = (steps * 16)[:MAX_STEPS]
    events = [
        *events,
        *({"visitor_id": "z", "event": "x", "ts": datetime(2026, m, 1), "user_id": None} for m in (1, 12)),
    ]
    query = Query(project="test")
    backend = DuckDBBackend(":memory:")
    try:
        backend.insert_events(event_table(events))
        first_us, last_us, *_ = next(iter(backend.execute(build_time_span(query)))).values()
        f = Funnel("f", tuple(Step(str(k), (Matcher(events=n),)) for k, n in enumerate(many)), window)
        assert not packs(f, first_us, last_us)
        want = funnel(event_table(events).to_pylist(), many, window, "ordered")
        assert_same(run_sql(backend, many, window, FunnelMode.ORDERED, query), want)
    finally:
        backend.close()


def test_examples_worked_by_hand() -> None:
    """Visitor p: a b c in order (all modes reach 3). q: b a c — ordered stops at a (1), strict too,
    any_order 3. r: a x b — ordered 2, strict 1 (x between), any_order 2. s: a and b at the same minute,
    b inserted first: ordered counts the tie in step order (2), strict follows the event order (ts, then
    event id: b first, so 1)."""
    t0 = datetime(2026, 3, 2, 9, 0)
    rows = [
        ("p", "a", 0),
        ("p", "b", 5),
        ("p", "c", 9),
        ("q", "b", 0),
        ("q", "a", 1),
        ("q", "c", 2),
        ("r", "a", 0),
        ("r", "x", 1),
        ("r", "b", 2),
        ("s", "b", 0),
        ("s", "a", 0),
    ]
    events = [
        {"visitor_id": v, "event": e, "ts": t0 + timedelta(minutes=m), "event_id": f"{v}{i:02d}"}
        for i, (v, e, m) in enumerate(rows)
    ]
    backend = DuckDBBackend(":memory:")
    backend.insert_events(event_table(events))
    steps = (("a",), ("b",), ("c",))
    query = Query(project="test")
    window = timedelta(minutes=10)
    # p 3, q 1, r 2, s 2
    ordered = run_sql(backend, steps, window, FunnelMode.ORDERED, query)
    assert ordered.units == [4, 3, 1]
    # step 2 times: p 5 min, r 2 min, s 0 -> median 2 min, p90 = 2 + 0.8 * 3 = 4.4 min; step 3: p 4 min
    assert ordered.median_us == [None, 120e6, 240e6]
    assert ordered.p90_us == [None, pytest.approx(264e6), 240e6]
    # p 3, q 1, r 1, s 1
    assert run_sql(backend, steps, window, FunnelMode.STRICT, query).units == [4, 1, 1]
    # p 3, q 3, r 2, s 2
    assert run_sql(backend, steps, window, FunnelMode.ANY_ORDER, query).units == [4, 4, 2]
    # a 4-minute window: p's b at 5 minutes is too late (3 -> 1); r's b at 2 minutes is in time
    assert run_sql(backend, steps, timedelta(minutes=4), FunnelMode.ORDERED, query).units == [4, 2, 0]
    backend.close()


@pytest.mark.parametrize("mode", list(FunnelMode))
def test_values_are_bound_parameters(mode: FunnelMode) -> None:
    steps = (Step("o'brien", (Matcher(events=("o'brien",)),)), Step("b", (Matcher(events=("b",)),)))
    f = Funnel("f", steps, mode=mode)
    builds = (build_visitor_steps, build_ordered_sequences) if mode is FunnelMode.ORDERED else (build_funnel,)
    for build in builds:
        sql = build(f, Query(project="p'q"))
        assert "o'brien" not in sql.text and "p'q" not in sql.text
        assert "o'brien" in sql.params.values() and "p'q" in sql.params.values()
