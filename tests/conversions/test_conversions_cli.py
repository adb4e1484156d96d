"""`keystep conversions --json`: whole bodies against a small hand-built fixture whose answers are worked out
by hand below. Wilson bounds are also checked against statsmodels' `proportion_confint`."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from conftest import EPOCH, event_table
from keystep.backends.duckdb import DuckDBBackend
from keystep.cli.app import app
from keystep.serialize import to_data
from keystep.stats.proportions import compute_rate

CONFIG = """\
timezone: UTC
goals:
  add_to_cart: {kind: micro, category: process_milestone, label: Added to cart, match: add_to_cart}
  newsletter:
    kind: micro
    category: secondary_action
    match: newsletter_signup
    value: {fixed: 2, currency: EUR}
  purchase: {kind: macro, type: revenue, match: purchase, value: {from: revenue, currency: EUR}}
  contact:
    kind: macro
    type: lead
    match: {event: form_submit}
    eligible: {path: /contact*}
"""

# Seven sessions (30 minutes of inactivity; no tracker session ids). Day 1 is 2026-03-02 (UTC).
#   S1 v1 mobile : page_view /, add_to_cart x2, purchase 30 EUR
#   S2 v2 desktop: page_view /contact, form_submit              -> eligible for contact, converts
#   S3 v3 desktop: page_view /, add_to_cart, purchase 50 + 20 EUR
#   S4 v4 mobile : page_view /blog, newsletter_signup
#   S5 v5 desktop: page_view /contact/sales                     -> eligible for contact, does not convert
#   S6 v6 desktop: page_view /, form_submit on /thanks          -> not eligible: its form_submit doesn't count
#   S7 v1 mobile : page_view / on day 2 (a new session: v1 comes back 25 hours later)
EUR = {"currency": "EUR"}
ROWS: list[dict[str, Any]] = [
    {"visitor_id": "v1", "device_type": "mobile", "event": "page_view", "path": "/", "t": 0},
    {"visitor_id": "v1", "device_type": "mobile", "event": "add_to_cart", "path": "/p/1", "t": 1},
    {"visitor_id": "v1", "device_type": "mobile", "event": "add_to_cart", "path": "/p/2", "t": 2},
    {"visitor_id": "v1", "device_type": "mobile", "event": "purchase", "revenue": 30.0, **EUR, "t": 3},
    {"visitor_id": "v2", "device_type": "desktop", "event": "page_view", "path": "/contact", "t": 0},
    {"visitor_id": "v2", "device_type": "desktop", "event": "form_submit", "path": "/contact", "t": 2},
    {"visitor_id": "v3", "device_type": "desktop", "event": "page_view", "path": "/", "t": 0},
    {"visitor_id": "v3", "device_type": "desktop", "event": "add_to_cart", "path": "/p/1", "t": 1},
    {"visitor_id": "v3", "device_type": "desktop", "event": "purchase", "revenue": 50.0, **EUR, "t": 5},
    {"visitor_id": "v3", "device_type": "desktop", "event": "purchase", "revenue": 20.0, **EUR, "t": 6},
    {"visitor_id": "v4", "device_type": "mobile", "event": "page_view", "path": "/blog", "t": 0},
    {"visitor_id": "v4", "device_type": "mobile", "event": "newsletter_signup", "path": "/blog", "t": 3},
    {"visitor_id": "v5", "device_type": "desktop", "event": "page_view", "path": "/contact/sales", "t": 0},
    {"visitor_id": "v6", "device_type": "desktop", "event": "page_view", "path": "/", "t": 0},
    {"visitor_id": "v6", "device_type": "desktop", "event": "form_submit", "path": "/thanks", "t": 1},
    {"visitor_id": "v1", "device_type": "mobile", "event": "page_view", "path": "/", "t": 25 * 60},
]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    db, config = tmp_path / "site.duckdb", tmp_path / "keystep.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with DuckDBBackend(db) as store:
        store.insert_events(event_table(ROWS, project="shop"))
    return db, config


def run(site: tuple[Path, Path], *args: str) -> Any:
    db, config = site
    args = ("conversions", "--db", str(db), "--config", str(config), "--json", *args)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rate(x: int, n: int) -> Any:
    """The serialized rate; its Wilson bounds are checked independently in `test_wilson_bounds`."""
    return to_data(compute_rate(x, n))


def stats(eligible: int, converted: int, actions: int, value: float | None = None) -> dict[str, Any]:
    return {
        "eligible_units": eligible,
        "converted_units": converted,
        "rate": rate(converted, eligible),
        "actions": actions,
        "actions_per_unit": actions / eligible if eligible else None,
        "value": value,
        "value_per_conversion": value / converted if value is not None and converted else None,
        "value_per_action": value / actions if value is not None and actions else None,
    }


def goal(name: str, title: str, kind: str, sub: str, total: dict[str, Any], *, currency: str | None = None,
         eligible: list[Any] | None = None, segments: list[Any] | None = None,
         periods: list[Any] | None = None) -> dict[str, Any]:
    return {
        "goal": name,
        "title": title,
        "kind": kind,
        "category": sub if kind == "micro" else None,
        "type": sub if kind == "macro" else None,
        "group": f"{kind}:{sub}",
        "eligible": eligible or [],
        "currency": currency,
        "total": total,
        "segments": segments or [],
        "periods": periods or [],
        "notes": [],
    }


CONTACT_RULE = [{"events": [], "path": "/contact*", "url": None, "conditions": []}]


def report(groups: list[Any], **query: Any) -> dict[str, Any]:
    return {"project": None, "start": None, "end": None, "timezone": "UTC", "unit": "session",
            "breakdown": None, "granularity": None, "alpha": 0.05, **query, "groups": groups}


def test_conversions_json(site: tuple[Path, Path]) -> None:
    assert run(site) == report([
        {"key": "macro:revenue", "title": "Macro: revenue", "goals": [
            goal("purchase", "purchase", "macro", "revenue", stats(7, 2, 3, 100.0), currency="EUR")]},
        {"key": "macro:lead", "title": "Macro: lead", "goals": [
            goal("contact", "contact", "macro", "lead", stats(2, 1, 1), eligible=CONTACT_RULE)]},
        {"key": "micro:process_milestone", "title": "Micro: process milestones", "goals": [
            goal("add_to_cart", "Added to cart", "micro", "process_milestone", stats(7, 2, 3))]},
        {"key": "micro:secondary_action", "title": "Micro: secondary actions", "goals": [
            goal("newsletter", "newsletter", "micro", "secondary_action", stats(7, 1, 1, 2.0),
                 currency="EUR")]},
    ])


def two_sided_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Pooled two-proportion z-test, written out: z = (p1 - p2) / sqrt(p(1-p)(1/n1 + 1/n2))."""
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def segment(name: str, s: dict[str, Any], rest: tuple[int, int], p: float | None, adjusted: float | None,
            direction: str) -> dict[str, Any]:
    return {"segment": name, "stats": s, "rest_rate": rate(*rest), "p_value": p, "adjusted_p": adjusted,
            "significant": False, "direction": direction}


