"""The ordered mode against ClickHouse's own `windowFunnel` (in-process, by chdb) on the same random logs."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import chdb
import pyarrow.parquet as pq
from funnel_events import STEP_SETS, WINDOWS, event_logs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import event_table
from keystep.analysis.funnels import funnel_rows
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Funnel, FunnelMode, Matcher, Step, Unit
from keystep.query import Query


def clickhouse_counts(path: Path, steps: tuple[tuple[str, ...], ...], window: timedelta) -> list[int]:
    """Units reaching each step per windowFunnel(window) over visitors (test-only literals in the SQL)."""
    conds = ", ".join("event IN (" + ", ".join(f"'{name}'" for name in names) + ")" for names in steps)
    window_us = window // timedelta(microseconds=1)
    out = chdb.query(
        f"SELECT windowFunnel({window_us})(toUInt64(toUnixTimestamp64Micro(ts)), {conds}) AS level"
        f" FROM file('{path}', Parquet) GROUP BY visitor_id",
        "CSV",
    )
    levels = [int(row[0]) for row in csv.reader(io.StringIO(str(out))) if row]
    return [sum(1 for level in levels if level >= k) for k in range(1, len(steps) + 1)]


def keystep_counts(
    backend: DuckDBBackend, steps: tuple[tuple[str, ...], ...], window: timedelta
) -> list[int]:
    f = Funnel(
        "f",
        tuple(Step("+".join(n), (Matcher(events=n),)) for n in steps),
        window,
        FunnelMode.ORDERED,
        Unit.VISITOR,
    )
    row = funnel_rows(backend, f, Query(project="test"))[0]
    return list(row["units"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=event_logs(max_events=40), steps=st.sampled_from(STEP_SETS), window=st.sampled_from(WINDOWS))
def test_ordered_mode_equals_window_funnel(
    tmp_path: Path, events: list[dict[str, Any]], steps: tuple[tuple[str, ...], ...], window: timedelta
) -> None:
    table = event_table(events)
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    backend = DuckDBBackend(":memory:")
    try:
        backend.insert_events(table)
        got = keystep_counts(backend, steps, window)
    finally:
        backend.close()
    want = clickhouse_counts(path, steps, window)
    # windowFunnel also returns a row (level 0) for visitors that never did step 1; they count nowhere
    assert got == want


def test_window_funnel_tie_rules_pinned() -> None:
    """What the ordered mode copies, shown on ClickHouse itself: equal timestamps count in step order, one
    event may serve two consecutive steps, and the window's end is inclusive."""
    sql = (
        "SELECT u, windowFunnel(100)(ts, position(ev, 'A') > 0, position(ev, 'B') > 0, position(ev, 'C') > 0)"
        " FROM values('u String, ts UInt64, ev String',"
        " ('tie', 10, 'B'), ('tie', 10, 'A'),"  # B listed before A at the same time: still A then B
        " ('both', 10, 'AB'),"  # one event matching steps 1 and 2
        " ('edge', 0, 'A'), ('edge', 100, 'B'), ('edge', 101, 'C'))"  # B at exactly the window's end
        " GROUP BY u ORDER BY u"
    )
    rows = {r[0]: int(r[1]) for r in csv.reader(io.StringIO(str(chdb.query(sql, "CSV")))) if r}
    assert rows == {"both": 2, "edge": 2, "tie": 2}
