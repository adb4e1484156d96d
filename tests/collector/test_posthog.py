"""PostHog's wire format on a live server, sent by the real `posthog` library (the legacy `/batch/` protocol
and capture v1) and, for posthog-js's bodies (gzip-js, base64, forms), by httpx."""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from posthog import Posthog

from .server import Site, make_site, properties, serving, stored

BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Safari/537.36")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def at(day: int, hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, micro, tzinfo=UTC)


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


def client(url: str, key: str, errors: list[Any], **options: Any) -> Posthog:
    return Posthog(project_api_key=key, host=url, on_error=lambda error, batch: errors.append(error),
                   max_retries=0, flush_interval=0.2, **options)


@pytest.mark.parametrize("compress", [False, True], ids=["json", "gzip"])
def test_the_library_sends_captures_pageviews_identify_and_alias(site: Site, compress: bool) -> None:
    ids = {name: new_id() for name in ("pageview", "view", "add", "identify", "order", "order2", "autocapture",
                                       "leave", "custom", "device", "alias", "set")}
    page_props = {"$current_url": "https://shop.example/p/1?utm_source=news&utm_medium=email&gclid=abc",
                  "$pathname": "/p/1", "$referrer": "https://www.google.com/", "$session_id": "sess-1",
                  "$raw_user_agent": BROWSER, "$ip": "203.0.113.7", "utm_source": "news", "utm_medium": "email",
                  "utm_campaign": "spring", "title": "Red shoes"}
    # (key, event, distinct_id, properties, timestamp)
    captures: list[tuple[str, str, str, dict[str, Any], datetime]] = [
        ("pageview", "$pageview", "anon-1", page_props, at(20, 9, 0, 0, 123456)),
        ("view", "Product Viewed", "anon-1", {"product_id": "p1", "price": 19.5, "currency": "EUR",
                                              "$session_id": "sess-1"}, at(20, 9, 0, 5, 1)),
        ("add", "Product Added", "anon-1", {"product_id": "p1", "quantity": 2, "$session_id": "sess-1"},
         at(20, 9, 1, 0, 999999)),
        ("identify", "$identify", "user-1", {"$anon_distinct_id": "anon-1", "$set": {"email": "ada@example.com"}},
         at(20, 9, 2)),
        ("order", "Order Completed", "user-1", {"order_id": "o1", "revenue": 39.0, "total": 45.9, "currency": "eur",
                                                "products": [{"product_id": "p1", "quantity": 2}]},
         at(20, 9, 3, 30, 500000)),
        ("order2", "purchase", "user-1", {"$revenue": 12.5, "$currency": "USD", "transaction_id": "o2"},
         at(21, 18, 0)),
        ("autocapture", "$autocapture", "anon-2", {"$event_type": "click", "$el_text": "Buy"}, at(21, 7, 0)),
        ("leave", "$pageleave", "anon-2", {"$current_url": "https://shop.example/cart", "$referrer": "$direct"},
         at(21, 7, 1)),
        ("custom", "newsletter joined", "anon-2", {"list": "weekly"}, at(21, 7, 2)),
        # posthog-js after identify: the device id stays, distinct_id is the user
        ("device", "$pageview", "user-5", {"$device_id": "dev-5", "$current_url": "https://shop.example/"},
         at(22, 12, 0)),
    ]
    errors: list[Any] = []
    with serving(site) as server:
        posthog = client(server.url, site.write_key, errors, gzip=compress)
        for key, event, distinct_id, props, ts in captures:
            assert posthog.capture(event, distinct_id=distinct_id, properties=props, timestamp=ts,
                                   uuid=ids[key]) == ids[key]
        posthog.alias(previous_id="anon-3", distinct_id="user-1", timestamp=at(23, 10, 0), uuid=ids["alias"])
        posthog.set(distinct_id="user-1", properties={"plan": "pro"}, uuid=ids["set"])
        posthog.capture("Product Viewed", distinct_id="anon-1", uuid=ids["view"], timestamp=at(20, 9, 0, 5, 1))  # again
        posthog.flush()
        posthog.shutdown()
        assert errors == []
    rows = {r["event_id"]: r for r in stored(site)}
    assert len(stored(site)) == len(rows)
    expected = {ids[k] for k, *_ in captures} - {ids["identify"]}
    assert set(rows) == expected  # not $identify, $create_alias, $set; the resend once
    names = {"pageview": ("page_view", "$pageview"), "view": ("view_item", "Product Viewed"),
             "add": ("add_to_cart", "Product Added"), "order": ("purchase", "Order Completed"),
             "order2": ("purchase", None), "autocapture": ("$autocapture", None), "leave": ("page_leave", "$pageleave"),
             "custom": ("newsletter joined", None), "device": ("page_view", "$pageview")}
    for key, _event, distinct_id, props, ts in captures:
        if key == "identify":
            continue
        row = rows[ids[key]]
        stored_props = properties(row)
        assert (row["event"], stored_props.get("original_event")) == names[key], key
        assert row["ts"] == naive(ts), key  # microseconds kept
        assert {k: v for k, v in stored_props.items() if k in props} == props, key
        assert stored_props["$lib"] == "posthog-python", key
        if key != "device":
            assert (row["visitor_id"], row["user_id"]) == (distinct_id, None), key
    assert (rows[ids["device"]]["visitor_id"], rows[ids["device"]]["user_id"]) == ("dev-5", "user-5")
    page = rows[ids["pageview"]]
    assert (page["url"], page["path"], page["referrer"], page["session_id"]) == (
        page_props["$current_url"], "/p/1", "https://www.google.com/", "sess-1")
    assert (page["utm_source"], page["utm_medium"], page["utm_campaign"]) == ("news", "email", "spring")
    assert (page["browser"], page["os"], page["device_type"]) == ("Chrome", "Windows", "desktop")
    assert "$ip" in properties(page) and "203.0.113.7" not in json.dumps({k: v for k, v in page.items()
                                                                         if k != "properties"}, default=str)
    assert rows[ids["leave"]]["referrer"] is None  # `$direct` is no referrer
    assert rows[ids["view"]]["session_id"] == "sess-1"
    revenue = {k: (rows[ids[k]]["revenue"], rows[ids[k]]["currency"]) for k in names
               if rows[ids[k]]["revenue"] is not None}
    assert revenue == {"order": (39.0, "EUR"), "order2": (12.5, "USD")}
    links = stored(site, "SELECT visitor_id, user_id, ts, source FROM identities ORDER BY visitor_id")
    assert links == [
        {"visitor_id": "anon-1", "user_id": "user-1", "ts": naive(at(20, 9, 2)), "source": "identify"},
        {"visitor_id": "anon-3", "user_id": "user-1", "ts": naive(at(23, 10, 0)), "source": "alias"},
        {"visitor_id": "dev-5", "user_id": "user-5", "ts": naive(at(22, 12, 0)), "source": "event"},
    ]


