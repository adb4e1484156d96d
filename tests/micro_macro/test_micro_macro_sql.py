"""The micro → macro SQL against a pure-Python reference on random event logs (visitor unit)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from mm_events import definitions, event_logs

from conftest import event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit
from keystep.query import Query
from keystep.sql.micro_macro import build_micro_macro

MICRO = (
    ("view_item", "view_item"),
    ("add_to_cart", "add_to_cart"),
    ("newsletter", "newsletter_signup"),
    ("survey", "survey"),
)
MACRO = {"purchase": ("purchase", None), "demo": ("demo_request", 25.0)}


def reference(events: Sequence[dict[str, Any]], macro: str) -> dict[int, dict[str, Any]]:
    """goal index (-1: all units) -> the statistics the SQL module documents, computed per unit."""
    macro_event, fixed = MACRO[macro]
    units: dict[str, dict[str, Any]] = {}
    for e in events:
        u = units.setdefault(e["visitor_id"], {"macro": None, "value": 0.0, "firsts": {}})
        if e["event"] == macro_event:
            u["macro"] = e["ts"] if u["macro"] is None else min(u["macro"], e["ts"])
            u["value"] += fixed if fixed is not None else (e.get("revenue") or 0.0)
        u["firsts"][e["event"]] = min(u["firsts"].get(e["event"], e["ts"]), e["ts"])

    def stats(members: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "units": len(members),
            "macro_units": sum(m["macro"] is not None for m in members),
            "value_sum": sum(m["value"] for m in members),
            "value_sq_sum": sum(m["value"] ** 2 for m in members),
        }

    out = {-1: {**stats(list(units.values())), "after_only": 0, "lag_median_s": None}}
    for i, (_, event) in enumerate(MICRO):
        did = []
        after = 0
        lags: list[float] = []
        for u in units.values():
            first: datetime | None = u["firsts"].get(event)
            if first is None:
                continue
            if u["macro"] is None or first <= u["macro"]:
                did.append(u)
                if u["macro"] is not None:
                    lags.append((u["macro"] - first).total_seconds())
            else:
                after += 1
        out[i] = {
            **stats(did),
            "after_only": after,
            "lag_median_s": statistics.median(lags) if lags else None,
        }
    return out


@settings(max_examples=60, deadline=None)
@given(log=event_logs())
@pytest.mark.parametrize("macro", ["purchase", "demo"])
def test_counts_values_and_lags_match_the_reference(macro: str, log: list[dict[str, Any]]) -> None:
    defs = definitions()
    with DuckDBBackend(":memory:") as store:
        store.insert_events(event_table(log))
        rows = list(
            store.execute(
                build_micro_macro(Query(project="test", unit=Unit.VISITOR), defs.micro, defs.goal(macro))
            )
        )
    expected = reference(log, macro)
    assert [r["goal"] for r in rows] == [-1, 0, 1, 2, 3]
    for r in rows:
        want = expected[r["goal"]]
        for key in ("units", "macro_units", "after_only"):
            assert r[key] == want[key], key
        for key in ("value_sum", "value_sq_sum", "lag_median_s"):
            assert (r[key] is None) == (want[key] is None), key
            if want[key] is not None:
                assert r[key] == pytest.approx(want[key], rel=1e-9, abs=1e-6), key
