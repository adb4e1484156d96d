"""Mixpanel on a live server, with the real `mixpanel` library (`Consumer` and `BufferedConsumer` pointed
at the collector's `/track` and `/import`): ids, times, identity, revenue, resends, unknown tokens; and
(with httpx) what mixpanel-js sends that the Python library does not: base64 `data`, `GET /track`, bad
items in a batch.

The library's token is the project's write key. (`Mixpanel.alias` always posts to api.mixpanel.com, with
a consumer of its own: it cannot be pointed at a collector, so `$create_alias` is sent with `track`.)
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mixpanel import BufferedConsumer, Consumer, Mixpanel, MixpanelException

from .server import Site, make_site, properties, serving, stored


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def epoch(moment: datetime) -> float:
    return (moment - datetime(1970, 1, 1)).total_seconds()


def test_the_library_tracks_imports_and_links_identities(site: Site) -> None:
    now = datetime.now().replace(microsecond=0)
    with serving(site) as server:
        consumer = Consumer(events_url=server.url + "/track", import_url=server.url + "/import")
        mp = Mixpanel(site.write_key, consumer=consumer)
        mp.track("dev-1", "Viewed Pricing", {
            "$insert_id": "ins-1", "time": epoch(now - timedelta(minutes=5)) + 0.25,
            "$current_url": "https://shop.example/pricing?utm_source=news", "$referrer": "$direct",
            "utm_medium": "email", "plan": "pro"})
        mp.track("dev-1", "$identify", {"$anon_id": "dev-1", "$identified_id": "user-1"})
        mp.track("user-1", "Purchased", {
            "$insert_id": "ins-2", "time": int(epoch(now - timedelta(minutes=1)) * 1000),  # milliseconds
            "$device_id": "dev-1", "$user_id": "user-1", "revenue": 30.5, "currency": "eur",
            "$referrer": "https://www.google.com/"})
        mp.track("user-1", "Purchased", {"$insert_id": "ins-2", "$device_id": "dev-1", "$user_id": "user-1",
                                         "revenue": 999})  # a resend: stored once
        mp.track("$device:dev-2", "$mp_web_page_view", {"$insert_id": "ins-3", "revenue": "n/a"})
        mp.track("dev-2", "$create_alias", {"alias": "user-2"})
        mp.import_data(None, "dev-3", "Old Signup", int(epoch(now - timedelta(days=30))), {"$insert_id": "ins-4"})
        buffered = BufferedConsumer(max_size=10, events_url=server.url + "/track")
        batch = Mixpanel(site.write_key, consumer=buffered)
        for i in range(3):
            batch.track(f"dev-b{i}", "Batched", {"$insert_id": f"ins-b{i}", "n": i})
        buffered.flush()
        with pytest.raises(MixpanelException, match="unknown or revoked write key"):
            Mixpanel("ks_w_unknown", consumer=consumer).track("dev-9", "Nope")
        with pytest.raises(MixpanelException, match="read key"):
            Mixpanel(site.read_key, consumer=consumer).track("dev-9", "Nope")
    rows = {r["event_id"]: r for r in stored(site)}
    assert sorted(rows) == ["ins-1", "ins-2", "ins-3", "ins-4", "ins-b0", "ins-b1", "ins-b2"]
    pricing = rows["ins-1"]
    assert (pricing["event"], pricing["visitor_id"], pricing["user_id"], pricing["ts"]) == (
        "Viewed Pricing", "dev-1", None, now - timedelta(minutes=5) + timedelta(milliseconds=250))
    assert (pricing["url"], pricing["path"], pricing["referrer"], pricing["utm_source"], pricing["utm_medium"]) == (
        "https://shop.example/pricing?utm_source=news", "/pricing", None, "news", "email")
    assert properties(pricing) == {"distinct_id": "dev-1", "mp_lib": "python", "$lib_version": "5.4.1",
                                   "plan": "pro"}
    purchase = rows["ins-2"]
    assert (purchase["event"], purchase["visitor_id"], purchase["user_id"], purchase["ts"]) == (
        "Purchased", "dev-1", "user-1", now - timedelta(minutes=1))
    assert (purchase["revenue"], purchase["currency"], purchase["referrer"]) == (30.5, "EUR", "https://www.google.com/")
    page = rows["ins-3"]
    assert (page["event"], page["visitor_id"], page["revenue"]) == ("page_view", "dev-2", None)
    assert properties(page)["original_event"] == "$mp_web_page_view"
    assert properties(page)["revenue"] == "n/a"  # not a number: a property, not the revenue
    assert (rows["ins-4"]["event"], rows["ins-4"]["ts"]) == ("Old Signup", now - timedelta(days=30))
    assert [(rows[f"ins-b{i}"]["visitor_id"], properties(rows[f"ins-b{i}"])["n"]) for i in range(3)] == [
        ("dev-b0", 0), ("dev-b1", 1), ("dev-b2", 2)]
    # `$identify` and the purchase both link dev-1 to user-1 (one link per pair); `$create_alias` dev-2 to user-2
    links = stored(site, "SELECT visitor_id, user_id, source FROM identities ORDER BY visitor_id")
    assert [(r["visitor_id"], r["user_id"]) for r in links] == [("dev-1", "user-1"), ("dev-2", "user-2")]
    assert links[0]["source"] in ("identify", "event") and links[1]["source"] == "alias"


def test_what_mixpanel_js_sends_and_bad_items(site: Site) -> None:
    def event(name: str, insert_id: str, **more: object) -> dict[str, object]:
        return {"event": name, "properties": {"token": site.write_key, "distinct_id": "web-1", "$insert_id": insert_id,
                                              "mp_lib": "web", **more}}

    def b64(value: object) -> str:
        return base64.b64encode(json.dumps(value).encode()).decode()

    with serving(site) as server:
        # mixpanel-js: form-encoded base64 data to /track/ (with its slash), and the GET transport
        posted = httpx.post(server.url + "/track/?verbose=1&ip=1", data={"data": b64([event("Clicked", "js-1")])})
        assert posted.status_code == 200 and posted.json() == {"status": 1, "error": None, "num_records_imported": 1}
        got = httpx.get(server.url + "/track", params={"data": b64(event("Scrolled", "js-2")), "ip": "1"})
        assert got.json()["status"] == 1
        # a JSON body (the newer /import)
        imported = httpx.post(server.url + "/import", json=[event("Imported", "js-3", time=1764583260)])
        assert imported.json()["num_records_imported"] == 1
        # bad items are rejected alone, with their index
        batch = [event("Good", "js-4"), "not an event",
                 {"event": "Other project", "properties": {"token": site.other_write_key, "distinct_id": "x"}},
                 {"properties": {"token": site.write_key, "distinct_id": "web-1"}},
                 event("Bad time", "js-5", time="yesterday")]
        reply = httpx.post(server.url + "/track", data={"data": json.dumps(batch)}).json()
        assert reply["status"] == 0 and reply["num_records_imported"] == 1
        assert [(r["index"], r["field"]) for r in reply["failed_records"]] == [
            (1, None), (2, None), (3, "event"), (4, "ts")]
        # the whole body unreadable, no token: the reply the library reads
        for data, status in (("%%%", 400), (b64({"event": "x", "properties": {}}), 401)):
            failed = httpx.post(server.url + "/track", data={"data": data})
            assert failed.status_code == status and failed.json()["status"] == 0 and failed.json()["error"]
        assert httpx.post(server.url + "/track").status_code == 400
    rows = {r["event_id"]: r for r in stored(site)}
    assert {k: r["event"] for k, r in rows.items()} == {
        "js-1": "Clicked", "js-2": "Scrolled", "js-3": "Imported", "js-4": "Good"}
    assert rows["js-3"]["ts"] == datetime(2025, 12, 1, 10, 1, 0)
    assert properties(rows["js-1"])["mp_lib"] == "web"
    assert [r["location"] for r in stored(site, "SELECT location FROM rejected_events ORDER BY location")] == [
        f"batch index {i}" for i in (1, 2, 3, 4)]
