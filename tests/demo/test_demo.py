"""`keystep demo`: run in an empty folder, it leaves a store, a definitions file and a report there, and
the numbers it reports recover the simulator's analytic truth (`keystep.demo.truth`, derived from the
model's parameters, not from events) within sampling error (4 standard errors)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from keystep.cli.app import app
from keystep.demo.truth import DEVICES, FUNNEL_STEPS, MICRO_GOALS, compute_truth

VISITORS = 20_000
TRUTH = compute_truth()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("empty")
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--visitors", str(VISITORS), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def within(label: str, observed: float, expected: float, se: float, k: float = 4.0) -> None:
    assert abs(observed - expected) <= k * se, f"{label}: {observed:.4f} vs {expected:.4f} ± {k}×{se:.4f}"


def binomial(label: str, hits: int, n: int, p: float) -> None:
    assert n > 0, label
    within(label, hits / n, p, math.sqrt(p * (1 - p) / n))


def goals(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["goal"]: g for group in doc["overview"]["conversions"]["groups"] for g in group["goals"]}


def test_leaves_the_store_the_definitions_and_the_report(demo: tuple[Path, dict[str, Any]]) -> None:
    out, doc = demo
    assert sorted(p.name for p in out.iterdir()) == ["keystep-report.html", "keystep.duckdb", "keystep.yaml"]
    assert doc["report"] == str((out / "keystep-report.html").resolve())
    html = (out / "keystep-report.html").read_text(encoding="utf-8")
    for title in ("Macro and micro conversions", "Funnel: checkout", "Time to convert", "Micro → macro"):
        assert title in html
    assert "adj. p (Holm, log-rank)" in html and "<th>With Purchase</th>" in html  # the segment tables
    assert "Plotly.newPlot" in html and not re.search(r"<script[^>]*\bsrc=", html)  # embedded: no network
    con = duckdb.connect(str(out / "keystep.duckdb"), read_only=True)
    stored = con.execute("SELECT count(*), count(DISTINCT visitor_id) FROM events WHERE project = 'demo'").fetchone()
    con.close()
    assert stored == (doc["imported"]["stored"], VISITORS)
    assert doc["imported"]["rejected"] == 0


def test_session_rates_recover_the_truth(demo: tuple[Path, dict[str, Any]]) -> None:
    by_goal = goals(demo[1])
    sessions = by_goal["view_item"]["total"]["eligible_units"]  # no eligibility rule: every session
    within("sessions per visitor", sessions / VISITORS, TRUTH.sessions_per_visitor,
           math.sqrt(TRUTH.sessions_per_visitor) / math.sqrt(VISITORS))  # a generous (Poisson-like) error
    for goal in (*MICRO_GOALS, "purchase"):
        converted = by_goal[goal]["total"]["converted_units"]
        binomial(f"{goal} sessions", converted, sessions, TRUTH.session_rate[goal])
    # an eligibility rule changes the denominator: checkouts among sessions that added to cart
    checkout = by_goal["begin_checkout"]["total"]
    assert checkout["eligible_units"] == by_goal["add_to_cart"]["total"]["converted_units"]


def test_revenue_per_purchase_recovers_the_order_value(demo: tuple[Path, dict[str, Any]]) -> None:
    purchase = goals(demo[1])["purchase"]["total"]
    model = TRUTH.model
    sd = model.revenue_mean * math.sqrt(math.exp(model.revenue_sigma**2) - 1)  # lognormal
    within("order value", purchase["value_per_action"], model.revenue_mean, sd / math.sqrt(purchase["actions"]))


def test_checkout_funnel_shows_the_mobile_friction(demo: tuple[Path, dict[str, Any]]) -> None:
    funnel = demo[1]["overview"]["funnel"]
    assert funnel["funnel"] == "checkout" and funnel["breakdown"] == "device_type"
    assert [s["name"] for s in funnel["total"]["steps"]] == list(FUNNEL_STEPS)
    segments = {s["segment"]: s for s in funnel["segments"]}
    assert set(segments) == set(DEVICES)
    for device in DEVICES:
        steps = segments[device]["table"]["steps"]
        for k, expected in enumerate(TRUTH.funnel_step_conversion[device], start=1):
            binomial(f"{device} step {k + 1}", steps[k]["units"], steps[k - 1]["units"], expected)
    # the payment step loses mobile sessions (45% pass vs 80% on desktop): flagged as lower than the rest
    assert segments["mobile"]["significant"] and segments["mobile"]["direction"] == "lower"


def test_visitor_level_answers(demo: tuple[Path, dict[str, Any]]) -> None:
    overview = demo[1]["overview"]
    mm = overview["micro_macro"]
    assert mm["macro"] == "purchase" and mm["unit"] == "visitor"
    binomial("visitors who purchase", mm["overall"]["macro_units"], mm["overall"]["units"],
             TRUTH.visitor_purchase_rate)
    effects = {e["goal"]: e for e in mm["overall"]["micro"]}
    # the secondary actions raise purchase propensity in the model (×2.2 and ×1.8 on adding to cart)
    assert effects["newsletter_signup"]["lift"]["ratio"] > 1.0
    assert effects["video_complete"]["lift"]["lower"] > 1.0  # the video is common enough to show it at 95%
    ttc = overview["time_to_convert"]["overall"]
    assert ttc["converted"] == mm["overall"]["macro_units"]  # every purchaser viewed a product first
    assert ttc["started"] >= effects["view_item"]["did"]["units"]  # any micro goal starts the clock
    # by device too: the mobile checkout friction lowers mobile visitors' purchase rate against the rest
    assert mm["breakdown"] == "device_type" and overview["time_to_convert"]["breakdown"] == "device_type"
    by_device = {g["segment"]: g for g in mm["segments"]}
    assert set(by_device) == set(DEVICES) and sum(g["units"] for g in by_device.values()) == mm["overall"]["units"]
    assert by_device["mobile"]["significant"] and by_device["mobile"]["direction"] == "lower"
    assert {g["segment"] for g in overview["time_to_convert"]["segments"]} == set(DEVICES)
    recommended = [s["goal"] for s in overview["suggestions"]["recommended"]]
    assert 5 <= len(recommended) <= 10 and "video_complete" in recommended
