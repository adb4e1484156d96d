"""`keystep funnel --json`: whole bodies against a small hand-built fixture, answers worked out by hand below.
The Wilson intervals, p-values and Holm adjustment come from `keystep.stats` (tested there); what is checked
here is that the right counts reach them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.cli.app import app
from keystep.serialize import to_data
from keystep.stats.multiple_testing import holm
from keystep.stats.proportions import compute_rate, two_proportion_test

CONFIG = """\
timezone: UTC
goals:
  cart: {kind: micro, category: process_milestone, label: Added to cart, match: add_to_cart}
funnels:
  shop:
    steps: [view_item, cart, purchase]
    window: 1h
    unit: visitor
"""

# minutes after 2026-03-02 09:00 UTC
EVENTS = [
    # v1 desktop: all three steps; 10 and 20 minutes between them
    {"visitor_id": "v1", "device_type": "desktop", "event": "view_item", "t": 0},
    {"visitor_id": "v1", "device_type": "desktop", "event": "add_to_cart", "t": 10},
    {"visitor_id": "v1", "device_type": "desktop", "event": "purchase", "t": 30},
    # v2 desktop: view, cart after 20 minutes
    {"visitor_id": "v2", "device_type": "desktop", "event": "view_item", "t": 0},
    {"visitor_id": "v2", "device_type": "desktop", "event": "add_to_cart", "t": 20},
    # v3 mobile: the cart comes after 90 minutes, outside the 1h window
    {"visitor_id": "v3", "device_type": "mobile", "event": "view_item", "t": 0},
    {"visitor_id": "v3", "device_type": "mobile", "event": "add_to_cart", "t": 90},
    # v4 mobile: only views
    {"visitor_id": "v4", "device_type": "mobile", "event": "view_item", "t": 0},
    {"visitor_id": "v4", "device_type": "mobile", "event": "page_view", "t": 1},
    # v5 mobile: never viewed an item, so never entered the funnel
    {"visitor_id": "v5", "device_type": "mobile", "event": "add_to_cart", "t": 0},
    {"visitor_id": "v5", "device_type": "mobile", "event": "purchase", "t": 5},
    # v6 desktop: cart after 5 minutes, purchase after 65 (outside the window)
    {"visitor_id": "v6", "device_type": "desktop", "event": "view_item", "t": 0},
    {"visitor_id": "v6", "device_type": "desktop", "event": "add_to_cart", "t": 5},
    {"visitor_id": "v6", "device_type": "desktop", "event": "purchase", "t": 65},
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    db, config = tmp_path / "k.duckdb", tmp_path / "keystep.yaml"
    config.write_text(CONFIG)
    backend = DuckDBBackend(db)
    backend.insert_events(event_table(EVENTS))
    backend.close()
    return db, config


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, ["funnel", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def step(
    k: int,
    name: str,
    units: int,
    start: float | None,
    prev: float | None,
    drop: int,
    drop_rate: float | None,
    median: float | None,
    p90: float | None,
) -> dict[str, Any]:
    return {
        "step": k,
        "name": name,
        "units": units,
        "conversion_from_start": start,
        "conversion_from_previous": prev,
        "drop_off": drop,
        "drop_off_rate": drop_rate,
        "median_seconds": median,
        "p90_seconds": p90,
    }


# Entered (did view_item): v1 v2 v3 v4 v6 = 5; cart within 1h after the view: v1 v2 v6 = 3; purchase: v1 = 1.
# Times view -> cart: 10, 20, 5 minutes: median 10 min = 600 s, p90 (linear) 10 + 0.8 * (20 - 10) = 18 min
# = 1080 s. Cart -> purchase: v1 only, 20 min = 1200 s.
TOTAL = {
    "entered": 5,
    "converted": 1,
    "rate": to_data(compute_rate(1, 5)),
    "steps": [
        step(1, "view_item", 5, 1.0, 1.0, 0, 0.0, None, None),
        step(2, "cart", 3, 0.6, 0.6, 2, 0.4, 600.0, 1080.0),
        step(3, "purchase", 1, 0.2, 1 / 3, 2, 2 / 3, 1200.0, 1200.0),
    ],
}


def header(breakdown: str | None) -> dict[str, Any]:
    return {
        "funnel": "shop",
        "steps": ["view_item", "cart", "purchase"],
        "mode": "ordered",
        "unit": "visitor",
        "window": 3600.0,
        "project": None,
        "start": None,
        "end": None,
        "timezone": "UTC",
        "breakdown": breakdown,
        "alpha": 0.05,
    }


def test_named_funnel_whole_body(files: tuple[Path, Path]) -> None:
    db, config = files
    body = invoke("shop", "--db", str(db), "--config", str(config), "--json")
    assert body == {**header(None), "total": TOTAL, "segments": []}


def test_breakdown_whole_body(files: tuple[Path, Path]) -> None:
    db, config = files
    body = invoke("shop", "--db", str(db), "--config", str(config), "--breakdown", "device_type", "--json")
    # desktop: v1 v2 v6 entered, all three carted (10, 20, 5 min as above), v1 purchased: 1 of 3.
    # mobile: v3 v4 entered (v5 never did), none carted within the window: 0 of 2.
    desktop = {
        "entered": 3,
        "converted": 1,
        "rate": to_data(compute_rate(1, 3)),
        "steps": [
            step(1, "view_item", 3, 1.0, 1.0, 0, 0.0, None, None),
            step(2, "cart", 3, 1.0, 1.0, 0, 0.0, 600.0, 1080.0),
            step(3, "purchase", 1, 1 / 3, 1 / 3, 2, 2 / 3, 1200.0, 1200.0),
        ],
    }
    mobile = {
        "entered": 2,
        "converted": 0,
        "rate": to_data(compute_rate(0, 2)),
        "steps": [
            step(1, "view_item", 2, 1.0, 1.0, 0, 0.0, None, None),
            step(2, "cart", 0, 0.0, 0.0, 2, 1.0, None, None),
            step(3, "purchase", 0, 0.0, None, 0, None, None, None),
        ],
    }
    p_desktop = float(two_proportion_test(1, 3, 0, 2).p_value)
    p_mobile = float(two_proportion_test(0, 2, 1, 3).p_value)
    adjusted = [float(p) for p in holm([p_desktop, p_mobile])]
    segments = [
        {
            "segment": "desktop",
            "table": desktop,
            "rest_rate": to_data(compute_rate(0, 2)),
            "p_value": p_desktop,
            "adjusted_p": adjusted[0],
            "significant": adjusted[0] < 0.05,
            "direction": "higher",
        },
        {
            "segment": "mobile",
            "table": mobile,
            "rest_rate": to_data(compute_rate(1, 3)),
            "p_value": p_mobile,
            "adjusted_p": adjusted[1],
            "significant": adjusted[1] < 0.05,
            "direction": "lower",
        },
    ]
    assert body == {**header("device_type"), "total": TOTAL, "segments": segments}


def test_adhoc_steps_window_and_modes(files: tuple[Path, Path]) -> None:
    db, config = files
    common = (
        "--db",
        str(db),
        "--config",
        str(config),
        "--json",
        "--steps",
        "view_item,add_to_cart",
        "--window",
        "15m",
    )
    # within 15 minutes of the view: v1 (10) and v6 (5); v2's 20 minutes is too late
    for mode in ("ordered", "strict", "any_order"):
        body = invoke(*common, "--mode", mode)
        assert [s["units"] for s in body["total"]["steps"]] == [5, 2], mode
        assert body["funnel"] == "adhoc" and body["mode"] == mode and body["window"] == 900.0
    # the named funnel with its window overridden: 30 minutes lets v2's cart in
    body = invoke("shop", "--db", str(db), "--config", str(config), "--json", "--window", "30m")
    assert [s["units"] for s in body["total"]["steps"]] == [5, 3, 1]


def test_errors_name_the_problem(files: tuple[Path, Path]) -> None:
    db, config = files
    runner = CliRunner()
    neither = runner.invoke(app, ["funnel", "--db", str(db), "--config", str(config)])
    assert neither.exit_code == 2 and "--steps" in neither.output
    unknown = runner.invoke(app, ["funnel", "nope", "--db", str(db), "--config", str(config)])
    assert unknown.exit_code == 2 and "no funnel named 'nope'" in unknown.output
    window = runner.invoke(
        app, ["funnel", "shop", "--window", "soon", "--db", str(db), "--config", str(config)]
    )
    assert window.exit_code == 2 and "--window" in window.output


def test_rich_tables(files: tuple[Path, Path]) -> None:
    db, config = files
    result = CliRunner().invoke(
        app, ["funnel", "shop", "--db", str(db), "--config", str(config), "--breakdown", "device_type"]
    )
    assert result.exit_code == 0, result.output
    assert "Funnel shop" in result.output and "desktop" in result.output and "10 min" in result.output
