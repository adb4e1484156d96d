"""The experiment's sufficient statistics against a pure-Python reference on random event logs:
first exposure wins, conversions count only after it (within the window), the covariate before it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EPOCH, event_table
from keystep.analysis.experiments import compute_experiment
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit, parse_definitions
from keystep.experiments.definitions import Method
from keystep.query import Query
from keystep.sql.experiments import LOOKBACK, build_experiment

CONFIG = """
goals:
  cart: {kind: micro, category: process_milestone, match: add_to_cart}
  purchase: {kind: macro, type: revenue, match: purchase, value: {from: revenue}}
experiments:
  button:
    variants: [control, green]
    primary: purchase
    secondary: [cart, "purchase:value", "cart:count", "purchase:value/cart:count"]
    window: 2d
"""
DEFS = parse_definitions(CONFIG)
EXPERIMENT = DEFS.experiment("button")
WINDOW = timedelta(days=2)
VISITORS = ("a", "b", "c", "d", "e")


@st.composite
def logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        visitor = draw(st.sampled_from(VISITORS))
        minute = draw(st.integers(0, 6 * 24 * 60))
        kind = draw(st.sampled_from(("exposure", "exposure", "add_to_cart", "purchase", "page_view")))
        row: dict[str, Any] = {"visitor_id": visitor, "t": minute}
        if kind == "exposure":
            experiment = draw(st.sampled_from(("button", "button", "other")))
            variant = draw(st.sampled_from(("control", "green", "0", "1", "blue")))
            row.update(event=draw(st.sampled_from(("experiment_exposure", "Experiment Viewed"))),
                       properties={"experiment": experiment, "variant": variant}
                       if draw(st.booleans()) else {"experiment_id": experiment, "variation_id": variant})
        else:
            row["event"] = kind
            if kind == "purchase":
                row["revenue"] = float(draw(st.integers(1, 50)))
        rows.append(row)
    return rows


def reference(rows: list[dict[str, Any]]) -> dict[int | None, list[float]]:
    """Per variant: n, then per metric (Σy, Σy², Σx, Σx², Σxy)."""
    events = sorted(({**r, "ts": EPOCH + timedelta(minutes=r["t"]), "event_id": str(i)} for i, r in enumerate(rows)),
                    key=lambda r: (r["t"], r["event_id"]))  # ties in time: the lower event id (as text) first
    first: dict[str, tuple[Any, Any]] = {}
    for e in events:
        props = e.get("properties") or {}
        if e["event"] in ("experiment_exposure", "Experiment Viewed") and (
                props.get("experiment") or props.get("experiment_id")) == "button" and e["visitor_id"] not in first:
            raw = props.get("variant") or props.get("variation_id")
            first[e["visitor_id"]] = (e["ts"], {"control": 0, "0": 0, "green": 1, "1": 1}.get(raw))
    out: dict[int | None, list[float]] = defaultdict(lambda: [0.0] * 20)
    for visitor, (at, variant) in first.items():
        mine = [e for e in events if e["visitor_id"] == visitor]
        after = [e for e in mine if at <= e["ts"] <= at + WINDOW]
        before = [e for e in mine if at - LOOKBACK <= e["ts"] < at]

        def metrics(group: list[dict[str, Any]]) -> list[float]:
            purchases = [e for e in group if e["event"] == "purchase"]
            carts = [e for e in group if e["event"] == "add_to_cart"]
            return [float(bool(purchases)), float(bool(carts)), sum(e["revenue"] for e in purchases),
                    float(len(carts))]

        y, x = metrics(after), metrics(before)
        acc = out[variant]
        acc[0] += 1
        for i in range(4):
            acc[1 + 4 * i: 5 + 4 * i] = [a + b for a, b in zip(acc[1 + 4 * i: 5 + 4 * i],
                                                                 (y[i], y[i] ** 2, x[i], x[i] ** 2), strict=True)]
        # the ratio (revenue per cart): its denominator z = carts after exposure, and Σz, Σz², Σyz
        acc[17:20] = [acc[17] + y[3], acc[18] + y[3] ** 2, acc[19] + y[2] * y[3]]
    return dict(out)


@settings(max_examples=40, deadline=None)
@given(rows=logs())
def test_sums_match_the_reference(rows: list[dict[str, Any]]) -> None:
    backend = DuckDBBackend(":memory:")
    try:
        backend.insert_events(event_table(rows))
        got: dict[int | None, list[float]] = defaultdict(lambda: [0.0] * 20)
        for r in backend.execute(build_experiment(EXPERIMENT, Query(project="test"))):
            acc = got[r["variant"]]
            acc[0] += r["n"]
            for i in range(4):
                for j, col in enumerate(("s", "ss", "x", "xx")):
                    acc[1 + 4 * i + j] += r[f"{col}{i}"]
            assert (r["s4"], r["ss4"]) == (r["s2"], r["ss2"])  # the ratio's numerator is the value metric
            acc[17:20] = [acc[17] + r["z4"], acc[18] + r["zz4"], acc[19] + r["yz4"]]
    finally:
        backend.close()
    assert dict(got) == reference(rows)


def test_srm_is_checked_first_and_effects_come_with_the_configured_method() -> None:
    """1,000 control and 1,100 green units (SRM: chi² = 4.76, p = 0.029, not flagged at 0.001); 100 vs 140
    purchases."""
    rows = []
    for i in range(2100):
        variant = "control" if i < 1000 else "green"
        rows.append({"variant": variant, "day": date(2026, 3, 2), "n": 1,
                     **_unit(purchase=(i < 100) or (1000 <= i < 1140))})
    merged: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = r["variant"]
        acc = merged.setdefault(key, {"variant": 0 if key == "control" else 1, "day": r["day"], "n": 0,
                                      **{f"{c}{i}": 0.0 for c in ("s", "ss", "x", "xx", "xy")
                                         for i in range(len(EXPERIMENT.metrics))}})
        acc["n"] += 1
        for col in ("s0", "ss0"):
            acc[col] += r[col]
    result = compute_experiment(EXPERIMENT, merged.values(), Query(project="test", unit=Unit.VISITOR),
                                method=Method.FREQUENTIST)
    assert result.units == (1000, 1100)
    expected_chi2 = (1000 - 1050) ** 2 / 1050 * 2
    assert abs(result.srm.chi_square - expected_chi2) < 1e-9 and not result.srm.mismatch
    (primary,) = [m for m in result.metrics if m.metric == "purchase"]
    (green,) = primary.comparisons
    assert abs(green.effect - ((140 / 1100) / (100 / 1000) - 1)) < 1e-12  # type: ignore[operator]
    assert [a.mean for a in primary.arms] == [0.1, 140 / 1100]


def _unit(purchase: bool) -> dict[str, float]:
    return {"s0": float(purchase), "ss0": float(purchase)}
