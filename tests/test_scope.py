"""Sessions and units: the given session id, else a new session after the inactivity timeout."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conftest import EPOCH, event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit
from keystep.query import Granularity, Query
from keystep.sql.params import Params
from keystep.sql.scope import build_local_day, build_units, utc_offsets


def units(store: DuckDBBackend, query: Query) -> list[tuple[str, str]]:
    p = Params()
    sql = p.sql("WITH " + build_units(query, p) + " SELECT unit_id, segment FROM units ORDER BY first_ts, unit_id")
    return [(r["unit_id"], r["segment"]) for r in store.execute(sql)]


def test_sessions_from_inactivity_and_from_tracker_ids(store: DuckDBBackend) -> None:
    store.insert_events(event_table([
        {"visitor_id": "a", "event": "page_view", "t": 0},
        {"visitor_id": "a", "event": "page_view", "t": 29},  # 29 min later: same session
        {"visitor_id": "a", "event": "page_view", "t": 60},  # 31 min after the last: a new session
        {"visitor_id": "b", "event": "page_view", "t": 0, "session_id": "s1"},
        {"visitor_id": "b", "event": "page_view", "t": 500, "session_id": "s1"},  # the tracker's id wins
        {"visitor_id": "c", "event": "page_view", "t": 0, "session_id": "s1"},  # same id, other visitor
    ]))
    got = units(store, Query(project="test", unit=Unit.SESSION))
    assert len(got) == 4
    assert len({u for u, _ in got}) == 4


def test_timeout_is_configurable(store: DuckDBBackend) -> None:
    store.insert_events(event_table([
        {"visitor_id": "a", "event": "page_view", "t": 0},
        {"visitor_id": "a", "event": "page_view", "t": 20},
    ]))
    assert len(units(store, Query(project="test", unit=Unit.SESSION))) == 1
    assert len(units(store, Query(project="test", unit=Unit.SESSION, session_timeout=timedelta(minutes=10)))) == 2


def test_new_and_returning_visitors(store: DuckDBBackend) -> None:
    store.insert_events(event_table([
        {"visitor_id": "a", "event": "page_view", "t": 0},
        {"visitor_id": "a", "event": "page_view", "t": 2 * 24 * 60},  # comes back two days later
        {"visitor_id": "b", "event": "page_view", "t": 2 * 24 * 60},
    ]))
    sessions = units(store, Query(project="test", unit=Unit.SESSION, breakdown="visitor_type"))
    assert [s for _, s in sessions] == ["new", "returning", "new"]

    later = Query(project="test", unit=Unit.VISITOR, breakdown="visitor_type", start=date(2026, 3, 4))
    assert sorted(units(store, later)) == [("a", "returning"), ("b", "new")]


def test_user_unit_joins_anonymous_steps_to_the_identified_user(store: DuckDBBackend) -> None:
    store.insert_events(event_table([
        {"visitor_id": "a", "event": "view_item", "t": 0},
        {"visitor_id": "a", "event": "purchase", "t": 5, "user_id": "u1"},
        {"visitor_id": "b", "event": "view_item", "t": 0},
    ]))
    assert sorted(u for u, _ in units(store, Query(project="test", unit=Unit.USER))) == ["b", "u1"]


def test_identify_and_alias_links_join_visitors_across_devices(store: DuckDBBackend) -> None:
    """Phone visitor p browses anonymously and is identified as u1 (an identities row, as identify sends);
    laptop visitor l buys as u1. Per user, both are one person; per visitor, they stay two."""
    store.insert_events(event_table([
        {"visitor_id": "p", "event": "view_item", "t": 0},
        {"visitor_id": "l", "event": "purchase", "t": 60, "user_id": "u1"},
        {"visitor_id": "x", "event": "view_item", "t": 0},
    ]))
    store.insert_rows("identities", [{"project": "test", "visitor_id": "p", "user_id": "u1", "ts": EPOCH,
                                      "source": "identify"}])
    store.insert_rows("identities", [{"project": "elsewhere", "visitor_id": "x", "user_id": "u1", "ts": EPOCH,
                                      "source": "identify"}])  # another project's link changes nothing here
    assert sorted(u for u, _ in units(store, Query(project="test", unit=Unit.USER))) == ["u1", "x"]
    assert sorted(u for u, _ in units(store, Query(project="test", unit=Unit.VISITOR))) == ["l", "p", "x"]


def test_events_at_the_same_instant_share_a_session(store: DuckDBBackend) -> None:
    """No inactivity between two events at one instant: they are one session, however the database
    orders them (the order of equal timestamps is arbitrary, and with this many events it differs
    between the parallel sorts of one query)."""
    rows = []
    for v in range(15_000):
        for k, t in enumerate((0, 0, 0, 10, 10, 45)):  # three at once, two at once 10 min later, one after 35 min
            rows.append({"visitor_id": f"v{v}", "event": "page_view", "t": t, "event_id": f"{v}-{5 - k}"})
    store.insert_events(event_table(rows))
    got = units(store, Query(project="test", unit=Unit.SESSION))
    assert len(got) == 30_000


def test_utc_offsets_over_a_range_with_its_transitions() -> None:
    """Berlin moves to summer time on 29 March 2026 at 01:00 UTC and back on 25 October at 01:00 UTC."""
    lo, hi = datetime(2026, 3, 1), datetime(2026, 11, 30)
    assert utc_offsets("Europe/Berlin", lo, hi) == (
        (datetime(2026, 3, 29, 1), 3600), (datetime(2026, 10, 25, 1), 7200), (hi, 3600))
    assert utc_offsets("Europe/Berlin", datetime(2026, 4, 1), datetime(2026, 5, 1)) == ((datetime(2026, 5, 1), 7200),)
    # St. John's (UTC-3:30) springs forward on 8 March 2026 at 02:00 local time, 05:30 UTC
    assert utc_offsets("America/St_Johns", lo, datetime(2026, 4, 1)) == (
        (datetime(2026, 3, 8, 5, 30), -12600), (datetime(2026, 4, 1), -9000))


@pytest.mark.parametrize("granularity", [Granularity.DAY, Granularity.WEEK])
def test_local_days_inside_and_outside_the_range(store: DuckDBBackend, granularity: Granularity) -> None:
    """The day (or week) of a timestamp in the reporting timezone, as zoneinfo has it, for instants
    around both of Berlin's 2026 changes, inside the query's range (offsets known in advance) and outside
    it (converted by the database), and around the midnights that start a week (Monday)."""
    query = Query(start=date(2026, 3, 27), end=date(2026, 10, 26), timezone="Europe/Berlin", granularity=granularity)
    zone = ZoneInfo("Europe/Berlin")
    instants = [base + timedelta(minutes=m) for base in (datetime(2026, 3, 28, 22), datetime(2026, 3, 29, 0),
                                                         datetime(2026, 10, 24, 21), datetime(2026, 10, 25, 0),
                                                         datetime(2026, 3, 29, 21), datetime(2026, 10, 25, 22),
                                                         datetime(2026, 3, 26, 22), datetime(2026, 10, 26, 22))
                for m in range(0, 180, 7)]
    p = Params()
    day = build_local_day(query, p, "t")
    got = store.execute(p.sql(f"SELECT t, {day} AS day FROM unnest($instants) AS u(t) ORDER BY t".replace(
        "$instants", p.bind(instants)))).rows
    for t, local in got:
        want = t.replace(tzinfo=UTC).astimezone(zone).date()
        if granularity is Granularity.WEEK:
            want -= timedelta(days=want.weekday())
        assert local == want, t
