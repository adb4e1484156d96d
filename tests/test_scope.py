"""Sessions and units: the given session id, else a new session after the inactivity timeout."""

from __future__ import annotations

from datetime import timedelta

from conftest import EPOCH, event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit
from keystep.query import Query
from keystep.sql.params import Params
from keystep.sql.scope import build_units


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
    from datetime import date

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
