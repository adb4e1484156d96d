"""The conversions SQL agrees with a pure-Python reference on random event logs (sessions from inactivity,
repeated actions, property conditions, path globs, eligibility rules, values, days across a DST change)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from conversions_reference import Counts, Key, reference_counts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import event_table
from keystep.analysis.conversions import combine_queries, run_conversion_reports, run_conversions
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit, parse_definitions
from keystep.query import Granularity, Query
from keystep.sql.conversions import build_conversions
from keystep.sql.scope import DateRange

DEFINITIONS = parse_definitions(
    """
timezone: Europe/Berlin
goals:
  view_item: {kind: micro, category: process_milestone, match: view_item}
  add_to_cart:
    kind: micro
    category: process_milestone
    match: {event: add_to_cart}
    eligible: {event: view_item}
  pricing:
    kind: micro
    category: process_milestone
    match: {event: page_view, path: /pricing*}
  engaged:
    kind: micro
    category: secondary_action
    match: [{event: newsletter_signup}, {event: page_view, path: "/blog/?"}]
    value: {fixed: 2, currency: EUR}
  share:
    kind: micro
    category: secondary_action
    match: {event: share, where: ["plan != free", "channel contains Search"]}
  purchase:
    kind: macro
    type: revenue
    match: {event: purchase, where: ["amount > 10"]}
    value: {from: revenue, currency: EUR}
  lead:
    kind: macro
    type: lead
    match: {event: form_submit, where: {plan: pro}}
    eligible: {path: /contact*}
    value: 25
  inquiry:
    kind: macro
    type: inquiry
    match: {event: form_submit, where: ["plan in [team, pro]"]}
    eligible: [{path: /contact*}, {event: view_item, where: ["amount < 20"]}]
    value: {from: amount}
"""
)
GOALS = DEFINITIONS.goals

BASE = datetime(2026, 3, 27, 20, 0)  # UTC; Berlin springs forward at 2026-03-29 01:00 UTC
EVENTS = ("page_view", "view_item", "add_to_cart", "purchase", "form_submit", "newsletter_signup", "share")
PATHS = (None, "/", "/pricing", "/pricing/team", "/blog/a", "/blog/ab", "/contact", "/contact/sales",
         "/x_pricing")


@st.composite
def event_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 40))
    rows = []
    for i in range(n):
        props: dict[str, Any] = {}
        plan = draw(st.sampled_from([None, "free", "pro", "team"]))
        if plan is not None:
            props["plan"] = plan
        amount = draw(st.one_of(st.none(), st.sampled_from([5, 12.5, 20, 30])))
        if amount is not None:
            props["amount"] = amount
        # clustered times: bursts 3 hours apart, minutes within a burst, a unique microsecond per event
        minutes = draw(st.integers(0, 34)) * 180 + draw(st.integers(0, 70))
        event = draw(st.sampled_from(EVENTS))
        rows.append({
            "ts": BASE + timedelta(minutes=minutes, microseconds=i),
            "event": event,
            "visitor_id": draw(st.sampled_from(["a", "b", "c", "d"])),
            "user_id": draw(st.sampled_from([None, None, None, "u1", "u2"])),
            "session_id": draw(st.sampled_from([None, None, None, "s1", "s2"])),
            "path": draw(st.sampled_from(PATHS)),
            "device_type": draw(st.sampled_from([None, "mobile", "desktop"])),
            "channel": draw(st.sampled_from([None, "Organic Search", "Paid Search", "Direct"])),
            "revenue": draw(st.sampled_from([None, 10.0, 49.5])) if event == "purchase" else None,
            "currency": draw(st.sampled_from([None, "EUR", "USD"])) if event == "purchase" else None,
            "properties": props,
        })
    return rows


queries = st.builds(
    Query,
    project=st.just("test"),
    start=st.sampled_from([None, date(2026, 3, 28), date(2026, 3, 29)]),
    end=st.sampled_from([None, date(2026, 3, 29), date(2026, 3, 30)]),
    timezone=st.just("Europe/Berlin"),
    unit=st.sampled_from(list(Unit)),
    breakdown=st.sampled_from([None, "device_type", "prop:plan", "landing_page", "visitor_type", "channel"]),
    granularity=st.sampled_from([None, Granularity.DAY, Granularity.WEEK]),
    session_timeout=st.sampled_from([timedelta(minutes=30), timedelta(minutes=45)]),
)


def sql_counts(store: DuckDBBackend, query: Query, ranges: list[DateRange] | None = None,
               range_no: int = 0) -> dict[Key, Counts]:
    out: dict[Key, Counts] = {}
    for r in store.execute(build_conversions(query, GOALS, ranges=ranges)):
        if r["range_no"] != range_no:
            continue
        segment = None if r["all_segments"] else r["segment"]
        key = (r["goal"], segment, None if r["all_periods"] else r["period"])
        assert key not in out
        out[key] = (r["eligible_units"], r["converted_units"], r["actions"], r["value_sum"],
                    r["currency_min"], r["currency_max"])
    return out


def as_events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The canonical rows the store holds, with `properties` as a dict."""
    events = event_table(rows).to_pylist()
    for e in events:
        e["properties"] = json.loads(e["properties"]) if e["properties"] else {}
    return events


