"""Umami on a live server, with the real `umami-analytics` library: page views, custom events, revenue,
distinct ids, the cookieless visitor id; and (with httpx, in the library's payload shape) what the library
cannot send: `timestamp`, `identify`, malformed bodies.

The library's website id is the project's write key. It needs no login to send events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import umami
from umami import impl as umami_impl

from .server import Site, make_site, properties, serving, stored


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


@pytest.fixture
def library() -> Iterator[None]:
    """The library keeps its configuration in module globals: restore them afterwards."""
    saved = (umami_impl.url_base, umami_impl.default_website_id, umami_impl.default_hostname)
    yield
    umami_impl.url_base, umami_impl.default_website_id, umami_impl.default_hostname = saved


def send(url: str, payload: dict[str, Any], kind: str = "event") -> httpx.Response:
    return httpx.post(url + "/api/send", json={"type": kind, "payload": payload},
                      headers={"User-Agent": umami_impl.event_user_agent})


def test_the_library_sends_page_views_events_and_revenue(site: Site, library: None) -> None:
    with serving(site) as server:
        umami.set_url_base(server.url)
        umami.set_website_id(site.write_key)
        umami.set_hostname("shop.example")
        replies = [
            umami.new_page_view("Home", "/?utm_source=news&utm_medium=email", referrer="https://www.google.com/"),
            umami.new_event("signup-click", url="/pricing", custom_data={"plan": "pro", "seats": 3}),
            umami.new_revenue_event(49.9, "EUR", event_name="purchase", url="/thanks", custom_data={"order": "o-1"},
                                    distinct_id="user-42"),
            umami.new_page_view("Account", "/account", distinct_id="user-42", language="de-DE", screen="390x844"),
        ]
        assert [r["accepted"] for r in replies] == [1, 1, 1, 1]
        umami.set_website_id("ks_w_unknown")
        with pytest.raises(httpx2.HTTPStatusError) as refused:
            umami.new_event("x")
        assert refused.value.response.status_code == 401
    rows = stored(site, "SELECT * FROM events ORDER BY ts")
    assert [r["event"] for r in rows] == ["page_view", "signup-click", "purchase", "page_view"]
    home, click, purchase, account = rows
    assert (home["url"], home["path"], home["referrer"], home["utm_source"], home["utm_medium"]) == (
        "/?utm_source=news&utm_medium=email", "/", "https://www.google.com/", "news", "email")
    assert properties(home) == {"page_title": "Home", "hostname": "shop.example", "language": "en-US",
                                "screen": "1920x1080"}
    assert properties(click) == {"plan": "pro", "seats": 3, "page_title": "signup-click", "hostname": "shop.example",
                                 "language": "en-US", "screen": "1920x1080"}
    # no visitor id from Umami: one cookieless id for the anonymous events of the same IP and browser
    assert home["visitor_id"].startswith("c_") and click["visitor_id"] == home["visitor_id"]
    assert (home["user_id"], click["user_id"]) == (None, None)
    assert (purchase["user_id"], purchase["visitor_id"], purchase["revenue"], purchase["currency"]) == (
        "user-42", "user-42", 49.9, "EUR")
    assert properties(purchase)["order"] == "o-1" and "revenue" not in properties(purchase)
    assert (account["user_id"], properties(account)["language"], properties(account)["screen"]) == (
        "user-42", "de-DE", "390x844")
    assert (home["browser"], home["device_type"]) == ("Chrome", "desktop")  # the library's browser user agent
    assert all(r["ts"] == r["received_at"] for r in rows)  # the library sends no time


def test_timestamps_identify_and_bad_payloads(site: Site) -> None:
    when = datetime.now().replace(microsecond=0) - timedelta(hours=2)
    payload = {"website": site.write_key, "hostname": "shop.example", "language": "en-US", "referrer": "",
               "screen": "1920x1080", "title": "Cart", "url": "/cart", "name": "add_to_cart",
               "data": {"sku": "s-1"}, "timestamp": int((when - datetime(1970, 1, 1)).total_seconds())}
    with serving(site) as server:
        # no event ids in Umami: the same content at the same time is one event
        assert send(server.url, payload).json()["accepted"] == 1
        assert send(server.url, payload).json()["accepted"] == 1
        # identify is session data, not an event
        identify = send(server.url, {"website": site.write_key, "id": "user-1", "data": {"plan": "pro"}}, "identify")
        assert identify.status_code == 200 and identify.json()["accepted"] == 0
        bogus = send(server.url, {**payload, "name": "x"}, "bogus").json()
        assert [(r["index"], r["reason"]) for r in bogus["rejected"]] == [(0, "unreadable_item")]
        not_object = send(server.url, {**payload, "data": [1, 2]}).json()
        assert [(r["index"], r["reason"]) for r in not_object["rejected"]] == [(0, "invalid_properties")]
        bad_time = send(server.url, {**payload, "timestamp": "soon"}).json()
        assert [(r["index"], r["reason"]) for r in bad_time["rejected"]] == [(0, "invalid_timestamp")]
        assert httpx.post(server.url + "/api/send", content=b"{nope").status_code == 400
        assert httpx.post(server.url + "/api/send", json={"type": "event"}).status_code == 400
        assert send(server.url, {**payload, "website": ""}).status_code == 401
        assert send(server.url, {**payload, "website": site.read_key}).status_code == 403
    rows = stored(site)
    assert len(rows) == 1
    assert (rows[0]["event"], rows[0]["ts"], rows[0]["url"], rows[0]["referrer"]) == (
        "add_to_cart", when, "/cart", None)
    assert properties(rows[0])["sku"] == "s-1"
    assert len(stored(site, "SELECT * FROM rejected_events")) == 3
