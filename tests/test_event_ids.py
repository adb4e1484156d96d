"""The store keeps one event per (project, event_id): the first received, across batches, reopened
stores, failed writes and stores made when a unique index kept it so; checked against a dictionary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EPOCH, event_table
from keystep.backends.base import SQL
from keystep.backends.duckdb import DIALECT, DuckDBBackend
from keystep.events.schema import EVENT_COLUMNS

# (project, event id, seconds after EPOCH it was received): few ids, so that they repeat
sent = st.tuples(st.sampled_from(["p", "q"]), st.sampled_from(["a", "b", "c", "d", "a\x00", ""]),
                 st.integers(0, 5))
batches = st.lists(st.tuples(st.lists(sent, max_size=12), st.booleans()), max_size=6)


def _table(events: list[tuple[str, str, int]], marks: list[int]) -> pa.Table:
    """One batch; each event's `visitor_id` is its mark, to tell which of a repeated id was kept."""
    tables = [event_table([{"event": "x", "visitor_id": f"m{mark}", "t": 0, "event_id": event_id,
                            "received_at": EPOCH + timedelta(seconds=seconds)}], project=project)
              for (project, event_id, seconds), mark in zip(events, marks, strict=True)]
    return pa.concat_tables(tables) if tables else event_table([])


@settings(max_examples=40, deadline=None)
@given(batches=batches)
def test_the_first_received_of_each_id_is_kept(tmp_path_factory: Any, batches: list[Any]) -> None:
    """Against a dictionary: an id already stored is ignored; within a batch the earliest received wins
    (of equal times, the first in the batch); `insert_events` counts what it stored; reopening the store
    (`reopen`) rebuilds what it knows from the events."""
    db = tmp_path_factory.mktemp("ids") / "s.duckdb"
    want: dict[tuple[str, str], int] = {}
    mark = 0
    store = DuckDBBackend(db)
    try:
        for events, reopen in batches:
            marks = list(range(mark, mark + len(events)))
            mark += len(events)
            new: dict[tuple[str, str], tuple[int, int]] = {}
            for (project, event_id, seconds), m in zip(events, marks, strict=True):
                key = (project, event_id)
                if key not in want and (key not in new or seconds < new[key][0]):
                    new[key] = (seconds, m)
            assert store.insert_events(_table(events, marks)) == len(new)
            want.update({key: m for key, (_, m) in new.items()})
            if reopen:
                store.close()
                store = DuckDBBackend(db)
        rows = store.execute(SQL("SELECT project, event_id, visitor_id FROM events"))
        assert sorted((r["project"], r["event_id"], r["visitor_id"]) for r in rows) == sorted(
            (p, e, f"m{m}") for (p, e), m in want.items())
    finally:
        store.close()


def test_a_failed_write_forgets_its_ids(tmp_path: Path) -> None:
    """A batch the events table refuses (properties that are not JSON) is not stored: its ids can be
    stored later, also after the store was reopened."""
    db = tmp_path / "s.duckdb"
    with DuckDBBackend(db) as store:
        store.insert_events(event_table([{"event": "x", "visitor_id": "v", "t": 0, "event_id": "kept"}]))
        bad = event_table([{"event": "x", "visitor_id": "v", "t": 0, "event_id": "later", "properties": "{no"}])
        try:
            store.insert_events(bad)
        except duckdb.Error:
            pass
        else:
            raise AssertionError("the batch should have been refused")
        retry = event_table([{"event": "x", "visitor_id": "v", "t": 0, "event_id": i} for i in ("later", "kept")])
        assert store.insert_events(retry) == 1
    with DuckDBBackend(db) as store:
        assert store.insert_events(retry) == 0
        assert store.execute(SQL("SELECT count(*) AS n FROM events")).rows[0][0] == 2


def test_a_store_with_the_unique_index_loses_it_and_keeps_its_events(tmp_path: Path) -> None:
    """Stores of earlier versions kept ids unique by a primary key on (project, event_id): opening one for
    writing moves its events, unchanged and in order, into a table without it; ids stored before are
    still refused."""
    db = tmp_path / "old.duckdb"
    with DuckDBBackend(db) as store:  # today's table, with the primary key the earlier versions had
        store.insert_events(event_table([{"event": "x", "visitor_id": f"v{i}", "t": i} for i in range(5)]))
        before = store.execute(SQL("SELECT * FROM events ORDER BY rowid")).rows
    with duckdb.connect(str(db)) as con:
        columns = ", ".join(f"{c.name} {DIALECT.types[c.kind]}" for c in EVENT_COLUMNS)
        con.execute("ALTER TABLE events RENAME TO events_now")
        con.execute(f"CREATE TABLE events ({columns}, visitor_no BIGINT, PRIMARY KEY (project, event_id))")
        con.execute("INSERT INTO events SELECT * FROM events_now ORDER BY rowid")
        con.execute("DROP TABLE events_now")
    with DuckDBBackend(db) as store:
        keys = store.execute(SQL("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'events'"
                                 " AND constraint_type = 'PRIMARY KEY'"))
        assert keys.rows[0][0] == 0
        assert store.execute(SQL("SELECT * FROM events ORDER BY rowid")).rows == before
        again = event_table([{"event": "x", "visitor_id": "w", "t": 9, "event_id": i} for i in ("3", "new")])
        assert store.insert_events(again) == 1
