"""ENRICHMENT_STEPS together, in the collector's pipeline: the order, and the IP never stored."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from keystep.collector.pipeline import Context, finalize, run_pipeline
from keystep.collector.record import event_table
from keystep.enrich import ENRICHMENT_STEPS
from keystep.enrich.bots import drop_bots, drop_referrer_spam
from keystep.enrich.channels import assign_channel
from keystep.enrich.cookieless import assign_cookieless_id
from keystep.enrich.strings import clean_strings
from keystep.enrich.urls import read_url
from keystep.enrich.useragent import parse_user_agent
from keystep.events.schema import EVENT_COLUMN_NAMES

IP = "203.0.113.77"
IPV6 = "2001:db8::7"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")
CONTEXT = Context(project="shop", received_at=datetime(2026, 3, 2, 12), route="/v1/batch", ip=IP,
                  user_agent=IPHONE, salt=b"s" * 32)

EVENTS: list[dict[str, Any]] = [
    {"event": "page_view", "url": "https://shop.example/?utm_source=google&utm_medium=cpc&gclid=x",
     "referrer": "https://www.google.com/", "ip": IP},
    {"event": "page_view", "url": "https://shop.example/a", "referrer": "http://198.51.100.5/", "ip": IPV6,
     "properties": {"plan": "pro"}},
    {"event": "sign\ud800up", "visitor_id": "v1", "ip": IP, "user_agent": IPHONE},
    {"event": "purchase", "user_id": "u1", "revenue": 10, "properties": json.dumps({"order": "o-1"})},
]


def test_the_steps_and_their_order() -> None:
    expected = (clean_strings, read_url, assign_channel, parse_user_agent, drop_bots, drop_referrer_spam,
                assign_cookieless_id)
    assert expected == ENRICHMENT_STEPS


def test_no_step_puts_the_ip_into_a_column_or_a_property() -> None:
    for original in EVENTS:
        event: Any = dict(original)
        for step in ENRICHMENT_STEPS:
            event = step(event, CONTEXT, [])
            assert isinstance(event, dict)
            carried = {k: v for k, v in event.items() if k != "ip"}  # the request fact itself
            for name in EVENT_COLUMN_NAMES:  # properties included
                text = json.dumps(carried.get(name), default=str)
                assert IP not in text and IPV6 not in text, (step.__name__, name)


def test_the_stored_events_hold_no_ip() -> None:
    outcome = run_pipeline(EVENTS, CONTEXT, [*ENRICHMENT_STEPS, finalize])
    assert len(outcome.accepted) == len(EVENTS)
    for stored in event_table(outcome.accepted).to_pylist():  # the rows of the spool record, as stored
        assert set(stored) == set(EVENT_COLUMN_NAMES)
        text = json.dumps(stored, default=str, ensure_ascii=False)
        assert IP not in text and IPV6 not in text


def test_a_page_view_is_enriched_end_to_end() -> None:
    outcome = run_pipeline(EVENTS[:1], CONTEXT, [*ENRICHMENT_STEPS, finalize])
    (stored,) = outcome.accepted
    assert stored["path"] == "/"
    assert (stored["utm_source"], stored["utm_medium"], stored["channel"]) == ("google", "cpc", "Paid Search")
    assert (stored["device_type"], stored["browser"], stored["os"]) == ("mobile", "Mobile Safari", "iOS")
    assert stored["visitor_id"].startswith("c_")
    assert json.loads(stored["properties"]) == {"click_id_type": "gclid", "click_id": "x"}


def test_bots_and_spam_are_counted_not_rejected() -> None:
    events = [
        {"event": "page_view", "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
        {"event": "page_view", "referrer": "https://semalt.com/"},
        {"event": "page_view", "referrer": "https://darodar.com/"},
    ]
    outcome = run_pipeline(events, CONTEXT, [*ENRICHMENT_STEPS, finalize])
    assert outcome.accepted == [] and outcome.rejected == []
    assert dict(outcome.dropped) == {"bot": 1, "referrer_spam": 2}