def test_conversions_json_by_device_type(site: tuple[Path, Path]) -> None:
    body = run(site, "--breakdown", "device_type", "--project", "shop")
    # desktop: S2 S3 S5 S6 (4 sessions); mobile: S1 S4 S7 (3). Two segments: each is the other's rest, so both
    # get the same p, and Holm doubles it for the smaller (capped at 1 and kept monotone).
    p_purchase = two_sided_p(1, 4, 1, 3)  # desktop S3 vs mobile S1
    p_cart = two_sided_p(1, 4, 1, 3)
    p_news = two_sided_p(0, 4, 1, 3)
    holm2 = lambda p: min(1.0, 2 * p)  # noqa: E731
    assert body == report([
        {"key": "macro:revenue", "title": "Macro: revenue", "goals": [
            goal("purchase", "purchase", "macro", "revenue", stats(7, 2, 3, 100.0), currency="EUR", segments=[
                segment("desktop", stats(4, 1, 2, 70.0), (1, 3), pytest.approx(p_purchase),
                        pytest.approx(holm2(p_purchase)), "lower"),
                segment("mobile", stats(3, 1, 1, 30.0), (1, 4), pytest.approx(p_purchase),
                        pytest.approx(holm2(p_purchase)), "higher"),
            ])]},
        {"key": "macro:lead", "title": "Macro: lead", "goals": [
            # only desktop sessions visited /contact*: no segment can be compared with its rest
            goal("contact", "contact", "macro", "lead", stats(2, 1, 1), eligible=CONTACT_RULE, segments=[
                segment("desktop", stats(2, 1, 1), (0, 0), None, None, "same"),
                segment("mobile", stats(0, 0, 0), (1, 2), None, None, "same"),
            ])]},
        {"key": "micro:process_milestone", "title": "Micro: process milestones", "goals": [
            goal("add_to_cart", "Added to cart", "micro", "process_milestone", stats(7, 2, 3), segments=[
                segment("desktop", stats(4, 1, 1), (1, 3), pytest.approx(p_cart),
                        pytest.approx(holm2(p_cart)), "lower"),
                segment("mobile", stats(3, 1, 2), (1, 4), pytest.approx(p_cart),
                        pytest.approx(holm2(p_cart)), "higher"),
            ])]},
        {"key": "micro:secondary_action", "title": "Micro: secondary actions", "goals": [
            goal("newsletter", "newsletter", "micro", "secondary_action", stats(7, 1, 1, 2.0), currency="EUR",
                 segments=[
                     segment("desktop", stats(4, 0, 0, 0.0), (1, 3), pytest.approx(p_news),
                             pytest.approx(holm2(p_news)), "lower"),
                     segment("mobile", stats(3, 1, 1, 2.0), (0, 4), pytest.approx(p_news),
                             pytest.approx(holm2(p_news)), "higher"),
                 ])]},
    ], project="shop", breakdown="device_type")


