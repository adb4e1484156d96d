"""Segment's and RudderStack's wire format on a live server, sent by the real client libraries
(`segment-analytics-python`, `rudder-sdk-python`) and, for what they cannot send, by httpx."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import rudderstack.analytics as rudder_analytics
import segment.analytics as analytics

from .server import Site, make_site, properties, serving, stored

BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/17.4 Safari/605.1.15")
PHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def at(day: int, hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, micro, tzinfo=UTC)


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(), "User-Agent": BROWSER}


# -- the real clients --------------------------------------------------------------------------------------

class Library:
    """One of the two Python libraries, configured through its module-level API as their docs show."""

    def __init__(self, name: str, module: ModuleType, gzip: bool) -> None:
        self.name, self.module, self.gzip = name, module, gzip
        self.errors: list[Any] = []

    def configure(self, url: str, write_key: str) -> None:
        m = self.module
        m.write_key = write_key
        if self.name == "rudderstack":
            m.dataPlaneUrl = url
        else:
            m.host = url
        m.gzip = self.gzip
        m.sync_mode = False  # batches through the library's consumer thread, sent by flush()
        m.max_retries = 1
        m.on_error = lambda error, batch: self.errors.append(error)
        m.default_client = None

    def close(self) -> None:
        if self.module.default_client is not None:
            self.module.shutdown()
        self.module.default_client = None


@pytest.fixture(params=["segment", "segment-gzip", "rudderstack"])
def library(request: pytest.FixtureRequest) -> Iterator[Library]:
    lib = {
        "segment": Library("segment", analytics, gzip=False),
        "segment-gzip": Library("segment", analytics, gzip=True),
        "rudderstack": Library("rudderstack", rudder_analytics, gzip=True),  # its default
    }[request.param]
    yield lib
    lib.close()


def test_the_libraries_send_pages_tracks_identify_and_alias(site: Site, library: Library) -> None:
    m = library.module
    page_context = {
        "page": {"url": "https://shop.example/?utm_source=news&utm_medium=email", "path": "/",
                 "referrer": "https://news.example/issue-12", "title": "Shop"},
        "userAgent": BROWSER, "ip": "203.0.113.9",
        "campaign": {"source": "news", "medium": "email", "name": "spring", "term": "shoes", "content": "top"},
    }
    product_context = {"page": {"url": "https://shop.example/p/1", "path": "/p/1"}, "userAgent": BROWSER,
                       "sessionId": 1764583260123}
    products = [{"product_id": "p1", "sku": "SKU-1", "price": 19.5, "quantity": 2}]
    # (message id, call, kwargs); timestamps with whole milliseconds, except `view`'s (see below)
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("m-page", "page", dict(anonymous_id="anon-1", name="Home", category="Landing",
                                properties={"title": "Shop"}, context=page_context, timestamp=at(20, 9, 0))),
        ("m-view", "track", dict(anonymous_id="anon-1", event="Product Viewed",
                                 properties={"product_id": "p1", "price": 19.5, "currency": "EUR"},
                                 context=product_context, timestamp=at(20, 9, 1, 15, 123456))),
        ("m-add", "track", dict(anonymous_id="anon-1", event="Product Added",
                                properties={"product_id": "p1", "quantity": 2, "cart_id": "c1"},
                                context=product_context, timestamp=at(20, 9, 2, 0, 250000))),
        ("m-checkout", "track", dict(anonymous_id="anon-1", event="Checkout Started",
                                     properties={"order_id": "o1", "value": 39.0, "currency": "EUR"},
                                     context=product_context, timestamp=at(20, 9, 3))),
        ("m-identify", "identify", dict(anonymous_id="anon-1", user_id="user-1",
                                        traits={"email": "ada@example.com"}, timestamp=at(20, 9, 4))),
        ("m-order", "track", dict(user_id="user-1", event="Order Completed",
                                  properties={"order_id": "o1", "revenue": 39.0, "total": 45.9, "currency": "eur",
                                              "products": products}, timestamp=at(20, 9, 5, 30))),
        ("m-order-2", "track", dict(user_id="user-1", event="Order Completed",
                                    properties={"order_id": "o2", "total": 12.5, "currency": "USD"},
                                    timestamp=at(21, 18, 0))),
        ("m-refund", "track", dict(user_id="user-1", event="Order Refunded",
                                   properties={"order_id": "o2", "total": 12.5, "currency": "USD"},
                                   timestamp=at(22, 8, 0))),
        ("m-custom", "track", dict(anonymous_id="anon-2", event="Newsletter Joined", properties={"list": "weekly"},
                                   context={"userAgent": PHONE}, timestamp=at(21, 7, 30))),
        ("m-coupon", "track", dict(anonymous_id="anon-2", event="Coupon Applied", properties={"coupon": "X10"},
                                   timestamp=at(21, 7, 31))),
        ("m-signup", "track", dict(anonymous_id="anon-4", user_id="user-4", event="Signed Up",
                                   properties={"method": "email"}, timestamp=at(21, 7, 32))),
        ("m-screen", "screen", dict(user_id="user-4", name="Cart", category="Checkout",
                                    properties={"items": 3}, timestamp=at(21, 7, 33))),
        ("m-alias", "alias", dict(previous_id="anon-3", user_id="user-1", timestamp=at(23, 10, 0))),
        ("m-group", "group", dict(user_id="user-1", group_id="acme", traits={"plan": "pro"}, timestamp=at(23, 10, 1))),
    ]
    with serving(site) as server:
        library.configure(server.url, site.write_key)
        for message_id, call, kwargs in calls:
            getattr(m, call)(message_id=message_id, **kwargs)
        m.track(anonymous_id="anon-1", event="Product Viewed", message_id="m-view",  # a resend of the same id
                properties={"product_id": "p1"}, timestamp=at(20, 9, 1, 15, 123456))
        m.flush()
        assert library.errors == []
    rows = {r["event_id"]: r for r in stored(site)}
    assert len(stored(site)) == len(rows)  # each id once
    # identify, alias and group are no events; the resent m-view is stored once
    assert set(rows) == {mid for mid, call, _ in calls if call in ("page", "track", "screen")}
    sent = {mid: kwargs for mid, _, kwargs in calls}

    expected_names = {
        "m-page": ("page_view", None), "m-view": ("view_item", "Product Viewed"),
        "m-add": ("add_to_cart", "Product Added"), "m-checkout": ("begin_checkout", "Checkout Started"),
        "m-order": ("purchase", "Order Completed"), "m-order-2": ("purchase", "Order Completed"),
        "m-refund": ("refund", "Order Refunded"), "m-custom": ("Newsletter Joined", None),
        "m-coupon": ("Coupon Applied", None), "m-signup": ("sign_up", "Signed Up"), "m-screen": ("screen_view", None),
    }
    for mid, row in rows.items():
        props = properties(row)
        assert (row["project"], row["event"], props.get("original_event")) == ("shop", *expected_names[mid]), mid
        kwargs = sent[mid]
        visitor = kwargs.get("anonymous_id") or kwargs["user_id"]
        assert (row["visitor_id"], row["user_id"]) == (visitor, kwargs.get("user_id")), mid
        expected_ts = naive(kwargs["timestamp"])
        if library.name == "segment":
            # analytics-python sends `timestamp.isoformat(timespec="milliseconds")`: sub-millisecond digits
            # never leave the client (rudder-sdk-python sends them all)
            expected_ts = expected_ts.replace(microsecond=expected_ts.microsecond // 1000 * 1000)
        assert row["ts"] == expected_ts, mid
        assert {k: v for k, v in props.items() if k in kwargs["properties"]} == kwargs["properties"], mid

    page = rows["m-page"]
    assert properties(page) == {"title": "Shop", "name": "Home", "category": "Landing"}
    assert (page["url"], page["path"], page["referrer"]) == (
        "https://shop.example/?utm_source=news&utm_medium=email", "/", "https://news.example/issue-12")
    assert (page["utm_source"], page["utm_medium"], page["utm_campaign"], page["utm_term"], page["utm_content"]) == (
        "news", "email", "spring", "shoes", "top")
    assert (page["browser"], page["os"], page["device_type"]) == ("Safari", "Mac OS X", "desktop")
    assert rows["m-custom"]["device_type"] == "mobile"
    assert (rows["m-view"]["path"], rows["m-view"]["session_id"]) == ("/p/1", "1764583260123")
    assert properties(rows["m-screen"]) == {"items": 3, "name": "Cart", "category": "Checkout"}
    revenue = {mid: (r["revenue"], r["currency"]) for mid, r in rows.items() if r["revenue"] is not None}
    assert revenue == {
        "m-order": (39.0, "EUR"),  # `revenue` before `total`; the currency upper-cased
        "m-order-2": (12.5, "USD"),  # an order without `revenue`: its `total`
        "m-refund": (12.5, "USD"),
    }
    assert rows["m-view"]["currency"] == "EUR"  # a price is no revenue
    assert rows["m-checkout"]["currency"] == "EUR"  # `value` is read for orders only
    assert properties(rows["m-order"])["products"] == products

    links = stored(site, "SELECT visitor_id, user_id, ts, source FROM identities ORDER BY visitor_id")
    assert links == [
        {"visitor_id": "anon-1", "user_id": "user-1", "ts": naive(at(20, 9, 4)), "source": "identify"},
        {"visitor_id": "anon-3", "user_id": "user-1", "ts": naive(at(23, 10, 0)), "source": "alias"},
        {"visitor_id": "anon-4", "user_id": "user-4", "ts": naive(at(21, 7, 32)), "source": "event"},
    ]
    assert stored(site, "SELECT * FROM rejected_events") == []


def test_a_batch_keeps_its_valid_messages_and_names_the_bad_ones(site: Site) -> None:
    batch = [
        {"type": "track", "event": "Product Viewed", "messageId": "b-1", "anonymousId": "v1",
         "timestamp": "2026-11-20T10:00:00.000Z", "originalTimestamp": "2026-11-20T09:59:00.000Z",
         "properties": {"product_id": "p1"}},
        {"type": "track", "messageId": "b-2", "anonymousId": "v1", "timestamp": "2026-11-20T10:00:01Z"},
        {"type": "identify", "messageId": "b-3", "anonymousId": "v1", "userId": "u1",
         "timestamp": "2026-11-20T10:00:02Z", "traits": {"plan": "pro"}},
        "not a message",
        {"type": "track", "event": "Order Completed", "messageId": "b-5", "anonymousId": "v1",
         "properties": {"revenue": "lots"}},
        {"type": "page", "messageId": "b-6", "anonymousId": "v1", "name": "Pricing",
         "originalTimestamp": "2026-11-20T10:00:05Z", "properties": {"url": "https://shop.example/pricing"}},
        {"type": "alias", "messageId": "b-7", "userId": "u1"},
        {"type": "launch", "messageId": "b-8", "anonymousId": "v1"},
    ]
    with serving(site) as server:
        reply = httpx.post(server.url + "/v1/batch", json={"batch": batch, "sentAt": datetime.now(UTC).isoformat()},
                           headers=basic(site.write_key))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["success"] is True and body["accepted"] == 2 and body["dropped"] == 1  # the identify
        assert [(r["index"], r["reason"], r["field"]) for r in body["rejected"]] == [
            (1, "missing_event", "event"), (3, "unreadable_item", None), (4, "invalid_revenue", "revenue"),
            (6, "unreadable_item", None), (7, "unreadable_item", None)]
        assert "previousId" in body["rejected"][3]["detail"] and "launch" in body["rejected"][4]["detail"]
    rows = stored(site)
    assert [(r["event_id"], r["event"], r["ts"]) for r in rows] == [
        ("b-1", "view_item", datetime(2026, 11, 20, 10, 0, 0)), ("b-6", "page_view", datetime(2026, 11, 20, 10, 0, 5))]
    assert (rows[1]["url"], rows[1]["path"]) == ("https://shop.example/pricing", "/pricing")  # a page's own url
    rejected = stored(site, "SELECT * FROM rejected_events ORDER BY location")
    assert [(r["location"], r["source"]) for r in rejected] == [
        ("batch index 1", "/v1/batch"), ("batch index 3", "/v1/batch"), ("batch index 4", "/v1/batch"),
        ("batch index 6", "/v1/batch"), ("batch index 7", "/v1/batch")]
    assert stored(site, "SELECT visitor_id, user_id, source FROM identities") == [
        {"visitor_id": "v1", "user_id": "u1", "source": "identify"}]


def test_keys_bodies_and_the_single_call_routes(site: Site) -> None:
    track = {"event": "Product Added", "messageId": "s-1", "anonymousId": "v9", "timestamp": "2026-11-25T12:00:00Z",
             "properties": {"product_id": "p9"}}
    with serving(site) as server:
        url = server.url
        forbidden = httpx.post(url + "/v1/track", json=track, headers=basic(site.read_key))
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
        # the libraries read `code` and `message` of an error
        with pytest.raises(analytics.request.APIError) as error:
            analytics.Client(site.read_key, host=url, sync_mode=True).track(anonymous_id="v", event="x")
        assert (error.value.status, error.value.code) == (403, "forbidden")
        assert error.value.message == "a read key cannot send events; use the project's write key"
        assert httpx.post(url + "/v1/track", json=track, headers=basic("ks_w_unknown")).status_code == 401
        assert httpx.post(url + "/v1/track", json=track, headers={"User-Agent": BROWSER}).status_code == 401
        assert httpx.post(url + "/v1/batch", json={"batch": [track], "writeKey": site.read_key},
                          headers={"User-Agent": BROWSER}).status_code == 403
        bad = httpx.post(url + "/v1/batch", content=b"{nope", headers=basic(site.write_key))
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
        assert httpx.post(url + "/v1/batch", json={"events": []}, headers=basic(site.write_key)).status_code == 400
        # basic auth on a single call; the path gives the type
        ok = httpx.post(url + "/v1/track", json=track, headers=basic(site.write_key))
        assert ok.status_code == 200 and ok.json()["success"] is True and ok.json()["accepted"] == 1
        # analytics.js: one-letter paths, `writeKey` in a text/plain body, sentAt per message
        js_headers = {"Content-Type": "text/plain", "User-Agent": BROWSER}
        page = {"type": "page", "messageId": "s-2", "anonymousId": "v9", "writeKey": site.write_key,
                "timestamp": "2026-11-25T12:01:00.000Z", "sentAt": datetime.now(UTC).isoformat(),
                "properties": {"path": "/cart", "url": "https://shop.example/cart", "title": "Cart"},
                "context": {"page": {"path": "/cart", "url": "https://shop.example/cart",
                                     "referrer": "https://shop.example/p/9"}}}
        assert httpx.post(url + "/v1/p", content=json.dumps(page), headers=js_headers).json()["accepted"] == 1
        identify = {"messageId": "s-3", "anonymousId": "v9", "userId": "u9", "writeKey": site.write_key,
                    "timestamp": "2026-11-25T12:02:00Z", "traits": {"email": "u9@example.com"}}
        reply = httpx.post(url + "/v1/i", content=json.dumps(identify), headers=js_headers).json()
        assert (reply["accepted"], reply["dropped"]) == (0, 1)
        alias = {"previousId": "v10", "userId": "u9", "writeKey": site.write_key, "timestamp": "2026-11-25T12:03:00Z"}
        assert httpx.post(url + "/v1/alias", json=alias, headers=js_headers).json()["rejected"] == []
        # analytics.js batching (`/v1/b`): the batch's context under each message's own, gzip without the header
        batch = {"writeKey": site.write_key, "sentAt": datetime.now(UTC).isoformat(),
                 "context": {"userAgent": PHONE, "campaign": {"source": "ads", "medium": "cpc"}},
                 "batch": [{**track, "type": "track", "messageId": "s-4", "event": "Cart Viewed"},
                           {**track, "type": "track", "messageId": "s-5", "event": "Checkout Started",
                            "context": {"campaign": {"source": "mail"}}}]}
        zipped = httpx.post(url + "/v1/b", content=gzip.compress(json.dumps(batch).encode()), headers=js_headers)
        assert zipped.json()["accepted"] == 2
        # a client whose clock is an hour behind: its timestamps are moved by the batch's sentAt
        now = datetime.now(UTC)
        slow = now - timedelta(hours=1)
        skewed = {"sentAt": slow.isoformat(), "batch": [
            {"type": "track", "event": "Skewed", "messageId": "s-6", "anonymousId": "v9",
             "timestamp": (slow - timedelta(minutes=5)).isoformat()}]}
        assert httpx.post(url + "/v1/batch", json=skewed, headers=basic(site.write_key)).json()["accepted"] == 1
        # the same messageId again, by another route: acknowledged, stored once
        assert httpx.post(url + "/v1/batch", json={"batch": [{**track, "type": "track"}]},
                          headers=basic(site.write_key)).json()["accepted"] == 1
    rows = {r["event_id"]: r for r in stored(site)}
    assert sorted(rows) == ["s-1", "s-2", "s-4", "s-5", "s-6"]
    assert abs(rows["s-6"]["ts"] - naive(now - timedelta(minutes=5))) < timedelta(seconds=30)
    assert (rows["s-1"]["event"], properties(rows["s-1"])["original_event"]) == ("add_to_cart", "Product Added")
    assert (rows["s-2"]["event"], rows["s-2"]["path"], rows["s-2"]["referrer"]) == (
        "page_view", "/cart", "https://shop.example/p/9")
    assert (rows["s-4"]["event"], rows["s-4"]["utm_source"], rows["s-4"]["utm_medium"], rows["s-4"]["device_type"]) == (
        "view_cart", "ads", "cpc", "mobile")
    # a message's own context replaces the batch's per key (campaign wholly), userAgent stays the batch's
    assert (rows["s-5"]["utm_source"], rows["s-5"]["utm_medium"], rows["s-5"]["device_type"]) == (
        "mail", None, "mobile")
    assert stored(site, "SELECT visitor_id, user_id, source FROM identities ORDER BY visitor_id") == [
        {"visitor_id": "v10", "user_id": "u9", "source": "alias"},
        {"visitor_id": "v9", "user_id": "u9", "source": "identify"}]
