"""Random event logs for the micro → macro property tests, and the definitions they use."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from keystep.conversions.definitions import Definitions, parse_definitions

EPOCH = datetime(2026, 3, 2, 9, 0, 0)

DEFINITIONS_YAML = """
goals:
  view_item: {kind: micro, category: process_milestone, match: {event: view_item}}
  add_to_cart: {kind: micro, category: process_milestone, match: {event: add_to_cart}}
  newsletter: {kind: micro, category: secondary_action, match: {event: newsletter_signup}}
  survey: {kind: micro, category: secondary_action, match: {event: survey}}
  purchase: {kind: macro, type: revenue, match: {event: purchase}, value: {from: revenue, currency: EUR}}
  demo: {kind: macro, type: lead, match: {event: demo_request}, value: 25}
"""

EVENT_NAMES = (
    "page_view",
    "view_item",
    "add_to_cart",
    "newsletter_signup",
    "survey",
    "purchase",
    "demo_request",
)
VISITORS = ("a", "b", "c", "d", "e", "f", "g", "h")


def definitions() -> Definitions:
    return parse_definitions(DEFINITIONS_YAML)


@st.composite
def event_logs(draw: st.DrawFn, max_size: int = 40) -> list[dict[str, Any]]:
    """Events of a few visitors over ~2 days; timestamps with microseconds, ties allowed."""
    n = draw(st.integers(min_value=1, max_value=max_size))
    out: list[dict[str, Any]] = []
    for _ in range(n):
        name = draw(st.sampled_from(EVENT_NAMES))
        us = draw(
            st.one_of(st.integers(0, 200).map(lambda s: s * 1_000_000), st.integers(0, 172_800_000_000))
        )
        row: dict[str, Any] = {
            "visitor_id": draw(st.sampled_from(VISITORS)),
            "event": name,
            "ts": EPOCH + timedelta(microseconds=us),
        }
        if name == "purchase":
            row["revenue"] = draw(
                st.one_of(st.none(), st.floats(0, 500, allow_nan=False).map(lambda v: round(v, 2)))
            )
        out.append(row)
    return out