def test_conversions_json_by_day(site: tuple[Path, Path]) -> None:
    body = run(site, "--by", "day", "--goal", "purchase", "--goal", "contact", "--from", "2026-03-02",
               "--to", "2026-03-04")
    day1, day2, day3 = (str((EPOCH + timedelta(days=d)).date()) for d in range(3))
    assert body == report([
        {"key": "macro:revenue", "title": "Macro: revenue", "goals": [
            goal("purchase", "purchase", "macro", "revenue", stats(7, 2, 3, 100.0), currency="EUR", periods=[
                {"period": day1, "stats": stats(6, 2, 3, 100.0)},
                {"period": day2, "stats": stats(1, 0, 0, 0.0)},
                {"period": day3, "stats": stats(0, 0, 0, 0.0)},  # no sessions: an empty period, kept
            ])]},
        {"key": "macro:lead", "title": "Macro: lead", "goals": [
            goal("contact", "contact", "macro", "lead", stats(2, 1, 1), eligible=CONTACT_RULE, periods=[
                {"period": day1, "stats": stats(2, 1, 1)},
                {"period": day2, "stats": stats(0, 0, 0)},
                {"period": day3, "stats": stats(0, 0, 0)},
            ])]},
    ], start=day1, end=day3, granularity="day")


@pytest.mark.parametrize(("x", "n"), [(2, 7), (1, 2), (1, 3), (0, 4), (50, 400), (400, 400)])
def test_wilson_bounds(x: int, n: int) -> None:
    lower, upper = proportion_confint(x, n, alpha=0.05, method="wilson")
    r = rate(x, n)
    assert (r["lower"], r["upper"]) == (pytest.approx(lower, abs=1e-9), pytest.approx(upper, abs=1e-9))


def test_tables_for_people(site: tuple[Path, Path]) -> None:
    db, config = site
    result = CliRunner().invoke(app, ["conversions", "--db", str(db), "--config", str(config),
                                      "--breakdown", "device_type", "--by", "week"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("Macro: revenue", "Macro: lead", "Micro: process milestones", "Micro: secondary actions",
                 "Added to cart", "28.57%", "8.22–64.11%", "100.00 EUR", "desktop", "by week"):
        assert text in result.stdout


def test_unknown_goal_is_an_error(site: tuple[Path, Path]) -> None:
    db, config = site
    result = CliRunner().invoke(app, ["conversions", "--db", str(db), "--config", str(config),
                                      "--goal", "nope"])
    assert result.exit_code == 2
    assert "no goal named 'nope'" in result.stderr
