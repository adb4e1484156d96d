"""Snowplow on a live server, with the real `snowplow-tracker` library: POST batches, the GET pixel, ids,
times, self-describing events, contexts, transactions, resends, bad items and unknown app ids.

The tracker's app id is the project's write key. The visitor's browser user agent is set on the subject
(`ua`), as a server-side tracker forwards it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from snowplow_tracker import (
    EmitterConfiguration,
    SelfDescribingJson,
    Snowplow,
    Subject,
    Tracker,
)
from snowplow_tracker.emitters import PAYLOAD_DATA_SCHEMA, Emitter
from snowplow_tracker.events import PageView, ScreenView, SelfDescribing, StructuredEvent

from .server import Site, make_site, properties, serving, stored

UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/142.0.0.0 Safari/537.36")
TP2 = "/com.snowplowanalytics.snowplow/tp2"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)


def at(milliseconds: str | int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=int(milliseconds))


def subject(duid: str, uid: str | None = None) -> Subject:
    s = Subject().set_domain_user_id(duid).set_domain_session_id(f"{duid}-session").set_useragent(UA)
    return s.set_user_id(uid) if uid else s


def track_all(tracker: Tracker, when: datetime) -> None:
    tracker.track(PageView(page_url="https://shop.example/p/1?utm_source=news&utm_medium=email", page_title="P1",
                           referrer="https://www.google.com/", true_timestamp=ms(when)))
    tracker.track(StructuredEvent("shop", "add_to_cart", label="sku-1", property_="red", value=9.5))
    tracker.track(SelfDescribing(
        SelfDescribingJson("iglu:com.acme/begin_checkout/jsonschema/1-0-0", {"step": 2, "coupon": "X"}),
        context=[SelfDescribingJson("iglu:com.acme/cart/jsonschema/1-0-0", {"items": 3})]))
    tracker.track(ScreenView(id_="5b0e2e53-2a6c-4a1d-9d3b-8a3f7c9d3f10", name="home"))
    with pytest.warns(DeprecationWarning):
        tracker.track_ecommerce_transaction("order-7", 30.5, currency="EUR", tax_value=5.0,
                                            items=[{"sku": "s1", "price": 10.0, "quantity": 3, "name": "Sock"}])


def check_stored(rows: dict[str, dict[str, Any]], sent: list[dict[str, Any]], namespace: str, when: datetime) -> None:
    mine = [p for p in sent if p["tna"] == namespace]
    assert len(mine) == 6  # page view, structured, self-describing, screen view, transaction, one item
    by_type = {}
    for payload in mine:
        row = rows[payload["eid"]]
        assert (row["project"], row["visitor_id"], row["user_id"], row["session_id"]) == (
            "shop", "v-" + namespace, "u-" + namespace, f"v-{namespace}-session")
        assert (row["browser"], row["os"], row["device_type"]) == ("Chrome", "Mac OS X", "desktop")
        # the true timestamp as it is; else the device's creation time (its clock is right: no correction)
        assert row["ts"] == (at(payload["ttm"]) if "ttm" in payload else at(payload["dtm"]))
        by_type.setdefault(payload["e"], []).append(row)
    page = by_type["pv"][0]
    assert page["ts"] == when
    assert (page["event"], page["url"], page["path"], page["referrer"]) == (
        "page_view", "https://shop.example/p/1?utm_source=news&utm_medium=email", "/p/1", "https://www.google.com/")
    assert (page["utm_source"], page["utm_medium"]) == ("news", "email")
    assert properties(page) == {"page_title": "P1", "platform": "pc", "tracker_namespace": namespace,
                                "tracker_version": "py-1.1.0"}
    structured = by_type["se"][0]
    assert structured["event"] == "add_to_cart"
    assert {k: properties(structured)[k] for k in ("category", "label", "property", "value")} == {
        "category": "shop", "label": "sku-1", "property": "red", "value": 9.5}
    described = {r["event"]: r for r in by_type["ue"]}
    checkout, screen = described["begin_checkout"], described["screen_view"]
    assert {k: properties(checkout)[k] for k in ("step", "coupon", "event_schema", "contexts")} == {
        "step": 2, "coupon": "X", "event_schema": "iglu:com.acme/begin_checkout/jsonschema/1-0-0",
        "contexts": [{"schema": "iglu:com.acme/cart/jsonschema/1-0-0", "data": {"items": 3}}]}
    assert properties(screen)["name"] == "home"
    assert properties(screen)["event_schema"] == "iglu:com.snowplowanalytics.mobile/screen_view/jsonschema/1-0-0"
    order, item = by_type["tr"][0], by_type["ti"][0]
    assert (order["event"], order["revenue"], order["currency"]) == ("purchase", 30.5, "EUR")
    assert {k: properties(order)[k] for k in ("order_id", "tax")} == {"order_id": "order-7", "tax": 5.0}
    assert (item["event"], item["revenue"], item["currency"]) == ("transaction_item", None, None)
    assert {k: properties(item)[k] for k in ("order_id", "sku", "name", "price", "quantity", "currency")} == {
        "order_id": "order-7", "sku": "s1", "name": "Sock", "price": 10.0, "quantity": 3, "currency": "EUR"}


def test_the_tracker_posts_batches_and_gets_the_pixel(site: Site) -> None:
    when = datetime(2026, 3, 2, 9, 30, 0, 125000)
    sent: list[dict[str, Any]] = []
    failed: list[Any] = []
    with serving(site) as server:
        # POST, with the library's factory
        posting = Snowplow.create_tracker(
            "post", server.url, method="post", app_id=site.write_key, subject=subject("v-post", "u-post"),
            emitter_config=EmitterConfiguration(batch_size=50, on_success=sent.extend,
                                                on_failure=lambda n, events: failed.append(events)))
        try:
            track_all(posting, when)
            posting.flush()
        finally:
            Snowplow.remove_tracker(posting)
        # GET /i, one event per request, with an Emitter of its own
        emitter = Emitter("127.0.0.1", protocol="http", port=server.port, method="get", on_success=sent.extend,
                          on_failure=lambda n, events: failed.append(events))
        track_all(Tracker("get", emitter, subject=subject("v-get", "u-get"), app_id=site.write_key), when)
        emitter.flush()
        assert not failed
        pixel = httpx.get(server.url + "/i", params={"e": "pv", "url": "https://shop.example/", "duid": "v-pixel",
                                                     "aid": site.write_key, "ua": UA})
        assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")
        assert pixel.content.startswith(b"GIF89a") and len(pixel.content) == 43
    rows = {r["event_id"]: r for r in stored(site)}
    assert len(rows) == 13
    check_stored(rows, sent, "post", when)
    check_stored(rows, sent, "get", when)
    links = stored(site, "SELECT visitor_id, user_id, source FROM identities ORDER BY visitor_id")
    assert links == [{"visitor_id": "v-get", "user_id": "u-get", "source": "event"},
                     {"visitor_id": "v-post", "user_id": "u-post", "source": "event"}]


def test_resends_bad_items_and_unknown_app_ids(site: Site) -> None:
    """The payloads are the library's own (`Tracker.complete_payload`), posted with httpx in its envelope;
    the unknown app ids go through the tracker."""
    tracker = Tracker("raw", Emitter("127.0.0.1", protocol="http"), subject=subject("v1"), app_id=site.write_key)
    good = {k: str(v) for k, v in tracker.complete_payload(PageView(page_url="https://shop.example/")).nv_pairs.items()}
    sent_ms = ms(datetime.now().replace(microsecond=0))

    def envelope(*events: Any) -> str:
        return SelfDescribingJson(PAYLOAD_DATA_SCHEMA, list(events)).to_string()

    bad_ue = {**good, "e": "ue", "eid": "bad-ue", "ue_px": "%%% not base64"}
    not_schema = {**good, "e": "ue", "eid": "no-schema", "ue_pr": json.dumps({"data": {"no": "schema"}})}
    other_app = {**good, "eid": "other", "aid": site.other_write_key}
    no_action = {**good, "e": "se", "eid": "no-action", "se_ca": "shop"}
    bad_money = {**good, "e": "tr", "eid": "bad-money", "tr_id": "o", "tr_tt": "lots"}
    with serving(site) as server:
        for _ in range(2):
            reply = httpx.post(server.url + TP2, content=envelope({**good, "stm": str(sent_ms)}),
                               headers={"Content-Type": "application/json; charset=utf-8"})
            assert reply.status_code == 200 and reply.json()["accepted"] == 1
        reply = httpx.post(server.url + TP2, content=envelope(
            good, "not an event", bad_ue, not_schema, other_app, no_action, bad_money))
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["accepted"] == 1
        assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
            (1, "unreadable_item"), (2, "unreadable_item"), (3, "unreadable_item"), (4, "unreadable_item"),
            (5, "missing_event"), (6, "invalid_revenue")]
        assert "ue_px is not base64url" in body["rejected"][1]["detail"]
        assert "app id" in body["rejected"][3]["detail"]
        # the whole body unreadable
        assert httpx.post(server.url + TP2, content=b"{nope").status_code == 400
        assert httpx.post(server.url + TP2, json={"schema": PAYLOAD_DATA_SCHEMA}).status_code == 400
        # an unknown app id: 401, which the tracker reports as a failure and does not retry
        failures: list[tuple[int, int]] = []
        for method in ("post", "get"):
            emitter = Emitter("127.0.0.1", protocol="http", port=server.port, method=method,
                              on_failure=lambda n, events: failures.append((n, len(events))))
            unknown = Tracker(f"unknown-{method}", emitter, subject=subject("v9"), app_id="ks_w_unknown")
            unknown.track(PageView(page_url="https://shop.example/"))
            emitter.flush()
            assert not emitter.retry_timer.is_active()
        assert failures == [(0, 1), (0, 1)]
        assert httpx.get(server.url + "/i", params={"e": "pv", "url": "https://shop.example/"}).status_code == 401
        assert httpx.get(server.url + "/i", params={"e": "pv", "aid": site.read_key}).status_code == 403
    events = stored(site)
    assert [(e["event_id"], e["event"]) for e in events] == [(good["eid"], "page_view")]
    rejected = stored(site, "SELECT location, source FROM rejected_events ORDER BY location")
    assert rejected == [{"location": f"batch index {i}", "source": TP2} for i in range(1, 7)]
