"""The eligibility example from the literature: 50 add-to-cart sessions out of 400 sessions = 12.5%; a lead
goal counted only among sessions that viewed a contact page; segment flags on a clear difference."""

from __future__ import annotations

from typing import Any

import pytest
from statsmodels.stats.proportion import proportion_confint

from conftest import event_table
from keystep.analysis.conversions import ConversionReport, run_conversions
from keystep.analysis.segments import Direction
from keystep.backends.duckdb import DuckDBBackend
from keystep.conversions.definitions import Unit, parse_definitions
from keystep.query import Query

DEFINITIONS = parse_definitions(
    """
goals:
  add_to_cart: {kind: micro, category: process_milestone, match: add_to_cart}
  contact_lead:
    kind: macro
    type: lead
    match: {event: form_submit}
    eligible: {path: /contact*}
"""
)


def sessions() -> list[dict[str, Any]]:
    """400 sessions of 400 visitors (200 mobile, 200 desktop), each starting with a page view.
    - 50 add to cart (10 mobile, 40 desktop), 5 of them twice;
    - 80 view a /contact* page (sessions 300..379); 20 of those submit the form, 2 of them twice;
    - 10 other sessions (380..389) submit a form without viewing a contact page: not eligible, not counted."""
    rows: list[dict[str, Any]] = []
    for i in range(400):
        device = "mobile" if i % 2 == 0 else "desktop"
        base = {"visitor_id": f"v{i}", "device_type": device}
        rows.append(base | {"event": "page_view", "path": "/", "t": 0})
        mobile_cart = device == "mobile" and i < 20  # i = 0, 2, ..., 18: 10 sessions
        desktop_cart = device == "desktop" and i < 80  # i = 1, 3, ..., 79: 40 sessions
        if mobile_cart or desktop_cart:
            rows.append(base | {"event": "add_to_cart", "path": "/p", "t": 1})
            if i < 5:
                rows.append(base | {"event": "add_to_cart", "path": "/p", "t": 2})
        if 300 <= i < 380:
            path = "/contact" if i % 3 else "/contact/sales"
            rows.append(base | {"event": "page_view", "path": path, "t": 3})
            if i < 320:
                rows.append(base | {"event": "form_submit", "path": "/contact", "t": 4})
                if i < 302:
                    rows.append(base | {"event": "form_submit", "path": "/contact", "t": 5})
        if 380 <= i < 390:
            rows.append(base | {"event": "form_submit", "path": "/quote", "t": 3})
    return rows


@pytest.fixture
def report(store: DuckDBBackend) -> ConversionReport:
    store.insert_events(event_table(sessions()))
    query = Query(project="test", unit=Unit.SESSION, breakdown="device_type")
    return run_conversions(store, DEFINITIONS, query)


def test_add_to_cart_rate_is_50_of_400(report: ConversionReport) -> None:
    cart = next(g for g in report.goals if g.goal == "add_to_cart")
    assert (cart.total.eligible_units, cart.total.converted_units, cart.total.actions) == (400, 50, 55)
    assert cart.total.rate.estimate == 0.125
    assert cart.total.actions_per_unit == 55 / 400
    lower, upper = proportion_confint(50, 400, method="wilson")
    assert (cart.total.rate.lower, cart.total.rate.upper) == (pytest.approx(lower), pytest.approx(upper))


def test_lead_rate_counts_only_sessions_that_viewed_a_contact_page(report: ConversionReport) -> None:
    lead = next(g for g in report.goals if g.goal == "contact_lead")
    assert (lead.total.eligible_units, lead.total.converted_units, lead.total.actions) == (80, 20, 22)
    assert lead.total.rate.estimate == 0.25
    assert lead.total.actions_per_unit == 22 / 80
    assert [g.key for g in report.groups] == ["macro:lead", "micro:process_milestone"]


def test_a_clearly_different_segment_is_flagged(report: ConversionReport) -> None:
    cart = next(g for g in report.goals if g.goal == "add_to_cart")
    by = {s.segment: s for s in cart.segments}
    assert (by["desktop"].stats.converted_units, by["desktop"].stats.eligible_units) == (40, 200)
    assert (by["mobile"].stats.converted_units, by["mobile"].stats.eligible_units) == (10, 200)
    assert by["desktop"].significant and by["desktop"].direction is Direction.HIGHER
    assert by["mobile"].significant and by["mobile"].direction is Direction.LOWER
    assert by["mobile"].rest_rate.estimate == 0.2
    # contact pages: sessions 300..379, half mobile and half desktop; submits 300..319, also half and half
    lead = next(g for g in report.goals if g.goal == "contact_lead")
    got = {s.segment: (s.stats.converted_units, s.stats.eligible_units, s.significant) for s in lead.segments}
    assert got == {"mobile": (10, 40, False), "desktop": (10, 40, False)}
