"""GA4's Measurement Protocol on a live server: `/mp/collect` and the validation server `/debug/mp/collect`.

There is no official Python client for the GA4 Measurement Protocol on PyPI (Google documents only the
HTTP request), so these tests send exactly the documented request shapes with httpx: `POST
/mp/collect?measurement_id=...&api_secret=...` (web streams) or `?firebase_app_id=...&api_secret=...`
(app streams) with a JSON body `{"client_id" | "app_instance_id", "user_id", "timestamp_micros",
"user_properties", "events": [{"name", "params"}]}`. The api secret is the project's write key.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from .server import Site, make_site, properties, serving, stored


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def collect(url: str, body: Any, secret: str | None, path: str = "/mp/collect", **query: str) -> httpx.Response:
    params = {"measurement_id": "G-TEST123", **query}
    if secret is not None:
        params["api_secret"] = secret
    return httpx.post(url + path, params=params, json=body)


def test_collect_stores_events_with_their_ids_times_and_revenue(site: Site) -> None:
    now = datetime.now().replace(microsecond=0)
    request_time, purchase_time = now - timedelta(hours=1, microseconds=17), now - timedelta(minutes=50)
    web = {
        "client_id": "123456.7654321", "user_id": "user-1", "timestamp_micros": micros(request_time),
        "user_properties": {"tier": {"value": "gold"}},
        "device": {"category": "mobile", "browser": "Chrome", "operating_system": "Android"},
        "user_location": {"country_id": "DE"},
        "user_data": {"sha256_email_address": ["ab" * 32]},
        "events": [
            {"name": "page_view", "params": {
                "page_location": "https://shop.example/p/1?utm_source=news&utm_medium=email",
                "page_referrer": "https://www.google.com/", "page_title": "P1", "session_id": 1764500000,
                "engagement_time_msec": 100}},
            {"name": "add_to_cart", "params": {"currency": "EUR", "value": 12.5, "session_id": "1764500000",
                                               "items": [{"item_id": "sku-1", "price": 12.5, "quantity": 1}]}},
            {"name": "purchase", "timestamp_micros": micros(purchase_time), "params": {
                "transaction_id": "T-1001", "value": 30.25, "currency": "eur", "tax": 2.1}},
            {"name": "refund", "params": {"transaction_id": "T-1001", "value": 30.25, "currency": "EUR"}},
            {"name": "generate_lead", "params": {"value": 5}},  # no currency: no revenue
        ],
    }
    app = {"app_instance_id": "0123456789abcdef0123456789abcdef",
           "events": [{"name": "tutorial_begin", "params": {"timestamp_micros": micros(now - timedelta(minutes=2))}}]}
    with serving(site) as server:
        for _ in range(2):  # a resend: stored once
            reply = collect(server.url, web, site.write_key)
            assert (reply.status_code, reply.content) == (204, b"")
        assert collect(server.url, app, site.write_key, firebase_app_id="1:123:android:abc").status_code == 204
        assert collect(server.url, web, "ks_w_unknown").status_code == 401
        assert collect(server.url, web, None).status_code == 401
        assert collect(server.url, web, site.read_key).status_code == 403
    rows = {r["event"]: r for r in stored(site)}
    assert len(stored(site)) == 6
    page, cart, purchase, refund, lead = (rows[n] for n in ("page_view", "add_to_cart", "purchase", "refund",
                                                            "generate_lead"))
    for row in (page, cart, refund, lead):
        assert row["ts"] == request_time
    for row in (page, cart, lead):
        assert row["event_id"].startswith("h")  # the content hash
    assert (purchase["ts"], purchase["event_id"]) == (purchase_time, "T-1001")
    assert refund["event_id"] == "refund:T-1001"  # not a resend of the purchase
    for row in (page, cart, purchase, refund, lead):
        assert (row["visitor_id"], row["user_id"], row["project"]) == ("123456.7654321", "user-1", "shop")
        assert (row["device_type"], row["browser"], row["os"], row["country"]) == ("mobile", "Chrome", "Android", "DE")
        assert properties(row)["user_properties"] == {"tier": "gold"}
        assert properties(row)["measurement_id"] == "G-TEST123"
        assert "user_data" not in properties(row) and "sha256_email_address" not in (row["properties"] or "")
    assert (page["url"], page["path"], page["referrer"], page["session_id"]) == (
        "https://shop.example/p/1?utm_source=news&utm_medium=email", "/p/1", "https://www.google.com/", "1764500000")
    assert (page["utm_source"], page["utm_medium"]) == ("news", "email")
    assert {k: properties(page)[k] for k in ("page_title", "engagement_time_msec")} == {
        "page_title": "P1", "engagement_time_msec": 100}
    assert (cart["revenue"], cart["currency"], cart["session_id"]) == (12.5, "EUR", "1764500000")
    assert properties(cart)["items"] == [{"item_id": "sku-1", "price": 12.5, "quantity": 1}]
    assert (purchase["revenue"], purchase["currency"], properties(purchase)["tax"]) == (30.25, "EUR", 2.1)
    assert (properties(purchase)["transaction_id"], refund["revenue"]) == ("T-1001", 30.25)
    assert (lead["revenue"], properties(lead)["value"]) == (None, 5)
    tutorial = rows["tutorial_begin"]
    assert (tutorial["visitor_id"], tutorial["ts"]) == ("0123456789abcdef0123456789abcdef", now - timedelta(minutes=2))
    assert properties(tutorial) == {"firebase_app_id": "1:123:android:abc", "measurement_id": "G-TEST123"}
    links = stored(site, "SELECT visitor_id, user_id FROM identities")
    assert links == [{"visitor_id": "123456.7654321", "user_id": "user-1"}]


def test_bad_items_are_rejected_alone_and_bad_bodies_refused(site: Site) -> None:
    body = {"client_id": "c-1", "events": [
        {"name": "good", "params": {"n": 1}}, "not an event", {"name": "bad_params", "params": [1]},
        {"params": {"n": 2}}, {"name": "bad_time", "timestamp_micros": "soon"},
        {"name": "bad_money", "params": {"value": "lots", "currency": "EUR"}}]}
    with serving(site) as server:
        assert collect(server.url, body, site.write_key).status_code == 204  # GA4 answers 204 whatever it holds
        assert collect(server.url, [], site.write_key).status_code == 400
        assert collect(server.url, {"client_id": "c-1", "events": "x"}, site.write_key).status_code == 400
        not_json = httpx.post(server.url + "/mp/collect", params={"api_secret": site.write_key}, content=b"{nope")
        assert not_json.status_code == 400
    assert [r["event"] for r in stored(site)] == ["good"]
    rejected = stored(site, "SELECT location, field, source FROM rejected_events ORDER BY location")
    assert [(r["location"], r["field"], r["source"]) for r in rejected] == [
        ("batch index 1", None, "/mp/collect"), ("batch index 2", None, "/mp/collect"),
        ("batch index 3", "event", "/mp/collect"), ("batch index 4", "ts", "/mp/collect"),
        ("batch index 5", "revenue", "/mp/collect")]


def message(path: str, description: str, code: str) -> dict[str, str]:
    return {"fieldPath": path, "description": description, "validationCode": code}


def test_the_validation_server_answers_like_ga4_and_stores_nothing(site: Site) -> None:
    valid = {"client_id": "c-1", "user_id": "u-1", "user_properties": {"tier": {"value": "gold"}},
             "events": [{"name": "purchase", "params": {"transaction_id": "T-1", "value": 3, "currency": "EUR",
                                                        "page_title": "t" * 300, "items": [{"item_id": "s"}]}},
                        {"name": "ñandú_visto", "params": {}}]}
    invalid = {
        "user_id": "u" * 257, "timestamp_micros": "soon",
        "user_properties": {"first_open_time": {"value": 1}, "a_much_too_long_user_property": {"value": "x"},
                            "plan": "pro", "note": {"value": "n" * 37}},
        "events": [
            {"name": "_badEventName", "params": {"firebase_conversion": 1, "_private": 2, "ok": 3}},
            {"name": "e" * 41},
            {"name": "has space", "params": {"bad-name": 1, "p" * 41: 2}},
            {"name": "session_start"},
            {"name": "google_thing", "params": {"long": "v" * 101, "page_location": "https://x/" + "l" * 990,
                                                "nested": {"a": 1}, "items": {"not": "a list"}}},
            {"params": {}},
            {"name": "too_many", "params": {f"p{i}": i for i in range(26)}, "timestamp_micros": 1.5},
            {"name": "keystep_says_no", "params": {"value": 3, "currency": "EURO"}},
        ] + [{"name": "filler"}] * 18,
    }
    with serving(site) as server:
        ok = collect(server.url, valid, site.write_key, "/debug/mp/collect")
        assert (ok.status_code, ok.json()) == (200, {"validationMessages": []})
        reply = collect(server.url, invalid, site.write_key, "/debug/mp/collect")
        assert reply.status_code == 200
        got = reply.json()["validationMessages"]
        app = collect(server.url, {"events": [{"name": "x"}]}, site.write_key, "/debug/mp/collect",
                      firebase_app_id="1:1:android:1").json()["validationMessages"]
        empty = collect(server.url, {"client_id": "c"}, site.write_key, "/debug/mp/collect").json()
        padded = json.dumps({"client_id": "c", "events": [
            {"name": "view_item_list", "params": {"items": [{"item_id": "x" * 90}] * 60}}] * 25}).encode()
        big = httpx.post(server.url + "/debug/mp/collect", params={"api_secret": site.write_key},
                         content=padded).json()["validationMessages"]
        assert collect(server.url, valid, "ks_w_unknown", "/debug/mp/collect").status_code == 401
    assert got == [
        message("events", "Event at index: [0] has invalid name [_badEventName]. Names must start with an "
                          "alphabetic character.", "NAME_INVALID"),
        message("events.params", "Event at index: [0] has param [firebase_conversion] whose name is reserved.",
                "NAME_RESERVED"),
        message("events.params", "Event at index: [0] has param [_private] whose name is reserved.", "NAME_RESERVED"),
        message("events", f"Event at index: [1] has invalid name [{'e' * 41}]. Names must be 40 characters or fewer.",
                "NAME_INVALID"),
        message("events", "Event at index: [2] has invalid name [has space]. Names may only contain alphanumeric "
                          "characters and underscores.", "NAME_INVALID"),
        message("events.params", "Event at index: [2] has invalid param [bad-name]. Names may only contain "
                                 "alphanumeric characters and underscores.", "NAME_INVALID"),
        message("events.params", f"Event at index: [2] has invalid param [{'p' * 41}]. Names must be 40 characters "
                                 "or fewer.", "NAME_INVALID"),
        message("events", "Event at index: [3] has name [session_start] which is reserved.", "NAME_RESERVED"),
        message("events", "Event at index: [4] has name [google_thing] which is reserved.", "NAME_RESERVED"),
        message("events.params", "Event at index: [4] has param [long] with a value of 101 characters; at most 100 "
                                 "are allowed.", "VALUE_OUT_OF_BOUNDS"),
        # (page_location is exactly its 1,000 characters: fine)
        message("events.params", "Event at index: [4] has param [nested] whose value is not a string or a number.",
                "VALUE_INVALID"),
        message("events.params.items", "Event at index: [4] has items that are not a list of objects.",
                "VALUE_INVALID"),
        message("events", "Event at index: [5] has no name.", "VALUE_REQUIRED"),
        message("events.params", "Event at index: [6] has 26 params; at most 25 are allowed.", "EXCEEDED_MAX_ENTITIES"),
        message("events.timestamp_micros", "Event at index: [6] has a timestamp_micros that is not an integer.",
                "VALUE_INVALID"),
        # keystep's own rules, for an event GA4's allow
        message("events", "Event at index: [7] is not accepted by keystep: currency: 'EURO' is not a 3-letter "
                          "currency code (ISO 4217)", "VALUE_INVALID"),
        # the request's (the fillers have a cookieless visitor id and no timestamp: keystep takes them)
        message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED"),
        message("user_id", "user_id is 257 characters; at most 256 are allowed.", "VALUE_OUT_OF_BOUNDS"),
        message("timestamp_micros", "timestamp_micros must be an integer (epoch microseconds).", "VALUE_INVALID"),
        message("events", "The request has 26 events; at most 25 are allowed.", "EXCEEDED_MAX_ENTITIES"),
        message("user_properties", "User property [first_open_time] has a reserved name.", "NAME_RESERVED"),
        message("user_properties", "User property [a_much_too_long_user_property] has an invalid name. Names must "
                                   "be 24 characters or fewer.", "NAME_INVALID"),
        message("user_properties", 'User property [plan] must be {"value": ...}.', "VALUE_INVALID"),
        message("user_properties", "User property [note] has a value of 37 characters; at most 36 are allowed.",
                "VALUE_OUT_OF_BOUNDS"),
    ]
    assert len(padded) > 130_000
    assert big == [message("", f"The body is {len(padded):,} bytes; it must be smaller than 130,000.",
                           "VALUE_OUT_OF_BOUNDS")]
    assert app == [message("app_instance_id", "Measurement requires an app_instance_id.", "VALUE_REQUIRED")]
    assert empty == {"validationMessages": [message("events", "Measurement requires at least one event.",
                                                    "VALUE_REQUIRED")]}
    assert stored(site) == [] and stored(site, "SELECT * FROM rejected_events") == []