def test_capture_v1_reports_each_event(site: Site) -> None:
    good, bad, later = new_id(), new_id(), new_id()
    errors: list[Any] = []
    with serving(site) as server:
        posthog = client(server.url, site.write_key, errors, capture_mode="v1", capture_compression="gzip")
        posthog.capture("Checkout Started", distinct_id="anon-7", uuid=good, timestamp=at(24, 8, 0, 0, 42),
                        properties={"$session_id": "sess-7", "value": 20, "currency": "EUR"})
        posthog.capture("Order Completed", distinct_id="anon-7", uuid=bad, timestamp=at(24, 8, 1),
                        properties={"revenue": "lots"})
        posthog.capture("Order Completed", distinct_id="anon-7", uuid=later, timestamp=at(24, 8, 2),
                        properties={"revenue": 20, "currency": "EUR", "$window_id": "w-1"})
        posthog.flush()
        posthog.shutdown()
    # the bad event is dropped by the server and reported to on_error, not retried
    assert len(errors) == 1 and [u for u, _ in errors[0].drops] == [bad]
    assert "revenue" in errors[0].drops[0][1]
    rows = {r["event_id"]: r for r in stored(site)}
    assert sorted(rows) == sorted([good, later])
    assert (rows[good]["event"], rows[good]["session_id"], rows[good]["ts"], rows[good]["revenue"]) == (
        "begin_checkout", "sess-7", naive(at(24, 8, 0, 0, 42)), None)
    assert (rows[later]["event"], rows[later]["revenue"], rows[later]["currency"]) == ("purchase", 20.0, "EUR")
    assert properties(rows[later])["$window_id"] == "w-1"
    assert [r["location"] for r in stored(site, "SELECT location FROM rejected_events")] == ["batch index 1"]


