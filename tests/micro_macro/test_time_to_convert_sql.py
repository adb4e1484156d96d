"""The time-to-convert SQL against a pure-Python reference on random event logs (visitor unit)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from mm_events import definitions, event_logs

from conftest import event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit
from keystep.query import Query
from keystep.sql.time_to_convert import build_time_to_convert

MICRO_EVENTS = {
    "view_item": "view_item",
    "add_to_cart": "add_to_cart",
    "newsletter": "newsletter_signup",
    "survey": "survey",
}
MACRO_EVENTS = {"purchase": "purchase", "demo": "demo_request"}


def reference(
    events: Sequence[dict[str, Any]], start: set[str], end: set[str]
) -> Counter[tuple[str, int | None]]:
    """(status, whole seconds) -> units, straight from the definitions in the module docstring."""
    observation_end = max(e["ts"] for e in events)
    firsts: dict[str, list[datetime | None]] = {}
    for e in events:
        f = firsts.setdefault(e["visitor_id"], [None, None])
        for i, names in enumerate((start, end)):
            current = f[i]
            if e["event"] in names and (current is None or e["ts"] < current):
                f[i] = e["ts"]
    out: Counter[tuple[str, int | None]] = Counter()
    for s, t in firsts.values():
        if s is None and t is None:
            continue
        if s is None:
            out["macro_only", None] += 1
        elif t is None:
            out["censored", (observation_end - s) // timedelta(seconds=1)] += 1
        elif t < s:
            out["macro_first", None] += 1
        else:
            out["converted", (t - s) // timedelta(seconds=1)] += 1
    return out


@settings(max_examples=60, deadline=None)
@given(log=event_logs())
def test_statuses_and_durations_match_the_reference(log: list[dict[str, Any]]) -> None:
    with DuckDBBackend(":memory:") as store:
        store.insert_events(event_table(log))
        check(store, log)


def check(memory_store: DuckDBBackend, log: list[dict[str, Any]]) -> None:
    defs = definitions()
    query = Query(project="test", unit=Unit.VISITOR)
    cases = [
        (
            [m for g in defs.micro for m in g.match],
            [m for g in defs.macro for m in g.match],
            set(MICRO_EVENTS.values()),
            set(MACRO_EVENTS.values()),
        ),
        (defs.goal("add_to_cart").match, defs.goal("purchase").match, {"add_to_cart"}, {"purchase"}),
    ]
    for start, end, start_names, end_names in cases:
        rows = memory_store.execute(build_time_to_convert(query, start, end))
        got: Counter[tuple[str, int | None]] = Counter()
        for r in rows:
            got[r["status"], r["duration_s"]] += r["units"]
        assert got == reference(log, start_names, end_names)
        assert {r["observation_end"] for r in rows} <= {max(e["ts"] for e in log)}
