"""What every dashboard page asks of the store: the project list and the last day with events (the default
range ends there). Both are answered mostly from DuckDB's row-group statistics; these tests hold them to
the plain definition on stores where the statistics cannot answer alone (projects mixed in one row group,
a project with events that was never created, one created without events)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa

from conftest import event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.collector import keys
from keystep.conversions.definitions import Definitions
from keystep.web.app import Dashboard


def dashboard(store: DuckDBBackend, timezone: str = "UTC") -> Dashboard:
    return Dashboard(lambda: store, lambda: Definitions(timezone=timezone), lambda _: None, lambda: None)


def events(project: str, *times: datetime) -> pa.Table:
    return event_table([{"visitor_id": "v", "event": "page_view", "ts": ts, "event_id": f"{project}{i}"}
                        for i, ts in enumerate(times)], project=project)


def test_projects_with_events_or_created_each_once_in_order(tmp_path: Path) -> None:
    with DuckDBBackend(tmp_path / "store.duckdb") as store:
        keys.create_project(store, "Shop", "shop")
        keys.create_project(store, "Fresh", "fresh")  # created, no events yet
        mixed = pa.concat_tables([events("shop", datetime(2026, 5, 1, 10)),
                                  events("imported", datetime(2026, 5, 2, 10)),  # never created
                                  events("another", datetime(2026, 4, 1))])
        store.insert_events(mixed)  # one batch: the three projects share a row group
        assert dashboard(store).projects() == ["another", "fresh", "imported", "shop"]
        store.insert_events(events("zeta", datetime(2026, 5, 3)))
        assert dashboard(store).projects() == ["another", "fresh", "imported", "shop", "zeta"]


def test_no_projects_at_all(tmp_path: Path) -> None:
    with DuckDBBackend(tmp_path / "store.duckdb") as store:
        assert dashboard(store).projects() == []
        assert dashboard(store).last_day(None) is None
        store.insert_events(events("imported", datetime(2026, 5, 2, 10)))
        assert dashboard(store).projects() == ["imported"]


def test_the_last_day_with_events_in_the_reporting_timezone(tmp_path: Path) -> None:
    with DuckDBBackend(tmp_path / "store.duckdb") as store:
        keys.create_project(store, "Shop", "shop")
        store.insert_events(pa.concat_tables([
            events("shop", datetime(2026, 5, 1, 10), datetime(2026, 5, 3, 22, 30)),  # 00:30 on the 4th in Berlin
            events("other", datetime(2026, 6, 9, 12)),
        ]))
        assert dashboard(store).last_day("shop") == date(2026, 5, 3)
        assert dashboard(store, "Europe/Berlin").last_day("shop") == date(2026, 5, 4)
        assert dashboard(store).last_day(None) == date(2026, 6, 9)
        assert dashboard(store).last_day("fresh") is None