def test_posthog_js_bodies_keys_and_a_bad_item(site: Site) -> None:
    now_ms = int(time.time() * 1000)
    event = {"event": "$pageview", "distinct_id": "anon-9", "timestamp": "2026-11-25T12:00:00.250Z",
             "properties": {"$current_url": "https://shop.example/", "$session_id": "s9", "token": site.write_key,
                            "$lib": "web", "$raw_user_agent": BROWSER}}
    headers = {"User-Agent": BROWSER}

    def one(**changes: Any) -> dict[str, Any]:
        return {**event, "uuid": new_id(), **changes}

    sent: list[dict[str, Any]] = []
    with serving(site) as server:
        url = server.url
        # posthog-js: /e/ with gzip-js, the key in each event's properties, `_` the send time in ms
        batch = [one(), one(event="Product Viewed", properties={**event["properties"], "product_id": "p9"})]
        sent += batch
        reply = httpx.post(f"{url}/e/?compression=gzip-js&ip=1&_={now_ms}&ver=1.200.0",
                           content=gzip.compress(json.dumps(batch).encode()),
                           headers={**headers, "Content-Type": "text/plain"})
        assert reply.status_code == 200 and reply.json()["status"] == 1 and reply.json()["accepted"] == 2
        # the documented capture endpoint, one event with api_key, no trailing slash
        single = one(api_key=site.write_key)
        sent.append(single)
        assert httpx.post(f"{url}/i/v0/e", json=single, headers=headers).json()["accepted"] == 1
        # a form `data=<base64>` (distinct_id in the properties, as the /capture/ docs show), a bare base64 body
        form = {k: v for k, v in one().items() if k != "distinct_id"}
        form["properties"] = {**form["properties"], "distinct_id": "anon-9"}
        sent.append(form)
        encoded = base64.b64encode(json.dumps(form).encode()).decode()
        assert httpx.post(f"{url}/capture/", data={"data": encoded}, headers=headers).json()["accepted"] == 1
        raw = one()
        sent.append(raw)
        assert httpx.post(f"{url}/e/?compression=base64", content=base64.b64encode(json.dumps(raw).encode()),
                          headers=headers).json()["accepted"] == 1
        # older posthog-js: no timestamp, an `offset` (ms) before the send time (`_`); a client an hour slow
        offset = one(timestamp=None, offset=1500)
        slow_ms = now_ms - 3_600_000
        skewed = one(timestamp=datetime.fromtimestamp(slow_ms / 1000 - 300, UTC).isoformat())
        sent += [offset, skewed]
        assert httpx.post(f"{url}/e/?_={now_ms}", json=[offset], headers=headers).json()["accepted"] == 1
        assert httpx.post(f"{url}/e/?_={slow_ms}", json=[skewed], headers=headers).json()["accepted"] == 1
        # the same uuid again: acknowledged, stored once
        assert httpx.post(f"{url}/batch/", json={"api_key": site.write_key, "batch": [single]},
                          headers=headers).json()["accepted"] == 1
        # a batch with bad items keeps the rest and names them by index
        good = one(event="Product Added", properties={"product_id": "p9", "$lib": "web"})
        sent.append(good)
        mixed = [good, one(event=None), "junk", one(timestamp="yesterday"), one(properties=[1, 2]),
                 {"event": "$identify", "distinct_id": "u9", "properties": {"$anon_distinct_id": "anon-9"}},
                 {"event": "$create_alias", "distinct_id": "anon-9"}]
        reply = httpx.post(f"{url}/batch/", json={"api_key": site.write_key, "batch": mixed,
                                                  "sent_at": datetime.now(UTC).isoformat()}, headers=headers)
        body = reply.json()
        assert reply.status_code == 200 and body["status"] == 1 and (body["accepted"], body["dropped"]) == (1, 1)
        assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
            (1, "missing_event"), (2, "unreadable_item"), (3, "invalid_timestamp"), (4, "unreadable_item"),
            (6, "unreadable_item")]
        assert "alias" in body["rejected"][4]["detail"]
        # keys
        forbidden = httpx.post(f"{url}/batch/", json={"api_key": site.read_key, "batch": [one()]}, headers=headers)
        assert forbidden.status_code == 403 and "read key" in forbidden.json()["detail"]
        errors: list[Any] = []
        wrong = client(url, "ks_w_unknown", errors)  # the library reports PostHog's `detail`
        wrong.capture("x", distinct_id="d")
        wrong.flush()
        wrong.shutdown()
        assert [(e.status, e.message) for e in errors] == [(401, "unknown or revoked write key")]
        assert httpx.post(f"{url}/batch/", json={"api_key": "ks_w_unknown", "batch": [one()]},
                          headers=headers).status_code == 401
        assert httpx.post(f"{url}/i/v0/e/", json={"event": "x", "distinct_id": "d"}, headers=headers).status_code == 401
        # bodies that are not events at all
        assert httpx.post(f"{url}/e/?compression=lz64", content=b"N4Ig", headers=headers).status_code == 400
        assert httpx.post(f"{url}/e/", content=b"{not json", headers=headers).status_code == 400
        assert httpx.post(f"{url}/e/", content=b"", headers=headers).status_code == 400
    rows = {r["event_id"]: r for r in stored(site)}
    assert sorted(rows) == sorted(e["uuid"] for e in sent)
    for item in sent:
        row = rows[item["uuid"]]
        assert row["event"] == {"$pageview": "page_view", "Product Viewed": "view_item",
                                "Product Added": "add_to_cart"}[item["event"]]
        assert row["visitor_id"] == "anon-9"
        assert "token" not in properties(row)  # the write key is not stored with every event
    first = rows[sent[0]["uuid"]]
    assert (first["ts"], first["url"], first["path"], first["session_id"], first["device_type"]) == (
        datetime(2026, 11, 25, 12, 0, 0, 250000), "https://shop.example/", "/", "s9", "desktop")
    assert rows[offset["uuid"]]["ts"] == datetime.fromtimestamp(now_ms / 1000, UTC).replace(tzinfo=None) - timedelta(
        milliseconds=1500)
    now = datetime.fromtimestamp(now_ms / 1000, UTC).replace(tzinfo=None)
    assert abs(rows[skewed["uuid"]]["ts"] - (now - timedelta(minutes=5))) < timedelta(seconds=30)
    assert stored(site, "SELECT visitor_id, user_id, source FROM identities") == [
        {"visitor_id": "anon-9", "user_id": "u9", "source": "identify"}]