def assert_same(got: dict[Key, Counts], want: dict[Key, Counts]) -> None:
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        assert g[:3] == w[:3], key
        assert g[3] == pytest.approx(w[3], abs=1e-9), key
        assert g[4:] == w[4:], key


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=event_rows(), query=queries)
def test_sql_matches_reference(tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]],
                               query: Query) -> None:
    if query.start and query.end and query.start > query.end:
        return
    with DuckDBBackend(":memory:") as store:
        store.insert_events(event_table(rows))
        assert_same(sql_counts(store, query), reference_counts(as_events(rows), GOALS, query))
        report = run_conversions(store, DEFINITIONS, query)
    # the report keeps every goal, and its segments and periods partition the units
    assert sorted(g.goal for g in report.goals) == sorted(g.name for g in GOALS)
    for goal in report.goals:
        total = goal.total
        for parts in ([s.stats for s in goal.segments], [p.stats for p in goal.periods]):
            if parts:
                assert sum(s.eligible_units for s in parts) == total.eligible_units
                assert sum(s.converted_units for s in parts) == total.converted_units
                assert sum(s.actions for s in parts) == total.actions


days = st.sampled_from([None, date(2026, 3, 27), date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)])


@settings(max_examples=80, deadline=None)
@given(rows=event_rows(), query=queries, ranges=st.lists(st.tuples(days, days), min_size=1, max_size=3))
def test_ranges_in_one_statement_each_match_the_reference(rows: list[dict[str, Any]], query: Query,
                                                        ranges: list[tuple[date | None, date | None]]) -> None:
    """Several date ranges (overlapping or not) in one statement: each range's rows are what the reference
    counts over that range alone (its sessions and users derived within it)."""
    ranges = [(a, b) if a is None or b is None or a <= b else (b, a) for a, b in ranges]
    with DuckDBBackend(":memory:") as store:
        store.insert_events(event_table(rows))
        events = as_events(rows)
        for i, (start, end) in enumerate(ranges):
            alone = query.with_(start=start, end=end)
            assert_same(sql_counts(store, query, ranges, i), reference_counts(events, GOALS, alone))


def test_reports_measured_together_are_the_reports_measured_alone() -> None:
    """`run_conversion_reports`: a range with a breakdown, the same range by day and the previous period,
    from one statement, each equal to its own `run_conversions`."""
    rows = [{"ts": BASE + timedelta(hours=h, minutes=m), "event": e, "visitor_id": v, "device_type": dev,
             "path": "/contact", "properties": {"plan": "pro", "amount": 30}}
            for h, m, e, v, dev in [(0, 0, "view_item", "a", "mobile"), (0, 5, "add_to_cart", "a", "mobile"),
                                    (10, 0, "view_item", "b", "desktop"), (10, 50, "form_submit", "b", "desktop"),
                                    (30, 0, "page_view", "a", "mobile"), (31, 0, "purchase", "c", None)]]
    query = Query(project="test", start=date(2026, 3, 29), end=date(2026, 3, 30), timezone="Europe/Berlin")
    queries = [query.with_(breakdown="device_type"), query.with_(granularity=Granularity.DAY),
               query.with_(start=date(2026, 3, 27), end=date(2026, 3, 28))]
    with DuckDBBackend(":memory:") as store:
        store.insert_events(event_table(rows))
        together = run_conversion_reports(store, DEFINITIONS, queries)
        alone = [run_conversions(store, DEFINITIONS, q) for q in queries]
    assert together == alone
    # sessions: a's on the 27th, b's two on the 28th (50 minutes apart); a's and c's on the 29th
    assert {g.total.eligible_units for g in together[2].goals if not g.eligible} == {3}
    assert {g.total.eligible_units for g in together[0].goals if not g.eligible} == {2}
    assert [p.stats.eligible_units for p in together[1].goals[0].periods] == [2, 0]
    with pytest.raises(ValueError, match="differ only"):
        combine_queries([query, query.with_(unit=Unit.VISITOR)])


def test_days_across_the_dst_change_in_berlin() -> None:
    """Units whose first event is at 23:30 UTC on 28 and 29 March belong to 29 and 30 March in Berlin
    (UTC+1 before the change, UTC+2 after); one at 22:30 UTC on 29 March is already 30 March (CEST)."""
    rows = [
        {"ts": datetime(2026, 3, 28, 22, 30), "visitor_id": "a", "event": "view_item"},  # 23:30 CET, 28th
        {"ts": datetime(2026, 3, 28, 23, 30), "visitor_id": "b", "event": "view_item"},  # 00:30 CET, 29th
        {"ts": datetime(2026, 3, 28, 23, 40), "visitor_id": "b", "event": "view_item"},  # repeated action
        {"ts": datetime(2026, 3, 29, 21, 59), "visitor_id": "c", "event": "page_view"},  # 23:59 CEST, 29th
        {"ts": datetime(2026, 3, 29, 22, 30), "visitor_id": "d", "event": "view_item"},  # 00:30 CEST, 30th
    ]
    query = Query(project="test", timezone="Europe/Berlin", granularity=Granularity.DAY)
    with DuckDBBackend(":memory:") as store:
        store.insert_events(event_table(rows))
        got = sql_counts(store, query)
        assert_same(got, reference_counts(as_events(rows), GOALS, query))
    view = {k[2]: v[:3] for k, v in got.items() if k[0] == 0 and k[2] is not None}
    assert view == {date(2026, 3, 28): (1, 1, 1), date(2026, 3, 29): (2, 1, 2), date(2026, 3, 30): (1, 1, 1)}
    assert got[(0, None, None)][:3] == (4, 3, 4)
